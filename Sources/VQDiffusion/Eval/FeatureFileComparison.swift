import Engine
import Foundation

/// FID (and optionally KID) between two feature sets stored as .npy files: what `vqd fid` runs.
/// Each file must hold a 2-D float32 or float64 array [N, D] with N ≥ 2; both must have the same D.
public struct FeatureFileComparison: Sendable {
    /// KID settings; see `KID.compute`.
    public struct KIDOptions: Sendable, Equatable {
        /// Number of random subset pairs.
        public var subsets: Int = 100
        /// Samples per subset; nil takes min(1000, N1, N2).
        public var subsetSize: Int? = nil
        /// Seed of the subset draws.
        public var seed: UInt64 = 0

        public init(subsets: Int = 100, subsetSize: Int? = nil, seed: UInt64 = 0) {
            self.subsets = subsets
            self.subsetSize = subsetSize
            self.seed = seed
        }
    }

    public let realShape: [Int]
    public let fakeShape: [Int]
    public let fid: FIDResult
    public let kid: KIDResult?

    /// Loads, checks and compares the two files. Errors (`FileError`, `MetricError`) name the file
    /// and say what to change.
    public init(real: URL, fake: URL, kid options: KIDOptions? = nil) throws {
        let (x, xShape) = try FeatureFileComparison.load(real)
        let (y, yShape) = try FeatureFileComparison.load(fake)
        guard xShape[1] == yShape[1] else {
            throw MetricError("\(real.path) has \(xShape[1]) features per sample but \(fake.path) has \(yShape[1]); "
                + "both files must hold [N, D] arrays with the same D")
        }
        self.realShape = xShape
        self.fakeShape = yShape
        self.fid = try FID.compute(x, shape: xShape, y, shape: yShape)
        if let options {
            var rng = RandomGenerator(seed: options.seed)
            self.kid = try KID.compute(x, shape: xShape, y, shape: yShape, subsets: options.subsets,
                                       subsetSize: options.subsetSize, using: &rng)
        } else {
            self.kid = nil
        }
    }

    /// The values (as Float64) and shape of a feature file, checked: rank 2, float32 or float64,
    /// at least 2 rows and 1 column, all finite.
    public static func load(_ url: URL) throws -> (values: [Double], shape: [Int]) {
        let array = try Npy.read(url)
        guard array.shape.count == 2 else {
            throw FileError(url, "holds an array of shape \(array.shape); a feature set must be 2-D [samples, features] "
                + "(reshape it, e.g. x.reshape(len(x), -1))")
        }
        let (n, d) = (array.shape[0], array.shape[1])
        guard n >= 2 else {
            throw FileError(url, "holds \(n) sample(s); FID needs at least 2 (and in practice many more than the \(d) features)")
        }
        guard d >= 1 else { throw FileError(url, "holds samples of 0 features; give at least one feature per sample") }
        let values: [Double]
        switch array.values {
        case .f32(let v): values = v.map(Double.init)
        case .f64(let v): values = v
        default:
            throw FileError(url, "has dtype \(Npy.descr(array.dtype)); features must be float32 or float64 (x.astype('float32'))")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw FileError(url, "holds a non-finite value (\(values[i])) at row \(i / d), column \(i % d); check the feature extractor")
        }
        return (values, array.shape)
    }

    /// The lines `vqd fid` prints.
    public var report: String {
        var lines = [
            "real: \(realShape[0]) × \(realShape[1]), fake: \(fakeShape[0]) × \(fakeShape[1])",
            String(format: "FID %.6f  (mean term %.6f, trace term %.6f)", fid.fid, fid.meanTerm, fid.traceTerm),
        ]
        if let kid {
            lines.append(String(format: "KID %.6f ± %.6f  (%d subsets of %d)", kid.mean, kid.std, kid.subsets, kid.subsetSize))
        }
        return lines.joined(separator: "\n")
    }
}
