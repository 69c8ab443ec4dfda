import CLibs
import Foundation

/// The Fréchet distance between two Gaussian fits, split into its two parts.
public struct FIDResult: Sendable, Equatable {
    /// meanTerm + traceTerm. Not clamped: rounding can leave it a hair below zero for identical sets.
    public let fid: Double
    /// ‖μ1 − μ2‖².
    public let meanTerm: Double
    /// tr Σ1 + tr Σ2 − 2 tr((Σ1^½ Σ2 Σ1^½)^½).
    public let traceTerm: Double
}

/// Fréchet Inception Distance (Heusel et al., 2017) between Gaussian fits of two feature sets:
///
///     FID = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr((Σ1^½ Σ2 Σ1^½)^½)
///
/// The last trace equals tr((Σ1 Σ2)^½) (the two matrices are similar), but this form stays
/// symmetric positive semi-definite, so only symmetric eigendecompositions are needed and no
/// inverse appears: singular covariances (fewer samples than features, duplicated features)
/// are fine. Everything is Float64: Σ1^½ comes from the eigendecomposition of Σ1 with tiny
/// negative eigenvalues clamped to 0; M = Σ1^½ Σ2 Σ1^½ is symmetrised; tr(M^½) = Σ √max(λ_i, 0).
/// In both decompositions eigenvalues within rounding of zero (≤ D·ε·λ_max) count as 0.
/// Here the features come from the project's evaluator network, not Inception-v3 (docs/design.md §5).
public enum FID {
    /// FID between two fits of the same dimension.
    public static func compute(_ a: GaussianFit, _ b: GaussianFit) throws -> FIDResult {
        guard a.dimension == b.dimension else {
            throw MetricError("the two feature sets have different feature dimensions (\(a.dimension) and "
                + "\(b.dimension)); extract both with the same evaluator network and layer")
        }
        let d = a.dimension
        var meanTerm = 0.0
        for j in 0..<d {
            let diff = a.mean[j] - b.mean[j]
            meanTerm += diff * diff
        }
        let crossTrace = try traceOfSquareRootOfProduct(a.covariance, b.covariance, n: d)
        let traceTerm = a.covarianceTrace + b.covarianceTrace - 2 * crossTrace
        return FIDResult(fid: meanTerm + traceTerm, meanTerm: meanTerm, traceTerm: traceTerm)
    }

    /// FID between row-major Float64 feature sets of shapes [N1, D] and [N2, D], N1, N2 ≥ 2.
    public static func compute(_ x: [Double], shape xShape: [Int], _ y: [Double], shape yShape: [Int]) throws -> FIDResult {
        let (_, dx) = try featureMatrixShape(xShape, count: x.count, minimumRows: 2, label: "first feature set")
        let (_, dy) = try featureMatrixShape(yShape, count: y.count, minimumRows: 2, label: "second feature set")
        guard dx == dy else {
            throw MetricError("the two feature sets have different feature dimensions (\(dx) and \(dy)); "
                + "extract both with the same evaluator network and layer")
        }
        return try compute(GaussianFit(features: x, shape: xShape, label: "first feature set"),
                           GaussianFit(features: y, shape: yShape, label: "second feature set"))
    }

    /// FID between row-major Float32 feature sets (computed in Float64).
    public static func compute(_ x: [Float], shape xShape: [Int], _ y: [Float], shape yShape: [Int]) throws -> FIDResult {
        try compute(x.map(Double.init), shape: xShape, y.map(Double.init), shape: yShape)
    }

    /// tr((A^½ B A^½)^½) for symmetric positive semi-definite (n, n) A and B.
    static func traceOfSquareRootOfProduct(_ a: [Double], _ b: [Double], n: Int) throws -> Double {
        // A = Vᵀ diag(λ) V (rows of V are eigenvectors), so A^½ = Vᵀ diag(√λ⁺) V.
        let (lambda, v) = try symmetricEigen(a, n: n, vectors: true)
        let floorA = roundingFloor(lambda, n: n)
        var scaled = v                                            // (n, n) diag(√λ⁺) V
        scaled.withUnsafeMutableBufferPointer { s in
            for k in 0..<n {
                let r = lambda[k] > floorA ? lambda[k].squareRoot() : 0
                for j in 0..<n { s[k * n + j] *= r }
            }
        }
        let rootA = matmul(v, scaled, n: n, transposeA: true)    // (n, n) A^½
        var m = matmul(matmul(rootA, b, n: n), rootA, n: n)       // (n, n) A^½ B A^½
        m.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                for j in 0..<i {
                    let s = 0.5 * (p[i * n + j] + p[j * n + i])
                    p[i * n + j] = s
                    p[j * n + i] = s
                }
            }
        }
        let (mu, _) = try symmetricEigen(m, n: n, vectors: false)
        let floorM = roundingFloor(mu, n: n)
        return mu.reduce(0) { $0 + ($1 > floorM ? $1.squareRoot() : 0) }
    }

    /// Eigenvalues at or below n·ε·max|λ| are rounding noise around zero (a singular covariance);
    /// they count as 0, since their square roots (≈ √ε) would otherwise add up to a visible error.
    static func roundingFloor(_ eigenvalues: [Double], n: Int) -> Double {
        let largest = eigenvalues.reduce(0) { max($0, abs($1)) }
        return Double(n) * Double.ulpOfOne * largest
    }
}
