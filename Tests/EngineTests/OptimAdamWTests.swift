import Foundation
import Testing
@testable import Engine

/// Sets the gradient of `t` to `values` (replacing any earlier one).
private func setGrad(_ t: Tensor, _ values: [Float]) {
    t.zeroGrad()
    t.accumulateGrad(Tensor(shape: t.shape, values: values))
}

/// AdamW written out in Double, one scalar at a time, as the reference.
private struct ReferenceAdamW {
    var lr: Double, beta1: Double, beta2: Double, eps: Double, decay: Double
    var m: [Double], v: [Double], t = 0

    init(count: Int, lr: Double, beta1: Double, beta2: Double, eps: Double, decay: Double) {
        (self.lr, self.beta1, self.beta2, self.eps, self.decay) = (lr, beta1, beta2, eps, decay)
        m = Array(repeating: 0, count: count)
        v = Array(repeating: 0, count: count)
    }

    mutating func step(_ theta: inout [Double], _ g: [Double]) {
        t += 1
        for i in theta.indices {
            theta[i] -= lr * decay * theta[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            let mHat = m[i] / (1 - pow(beta1, Double(t)))
            let vHat = v[i] / (1 - pow(beta2, Double(t)))
            theta[i] -= lr * mHat / (vHat.squareRoot() + eps)
        }
    }
}

@Suite struct OptimAdamWTests {
    @Test func firstStepMovesEachWeightByTheLearningRate() {
        // At t = 1 the bias-corrected m̂/√v̂ is g/|g|, so without decay every weight moves by lr.
        let w = Tensor(shape: [3], values: [1, -2, 0.5])
        let opt = AdamW(groups: [ParameterGroup(name: "all", parameters: [("w", w)], weightDecay: 0)],
                        configuration: AdamWConfiguration(learningRate: 0.1))
        setGrad(w, [0.3, -4, 1e-2])
        opt.step()
        let expected: [Float] = [0.9, -1.9, 0.4]
        for i in 0..<3 { #expect(abs(w.values[i] - expected[i]) < 1e-5) }
    }

    @Test(arguments: [Float(0), 0.1])
    func matchesHandComputedReference(decay: Float) {
        let lr: Float = 0.05, beta1: Float = 0.9, beta2: Float = 0.96
        let start: [Float] = [0.5, -1.25, 2, 0.01]
        let w = Tensor(shape: [2, 2], values: start)
        let opt = AdamW(groups: [ParameterGroup(name: "all", parameters: [("w", w)], weightDecay: decay)],
                        configuration: AdamWConfiguration(learningRate: lr, beta1: beta1, beta2: beta2, epsilon: 1e-8))
        var ref = ReferenceAdamW(count: 4, lr: Double(lr), beta1: Double(beta1), beta2: Double(beta2),
                                 eps: 1e-8, decay: Double(decay))
        var theta = start.map(Double.init)
        let grads: [[Float]] = [[0.1, -0.2, 0.3, 0], [-0.4, 0.1, 0.05, 1], [0.2, 0.2, -0.7, -0.3],
                                [0, 0.5, 0.1, 0.2], [1.5, -0.1, 0, 0.01]]
        for g in grads {
            setGrad(w, g)
            opt.step()
            ref.step(&theta, g.map(Double.init))
            for i in 0..<4 { #expect(abs(Double(w.values[i]) - theta[i]) < 2e-6, "weight \(i) after step \(ref.t)") }
        }
        #expect(opt.stepCount == grads.count)
    }

    @Test func noDecayGroupIsNotDecayed() {
        // With zero gradients the Adam term vanishes (m = v = 0), leaving only the decay.
        let matrix = Tensor(shape: [2, 3], repeating: 2)
        let bias = Tensor(shape: [3], repeating: 2)
        let opt = AdamW(named: [("fc.weight", matrix), ("fc.bias", bias)],
                        configuration: AdamWConfiguration(learningRate: 0.1, weightDecay: 0.5))
        setGrad(matrix, Array(repeating: 0, count: 6))
        setGrad(bias, Array(repeating: 0, count: 3))
        opt.step()
        for x in matrix.values { #expect(abs(x - 2 * (1 - 0.1 * 0.5)) < 1e-6) }
        #expect(bias.values == [2, 2, 2])
    }

    @Test func parametersWithoutGradientAreSkipped() {
        let a = Tensor(shape: [2, 2], repeating: 1)
        let b = Tensor(shape: [2, 2], repeating: 1)
        let opt = AdamW(named: [("a", a), ("b", b)], configuration: AdamWConfiguration(learningRate: 0.1, weightDecay: 0.1))
        setGrad(a, [1, 1, 1, 1])
        opt.step()
        #expect(b.values == [1, 1, 1, 1])
        #expect(a.values != [1, 1, 1, 1])
        let state = Dictionary(uniqueKeysWithValues: opt.stateTensors().map { ($0.name, $0.tensor) })
        #expect(state["m.b"]!.values == [0, 0, 0, 0])
    }

    @Test func standardGroupingRule() {
        let named: [(name: String, tensor: Tensor)] = [
            ("blocks.0.attention.qkv.weight", Tensor(zeros: [12, 4])),
            ("blocks.0.attention.qkv.bias", Tensor(zeros: [12])),
            ("blocks.0.norm1.weight", Tensor(zeros: [4])),
            ("blocks.0.adaNorm.linear.weight", Tensor(zeros: [8, 4])),
            ("tokenEmbedding.weight", Tensor(zeros: [10, 4])),
            ("rowEmbedding", Tensor(zeros: [4, 4])),
            ("head.layerNorm.bias", Tensor(zeros: [4])),
            ("conv.weight", Tensor(zeros: [4, 3, 3, 3])),
            ("logScale", Tensor(scalar: 0)),
        ]
        let groups = ParameterGroup.standard(named, weightDecay: 0.045)
        #expect(groups.map(\.name) == ["decay", "noDecay"])
        #expect(groups[0].weightDecay == 0.045 && groups[1].weightDecay == 0)
        #expect(groups[0].parameters.map(\.name) == ["blocks.0.attention.qkv.weight", "conv.weight"])
        #expect(groups[1].parameters.map(\.name) == [
            "blocks.0.attention.qkv.bias", "blocks.0.norm1.weight", "blocks.0.adaNorm.linear.weight",
            "tokenEmbedding.weight", "rowEmbedding", "head.layerNorm.bias", "logScale"])
    }

    @Test func stateRoundTripContinuesExactly() throws {
        var rng = RandomGenerator(seed: 7)
        let shapes = [[3, 4], [4], [2, 2]]
        func makeParams() -> [(name: String, tensor: Tensor)] {
            var r = RandomGenerator(seed: 99)
            return shapes.enumerated().map { (name: "p\($0.offset)", tensor: Tensor.randn($0.element, using: &r)) }
        }
        let gradients: [[[Float]]] = (0..<8).map { _ in shapes.map { s in (0..<Tensor.elementCount(s)).map { _ in rng.normal() } } }
        let config = AdamWConfiguration(learningRate: 0.01, beta1: 0.9, beta2: 0.96, weightDecay: 0.1)

        // Uninterrupted: 8 steps.
        let a = makeParams()
        let optA = AdamW(named: a, configuration: config)
        for g in gradients {
            for (p, gv) in zip(a, g) { setGrad(p.tensor, gv) }
            optA.step()
        }

        // Interrupted after 3 steps: save weights and state, rebuild, continue 5 steps.
        let b = makeParams()
        let optB = AdamW(named: b, configuration: config)
        for g in gradients.prefix(3) {
            for (p, gv) in zip(b, g) { setGrad(p.tensor, gv) }
            optB.step()
        }
        let saved = Dictionary(uniqueKeysWithValues: optB.stateTensors().map { ($0.name, $0.tensor) })
        #expect(saved.count == 1 + 2 * shapes.count)
        let c = b.map { (name: $0.name, tensor: $0.tensor.copy()) }
        let optC = AdamW(named: c, configuration: config)
        try optC.loadState(saved)
        #expect(optC.stepCount == 3)
        for g in gradients.dropFirst(3) {
            for (p, gv) in zip(c, g) { setGrad(p.tensor, gv) }
            optC.step()
        }
        for (x, y) in zip(a, c) { #expect(x.tensor.values == y.tensor.values, "\(x.name)") }
    }

    @Test func loadStateNamesTheOffendingTensor() {
        let w = Tensor(zeros: [2, 3])
        let opt = AdamW(named: [("layer.weight", w)])
        var state = Dictionary(uniqueKeysWithValues: opt.stateTensors().map { ($0.name, $0.tensor) })
        state["v.layer.weight"] = nil
        #expect(throws: OptimizerStateError.missing(name: "v.layer.weight")) { try opt.loadState(state) }
        state["v.layer.weight"] = Tensor(zeros: [3, 2])
        #expect(throws: OptimizerStateError.shapeMismatch(name: "v.layer.weight", expected: [2, 3], found: [3, 2])) {
            try opt.loadState(state)
        }
        state["v.layer.weight"] = Tensor(zeros: [2, 3])
        state["step"] = Tensor(scalar: 2.5)
        #expect(throws: OptimizerStateError.self) { try opt.loadState(state) }
        do {
            state["step"] = nil
            try opt.loadState(state)
        } catch {
            #expect("\(error)".contains("'step'"))
        }
    }

    @Test func minimisesLeastSquares() {
        // Fit x in A x = b with b = A x* (20 equations, 5 unknowns); the gradient of
        // ½‖Ax − b‖²/n is Aᵀ(Ax − b)/n, written by hand.
        var rng = RandomGenerator(seed: 3)
        let (n, d) = (20, 5)
        let A = (0..<(n * d)).map { _ in Double(rng.normal()) }
        let xStar = (0..<d).map { _ in Double(rng.normal()) }
        let b = (0..<n).map { i in (0..<d).reduce(0.0) { $0 + A[i * d + $1] * xStar[$1] } }
        let x = Tensor(zeros: [d, 1])
        let opt = AdamW(groups: [ParameterGroup(name: "x", parameters: [("x", x)], weightDecay: 0)],
                        configuration: AdamWConfiguration(learningRate: 0.05))
        let schedule = WarmupCosineSchedule(peak: 0.05, warmupSteps: 20, totalSteps: 1500, minimum: 1e-4)
        var loss = 0.0
        for step in 0..<1500 {
            let xv = x.values.map(Double.init)
            var r = [Double](repeating: 0, count: n)
            for i in 0..<n { r[i] = (0..<d).reduce(-b[i]) { $0 + A[i * d + $1] * xv[$1] } }
            loss = 0.5 * r.reduce(0) { $0 + $1 * $1 } / Double(n)
            let g = (0..<d).map { j in Float((0..<n).reduce(0.0) { $0 + A[$1 * d + j] * r[$1] } / Double(n)) }
            setGrad(x, g)
            opt.learningRate = schedule.learningRate(at: step)
            opt.step()
        }
        #expect(loss < 1e-7)
        for j in 0..<d { #expect(abs(Double(x.values[j]) - xStar[j]) < 1e-3) }
    }
}
