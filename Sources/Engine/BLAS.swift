import CLibs
import Foundation

/// Thin, shape-explicit wrappers over CBLAS. Row-major throughout.
public enum BLAS {
    /// The configured thread count. Kernels split their work by it, so it must not change while
    /// they run: temporary single-threaded BLAS regions change only the library's own setting
    /// (`setLibraryThreads`), never this value, and results stay bitwise reproducible.
    nonisolated(unsafe) private static var configured = Int(openblas_get_num_threads())

    /// Sets the number of threads OpenBLAS and the engine's kernels use.
    public static func setThreads(_ n: Int) {
        configured = max(1, n)
        openblas_set_num_threads(Int32(configured))
    }

    /// Which library runs the matrix products (as `VQD_BACKEND` says, else OpenBLAS), and the
    /// precision of their operands (fp32 unless set, or scoped with `withPrecision`).
    nonisolated(unsafe) public static var backend: MatrixBackend = MatrixBackend.fromEnvironment ?? .openblas
    nonisolated(unsafe) public static var precision: Precision = .fp32

    /// How bf16 runs on a CPU without AVX512_BF16: its numerics (operands rounded to bf16, exact
    /// products, fp32 sums) on the fp32 kernels, at fp32 speed, instead of oneDNN's emulation, which
    /// is several times slower. True exactly on such CPUs; tests set it to compare the two paths.
    nonisolated(unsafe) public static var roundsBF16OnFP32Kernels = !OneDNN.cpuHasBF16

    /// Whether bf16 products now run as rounded operands on the fp32 kernels.
    public static var emulatesBF16: Bool { precision == .bf16 && roundsBF16OnFP32Kernels }

    /// Whether matrix products and convolutions run on oneDNN (its backend, or native bf16).
    public static var usesOneDNN: Bool { backend == .onednn || (precision == .bf16 && !roundsBF16OnFP32Kernels) }

    /// Whether convolutions run as oneDNN convolutions: on oneDNN, unless bf16 is emulated, which
    /// needs im2col's products with rounded operands.
    public static var convolvesOnOneDNN: Bool { usesOneDNN && !emulatesBF16 }

    /// Runs `body` with products in `precision` (on oneDNN for bf16), then restores the previous one.
    public static func withPrecision<R>(_ precision: Precision, _ body: () throws -> R) rethrows -> R {
        let saved = self.precision
        self.precision = precision
        defer { self.precision = saved }
        return try body()
    }

    /// Threads the engine uses (OpenBLAS's, outside single-threaded regions).
    public static var threads: Int { configured }

    /// OpenBLAS's own thread count now (1 inside single-threaded regions).
    static var libraryThreads: Int { Int(openblas_get_num_threads()) }

    /// Sets only OpenBLAS's own thread count, for a region where each worker calls BLAS itself.
    static func setLibraryThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// C[M,N] = alpha · op(A) · op(B) + beta · C, where op(A) is [M,K] and op(B) is [K,N].
    /// `lda`, `ldb`, `ldc` are row strides of A, B, C as stored (before transposition).
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 { return scaleOnly(m: m, n: n, beta: beta, c: c, ldc: ldc) }
        // oneDNN costs a few microseconds per call (a primitive lookup, memory objects, an OpenMP
        // team), more than small products take: those run on OpenBLAS, in bf16 as rounded operands
        // (the same numerics).
        let small = m * n * k < oneDNNMinimumProduct
        if precision == .bf16 && (roundsBF16OnFP32Kernels || small) {
            // bf16 numerics: packed copies of A and B rounded to bf16 (as fp32), then the fp32 product.
            let (aRows, aColumns) = transA ? (k, m) : (m, k), (bRows, bColumns) = transB ? (n, k) : (k, n)
            let aRounded = BFloat16.roundedFloats(a, rows: aRows, columns: aColumns, stride: lda)
            let bRounded = BFloat16.roundedFloats(b, rows: bRows, columns: bColumns, stride: ldb)
            defer { aRounded.deallocate(); bRounded.deallocate() }
            return dispatch(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: aRounded, lda: aColumns,
                            b: bRounded, ldb: bColumns, beta: beta, c: c, ldc: ldc)
        }
        dispatch(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: c, ldc: ldc)
    }

    /// Products with fewer multiply-adds (m·n·k) than this run on OpenBLAS whatever the backend.
    public static let oneDNNMinimumProduct = 1 << 21

    /// The product of large matrices on oneDNN (bf16 operands when the precision says so and the
    /// CPU runs them), of small ones and everything else on OpenBLAS in fp32.
    private static func dispatch(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if usesOneDNN && m * n * k >= oneDNNMinimumProduct {
            let native = precision == .bf16 && !roundsBF16OnFP32Kernels
            return OneDNN.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                               beta: beta, c: c, ldc: ldc, precision: native ? .bf16 : .fp32)
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C = beta·C, what a product with k = 0 leaves (BLAS would do the same, but some builds reject
    /// k = 0, and oneDNN's matmul needs k ≥ 1).
    static func scaleOnly(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
    }

    /// y += alpha · x over n elements.
    @inline(__always)
    public static func axpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }
}

/// The library that runs matrix products.
public enum MatrixBackend: String, CaseIterable, Codable, Sendable {
    case openblas
    case onednn

    /// The environment variable that picks the backend.
    public static let environmentVariable = "VQD_BACKEND"

    /// The value of `VQD_BACKEND` when it names a backend.
    public static var fromEnvironment: MatrixBackend? {
        guard let value = getenv(environmentVariable) else { return nil }
        return MatrixBackend(rawValue: String(cString: value).lowercased())
    }
}

