import Engine

/// The codebook of a VQ-VAE: nearest-code assignment, the straight-through quantized output, and
/// the exponential-moving-average codebook update with restarts of dead codes.
///
/// The codebook is not trained by gradients. After each training step, with n_k the number of
/// encoder outputs assigned to code k in the batch and s_k their sum (appendix A.1 of van den Oord
/// et al. 2017):
///
///     N_k ← γ·N_k + (1 − γ)·n_k        m_k ← γ·m_k + (1 − γ)·s_k
///     e_k = m_k / Ñ_k,   Ñ_k = (N_k + ε) / (ΣN + K·ε) · ΣN      (Laplace smoothing, ε = 1e-5)
///
/// A code with N_k below `restartThreshold` is dead: after every step it is moved onto an encoder
/// output of the batch drawn at random (with the training generator), with m_k = N_k·e_k, until
/// it is used often enough to come alive (as in Jukebox, Dhariwal et al. 2020). Before the first
/// step every N_k is 0, so the first steps place the whole codebook on encoder outputs.
/// N (`clusterSize`) and m (`embedSum`) are part of the model's state and saved with it.
public final class VectorQuantizer {
    public let codes: Int
    public let dimension: Int
    public let decay: Float
    public let restartThreshold: Float
    public static let epsilon: Float = 1e-5

    public let codebook: Tensor      // (K, d) e
    public let clusterSize: Tensor   // (K) N, moving-average assignments per batch
    public let embedSum: Tensor      // (K, d) m, moving-average sum of assigned encoder outputs

    public init(codes: Int, dimension: Int, decay: Float, restartThreshold: Float, using rng: inout RandomGenerator) {
        precondition(codes >= 1 && dimension >= 1, "VectorQuantizer needs codes ≥ 1 and dimension ≥ 1, got \(codes), \(dimension)")
        self.codes = codes
        self.dimension = dimension
        self.decay = decay
        self.restartThreshold = restartThreshold
        let bound = 1 / Float(codes)
        codebook = Tensor.uniform([codes, dimension], low: -bound, high: bound, using: &rng)
        clusterSize = Tensor(zeros: [codes])
        embedSum = Tensor(zeros: [codes, dimension])
    }

    /// The saved state: codebook, cluster sizes and sums.
    public func visitState(prefix: String, _ visit: (String, Tensor) -> Void) {
        visit(prefix + "codebook", codebook)
        visit(prefix + "clusterSize", clusterSize)
        visit(prefix + "embedSum", embedSum)
    }

    // MARK: Assignment

    /// Rows of z_e (B, d, h, w) laid out as (B·h·w, d), one encoder output per row.
    public static func rows(_ z: Tensor) -> [Float] {
        precondition(z.rank == 4, "rows: expected (B, d, h, w), got \(z.shape)")
        let (B, d, P) = (z.shape[0], z.shape[1], z.shape[2] * z.shape[3])
        var out = [Float](repeating: 0, count: B * P * d)
        let src = z.pointer
        out.withUnsafeMutableBufferPointer { dst in
            for b in 0..<B {
                for c in 0..<d {
                    let plane = src + (b * d + c) * P
                    for p in 0..<P { dst[(b * P + p) * d + c] = plane[p] }
                }
            }
        }
        return out
    }

    /// The index of the nearest code (squared Euclidean distance; ties to the lower index) of each
    /// of the `count` rows (count, d): argmin_k ‖e_k‖² − 2·z·e_k, by GEMM in blocks of rows.
    public func nearest(_ rows: UnsafePointer<Float>, count: Int) -> [Int32] {
        let (K, d) = (codes, dimension)
        let e = codebook.pointer
        var norms = [Float](repeating: 0, count: K)
        for k in 0..<K { norms[k] = FastMath.dot(e + k * d, e + k * d, d) }
        var result = [Int32](repeating: 0, count: count)
        let block = 1024
        var scores = [Float](repeating: 0, count: min(block, max(count, 1)) * K)   // (rows, K) z·eᵀ
        scores.withUnsafeMutableBufferPointer { s in
            var r0 = 0
            while r0 < count {
                let n = min(block, count - r0)
                BLAS.gemm(transB: true, m: n, n: K, k: d, a: rows + r0 * d, lda: d, b: e, ldb: d, c: s.baseAddress!, ldc: K)
                for r in 0..<n {
                    let row = s.baseAddress! + r * K
                    var best = 0
                    var bestValue = Float.infinity
                    for k in 0..<K {
                        let v = norms[k] - 2 * row[k]
                        if v < bestValue { bestValue = v; best = k }
                    }
                    result[r0 + r] = Int32(best)
                }
                r0 += n
            }
        }
        return result
    }

