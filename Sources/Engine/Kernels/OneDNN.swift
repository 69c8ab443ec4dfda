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
        var transposeA: Bool, transposeB: Bool, accumulate: Bool
        var precision: Precision
    }

    /// A created primitive with its memory objects, whose data handles are set at every call.
    final class Matmul {
        let primitive: dnnl_primitive_t
        let a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t
        /// Held while the memory objects are bound to one call's buffers.
        let lock = NSLock()

        init(_ key: MatmulKey) {
            let type = key.precision == .bf16 ? dnnl_bf16 : dnnl_f32
            var aDesc = dnnl_memory_desc_t(), bDesc = dnnl_memory_desc_t(), cDesc = dnnl_memory_desc_t()
            // Row-major with the given leading dimensions; a transpose is the other strides.
            var aDims: [Int64] = [Int64(key.M), Int64(key.K)], bDims: [Int64] = [Int64(key.K), Int64(key.N)]
            var cDims: [Int64] = [Int64(key.M), Int64(key.N)]
            var aStrides: [Int64] = key.transposeA ? [1, Int64(key.M)] : [Int64(key.K), 1]
            var bStrides: [Int64] = key.transposeB ? [1, Int64(key.K)] : [Int64(key.N), 1]
            var cStrides: [Int64] = [Int64(key.N), 1]
            OneDNN.check(dnnl_memory_desc_init_by_strides(&aDesc, 2, &aDims, type, &aStrides), "describing A")
            OneDNN.check(dnnl_memory_desc_init_by_strides(&bDesc, 2, &bDims, type, &bStrides), "describing B")
            OneDNN.check(dnnl_memory_desc_init_by_strides(&cDesc, 2, &cDims, dnnl_f32, &cStrides), "describing C")
            var desc = dnnl_matmul_desc_t()
            OneDNN.check(dnnl_matmul_desc_init(&desc, &aDesc, &bDesc, nil, &cDesc), "describing the matmul")
            var attr: dnnl_primitive_attr_t?
            OneDNN.check(dnnl_primitive_attr_create(&attr), "creating attributes")
            defer { dnnl_primitive_attr_destroy(attr) }
            if key.accumulate {
                var postOps: dnnl_post_ops_t?
                OneDNN.check(dnnl_post_ops_create(&postOps), "creating post-ops")
                defer { dnnl_post_ops_destroy(postOps) }
                OneDNN.check(dnnl_post_ops_append_sum(postOps, 1), "adding the sum post-op")
                OneDNN.check(dnnl_primitive_attr_set_post_ops(attr, postOps), "setting post-ops")
            }
            var pd: dnnl_primitive_desc_t?
            OneDNN.check(dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil), "creating the matmul")
            defer { dnnl_primitive_desc_destroy(pd) }
            var primitive: dnnl_primitive_t?
            OneDNN.check(dnnl_primitive_create(&primitive, pd), "creating the matmul primitive")
            self.primitive = primitive!
            var memories: [dnnl_memory_t] = []
            for var d in [aDesc, bDesc, cDesc] {
                var m: dnnl_memory_t?
                OneDNN.check(dnnl_memory_create(&m, &d, OneDNN.engine, nil), "creating a memory object")
                memories.append(m!)
            }
            (a, b, c) = (memories[0], memories[1], memories[2])
        }
    }

    /// The primitives made so far, by shape (made once, kept for the process).
    nonisolated(unsafe) private static var cache: [MatmulKey: Matmul] = [:]
    private static let lock = NSLock()

    /// C (M, N) = op(A) · op(B), or += with `accumulate`. A is (M, K) row-major, or (K, M) when
    /// `transposeA`; B is (K, N), or (N, K) when `transposeB`. Precision bf16 rounds A and B to
    /// bfloat16 first. Calls from several threads at once are safe (each waits for its own
    /// primitive; a primitive is not run by two threads at the same time).
    public static func matmul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
                              M: Int, N: Int, K: Int, transposeA: Bool = false, transposeB: Bool = false,
                              accumulate: Bool = false, precision: Precision = .fp32) {
        guard M > 0 && N > 0 else { return }
        guard K > 0 else {
            if !accumulate { c.update(repeating: 0, count: M * N) }
            return
        }
        let key = MatmulKey(M: M, N: N, K: K, transposeA: transposeA, transposeB: transposeB, accumulate: accumulate,
                            precision: precision)
        lock.lock()
        let op = cache[key] ?? Matmul(key)
        cache[key] = op
        lock.unlock()
        // A primitive's memory objects hold one call's handles at a time.
        op.lock.lock()
        defer { op.lock.unlock() }
        do {
            switch precision {
            case .fp32:
                run(op, a: UnsafeMutableRawPointer(mutating: a), b: UnsafeMutableRawPointer(mutating: b), c: c)
            case .bf16:
                let aHalf = UnsafeMutablePointer<UInt16>.allocate(capacity: M * K)
                let bHalf = UnsafeMutablePointer<UInt16>.allocate(capacity: K * N)
                defer { aHalf.deallocate(); bHalf.deallocate() }
                BFloat16.round(a, into: aHalf, count: M * K)
                BFloat16.round(b, into: bHalf, count: K * N)
                run(op, a: UnsafeMutableRawPointer(aHalf), b: UnsafeMutableRawPointer(bHalf), c: c)
            }
        }
    }

    private static func run(_ op: Matmul, a: UnsafeMutableRawPointer, b: UnsafeMutableRawPointer,
                            c: UnsafeMutablePointer<Float>) {
        check(dnnl_memory_set_data_handle(op.a, a), "binding A")
        check(dnnl_memory_set_data_handle(op.b, b), "binding B")
        check(dnnl_memory_set_data_handle(op.c, c), "binding C")
        var stream: dnnl_stream_t?
        check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "creating a stream")
        defer { dnnl_stream_destroy(stream) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: op.a), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: op.b),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: op.c)]
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
