import CDNNL
import Foundation

/// The precision of a kernel's operands. Accumulation, and everything outside the matrix
/// products (norms, softmax, optimizer state, master weights), stays fp32 either way.
public enum Precision: String, CaseIterable, Codable, Sendable {
    /// fp32 operands.
    case fp32
    /// bfloat16 operands (fp32 rounded to nearest even, 8 bits of mantissa), fp32 accumulation.
    case bf16
}

/// oneDNN, the second matrix backend beside OpenBLAS: matmul primitives, created once per shape
/// and kept, in fp32 or with bfloat16 operands on CPUs that have AVX512_BF16.
///
/// A matmul here is C (M, N) (+)= op(A) · op(B) on row-major fp32 buffers, op = transpose or
/// not. With bf16, A and B are rounded to bf16 into scratch buffers first (oneDNN's bf16 kernels
/// then read half the bytes and run the AVX512_BF16 dot products), and C stays fp32.
public enum OneDNN {
    /// Whether the CPU runs bf16 dot products natively (AVX512_BF16).
    public static let cpuHasBF16: Bool = vqd_cpu_has_avx512_bf16() != 0

    /// oneDNN's version, e.g. "2.6.3".
    public static var version: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// The CPU engine, created once.
    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the CPU engine")
        return engine!
    }()

    /// One matmul's shape and options: the key of the primitive cache.
    struct MatmulKey: Hashable {
        var M: Int, N: Int, K: Int
        var transposeA: Bool, transposeB: Bool
        /// Row strides of A, B and C as stored (before transposition).
        var lda: Int, ldb: Int, ldc: Int
        var alpha: Float, beta: Float
        var precision: Precision
    }

    /// A created primitive and its operands' descriptions (primitives run concurrently on
    /// different buffers; each call makes its own memory objects).
    final class Matmul {
        let primitive: dnnl_primitive_t
        var a = dnnl_memory_desc_t(), b = dnnl_memory_desc_t(), c = dnnl_memory_desc_t()

        init(_ key: MatmulKey) {
            let type = key.precision == .bf16 ? dnnl_bf16 : dnnl_f32
            // op(A) (M, K) and op(B) (K, N) over their stored layouts: a transpose swaps the strides.
            var aDims: [Int64] = [Int64(key.M), Int64(key.K)], bDims: [Int64] = [Int64(key.K), Int64(key.N)]
            var cDims: [Int64] = [Int64(key.M), Int64(key.N)]
            var aStrides: [Int64] = key.transposeA ? [1, Int64(key.lda)] : [Int64(key.lda), 1]
            var bStrides: [Int64] = key.transposeB ? [1, Int64(key.ldb)] : [Int64(key.ldb), 1]
            var cStrides: [Int64] = [Int64(key.ldc), 1]
            OneDNN.check(dnnl_memory_desc_init_by_strides(&a, 2, &aDims, type, &aStrides), "describing A")
            OneDNN.check(dnnl_memory_desc_init_by_strides(&b, 2, &bDims, type, &bStrides), "describing B")
            OneDNN.check(dnnl_memory_desc_init_by_strides(&c, 2, &cDims, dnnl_f32, &cStrides), "describing C")
            var desc = dnnl_matmul_desc_t()
            OneDNN.check(dnnl_matmul_desc_init(&desc, &a, &b, nil, &c), "describing the matmul")
            var attr: dnnl_primitive_attr_t?
            OneDNN.check(dnnl_primitive_attr_create(&attr), "creating attributes")
            defer { dnnl_primitive_attr_destroy(attr) }
            if key.alpha != 1 {
                var alpha = key.alpha
                OneDNN.check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha), "setting alpha")
            }
            if key.beta != 0 {
                var postOps: dnnl_post_ops_t?
                OneDNN.check(dnnl_post_ops_create(&postOps), "creating post-ops")
                defer { dnnl_post_ops_destroy(postOps) }
                OneDNN.check(dnnl_post_ops_append_sum(postOps, key.beta), "adding beta·C")
                OneDNN.check(dnnl_primitive_attr_set_post_ops(attr, postOps), "setting post-ops")
            }
            var pd: dnnl_primitive_desc_t?
            OneDNN.check(dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil), "creating the matmul")
            defer { dnnl_primitive_desc_destroy(pd) }
            var primitive: dnnl_primitive_t?
            OneDNN.check(dnnl_primitive_create(&primitive, pd), "creating the matmul primitive")
            self.primitive = primitive!
        }
    }

    /// The primitives made so far, by shape (made once, kept for the process).
    nonisolated(unsafe) private static var cache: [MatmulKey: Matmul] = [:]
    private static let lock = NSLock()

    /// C (M, N) = op(A) · op(B), or += with `accumulate`. A is (M, K) row-major, or (K, M) when
    /// `transposeA`; B is (K, N), or (N, K) when `transposeB`; all packed. Precision bf16 rounds
    /// A and B to bfloat16 first.
    public static func matmul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
                              M: Int, N: Int, K: Int, transposeA: Bool = false, transposeB: Bool = false,
                              accumulate: Bool = false, precision: Precision = .fp32) {
        gemm(transA: transposeA, transB: transposeB, m: M, n: N, k: K, a: a, lda: transposeA ? M : K, b: b,
             ldb: transposeB ? K : N, beta: accumulate ? 1 : 0, c: c, ldc: N, precision: precision)
    }

    /// `BLAS.gemm`'s contract on oneDNN: C[M,N] = alpha · op(A) · op(B) + beta · C, with `lda`,
    /// `ldb`, `ldc` the row strides of A, B, C as stored. Safe to call from several threads at once.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, precision: Precision) {
        guard m > 0 && n > 0 else { return }
        guard k > 0 else { return BLAS.scaleOnly(m: m, n: n, beta: beta, c: c, ldc: ldc) }
        // bf16 operands are rounded into packed buffers (stored rows × columns of A and B).
        let (aRows, aColumns) = transA ? (k, m) : (m, k), (bRows, bColumns) = transB ? (n, k) : (k, n)
        let packed = precision == .bf16
        let key = MatmulKey(M: m, N: n, K: k, transposeA: transA, transposeB: transB,
                            lda: packed ? aColumns : lda, ldb: packed ? bColumns : ldb, ldc: ldc,
                            alpha: alpha, beta: beta, precision: precision)
        lock.lock()
        let op = cache[key] ?? Matmul(key)
        cache[key] = op
        lock.unlock()
        switch precision {
        case .fp32:
            run(op, a: UnsafeMutableRawPointer(mutating: a), b: UnsafeMutableRawPointer(mutating: b), c: c)
        case .bf16:
            let aHalf = UnsafeMutablePointer<UInt16>.allocate(capacity: aRows * aColumns)
            let bHalf = UnsafeMutablePointer<UInt16>.allocate(capacity: bRows * bColumns)
            defer { aHalf.deallocate(); bHalf.deallocate() }
            for r in 0..<aRows { BFloat16.round(a + r * lda, into: aHalf + r * aColumns, count: aColumns) }
            for r in 0..<bRows { BFloat16.round(b + r * ldb, into: bHalf + r * bColumns, count: bColumns) }
            run(op, a: UnsafeMutableRawPointer(aHalf), b: UnsafeMutableRawPointer(bHalf), c: c)
        }
    }

    private static func run(_ op: Matmul, a: UnsafeMutableRawPointer, b: UnsafeMutableRawPointer,
                            c: UnsafeMutablePointer<Float>) {
        var memories: [dnnl_memory_t?] = [nil, nil, nil]
        check(dnnl_memory_create(&memories[0], &op.a, engine, a), "binding A")
        check(dnnl_memory_create(&memories[1], &op.b, engine, b), "binding B")
        check(dnnl_memory_create(&memories[2], &op.c, engine, c), "binding C")
        var stream: dnnl_stream_t?
        check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "creating a stream")
        defer {
            dnnl_stream_destroy(stream)
            for m in memories { dnnl_memory_destroy(m) }
        }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: memories[0]),
                    dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: memories[1]),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: memories[2])]
        check(dnnl_primitive_execute(op.primitive, stream, Int32(args.count), &args), "running the matmul")
        check(dnnl_stream_wait(stream), "waiting for the matmul")
    }

    static func check(_ status: dnnl_status_t, _ what: String) {
        precondition(status == dnnl_success, "oneDNN: \(what) failed with status \(status.rawValue)")
    }
}

/// bfloat16: the upper 16 bits of an fp32, here rounded to nearest even.
public enum BFloat16 {
    /// out[i] = bf16(x[i]) for i < n (NaN stays NaN).
    @inlinable
    public static func round(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count n: Int) {
        for i in 0..<n {
            let bits = x[i].bitPattern
            if x[i].isNaN { out[i] = UInt16(truncatingIfNeeded: bits >> 16) | 0x40; continue }
            let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
            out[i] = UInt16(truncatingIfNeeded: rounded >> 16)
        }
    }

    /// The fp32 value of a bf16.
    @inlinable
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}