    /// The code vectors of `indices` laid out as a grid (B, d, h, w).
    public func lookup(_ indices: [Int32], batch B: Int, height h: Int, width w: Int) -> Tensor {
        precondition(indices.count == B * h * w, "lookup: \(indices.count) indices for a grid of \(B)×\(h)×\(w)")
        let (d, P) = (dimension, h * w)
        let out = Tensor(uninitializedShape: [B, d, h, w])
        let (e, o) = (codebook.pointer, out.pointer)
        for b in 0..<B {
            for p in 0..<P {
                let k = Int(indices[b * P + p])
                precondition(k >= 0 && k < codes, "token \(k) outside the codebook 0..<\(codes)")
                let code = e + k * d
                for c in 0..<d { o[(b * d + c) * P + p] = code[c] }
            }
        }
        return out
    }

    // MARK: Codebook update

    /// What one EMA update did.
    public struct UpdateReport: Equatable {
        /// Codes moved onto encoder outputs because they were dead.
        public var restarted: Int
    }

    /// Moves the codebook towards the mean of the encoder outputs assigned to each code, then
    /// restarts dead codes on random rows of the batch. `rows` (count, d) are the encoder outputs
    /// and `indices` their assignments.
    @discardableResult
    public func update(rows: [Float], indices: [Int32], using rng: inout RandomGenerator) -> UpdateReport {
        let (K, d) = (codes, dimension)
        let count = indices.count
        precondition(rows.count == count * d, "update: \(rows.count) values for \(count) rows of \(d)")
        var counts = [Float](repeating: 0, count: K)
        var sums = [Float](repeating: 0, count: K * d)   // (K, d)
        rows.withUnsafeBufferPointer { z in
            for r in 0..<count {
                let k = Int(indices[r])
                counts[k] += 1
                let src = z.baseAddress! + r * d
                for c in 0..<d { sums[k * d + c] += src[c] }
            }
        }
        let (N, m, e) = (clusterSize.pointer, embedSum.pointer, codebook.pointer)
        let (g, oneMinus) = (decay, 1 - decay)
        var total: Double = 0
        for k in 0..<K {
            N[k] = g * N[k] + oneMinus * counts[k]
            total += Double(N[k])
            for c in 0..<d { m[k * d + c] = g * m[k * d + c] + oneMinus * sums[k * d + c] }
        }
        let eps = Double(VectorQuantizer.epsilon)
        for k in 0..<K where total > 0 {
            let smoothed = Float((Double(N[k]) + eps) / (total + Double(K) * eps) * total)
            for c in 0..<d { e[k * d + c] = m[k * d + c] / smoothed }
        }
        // Restarts: dead codes onto random encoder outputs, distinct while the batch has enough rows.
        let dead = (0..<K).filter { N[$0] < restartThreshold }
        guard !dead.isEmpty, count > 0 else { return UpdateReport(restarted: 0) }
        var pool = Array(0..<count)
        rows.withUnsafeBufferPointer { z in
            for (j, k) in dead.enumerated() {
                let r: Int
                if j < count {
                    let pick = j + rng.int(below: count - j)     // partial Fisher–Yates: no repeats
                    pool.swapAt(j, pick)
                    r = pool[j]
                } else {
                    r = rng.int(below: count)
                }
                let src = z.baseAddress! + r * d
                for c in 0..<d {
                    e[k * d + c] = src[c]
                    m[k * d + c] = src[c] * N[k]
                }
            }
        }
        return UpdateReport(restarted: dead.count)
    }
}

/// The quantized grid z_q in the forward pass, with the gradient passed unchanged to the encoder
/// output z_e in the backward pass (straight-through estimator, eq. 2 of the paper: the decoder's
/// gradient is copied from z_q to z_e).
public func straightThrough(_ encoded: Tensor, quantized: Tensor) -> Tensor {
    precondition(encoded.shape == quantized.shape,
                 "straightThrough: encoded \(encoded.shape) and quantized \(quantized.shape) differ")
    let out = quantized.copy()
    return out.recordOp(inputs: [encoded]) { out in
        let g = out.gradStorage!.pointer
        encoded.accumulateGrad(shape: encoded.shape) { ge in for i in 0..<ge.count { ge[i] += g[i] } }
    }
}
