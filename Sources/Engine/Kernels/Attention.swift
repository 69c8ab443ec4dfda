/// Multi-head scaled dot-product attention, one autograd node (Vaswani et al. 2017, eq. 1):
/// for each batch b and head h, O = softmax(Q·Kᵀ/√d + mask)·V with d = D/H.
///
/// Heads are column blocks of the model dimension: head h reads and writes columns
/// h·d ..< (h+1)·d of rows of length D, passed to BLAS through its leading dimension, so no
/// head permutation is ever copied. The (batch, head) pairs are split over the workers, each
/// running single-threaded BLAS on its own pairs. Forward saves the probabilities P
/// (B, H, Lq, Lk) for backward.
///
/// Q, K and V may be column blocks of wider rows (row strides ldq, ldk, ldv): `selfAttention`
/// reads them straight from a fused projection (B, L, 3D) and `crossAttention` K and V from
/// (B, Lk, 2D), so the projections are never split into copies, and their gradients are written
/// back into the same layout.
///
/// Masks: `causal` lets query i see keys 0...i (self-attention, Lq = Lk); `keyMask` (B·Lk, true =
/// real token) hides padding keys. A query that sees no key at all gets probabilities 0 and
/// output 0 (never NaN), and passes no gradient.

/// - out: (B, Lq, D), probs: (B, H, Lq, Lk), q: (B, Lq, D) with row stride ldq, k: (B, Lk, D)
///   with row stride ldk, v: (B, Lk, D) with row stride ldv, keyMask: (B, Lk) or nil.
public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                             v: UnsafePointer<Float>, ldv: Int, keyMask: UnsafePointer<Bool>?, causal: Bool,
                             B: Int, Lq: Int, Lk: Int, D: Int, H: Int) {
    precondition(!causal || Lq == Lk, "attentionForward: causal attention needs Lq == Lk, got \(Lq) and \(Lk)")
    let d = D / H
    let scale = 1 / Float(d).squareRoot()
    Parallel.chunks(B * H, minimumPerChunk: 2, singleThreadedBLAS: true) { _, pairs in
        for pair in pairs {
            let (b, h) = (pair / H, pair % H)
            let qp = q + b * Lq * ldq + h * d    // (Lq, d), row stride ldq
            let kp = k + b * Lk * ldk + h * d    // (Lk, d), row stride ldk
            let vp = v + b * Lk * ldv + h * d    // (Lk, d), row stride ldv
            let p = probs + pair * Lq * Lk       // (Lq, Lk)
            BLAS.gemm(transB: true, m: Lq, n: Lk, k: d, alpha: scale, a: qp, lda: ldq, b: kp, ldb: ldk, c: p, ldc: Lk)
            for i in 0..<Lq {
                maskedSoftmaxRow(p + i * Lk, count: Lk, visible: causal ? i + 1 : Lk, keyMask: keyMask.map { $0 + b * Lk })
            }
            BLAS.gemm(m: Lq, n: d, k: Lk, a: p, lda: Lk, b: vp, ldb: ldv, c: out + b * Lq * D + h * d, ldc: D)
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

/// Backward of `attentionForward`, adding into dq, dk and dv (the layouts and row strides of q,
/// k and v); any may be nil. `dout` is (B, Lq, D); probs are the saved (B, H, Lq, Lk).
/// With dP = dO·Vᵀ: dV += Pᵀ·dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)) / √d, dQ += dS·K, dK += dSᵀ·Q.
/// dq, dk and dv may share a buffer (one tensor passed twice, or column blocks of one tensor).
public func attentionBackward(dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?,
                              dv: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                              v: UnsafePointer<Float>, ldv: Int,
                              B: Int, Lq: Int, Lk: Int, D: Int, H: Int) {
    let d = D / H
    let scale = 1 / Float(d).squareRoot()
    Parallel.chunks(B * H, minimumPerChunk: 2, singleThreadedBLAS: true) { _, pairs in
        ScratchPool.shared.with(Lq * Lk) { ds in   // (Lq, Lk) dP, then dS in place
            for pair in pairs {
                let (b, h) = (pair / H, pair % H)
                let qOffset = b * Lq * ldq + h * d, kOffset = b * Lk * ldk + h * d, vOffset = b * Lk * ldv + h * d
                let p = probs + pair * Lq * Lk
                let dop = dout + b * Lq * D + h * d   // (Lq, d), row stride D
                if let dv {
                    BLAS.gemm(transA: true, m: Lk, n: d, k: Lq, a: p, lda: Lk, b: dop, ldb: D,
                              beta: 1, c: dv + vOffset, ldc: ldv)
                }
                guard dq != nil || dk != nil else { continue }
                BLAS.gemm(transB: true, m: Lq, n: Lk, k: d, a: dop, lda: D, b: v + vOffset, ldb: ldv, c: ds, ldc: Lk)
                for i in 0..<Lq {
                    let pr = p + i * Lk, dr = ds + i * Lk
                    let dot = FastMath.dot(pr, dr, Lk)
                    for j in 0..<Lk { dr[j] = pr[j] * (dr[j] - dot) * scale }
                }
                if let dq {
                    BLAS.gemm(m: Lq, n: d, k: Lk, a: ds, lda: Lk, b: k + kOffset, ldb: ldk,
                              beta: 1, c: dq + qOffset, ldc: ldq)
                }
                if let dk {
                    BLAS.gemm(transA: true, m: Lk, n: d, k: Lq, a: ds, lda: Lk, b: q + qOffset, ldb: ldq,
                              beta: 1, c: dk + kOffset, ldc: ldk)
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
    return attentionNode(q: AttentionOperand(query, column: 0, rowStride: D), k: AttentionOperand(key, column: 0, rowStride: D),
                         v: AttentionOperand(value, column: 0, rowStride: D), B: B, Lq: Lq, Lk: Lk, D: D,
                         heads: heads, causal: causal, keyPaddingMask: keyPaddingMask)
}

/// Self-attention over a fused projection `qkv` (B, L, 3D) holding Q, K and V side by side in
/// each row (columns 0..<D, D..<2D, 2D..<3D); returns (B, L, D). Same as
/// `attention(query:key:value:)` on the three blocks, without splitting them into copies.
public func selfAttention(qkv: Tensor, heads: Int, causal: Bool = false, keyPaddingMask: [Bool]? = nil) -> Tensor {
    precondition(qkv.rank == 3 && qkv.shape[2] % 3 == 0, "selfAttention: qkv \(qkv.shape) must be [B, L, 3·D]")
    let (B, L, D) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    return attentionNode(q: AttentionOperand(qkv, column: 0, rowStride: 3 * D), k: AttentionOperand(qkv, column: D, rowStride: 3 * D),
                         v: AttentionOperand(qkv, column: 2 * D, rowStride: 3 * D), B: B, Lq: L, Lk: L, D: D,
                         heads: heads, causal: causal, keyPaddingMask: keyPaddingMask)
}

/// Attention of `query` (B, Lq, D) over a fused key/value projection `keyValue` (B, Lk, 2D)
/// holding K in columns 0..<D and V in D..<2D; returns (B, Lq, D).
public func crossAttention(query: Tensor, keyValue: Tensor, heads: Int, keyPaddingMask: [Bool]? = nil) -> Tensor {
    precondition(query.rank == 3 && keyValue.rank == 3 && keyValue.shape[0] == query.shape[0]
                 && keyValue.shape[2] == 2 * query.shape[2],
                 "crossAttention: query \(query.shape) and keyValue \(keyValue.shape) must be [B, Lq, D] and [B, Lk, 2·D]")
    let (B, Lq, D, Lk) = (query.shape[0], query.shape[1], query.shape[2], keyValue.shape[1])
    return attentionNode(q: AttentionOperand(query, column: 0, rowStride: D), k: AttentionOperand(keyValue, column: 0, rowStride: 2 * D),
                         v: AttentionOperand(keyValue, column: D, rowStride: 2 * D), B: B, Lq: Lq, Lk: Lk, D: D,
                         heads: heads, causal: false, keyPaddingMask: keyPaddingMask)
}

/// A (B, L, D) operand stored as columns column..<column+D of rows `rowStride` wide.
struct AttentionOperand {
    let tensor: Tensor
    let column: Int
    let rowStride: Int
    init(_ tensor: Tensor, column: Int, rowStride: Int) { (self.tensor, self.column, self.rowStride) = (tensor, column, rowStride) }

    var pointer: UnsafePointer<Float> { UnsafePointer(tensor.pointer + column) }
    /// Where this block's gradient goes (allocating the tensor's gradient, zeroed, on first use).
    func gradAccumulationPointer() -> UnsafeMutablePointer<Float>? { tensor.requiresGrad ? tensor.gradAccumulationPointer() + column : nil }
}

/// The one attention node behind `attention`, `selfAttention` and `crossAttention`.
private func attentionNode(q: AttentionOperand, k: AttentionOperand, v: AttentionOperand, B: Int, Lq: Int, Lk: Int, D: Int,
                           heads: Int, causal: Bool, keyPaddingMask: [Bool]?) -> Tensor {
    precondition(heads > 0 && D % heads == 0, "attention: width \(D) is not divisible by \(heads) heads")
    precondition(!causal || Lq == Lk, "attention: causal attention needs query and key lengths equal, got \(Lq) and \(Lk)")
    if let keyPaddingMask {
        precondition(keyPaddingMask.count == B * Lk,
                     "attention: key padding mask has \(keyPaddingMask.count) entries, expected B·Lk = \(B * Lk) (B = \(B), Lk = \(Lk))")
    }
    let H = heads
    let out = Tensor(uninitializedShape: [B, Lq, D])
    // Each distinct tensor once, in order.
    var inputs: [Tensor] = []
    for t in [q.tensor, k.tensor, v.tensor] where !inputs.contains(where: { $0 === t }) { inputs.append(t) }
    let needsGraph = Autograd.isEnabled && inputs.contains { $0.requiresGrad }
    let probs = needsGraph ? Storage(uninitializedCount: B * H * Lq * Lk) : ScratchPool.shared.take(B * H * Lq * Lk)
    withOptionalPointer(keyPaddingMask) { mask in
        attentionForward(out: out.pointer, probs: probs.pointer, q: q.pointer, ldq: q.rowStride,
                         k: k.pointer, ldk: k.rowStride, v: v.pointer, ldv: v.rowStride,
                         keyMask: mask, causal: causal, B: B, Lq: Lq, Lk: Lk, D: D, H: H)
    }
    guard needsGraph else {
        ScratchPool.shared.give(probs)
        return out
    }
    return out.recordOp(inputs: inputs) { out in
        attentionBackward(dq: q.gradAccumulationPointer(), dk: k.gradAccumulationPointer(), dv: v.gradAccumulationPointer(),
                          dout: out.gradStorage!.pointer, probs: probs.pointer,
                          q: q.pointer, ldq: q.rowStride, k: k.pointer, ldk: k.rowStride,
                          v: v.pointer, ldv: v.rowStride, B: B, Lq: Lq, Lk: Lk, D: D, H: H)
    }
}
