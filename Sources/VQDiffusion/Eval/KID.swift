import CLibs
import Engine
import Foundation

/// Kernel Inception Distance over random subsets: the mean and spread of the per-subset estimates.
public struct KIDResult: Sendable, Equatable {
    /// Mean over subsets of the unbiased MMD² estimate. Can be slightly negative when the two
    /// sets come from one distribution (the estimator is unbiased, not non-negative).
    public let mean: Double
    /// Standard deviation over subsets (population form, 1/subsets).
    public let std: Double
    /// Number of subsets averaged.
    public let subsets: Int
    /// Samples drawn from each set per subset.
    public let subsetSize: Int
}

/// Kernel Inception Distance (Bińkowski et al., "Demystifying MMD GANs", 2018): the unbiased
/// estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
///
///     k(x, y) = (xᵀy / D + 1)³
///     MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m²
///
/// averaged over `subsets` pairs of subsets of size m, each drawn without replacement from
/// its set with the generator passed in. Kernel matrices come from BLAS in Float64.
public enum KID {
    /// KID between row-major Float64 feature sets of shapes [N1, D] and [N2, D].
    /// `subsetSize` defaults to min(1000, N1, N2) and must be at least 2.
    public static func compute(_ x: [Double], shape xShape: [Int], _ y: [Double], shape yShape: [Int],
                               subsets: Int = 100, subsetSize: Int? = nil,
                               using rng: inout RandomGenerator) throws -> KIDResult {
        let (n1, dx) = try featureMatrixShape(xShape, count: x.count, minimumRows: 2, label: "first feature set")
        let (n2, dy) = try featureMatrixShape(yShape, count: y.count, minimumRows: 2, label: "second feature set")
        guard dx == dy else {
            throw MetricError("the two feature sets have different feature dimensions (\(dx) and \(dy)); "
                + "extract both with the same evaluator network and layer")
        }
        try x.withUnsafeBufferPointer { try requireFinite($0, label: "first feature set") }
        try y.withUnsafeBufferPointer { try requireFinite($0, label: "second feature set") }
        let m = subsetSize ?? min(1000, n1, n2)
        guard m >= 2, m <= min(n1, n2) else {
            throw MetricError("KID subset size \(m) must be between 2 and the smaller set's size \(min(n1, n2))")
        }
        guard subsets >= 1 else { throw MetricError("KID needs at least one subset, got \(subsets)") }
        let d = dx

        var xIndices = Array(0..<n1), yIndices = Array(0..<n2)
        var xs = [Double](repeating: 0, count: m * d)         // (m, D) subset of x
        var ys = [Double](repeating: 0, count: m * d)         // (m, D) subset of y
        var gram = [Double](repeating: 0, count: m * m)       // (m, m) inner products
        var estimates: [Double] = []
        estimates.reserveCapacity(subsets)
        for _ in 0..<subsets {
            drawSubset(&xIndices, m, from: x, d: d, into: &xs, using: &rng)
            drawSubset(&yIndices, m, from: y, d: d, into: &ys, using: &rng)
            let kxx = selfKernelSum(xs, m: m, d: d, gram: &gram)
            let kyy = selfKernelSum(ys, m: m, d: d, gram: &gram)
            let kxy = crossKernelSum(xs, ys, m: m, d: d, gram: &gram)
            let pairs = Double(m) * Double(m - 1)
            estimates.append(kxx / pairs + kyy / pairs - 2 * kxy / (Double(m) * Double(m)))
        }
        let mean = estimates.reduce(0, +) / Double(subsets)
        let variance = estimates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(subsets)
        return KIDResult(mean: mean, std: variance.squareRoot(), subsets: subsets, subsetSize: m)
    }

    /// KID between row-major Float32 feature sets (computed in Float64).
    public static func compute(_ x: [Float], shape xShape: [Int], _ y: [Float], shape yShape: [Int],
                               subsets: Int = 100, subsetSize: Int? = nil,
                               using rng: inout RandomGenerator) throws -> KIDResult {
        try compute(x.map(Double.init), shape: xShape, y.map(Double.init), shape: yShape,
                    subsets: subsets, subsetSize: subsetSize, using: &rng)
    }

    /// Copies m rows chosen without replacement (a partial Fisher–Yates shuffle of `indices`)
    /// from `data` (N, D) into `out` (m, D).
    private static func drawSubset(_ indices: inout [Int], _ m: Int, from data: [Double], d: Int,
                                   into out: inout [Double], using rng: inout RandomGenerator) {
        let n = indices.count
        for i in 0..<m { indices.swapAt(i, i + rng.int(below: n - i)) }
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<m {
                    let row = indices[i] * d
                    for j in 0..<d { dst[i * d + j] = src[row + j] }
                }
            }
        }
    }

    /// Σ_{i≠j} k(a_i, a_j) for one set `a` (m, D): the upper triangle from dsyrk, doubled.
    private static func selfKernelSum(_ a: [Double], m: Int, d: Int, gram: inout [Double]) -> Double {
        // gram (upper triangle) = a aᵀ / D, (m, m)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(m), Int32(d),
                    1 / Double(d), a, Int32(d), 0, &gram, Int32(m))
        var total = 0.0
        gram.withUnsafeBufferPointer { g in
            for i in 0..<m {
                for j in (i + 1)..<m {
                    let base = g[i * m + j] + 1
                    total += base * base * base
                }
            }
        }
        return 2 * total
    }

    /// Σ_{i,j} k(a_i, b_j) for sets `a` and `b`, each (m, D).
    private static func crossKernelSum(_ a: [Double], _ b: [Double], m: Int, d: Int, gram: inout [Double]) -> Double {
        // gram = a bᵀ / D, (m, m)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(m), Int32(d),
                    1 / Double(d), a, Int32(d), b, Int32(d), 0, &gram, Int32(m))
        var total = 0.0
        gram.withUnsafeBufferPointer { g in
            for i in 0..<(m * m) {
                let base = g[i] + 1
                total += base * base * base
            }
        }
        return total
    }
}
