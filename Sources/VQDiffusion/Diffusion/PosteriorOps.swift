import Engine
import Foundation

// Batched entry points to the posterior kernel: tensors with autograd for training and sampling,
// index inputs for the true posterior q(x_{t−1} | x_t, x0), and the reference code's
// classes-first layout for inspection.

extension DiffusionSchedule {
    /// log p_θ(x_s | x_t) as one fused autograd node, differentiable with respect to `logX0`.
    ///
    /// - logX0: (B, N, K) log p̃_θ(x0 | x_t) over the real codes (any shape whose last axis is K and
    ///   whose leading axes hold B·N tokens; e.g. a log-softmax of the transformer's logits).
    /// - xt: (B·N) the current tokens, 0…K (K = [MASK]), row-major like logX0.
    /// - steps: one `ReverseStep` per batch element (B = steps.count), so every element may have
    ///   its own t.
    /// - Returns: (B, N, K+1) log-probabilities of x_s, floored at −70.
    public func posteriorLogProbabilities(logX0: Tensor, xt: [Int32], steps reverse: [ReverseStep]) -> Tensor {
        let K = classes
        precondition(logX0.rank >= 1 && logX0.shape.last == K,
                     "posterior: logX0 of shape \(logX0.shape) must end in K = \(K)")
        let rows = logX0.count / K
        precondition(xt.count == rows, "posterior: \(xt.count) tokens in xt but logX0 of shape \(logX0.shape) holds \(rows)")
        let B = reverse.count
        precondition(B > 0 && rows % B == 0, "posterior: \(rows) tokens do not split into \(B) batch elements")
        for r in reverse { precondition(r.classes == K, "posterior: a step over \(r.classes) classes, schedule has \(K)") }
        let N = rows / B
        var outShape = logX0.shape
        outShape[outShape.count - 1] = K + 1
        let out = Tensor(uninitializedShape: outShape)
        let (px, po) = (logX0.pointer, out.pointer)
        xt.withUnsafeBufferPointer { x in
            for b in 0..<B {
                DiffusionPosterior.forward(logX0: px + b * N * K, xt: x.baseAddress! + b * N, rows: N,
                                           step: reverse[b], out: po + b * N * (K + 1))
            }
        }
        return out.recordOp(inputs: [logX0]) { out in
            let g = out.gradStorage!.pointer
            logX0.accumulateGrad(shape: logX0.shape) { gx in
                xt.withUnsafeBufferPointer { x in
                    for b in 0..<B {
                        DiffusionPosterior.backward(logX0: px + b * N * K, xt: x.baseAddress! + b * N, rows: N,
                                                    step: reverse[b], gradOut: g + b * N * (K + 1),
                                                    gradLogX0: gx.baseAddress! + b * N * K)
                    }
                }
            }
        }
    }

    /// log p_θ(x_{t−1} | x_t) with one time t (1…T) per batch element; at t = 1 this is
    /// log p̃_θ(x0 | x1) itself (plus a floored [MASK] entry).
    public func posteriorLogProbabilities(logX0: Tensor, xt: [Int32], t: [Int]) -> Tensor {
        posteriorLogProbabilities(logX0: logX0, xt: xt, steps: t.map { reverseStep(at: $0) })
    }

    /// log p_θ(x_{t−1} | x_t) with the same t for the whole batch (B taken as 1).
    public func posteriorLogProbabilities(logX0: Tensor, xt: [Int32], t: Int) -> Tensor {
        posteriorLogProbabilities(logX0: logX0, xt: xt, steps: [reverseStep(at: t)])
    }

    /// log p_θ(x_s | x_t) for a skip from t to s < t (fast inference), the whole batch at once.
    public func posteriorLogProbabilities(logX0: Tensor, xt: [Int32], from t: Int, to s: Int,
                                          skipping: StepSkipping = .exact) -> Tensor {
        posteriorLogProbabilities(logX0: logX0, xt: xt, steps: [reverseStep(from: t, to: s, skipping: skipping)])
    }

    /// The true posterior log q(x_{t−1} | x_t, x0) for clean tokens x0 (B·N, real codes 0…K−1),
    /// one t per batch element: (B·N, K+1) row-major, floored at −70. When x_t cannot arise from
    /// x0 (impossible input) the row is the point mass on x_t.
    public func truePosteriorLogProbabilities(x0: [Int32], xt: [Int32], t: [Int]) -> [Float] {
        let K = classes
        precondition(x0.count == xt.count, "truePosterior: x0 has \(x0.count) tokens, xt has \(xt.count)")
        let B = t.count
        precondition(B > 0 && x0.count % B == 0, "truePosterior: \(x0.count) tokens do not split into \(B) batch elements")
        let N = x0.count / B
        // One-hot x0 as log-probabilities: 0 at x0, −∞ elsewhere (exact zeros are handled).
        var logX0 = [Float](repeating: -.infinity, count: x0.count * K)   // (B·N, K)
        for r in 0..<x0.count {
            precondition(x0[r] >= 0 && Int(x0[r]) < K, "truePosterior: clean token \(x0[r]) outside 0…\(K - 1)")
            logX0[r * K + Int(x0[r])] = 0
        }
        var out = [Float](repeating: 0, count: x0.count * (K + 1))         // (B·N, K+1)
        logX0.withUnsafeBufferPointer { lx in
            xt.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { o in
                    for b in 0..<B {
                        DiffusionPosterior.forward(logX0: lx.baseAddress! + b * N * K, xt: x.baseAddress! + b * N,
                                                   rows: N, step: reverseStep(at: t[b]),
                                                   out: o.baseAddress! + b * N * (K + 1))
                    }
                }
            }
        }
        return out
    }

    /// The semantics of `vqd inspect posterior`, in the reference implementation's layout:
    /// given x_t (B, N) with values 0…K, log x0 float32 (B, K, N) over the real codes and t (1…T),
    /// returns float32 (B, K+1, N) = log p(x_{t−1} | x_t), floored at −70. t is 1-based here
    /// (the reference code's 0-based step index is t − 1). The result is normalised over the K+1
    /// classes; for a normalised log x0 this agrees with the reference's unnormalised formula.
    public func posteriorLogProbabilitiesClassesFirst(xt: [Int32], logX0: [Float], batch B: Int, t: Int) -> [Float] {
        let K = classes
        precondition(B > 0 && xt.count % B == 0, "posterior: \(xt.count) tokens do not split into \(B) batch elements")
        let N = xt.count / B
        precondition(logX0.count == B * K * N, "posterior: logX0 holds \(logX0.count) values, expected B·K·N = \(B * K * N)")
        var rowsIn = [Float](repeating: 0, count: B * N * K)                // (B, N, K)
        for b in 0..<B { for k in 0..<K { for n in 0..<N { rowsIn[(b * N + n) * K + k] = logX0[(b * K + k) * N + n] } } }
        var rowsOut = [Float](repeating: 0, count: B * N * (K + 1))         // (B, N, K+1)
        let step = reverseStep(at: t)
        rowsIn.withUnsafeBufferPointer { lx in
            xt.withUnsafeBufferPointer { x in
                rowsOut.withUnsafeMutableBufferPointer { o in
                    DiffusionPosterior.forward(logX0: lx.baseAddress!, xt: x.baseAddress!, rows: B * N,
                                               step: step, out: o.baseAddress!)
                }
            }
        }
        var out = [Float](repeating: 0, count: B * (K + 1) * N)             // (B, K+1, N)
        for b in 0..<B { for k in 0...K { for n in 0..<N { out[(b * (K + 1) + k) * N + n] = rowsOut[(b * N + n) * (K + 1) + k] } } }
        return out
    }
}
