import CLibs
import Foundation

/// A metric's inputs do not fit together (shapes, sample counts, non-finite values), or the
/// linear algebra underneath failed. Messages say what is wrong and how to fix it.
public struct MetricError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Checks that `shape` is [N, D] holding `count` values with N ≥ `minimumRows`; returns (N, D).
/// `label` names the input in messages ("first feature set").
func featureMatrixShape(_ shape: [Int], count: Int, minimumRows: Int, label: String) throws -> (rows: Int, columns: Int) {
    guard shape.count == 2 else {
        throw MetricError("the \(label) must be a 2-D array [samples, features], got shape \(shape)")
    }
    let (n, d) = (shape[0], shape[1])
    guard n >= 0, d >= 1, n * d == count else {
        throw MetricError("the \(label) has \(count) values, which does not fit shape \(shape)")
    }
    guard n >= minimumRows else {
        throw MetricError("the \(label) has \(n) samples; at least \(minimumRows) are needed")
    }
    return (n, d)
}

/// Throws if any value is NaN or infinite (LAPACK's results would be meaningless).
func requireFinite(_ values: UnsafeBufferPointer<Double>, label: String) throws {
    for i in 0..<values.count where !values[i].isFinite {
        throw MetricError("the \(label) contains a non-finite value (\(values[i])) at flat index \(i); "
            + "check the feature extractor's output")
    }
}

/// The mean and unbiased covariance of a set of feature vectors: the Gaussian fit FID compares.
/// A fit of the reference set can be computed once and reused across evaluations.
public struct GaussianFit: Sendable {
    /// Number of samples the fit came from.
    public let count: Int
    /// Feature dimension D.
    public let dimension: Int
    /// (D) sample mean.
    public let mean: [Double]
    /// (D, D) row-major covariance with the unbiased 1/(N − 1) normalisation; symmetric.
    public let covariance: [Double]

    /// Fits features given row-major as `shape` [N, D], N ≥ 2, in Float64 throughout.
    public init(features: [Double], shape: [Int], label: String = "feature set") throws {
        let (n, d) = try featureMatrixShape(shape, count: features.count, minimumRows: 2, label: label)
        try features.withUnsafeBufferPointer { try requireFinite($0, label: label) }
        var centred = features                                    // (N, D)
        var mean = [Double](repeating: 0, count: d)               // (D)
        centred.withUnsafeMutableBufferPointer { x in
            mean.withUnsafeMutableBufferPointer { mu in
                for i in 0..<n { for j in 0..<d { mu[j] += x[i * d + j] } }
                for j in 0..<d { mu[j] /= Double(n) }
                for i in 0..<n { for j in 0..<d { x[i * d + j] -= mu[j] } }
            }
        }
        // Σ = Xcᵀ Xc / (N − 1): the upper triangle from dsyrk, then mirrored.
        var cov = [Double](repeating: 0, count: d * d)            // (D, D)
        centred.withUnsafeBufferPointer { x in
            cov.withUnsafeMutableBufferPointer { c in
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(n), 1 / Double(n - 1),
                            x.baseAddress, Int32(d), 0, c.baseAddress, Int32(d))
                for i in 0..<d { for j in 0..<i { c[i * d + j] = c[j * d + i] } }
            }
        }
        self.count = n
        self.dimension = d
        self.mean = mean
        self.covariance = cov
    }

    /// Fits Float32 features (converted to Float64 first).
    public init(features: [Float], shape: [Int], label: String = "feature set") throws {
        try self.init(features: features.map(Double.init), shape: shape, label: label)
    }

    /// A fit from statistics computed elsewhere; the covariance must be (D, D) and symmetric.
    public init(mean: [Double], covariance: [Double], count: Int) throws {
        let d = mean.count
        guard d >= 1, covariance.count == d * d else {
            throw MetricError("a covariance for \(d) features needs \(d * d) values, got \(covariance.count)")
        }
        for i in 0..<d {
            for j in 0..<i {
                let (upper, lower) = (covariance[j * d + i], covariance[i * d + j])
                guard abs(upper - lower) <= 1e-9 * (1 + abs(upper)) else {
                    throw MetricError("the covariance is not symmetric: (\(i), \(j)) is \(lower) but (\(j), \(i)) is \(upper)")
                }
            }
        }
        guard count >= 2 else { throw MetricError("a Gaussian fit needs at least 2 samples, got \(count)") }
        try mean.withUnsafeBufferPointer { try requireFinite($0, label: "mean") }
        try covariance.withUnsafeBufferPointer { try requireFinite($0, label: "covariance") }
        self.count = count
        self.dimension = d
        self.mean = mean
        self.covariance = covariance
    }

    /// tr Σ.
    public var covarianceTrace: Double { (0..<dimension).reduce(0) { $0 + covariance[$1 * dimension + $1] } }
}

