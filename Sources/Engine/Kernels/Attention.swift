/// Multi-head scaled dot-product attention, one autograd node (Vaswani et al. 2017, eq. 1):
/// for each batch b and head h, O = softmax(Q·Kᵀ/√d + mask)·V with d = D/H.
///
/// Heads are column blocks of the model dimension: head h reads and writes columns
/// h·d ..< (h+1)·d of rows of length D, passed to BLAS through its leading dimension, so no
/// head permutation is ever copied. The (batch, head) pairs are split over the workers, each
/// running single-threaded BLAS on its own pairs. Forward saves the probabilities P
/// (B, H, Lq, Lk) for backward.
///
/// Masks: `causal` lets query i see keys 0...i (self-attention, Lq = Lk); `keyMask` (B·Lk, true =
/// real token) hides padding keys. A query that sees no key at all gets probabilities 0 and
/// output 0 (never NaN), and passes no gradient.

/// - out: (B, Lq, D), probs: (B, H, Lq, Lk), q: (B, Lq, D), k and v: (B, Lk, D),
///   keyMask: (B, Lk) or nil.
public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             keyMask: UnsafePointer<Bool>?, causal: Bool,
                             B: Int, Lq: Int, Lk: Int, D: Int, H: Int) {
    precondition(!causal || Lq == Lk, "attentionForward: causal attention needs Lq == Lk, got \(Lq) and \(Lk)")
    let d = D / H
    let scale = 1 / Float(d).squareRoot()
    Parallel.chunks(B * H, minimumPerChunk: 2, singleThreadedBLAS: true) { _, pairs in
        for pair in pairs {
            let (b, h) = (pair / H, pair % H)
            let qp = q + b * Lq * D + h * d      // (Lq, d), row stride D
            let kp = k + b * Lk * D + h * d      // (Lk, d), row stride D
            let vp = v + b * Lk * D + h * d      // (Lk, d), row stride D
            let p = probs + pair * Lq * Lk       // (Lq, Lk)
            BLAS.gemm(transB: true, m: Lq, n: Lk, k: d, alpha: scale, a: qp, lda: D, b: kp, ldb: D, c: p, ldc: Lk)
            for i in 0..<Lq {
                maskedSoftmaxRow(p + i * Lk, count: Lk, visible: causal ? i + 1 : Lk, keyMask: keyMask.map { $0 + b * Lk })
            }
            BLAS.gemm(m: Lq, n: d, k: Lk, a: p, lda: Lk, b: vp, ldb: D, c: out + b * Lq * D + h * d, ldc: D)
        }
    }
}

/// In-place softmax of row[0..<count] over the entries j < visible with keyMask[j] (all when
/// nil); every other entry becomes 0, and a row with no visible entry becomes all 0.
@inline(__always)
func maskedSoftmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, visible: Int, keyMask: UnsafePointer<Bool>?) {
    if let keyMask {
        for j in 0..<visible { row[j] = keyMask[j] ? row[j] : -.infinity }
    }
    let mx = FastMath.max(row, visible)
    if mx == -.infinity {          // nothing visible (also catches visible = 0)
        row.update(repeating: 0, count: count)
        return
    }
    for j in 0..<visible { row[j] = FastMath.exp(row[j] - mx) }
    if let keyMask {
        for j in 0..<visible { row[j] = keyMask[j] ? row[j] : 0 }
    }
    let inv = 1 / FastMath.sum(row, visible)
    for j in 0..<visible { row[j] *= inv }
    if visible < count { (row + visible).update(repeating: 0, count: count - visible) }
}

