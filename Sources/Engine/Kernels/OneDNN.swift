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

    /// The ISA oneDNN dispatches to on this CPU ("avx512_core_bf16", "avx512_core", "avx2", …).
    public static var isa: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_sse41: return "sse41"
        case let other: return "isa 0x" + String(other.rawValue, radix: 16)
        }
    }

    /// One matmul's shape and options: the key of the primitive cache.
    struct MatmulKey: Hashable {
        var M: Int, N: Int, K: Int
        var transposeA: Bool, transposeB: Bool
        /// Row strides of A, B and C as stored (before transposition).
        var lda: Int, ldb: Int, ldc: Int
        var alpha: Float, beta: Float
        var precision: Precision
    }

    /// Primitive attributes with a user-managed scratchpad (so one primitive runs on several
    /// threads at once, each call with its own scratch), plus `alpha` as output scale and `beta`
    /// as a sum post-op when they are not 1 and 0. The caller destroys them.
    static func attributes(alpha: Float = 1, beta: Float = 0) -> dnnl_primitive_attr_t {
        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "creating attributes")
        check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "asking for a user scratchpad")
        if alpha != 1 {
            var alpha = alpha
            check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha), "setting alpha")
        }
        if beta != 0 {
            var postOps: dnnl_post_ops_t?
            check(dnnl_post_ops_create(&postOps), "creating post-ops")
            defer { dnnl_post_ops_destroy(postOps) }
            check(dnnl_post_ops_append_sum(postOps, beta), "adding beta·C")
            check(dnnl_primitive_attr_set_post_ops(attr, postOps), "setting post-ops")
        }
        return attr!
    }

    /// A created primitive and the size of the scratchpad each run of it needs.
    final class Primitive {
        let primitive: dnnl_primitive_t
        var scratchpad = dnnl_memory_desc_t()
        let scratchpadBytes: Int

        /// Creates the primitive of `pd` (which the caller still owns).
        init(_ pd: dnnl_primitive_desc_t, _ what: String) {
            var primitive: dnnl_primitive_t?
            OneDNN.check(dnnl_primitive_create(&primitive, pd), "creating the \(what) primitive")
            self.primitive = primitive!
            if let md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) { scratchpad = md.pointee }
            scratchpadBytes = dnnl_memory_desc_get_size(&scratchpad)
        }

        /// A primitive descriptor's memory description (`what`, e.g. `dnnl_query_src_md`; index 1
        /// of the weights is the bias).
        static func query(_ pd: dnnl_primitive_desc_t, _ what: dnnl_query_t, index: Int32 = 0) -> dnnl_memory_desc_t {
            guard let md = dnnl_primitive_desc_query_md(pd, what, index) else { return dnnl_memory_desc_t() }
            return md.pointee
        }

        /// Runs the primitive on the calling thread's OpenMP team (as many threads as the engine's
        /// kernels use here: one inside a data-parallel shard or a single-threaded BLAS region),
        /// each argument an (index, description, buffer).
        func run(_ arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)], _ what: String) {
            vqd_omp_set_num_threads(Int32(max(1, min(Parallel.workers, BLAS.libraryThreads))))
            let scratch = scratchpadBytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: scratchpadBytes, alignment: 64) : nil
            var memories: [dnnl_memory_t?] = []
            var args: [dnnl_exec_arg_t] = []
            var stream: dnnl_stream_t?
            defer {
                if stream != nil { dnnl_stream_destroy(stream) }
                for m in memories { dnnl_memory_destroy(m) }
                scratch?.deallocate()
            }
            var all = arguments
            if let scratch { all.append((DNNL_ARG_SCRATCHPAD, scratchpad, scratch)) }
            for (index, description, buffer) in all {
                var description = description, memory: dnnl_memory_t?
                OneDNN.check(dnnl_memory_create(&memory, &description, OneDNN.engine, buffer), "binding an operand of the \(what)")
                memories.append(memory)
                args.append(dnnl_exec_arg_t(arg: index, memory: memory))
            }
            OneDNN.check(dnnl_stream_create(&stream, OneDNN.engine, dnnl_stream_default_flags.rawValue), "creating a stream")
            OneDNN.check(dnnl_primitive_execute(primitive, stream, Int32(args.count), &args), "running the \(what)")
            OneDNN.check(dnnl_stream_wait(stream), "waiting for the \(what)")
        }
    }

    /// A matmul primitive and its operands' descriptions.
    final class Matmul {
        let op: Primitive
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
            let attr = OneDNN.attributes(alpha: key.alpha, beta: key.beta)
            defer { dnnl_primitive_attr_destroy(attr) }
            var pd: dnnl_primitive_desc_t?
            OneDNN.check(dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil), "creating the matmul")
            defer { dnnl_primitive_desc_destroy(pd) }
            op = Primitive(pd!, "matmul")
        }
    }

    /// A reorder between two layouts (or types) of one tensor, optionally adding into its target.
    final class Reorder {
        let op: Primitive
        let from: dnnl_memory_desc_t, to: dnnl_memory_desc_t

        init(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, accumulate: Bool) {
            (self.from, self.to) = (from, to)
            var (source, target) = (from, to)
            let attr = OneDNN.attributes(beta: accumulate ? 1 : 0)
            defer { dnnl_primitive_attr_destroy(attr) }
            var pd: dnnl_primitive_desc_t?
            OneDNN.check(dnnl_reorder_primitive_desc_create(&pd, &source, OneDNN.engine, &target, OneDNN.engine, attr),
                         "creating a reorder")
            defer { dnnl_primitive_desc_destroy(pd) }
            op = Primitive(pd!, "reorder")
        }

        func run(_ source: UnsafeMutableRawPointer, _ target: UnsafeMutableRawPointer) {
            op.run([(DNNL_ARG_FROM, from, source), (DNNL_ARG_TO, to, target)], "reorder")
        }
    }

    /// Made primitives, by key (made once, kept for the process).
    final class Cache<Key: Hashable, Value>: @unchecked Sendable {
        private var made: [Key: Value] = [:]
        private let lock = NSLock()

        func get(_ key: Key, _ make: (Key) -> Value) -> Value {
            lock.lock()
            defer { lock.unlock() }
            if let found = made[key] { return found }
            let value = make(key)
            made[key] = value
            return value
        }
    }

    private static let matmuls = Cache<MatmulKey, Matmul>()

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
    ///
    /// The rows of C are split over the engine's workers, each part a one-thread product, rather
    /// than handed to one primitive on an OpenMP team: between products the engine's own workers
    /// run the element-wise kernels, and an OpenMP team's threads spinning after each product
    /// would take their cores. Chunk boundaries depend only on M and the worker count.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, precision: Precision) {
        guard m > 0 && n > 0 else { return }
        guard k > 0 else { return BLAS.scaleOnly(m: m, n: n, beta: beta, c: c, ldc: ldc) }
        // bf16 operands are rounded into packed buffers holding op(A) (m × k) and op(B) (k × n)
        // row-major: a transpose is done in the same pass, so oneDNN's bf16 kernels always read
        // plain row-major operands (in oneDNN 2.6 they ran transposed ones at a fraction of
        // their speed). B, which every part reads, is rounded once; each part rounds its rows of A.
        let packed = precision == .bf16
        let bHalf = packed ? bf16Copy(b, rows: k, columns: n, stride: ldb, transposed: transB) : nil
        defer { bHalf?.deallocate() }
        Parallel.chunks(m, minimumPerChunk: 32, singleThreadedBLAS: true) { _, rows in
            let key = MatmulKey(M: rows.count, N: n, K: k, transposeA: packed ? false : transA,
                                transposeB: packed ? false : transB, lda: packed ? k : lda, ldb: packed ? n : ldb,
                                ldc: ldc, alpha: alpha, beta: beta, precision: precision)
            let mm = matmuls.get(key) { Matmul($0) }
            let aRows = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
            var aHalf: UnsafeMutablePointer<UInt16>? = nil
            if packed {
                aHalf = .allocate(capacity: rows.count * k)
                round(aRows, rows: rows.count, columns: k, stride: lda, transposed: transA, into: aHalf!)
            }
            defer { aHalf?.deallocate() }
            mm.op.run([(DNNL_ARG_SRC, mm.a, aHalf.map { UnsafeMutableRawPointer($0) } ?? UnsafeMutableRawPointer(mutating: aRows)),
                       (DNNL_ARG_WEIGHTS, mm.b, bHalf.map { UnsafeMutableRawPointer($0) } ?? UnsafeMutableRawPointer(mutating: b)),
                       (DNNL_ARG_DST, mm.c, UnsafeMutableRawPointer(c + rows.lowerBound * ldc))], "matmul")
        }
    }

    /// The shape of one fp32 → bf16 conversion: the key of its reorder.
    struct RoundingKey: Hashable {
        var rows: Int, columns: Int, stride: Int
        var transposed: Bool
    }

    private static let roundings = Cache<RoundingKey, Reorder>()

    /// out (`rows` × `columns`, row-major) = bf16 of the matrix at `x` (row stride `stride`) or,
    /// when `transposed`, of the transpose of the `columns` × `rows` matrix stored there. A oneDNN
    /// reorder, made once per shape, on the calling thread's team: nearest even as
    /// `BFloat16.bits`, NaN included, except that on CPUs with AVX512_BF16 subnormal values become
    /// zero (as the bf16 dot products read them anyway).
    static func round(_ x: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, transposed: Bool,
                      into out: UnsafeMutablePointer<UInt16>) {
        let reorder = roundings.get(RoundingKey(rows: rows, columns: columns, stride: stride, transposed: transposed)) { key in
            var dims: [Int64] = [Int64(key.rows), Int64(key.columns)]
            var sourceStrides: [Int64] = key.transposed ? [1, Int64(key.stride)] : [Int64(key.stride), 1]
            var targetStrides: [Int64] = [Int64(key.columns), 1]
            var source = dnnl_memory_desc_t(), target = dnnl_memory_desc_t()
            check(dnnl_memory_desc_init_by_strides(&source, 2, &dims, dnnl_f32, &sourceStrides), "describing an fp32 operand")
            check(dnnl_memory_desc_init_by_strides(&target, 2, &dims, dnnl_bf16, &targetStrides), "describing its bf16 copy")
            return Reorder(from: source, to: target, accumulate: false)
        }
        reorder.run(UnsafeMutableRawPointer(mutating: x), UnsafeMutableRawPointer(out))
    }

    /// A packed row-major bf16 copy (`round`'s) of the `rows` × `columns` matrix at `x`, or of the
    /// transpose of the one stored there, its rows split over the engine's workers. The caller
    /// deallocates it.
    public static func bf16Copy(_ x: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int,
                                transposed: Bool = false) -> UnsafeMutablePointer<UInt16> {
        let out = UnsafeMutablePointer<UInt16>.allocate(capacity: rows * columns)
        BFloat16.splitRows(rows, columns: columns) { part in
            round(transposed ? x + part.lowerBound : x + part.lowerBound * stride, rows: part.count, columns: columns,
                  stride: stride, transposed: transposed, into: out + part.lowerBound * columns)
        }
        return out
    }

    static func check(_ status: dnnl_status_t, _ what: String) {
        precondition(status == dnnl_success, "oneDNN: \(what) failed with status \(status.rawValue)")
    }
}

