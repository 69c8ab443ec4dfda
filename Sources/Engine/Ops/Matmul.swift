import Foundation

/// Matrix product through `BLAS.gemm`, with optional transposition of either operand:
/// op(a) (..., M, K) × op(b) (..., K, N) → (..., M, N).
///
/// - Both rank 2: one gemm.
/// - `a` (..., M, K) with `b` (K, N): `b` is shared across the batch; without `transposeA`
///   the batch folds into M, giving one large gemm forward and for each gradient.
/// - Both rank ≥ 3 with equal batch dimensions: one gemm per batch entry.
///
/// `transposeA` means `a` is stored (..., K, M); `transposeB` means `b` is stored (..., N, K).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
    let (ar, br) = (a.rank, b.rank)
    let (M, Ka) = transposeA ? (a.shape[ar - 1], a.shape[ar - 2]) : (a.shape[ar - 2], a.shape[ar - 1])
    let (Kb, N) = transposeB ? (b.shape[br - 1], b.shape[br - 2]) : (b.shape[br - 2], b.shape[br - 1])
    precondition(Ka == Kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : "")")
    let K = Ka
    let batchA = Array(a.shape.dropLast(2))
    let batchB = Array(b.shape.dropLast(2))
    let sharedB = br == 2
    precondition(sharedB || batchA == batchB,
                 "matmul: batch dimensions differ: \(a.shape) × \(b.shape) (b must be rank 2 or share a's batch dimensions)")
    let batch = batchA.reduce(1, *)
    let out = Tensor(uninitializedShape: batchA + [M, N])  // (..., M, N)
    let (pa, pb, pc) = (a.pointer, b.pointer, out.pointer)
    // Row strides as stored.
    let lda = transposeA ? M : K, ldb = transposeB ? K : N
    let strideB = sharedB ? 0 : K * N
    let foldBatch = sharedB && !transposeA
    if foldBatch {
        BLAS.gemm(transA: false, transB: transposeB, m: batch * M, n: N, k: K,
                  a: pa, lda: lda, b: pb, ldb: ldb, c: pc, ldc: N)
    } else {
        for i in 0..<batch {
            BLAS.gemm(transA: transposeA, transB: transposeB, m: M, n: N, k: K,
                      a: pa + i * M * K, lda: lda, b: pb + i * strideB, ldb: ldb, c: pc + i * M * N, ldc: N)
        }
    }
    return out.recordOp(inputs: [a, b]) { out in
        let g = out.gradStorage!.pointer  // (..., M, N)
        if a.requiresGrad {
            a.accumulateGrad(shape: a.shape) { ga in
                let d = ga.baseAddress!
                if foldBatch {
                    // dA (B·M, K) = dC · op(B)ᵀ
                    BLAS.gemm(transA: false, transB: !transposeB, m: batch * M, n: K, k: N,
                              a: g, lda: N, b: pb, ldb: ldb, beta: 1, c: d, ldc: K)
                } else {
                    for i in 0..<batch {
                        let (gi, bi, di) = (g + i * M * N, pb + i * strideB, d + i * M * K)
                        if transposeA {
                            // dA (K, M) = op(B) · dCᵀ
                            BLAS.gemm(transA: transposeB, transB: true, m: K, n: M, k: N,
                                      a: bi, lda: ldb, b: gi, ldb: N, beta: 1, c: di, ldc: M)
                        } else {
                            // dA (M, K) = dC · op(B)ᵀ
                            BLAS.gemm(transA: false, transB: !transposeB, m: M, n: K, k: N,
                                      a: gi, lda: N, b: bi, ldb: ldb, beta: 1, c: di, ldc: K)
                        }
                    }
                }
            }
        }
        if b.requiresGrad {
            b.accumulateGrad(shape: b.shape) { gb in
                let d = gb.baseAddress!
                if foldBatch {
                    if transposeB {
                        // dB (N, K) = dCᵀ · A over all B·M rows
                        BLAS.gemm(transA: true, transB: false, m: N, n: K, k: batch * M,
                                  a: g, lda: N, b: pa, ldb: lda, beta: 1, c: d, ldc: K)
                    } else {
                        // dB (K, N) = Aᵀ · dC over all B·M rows
                        BLAS.gemm(transA: true, transB: false, m: K, n: N, k: batch * M,
                                  a: pa, lda: lda, b: g, ldb: N, beta: 1, c: d, ldc: N)
                    }
                } else {
                    for i in 0..<batch {
                        let (gi, ai, di) = (g + i * M * N, pa + i * M * K, d + i * strideB)
                        if transposeB {
                            // dB (N, K) = dCᵀ · op(A)
                            BLAS.gemm(transA: true, transB: transposeA, m: N, n: K, k: M,
                                      a: gi, lda: N, b: ai, ldb: lda, beta: 1, c: di, ldc: K)
                        } else {
                            // dB (K, N) = op(A)ᵀ · dC
                            BLAS.gemm(transA: !transposeA, transB: false, m: K, n: N, k: M,
                                      a: ai, lda: lda, b: gi, ldb: N, beta: 1, c: di, ldc: N)
                        }
                    }
                }
            }
        }
    }
}
