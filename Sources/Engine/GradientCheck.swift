/// Finite-difference gradient checking, for the tests of every op, kernel and model.
///
/// `f` maps the inputs to an output tensor of any shape; the scalar checked is
/// L = Σ w ⊙ f(inputs) with fixed random weights w, so every output element matters.
/// Returns the worst relative error max|analytic − numeric| / max(1, |numeric|) scale over all inputs.
public func gradientError(_ inputs: [Tensor], epsilon: Float = 1e-2, seed: UInt64 = 7,
                   _ f: ([Tensor]) -> Tensor) -> Float {
    for x in inputs { x.requiresGrad = true; x.zeroGrad() }
    let out = f(inputs)
    var rng = RandomGenerator(seed: seed)
    let weights = (0..<out.count).map { _ in rng.uniform(-1, 1) }
    func loss() -> Double {
        let y = Autograd.withoutGrad { f(inputs) }
        var s = 0.0
        for i in 0..<y.count { s += Double(weights[i]) * Double(y.pointer[i]) }
        return s
    }
    out.backward(seed: Tensor(shape: out.shape, values: weights))
    var worst: Float = 0
    for x in inputs {
        let analytic = x.grad?.values ?? [Float](repeating: 0, count: x.count)
        var scale: Float = 1
        var numeric = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let old = x.pointer[i]
            x.pointer[i] = old + epsilon
            let up = loss()
            x.pointer[i] = old - epsilon
            let down = loss()
            x.pointer[i] = old
            numeric[i] = Float((up - down) / (2 * Double(epsilon)))
            scale = max(scale, abs(numeric[i]))
        }
        for i in 0..<x.count { worst = max(worst, abs(analytic[i] - numeric[i]) / scale) }
    }
    return worst
}
