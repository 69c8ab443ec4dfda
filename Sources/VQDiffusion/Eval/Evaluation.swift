import Engine
import Foundation

/// Anything that makes images from captions: the diffusion and autoregressive samplers, and the
/// stand-ins the tests use.
public protocol ImageGenerator {
    /// A name for tables and the results database, e.g. "diffusion-small-100steps".
    var name: String { get }
    /// What kind of sampler it is, e.g. "diffusion", "ar", "real", "noise".
    var kind: String { get }
    /// One image per caption: (B, C, S, S) with values in [-1, 1], B = captions.count.
    func generate(captions: [String], using rng: inout RandomGenerator) throws -> Tensor
}

/// Settings of an evaluation run.
public struct EvalConfiguration {
    /// N: images generated, and real reference images (the split's first N).
    public var count: Int = 1000
    /// Captions per `generate` call.
    public var batchSize: Int = 16
    /// Seed of sampling and of KID's subsets.
    public var seed: UInt64 = 0
    /// KID subsets averaged.
    public var kidSubsets: Int = 100
    /// Samples per KID subset; nil takes min(1000, N/2), so that subsets differ and the spread
    /// over subsets means something (the mean is unbiased at any subset size).
    public var kidSubsetSize: Int? = nil
    /// Also score N further real images of the split (N..<2N) against the reference set: the floor
    /// of FID and KID at this sample size, and the alignment of real images with their captions.
    public var measureFloor: Bool = true
    /// How to time the generator; nil skips throughput.
    public var throughput: ThroughputMeter? = ThroughputMeter()
    /// Show a progress bar while generating.
    public var showProgress: Bool = false

    public init(count: Int = 1000, batchSize: Int = 16, seed: UInt64 = 0, measureFloor: Bool = true,
                throughput: ThroughputMeter? = ThroughputMeter(), showProgress: Bool = false) {
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
        self.measureFloor = measureFloor
        self.throughput = throughput
        self.showProgress = showProgress
    }
}

/// Distribution and prompt metrics of one image set against the reference set.
public struct EvalMetrics {
    /// "FID (evaluator features)".
    public let fid: FIDResult
    /// KID on the same features.
    public let kid: KIDResult
    /// Alignment with the captions the images were made for (Shapes attributes or Fashion class).
    public let alignment: AttributeScores
    /// Shapes: the shape read for each stated object, by stated shape and by read size.
    public let shapeReadings: ShapeReadings?

    public init(fid: FIDResult, kid: KIDResult, alignment: AttributeScores, shapeReadings: ShapeReadings?) {
        self.fid = fid
        self.kid = kid
        self.alignment = alignment
        self.shapeReadings = shapeReadings
    }
}

/// What an evaluation run measured.
public struct EvalReport {
    /// The generator's images against the reference set (nil for a real-only run).
    public let generated: EvalMetrics?
    /// Further real images against the reference set (nil unless `measureFloor`).
    public let floor: EvalMetrics?
    public let throughput: [ThroughputMeasurement]
    /// The results-database run, when logged.
    public let runID: String?
    /// The evaluator features (N, F) row-major of the generated images (empty for a real-only run)
    /// and of the real reference images: what a bootstrap of FID resamples.
    public var generatedFeatures: [Float] = []
    public var referenceFeatures: [Float] = []

    public init(generated: EvalMetrics?, floor: EvalMetrics?, throughput: [ThroughputMeasurement], runID: String?) {
        self.generated = generated
        self.floor = floor
        self.throughput = throughput
        self.runID = runID
    }
}