/// Backward of `attentionForward`, adding into dq (B, Lq, D), dk and dv (B, Lk, D); any may be
/// nil. `dout` is (B, Lq, D); probs are the saved (B, H, Lq, Lk). With dP = dO·Vᵀ:
/// dV += Pᵀ·dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)) / √d, dQ += dS·K, dK += dSᵀ·Q.
/// dq, dk and dv may alias one another (e.g. the same tensor passed as key and value).
public func attentionBackward(dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?,
                              dv: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              B: Int, Lq: Int, Lk: Int, D: Int, H: Int) {
    let d = D / H
    let scale = 1 / Float(d).squareRoot()
    Parallel.chunks(B * H, minimumPerChunk: 2, singleThreadedBLAS: true) { _, pairs in
        ScratchPool.shared.with(Lq * Lk) { ds in   // (Lq, Lk) dP, then dS in place
            for pair in pairs {
                let (b, h) = (pair / H, pair % H)
                let qOffset = b * Lq * D + h * d, kvOffset = b * Lk * D + h * d
                let p = probs + pair * Lq * Lk
                let dop = dout + qOffset
                if let dv {
                    BLAS.gemm(transA: true, m: Lk, n: d, k: Lq, a: p, lda: Lk, b: dop, ldb: D,
                              beta: 1, c: dv + kvOffset, ldc: D)
                }
                guard dq != nil || dk != nil else { continue }
                BLAS.gemm(transB: true, m: Lq, n: Lk, k: d, a: dop, lda: D, b: v + kvOffset, ldb: D, c: ds, ldc: Lk)
                for i in 0..<Lq {
                    let pr = p + i * Lk, dr = ds + i * Lk
                    let dot = FastMath.dot(pr, dr, Lk)
                    for j in 0..<Lk { dr[j] = pr[j] * (dr[j] - dot) * scale }
                }
                if let dq {
                    BLAS.gemm(m: Lq, n: d, k: Lk, a: ds, lda: Lk, b: k + kvOffset, ldb: D,
                              beta: 1, c: dq + qOffset, ldc: D)
                }
                if let dk {
                    BLAS.gemm(transA: true, m: Lk, n: d, k: Lq, a: ds, lda: Lk, b: q + qOffset, ldb: D,
                              beta: 1, c: dk + kvOffset, ldc: D)
                }
            }
        }
    }
}

/// Multi-head attention of `query` (B, Lq, D) over `key` and `value` (B, Lk, D) with `heads`
/// heads; returns (B, Lq, D). `causal` masks future keys (self-attention, Lq = Lk);
/// `keyPaddingMask` (B·Lk, true = real token) hides padding keys (cross-attention).
public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, causal: Bool = false,
                      keyPaddingMask: [Bool]? = nil) -> Tensor {
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3,
                 "attention: query \(query.shape), key \(key.shape), value \(value.shape) must each be [B, L, D]")
    let (B, Lq, D) = (query.shape[0], query.shape[1], query.shape[2])
    let Lk = key.shape[1]
    precondition(key.shape == [B, Lk, D] && value.shape == key.shape,
                 "attention: key \(key.shape) and value \(value.shape) must be [\(B), Lk, \(D)] for query \(query.shape)")
    precondition(heads > 0 && D % heads == 0, "attention: width \(D) is not divisible by \(heads) heads")
    precondition(!causal || Lq == Lk, "attention: causal attention needs query and key lengths equal, got \(Lq) and \(Lk)")
    if let keyPaddingMask {
        precondition(keyPaddingMask.count == B * Lk,
                     "attention: key padding mask has \(keyPaddingMask.count) entries, expected B·Lk = \(B * Lk) for key \(key.shape)")
    }
    let H = heads
    let out = Tensor(uninitializedShape: [B, Lq, D])
    let needsGraph = Autograd.isEnabled && (query.requiresGrad || key.requiresGrad || value.requiresGrad)
    let probs = needsGraph ? Storage(uninitializedCount: B * H * Lq * Lk) : ScratchPool.shared.take(B * H * Lq * Lk)
    func run(_ mask: UnsafePointer<Bool>?) {
        attentionForward(out: out.pointer, probs: probs.pointer, q: query.pointer, k: key.pointer, v: value.pointer,
                         keyMask: mask, causal: causal, B: B, Lq: Lq, Lk: Lk, D: D, H: H)
    }
    if let keyPaddingMask { keyPaddingMask.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
    guard needsGraph else {
        ScratchPool.shared.give(probs)
        return out
    }
    return out.recordOp(inputs: [query, key, value]) { out in
        attentionBackward(dq: query.requiresGrad ? query.gradPointer() : nil,
                          dk: key.requiresGrad ? key.gradPointer() : nil,
                          dv: value.requiresGrad ? value.gradPointer() : nil,
                          dout: out.gradStorage!.pointer, probs: probs.pointer,
                          q: query.pointer, k: key.pointer, v: value.pointer,
                          B: B, Lq: Lq, Lk: Lk, D: D, H: H)
    }
}
