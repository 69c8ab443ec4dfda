import Foundation
import Engine

/// The difference of two groups' mean FIDs (group A − group B, each group the seeds of one
/// method, every model scored against the same real set) with a bootstrap percentile interval.
public struct FIDDifference: Sendable, Equatable {
    /// mean FID of A − mean FID of B on the sets as measured.
    public var estimate: Double
    /// The 2.5th and 97.5th percentiles of the bootstrap replicates.
    public var low: Double, high: Double

    /// Not measured yet.
    public static let unknown = FIDDifference(estimate: .nan, low: .nan, high: .nan)

    /// Each replicate draws, with replacement, as many rows as each set has from every generated
    /// feature set of A and B and from the real set (one draw of the real set per replicate,
    /// shared by all models, as they share it when measured), and recomputes the difference of
    /// mean FIDs. `paired`: every generated set was made from the same N captions in the same
    /// order, and a replicate draws one set of caption indices for all of them (so what the
    /// captions share cancels out of the difference). Feature sets are row-major (N, D) with the
    /// real set's D; the draws come from `seed`, so the interval is reproducible.
    public static func bootstrap(_ a: [[Float]], _ b: [[Float]], reference: [Float], dimension d: Int,
                                 replicates: Int, seed: UInt64, paired: Bool = false) throws -> FIDDifference {
        guard !a.isEmpty, !b.isEmpty else { throw MetricError("a FID difference needs at least one model on each side") }
        guard d >= 1, reference.count % d == 0, (a + b).allSatisfy({ $0.count % d == 0 && $0.count / d >= 2 }) else {
            throw MetricError("the feature sets are not (N ≥ 2, \(d)) matrices")
        }
        guard !paired || Set((a + b).map(\.count)).count == 1 else {
            throw MetricError("a paired bootstrap needs every generated set made from the same captions (equal N)")
        }
        let real = reference.map(Double.init), sets = (a + b).map { $0.map(Double.init) }
        func difference(_ realRows: [Int]?, _ rows: [[Int]?]) throws -> Double {
            let realFit = try fit(real, rows: realRows, d)
            var fids = [Double]()
            for (set, r) in zip(sets, rows) { fids.append(try FID.compute(try fit(set, rows: r, d), realFit).fid) }
            let meanA = fids[..<a.count].reduce(0, +) / Double(a.count)
            let meanB = fids[a.count...].reduce(0, +) / Double(b.count)
            return meanA - meanB
        }
        let estimate = try difference(nil, sets.map { _ in nil })
        var rng = RandomGenerator(seed: seed)
        var values = [Double]()
        for _ in 0..<max(0, replicates) {
            let realRows = (0..<(real.count / d)).map { _ in rng.int(below: real.count / d) }
            let rows: [[Int]]
            if paired {
                let shared = (0..<(sets[0].count / d)).map { _ in rng.int(below: sets[0].count / d) }
                rows = sets.map { _ in shared }
            } else {
                rows = sets.map { set in (0..<(set.count / d)).map { _ in rng.int(below: set.count / d) } }
            }
            values.append(try difference(realRows, rows))
        }
        let (low, high) = percentileInterval(values)
        return FIDDifference(estimate: estimate, low: low, high: high)
    }

    /// The Gaussian fit of `rows` of `features` (all rows when nil).
    private static func fit(_ features: [Double], rows: [Int]?, _ d: Int) throws -> GaussianFit {
        guard let rows else { return try GaussianFit(features: features, shape: [features.count / d, d]) }
        var picked = [Double](repeating: 0, count: rows.count * d)
        for (i, r) in rows.enumerated() { for j in 0..<d { picked[i * d + j] = features[r * d + j] } }
        return try GaussianFit(features: picked, shape: [rows.count, d])
    }
}

/// The 2.5th and 97.5th percentiles of bootstrap replicates (linear interpolation between order
/// statistics); NaN for none. Every bootstrap interval of the suite is read this way.
public func percentileInterval(_ replicates: [Double]) -> (low: Double, high: Double) {
    let values = replicates.sorted()
    guard !values.isEmpty else { return (.nan, .nan) }
    func percentile(_ q: Double) -> Double {
        let position = q * Double(values.count - 1)
        let (i, f) = (Int(position), position - position.rounded(.down))
        return i + 1 < values.count ? values[i] * (1 - f) + values[i + 1] * f : values[i]
    }
    return (percentile(0.025), percentile(0.975))
}