/// Eigendecomposition of a symmetric (n, n) matrix by LAPACK's dsyevd (divide and conquer).
///
/// LAPACK is column-major; a symmetric matrix reads the same either way. Eigenvalues come in
/// ascending order. With `vectors`, the returned (n, n) row-major array has eigenvector k as
/// row k (LAPACK's column k), so `a = Vᵀ diag(values) V`.
func symmetricEigen(_ a: [Double], n: Int, vectors: Bool) throws -> (values: [Double], vectors: [Double]) {
    precondition(a.count == n * n, "symmetricEigen: \(a.count) values do not fit (\(n), \(n))")
    var matrix = a
    var values = [Double](repeating: 0, count: n)
    var jobz = Int8(UInt8(ascii: vectors ? "V" : "N"))
    var uplo = Int8(UInt8(ascii: "U"))
    var order = Int32(n), lda = Int32(max(n, 1)), info: Int32 = 0
    // Workspace query, then the decomposition.
    var workSize = 0.0, iworkSize: Int32 = 0, lworkQuery: Int32 = -1, liworkQuery: Int32 = -1
    dsyevd_(&jobz, &uplo, &order, &matrix, &lda, &values, &workSize, &lworkQuery, &iworkSize, &liworkQuery, &info)
    guard info == 0 else { throw MetricError("LAPACK dsyevd workspace query failed (info \(info))") }
    var lwork = Int32(workSize.rounded(.up)), liwork = max(iworkSize, 1)
    var work = [Double](repeating: 0, count: Int(max(lwork, 1)))
    var iwork = [Int32](repeating: 0, count: Int(liwork))
    dsyevd_(&jobz, &uplo, &order, &matrix, &lda, &values, &work, &lwork, &iwork, &liwork, &info)
    guard info == 0 else {
        throw MetricError("LAPACK dsyevd did not converge on a \(n)×\(n) matrix (info \(info)); "
            + "the features may be badly scaled or contain extreme values")
    }
    return (values, vectors ? matrix : [])
}

/// (n, n) row-major product a · b.
func matmul(_ a: [Double], _ b: [Double], n: Int, transposeA: Bool = false) -> [Double] {
    var c = [Double](repeating: 0, count: n * n)
    cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
    return c
}

/// The solution x of A·x = b for a square n×n matrix A (row-major) by LAPACK's dgesv (LU with
/// partial pivoting); nil when A is singular.
public func solveLinearSystem(_ a: [Double], _ b: [Double]) -> [Double]? {
    var n = Int32(b.count)
    precondition(a.count == b.count * b.count, "solveLinearSystem: a \(a.count)-value matrix for \(b.count) unknowns")
    guard n > 0 else { return [] }
    // LAPACK is column-major: pass Aᵀ's storage (A transposed) so that it solves A·x = b.
    var matrix = [Double](repeating: 0, count: a.count)
    for i in 0..<b.count { for j in 0..<b.count { matrix[j * b.count + i] = a[i * b.count + j] } }
    var rhs = b, pivots = [Int32](repeating: 0, count: b.count)
    var nrhs: Int32 = 1, lda = n, ldb = n, info: Int32 = 0
    dgesv_(&n, &nrhs, &matrix, &lda, &pivots, &rhs, &ldb, &info)
    return info == 0 ? rhs : nil
}
