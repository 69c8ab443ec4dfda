import Foundation

/// Cross-entropy of logits against integer targets, log-softmax and NLL fused in one node:
/// loss = Σ_i w_i · (logsumexp(z_i) − z_i[t_i]) / n, n = number of rows with t_i ≥ 0.
/// Rows with a negative target are ignored (no loss, no gradient). Forward saves the per-row
/// logsumexp (N floats); backward recomputes softmax from it:
/// dz_i = g · w_i / n · (softmax(z_i) − onehot(t_i)).

/// Writes each row's logsumexp into `lse` (N) and returns the loss (0 when every row is ignored).
/// - logits: (N, C), targets: (N), weights: (N) or nil.
public func crossEntropyForward(lse: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, weights: UnsafePointer<Float>?,
                                N: Int, C: Int) -> Float {
    let chunkCount = Parallel.chunkCount(N, minimumPerChunk: 32)
    var partial = [Double](repeating: 0, count: max(chunkCount, 1))
    partial.withUnsafeMutableBufferPointer { partial in
        Parallel.chunks(N, count: chunkCount) { chunk, rows in
            let scratch = ScratchPool.shared.take(C)
            defer { ScratchPool.shared.give(scratch) }
            let e = scratch.pointer                // (C) one row's exponentials
            var total = 0.0
            for r in rows {
                let z = logits + r * C
                let mx = FastMath.max(z, C)
                for j in 0..<C { e[j] = FastMath.exp(z[j] - mx) }
                let l = mx + log(FastMath.sum(e, C))
                lse[r] = l
                let t = Int(targets[r])
                guard t >= 0 else { continue }
                precondition(t < C, "crossEntropy: target \(t) at row \(r) is out of range for \(C) classes")
                total += Double((weights?[r] ?? 1) * (l - z[t]))
            }
            partial[chunk] = total
        }
    }
    let counted = (0..<N).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
    guard counted > 0 else { return 0 }
    return Float(partial.reduce(0, +) / Double(counted))
}

/// Backward of `crossEntropyForward`: dlogits (N, C) += g · w_i / n · (softmax(z_i) − onehot(t_i)).
public func crossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, dloss: Float,
                                 lse: UnsafePointer<Float>, logits: UnsafePointer<Float>,
                                 targets: UnsafePointer<Int32>, weights: UnsafePointer<Float>?,
                                 N: Int, C: Int) {
    let counted = (0..<N).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
    guard counted > 0 else { return }
    let g = dloss / Float(counted)
    Parallel.chunks(N, minimumPerChunk: 32) { _, rows in
        for r in rows {
            let t = Int(targets[r])
            guard t >= 0 else { continue }
            let z = logits + r * C, dz = dlogits + r * C
            let l = lse[r]
            let gw = g * (weights?[r] ?? 1)
            for j in 0..<C { dz[j] += gw * FastMath.exp(z[j] - l) }
            dz[t] -= gw
        }
    }
}

/// Mean cross-entropy of `logits` (N, C) against `targets` (N); a negative target is ignored,
/// `weights` (N) scales each row's term. The mean is over the non-ignored rows. Returns a scalar.
public func crossEntropy(logits: Tensor, targets: [Int32], weights: [Float]? = nil) -> Tensor {
    precondition(logits.rank == 2, "crossEntropy: logits must be [N, C], got \(logits.shape)")
    let (N, C) = (logits.shape[0], logits.shape[1])
    precondition(targets.count == N, "crossEntropy: \(targets.count) targets for logits \(logits.shape)")
    if let weights { precondition(weights.count == N, "crossEntropy: \(weights.count) weights for logits \(logits.shape)") }
    guard N > 0 else { return Tensor(scalar: 0) }
    let lse = Storage(uninitializedCount: N)   // (N)
    let loss = targets.withUnsafeBufferPointer { t in
        withOptionalPointer(weights) { w in
            crossEntropyForward(lse: lse.pointer, logits: logits.pointer, targets: t.baseAddress!, weights: w, N: N, C: C)
        }
    }
    let out = Tensor(scalar: loss)
    return out.recordOp(inputs: [logits]) { out in
        let dloss = out.gradStorage!.pointer[0]
        targets.withUnsafeBufferPointer { t in
            withOptionalPointer(weights) { w in
                crossEntropyBackward(dlogits: logits.gradAccumulationPointer(), dloss: dloss, lse: lse.pointer,
                                     logits: logits.pointer, targets: t.baseAddress!, weights: w, N: N, C: C)
            }
        }
    }
}

/// Calls `body` with a pointer to the array's elements, or nil for a nil array.
@inline(__always)
func withOptionalPointer<T, R>(_ array: [T]?, _ body: (UnsafePointer<T>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
