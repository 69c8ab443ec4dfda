import Engine
import Foundation

// The variational-bound term of one token as a fused kernel (Eq. 8 of the paper):
//
//   KL(q ‖ p) = Σ_k q_k (log q_k − log p_k)        over the K+1 classes of x_{t−1},
//
// with q = q(x_{t−1} | x_t, x0) (a constant) and log p = log p_θ(x_{t−1} | x_t) (the model).
// At t = 1 the target is one-hot at x0 (up to the −70 floor), so the same sum is the decoder
// NLL −log p_θ(x0 | x1) (plus terms of order e^−70).
//
// The loss is Σ_r w_r KL_r with one weight per token row (time weight, mask weight and the
// per-token normalisation folded together). Gradient: ∂/∂log p_k = −w_r q_k.

public enum DiffusionKLKernel {
    /// perRow[r] = Σ_k e^{lq_k} (lq_k − lp_k) for `rows` rows of `classes` log-probabilities;
    /// returns Σ_r w_r perRow[r] (Float64 accumulation).
    /// - logTrue, logModel: (rows, C); weights: (rows); perRow: (rows).
    public static func forward(logTrue: UnsafePointer<Float>, logModel: UnsafePointer<Float>,
                               weights: UnsafePointer<Float>, rows: Int, classes C: Int,
                               perRow: UnsafeMutablePointer<Float>) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let (q, p) = (logTrue + r * C, logModel + r * C)
            var s: Float = 0
            for k in 0..<C { s += FastMath.exp(q[k]) * (q[k] - p[k]) }
            perRow[r] = s
            total += Double(weights[r]) * Double(s)
        }
        return total
    }

    /// gradModel (rows, C) += −g · w_r · e^{lq_k}.
    public static func backward(logTrue: UnsafePointer<Float>, weights: UnsafePointer<Float>, scale g: Float,
                                rows: Int, classes C: Int, gradModel: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let gw = -g * weights[r]
            if gw == 0 { continue }
            let (q, d) = (logTrue + r * C, gradModel + r * C)
            for k in 0..<C { d[k] += gw * FastMath.exp(q[k]) }
        }
    }
}

/// The weighted KL Σ_r w_r KL(q_r ‖ p_r) as one autograd node, and the unweighted per-row values.
/// - logTrue: (rows·C) log q, constant; model: any shape ending in C holding `rows` rows of log p;
///   weights: (rows).
public func diffusionKL(logTrue: [Float], model: Tensor, weights: [Float]) -> (loss: Tensor, perRow: [Float]) {
    precondition(model.rank >= 1, "diffusionKL: model log-probabilities need at least one axis")
    let C = model.shape[model.rank - 1]
    let rows = C == 0 ? 0 : model.count / C
    precondition(logTrue.count == model.count,
                 "diffusionKL: \(logTrue.count) target values for model log-probabilities of shape \(model.shape)")
    precondition(weights.count == rows, "diffusionKL: \(weights.count) weights for \(rows) rows of shape \(model.shape)")
    var perRow = [Float](repeating: 0, count: rows)
    let total = logTrue.withUnsafeBufferPointer { q in
        weights.withUnsafeBufferPointer { w in
            perRow.withUnsafeMutableBufferPointer { o in
                DiffusionKLKernel.forward(logTrue: q.baseAddress!, logModel: model.pointer, weights: w.baseAddress!,
                                          rows: rows, classes: C, perRow: o.baseAddress!)
            }
        }
    }
    let out = Tensor(scalar: Float(total))
    out.recordOp(inputs: [model]) { out in
        let g = out.gradStorage!.pointer[0]
        model.accumulateGrad(shape: model.shape) { gm in
            logTrue.withUnsafeBufferPointer { q in
                weights.withUnsafeBufferPointer { w in
                    DiffusionKLKernel.backward(logTrue: q.baseAddress!, weights: w.baseAddress!, scale: g,
                                               rows: rows, classes: C, gradModel: gm.baseAddress!)
                }
            }
        }
    }
    return (out, perRow)
}