/// bfloat16: the upper 16 bits of an fp32, here rounded to nearest even.
public enum BFloat16 {
    /// bf16(x): the upper 16 bits of x rounded to nearest even (NaN stays NaN).
    @inlinable @inline(__always)
    public static func bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// out[i] = bf16(x[i]) for i < n.
    @inlinable
    public static func round(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count n: Int) {
        for i in 0..<n { out[i] = bits(x[i]) }
    }

    /// bf16(x) of 16 values at once as fp32 values (the same rounding as `bits`, the low 16 bits
    /// zero), in 32-bit lanes throughout.
    @inlinable @inline(__always)
    static func roundedFloats(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let b = unsafeBitCast(x, to: SIMD16<UInt32>.self)
        var r = (b &+ 0x7FFF &+ ((b &>> 16) & 1)) & 0xFFFF_0000
        r.replace(with: (b & 0xFFFF_0000) | 0x40_0000, where: x .!= x)
        return unsafeBitCast(r, to: SIMD16<Float>.self)
    }

    /// The rows of a `rows`-row job split over the engine's workers, at least 32 K values a chunk,
    /// each chunk with the libraries single-threaded (a oneDNN reorder inside runs on its thread
    /// alone, with no OpenMP team).
    static func splitRows(_ rows: Int, columns: Int, _ body: (Range<Int>) -> Void) {
        Parallel.chunks(rows, minimumPerChunk: max(16, (1 << 15) / max(columns, 1)), singleThreadedBLAS: true) { _, range in
            body(range)
        }
    }

    /// A packed fp32 copy of the `rows` × `columns` matrix at `x` (row stride `stride`), each value
    /// rounded to the nearest bf16 (the low 16 bits zero).
    static func roundedFloats(_ x: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int) -> UnsafeMutablePointer<Float> {
        let out = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        splitRows(rows, columns: columns) { range in
            for r in range {
                let (source, target) = (x + r * stride, out + r * columns)
                var j = 0
                while j + 16 <= columns {
                    let f = roundedFloats(UnsafeRawPointer(source + j).loadUnaligned(as: SIMD16<Float>.self))
                    UnsafeMutableRawPointer(target + j).storeBytes(of: f, as: SIMD16<Float>.self)
                    j += 16
                }
                while j < columns { target[j] = float(bits(source[j])); j += 1 }
            }
        }
        return out
    }

    /// The fp32 value of a bf16.
    @inlinable
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}
