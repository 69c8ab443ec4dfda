/// Scales the gradients of `params` together so that their global L2 norm is at most `maxNorm`.
///
/// The norm is taken over every element of every gradient as one vector (computed in Double);
/// parameters without a gradient are ignored. When the norm exceeds `maxNorm` each gradient is
/// multiplied by `maxNorm / norm`; otherwise, and when the norm is not finite (an overflow or a
/// NaN the caller should notice), the gradients are left as they are.
///
/// - Returns: the total norm before clipping.
@discardableResult
public func clipGradientNorm(_ params: [Tensor], maxNorm: Float) -> Float {
    precondition(maxNorm > 0, "clipGradientNorm: maxNorm must be positive, got \(maxNorm)")
    var sumSquares = 0.0
    for p in params {
        guard let g = p.gradStorage else { continue }
        let gp = g.pointer
        var s = 0.0
        for i in 0..<g.count {
            let x = Double(gp[i])
            s += x * x
        }
        sumSquares += s
    }
    let norm = sumSquares.squareRoot()
    if norm.isFinite && norm > Double(maxNorm) {
        let scale = Float(Double(maxNorm) / norm)
        for p in params {
            guard let g = p.gradStorage else { continue }
            let gp = g.pointer
            for i in 0..<g.count { gp[i] *= scale }
        }
    }
    return Float(norm)
}
