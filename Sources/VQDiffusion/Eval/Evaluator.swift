import Engine
import Foundation

/// What an evaluator network recognises.
public enum EvaluatorTask: String, Codable, CaseIterable, Sendable {
    /// Shapes attributes: number of objects, per-object shape, colour and size, the single
    /// object's grid position or the pair's relation axis (see `ShapesTargets`).
    case shapes
    /// The 10 Fashion-MNIST classes.
    case fashion
}

/// Settings of an evaluator network; stored as JSON in its checkpoint (the schema rule of
/// `SchemaJSON`: the feature scale came later and reads as 1 when absent).
public struct EvaluatorConfiguration: VersionedSchema, Equatable, Sendable {
    public static let defaults = EvaluatorConfiguration.standard(.shapes)
    public static let firstSchema = #"{"channels":0,"featureDimension":0,"imageSize":0,"stageWidths":0,"task":0}"#

    public var task: EvaluatorTask
    /// Image channels: 3 for Shapes, 1 for Fashion-MNIST.
    public var channels: Int
    /// Side S of the square input images; a multiple of 2^stages.count.
    public var imageSize: Int
    /// Width of each stage. A stage is a 3×3 convolution (stride 1) and a 3×3 convolution with
    /// stride 2, each followed by ReLU, so the map shrinks to S / 2^stages.count.
    public var stageWidths: [Int]
    /// Width of the penultimate layer: the feature vector used for FID and KID.
    public var featureDimension: Int
    /// The features `Evaluator.evaluate` returns are the penultimate activations times this scale,
    /// set after training (`Evaluator.calibrateFeatureScale`) so that on real training images the
    /// mean per-dimension variance is 1. A fixed scalar: FID and KID keep their meaning, and their
    /// values stay in a readable range whatever the network's activation scale.
    public var featureScale: Float = 1

    public init(task: EvaluatorTask, channels: Int, imageSize: Int, stageWidths: [Int] = [32, 64, 128],
                featureDimension: Int = 128, featureScale: Float = 1) {
        (self.task, self.channels, self.imageSize, self.stageWidths) = (task, channels, imageSize, stageWidths)
        (self.featureDimension, self.featureScale) = (featureDimension, featureScale)
    }

    /// The default network for a task at side `imageSize`: stages 32, 64, 128; 128 features.
    public static func standard(_ task: EvaluatorTask, imageSize: Int = 32) -> EvaluatorConfiguration {
        EvaluatorConfiguration(task: task, channels: task == .shapes ? 3 : 1, imageSize: imageSize)
    }

    /// A very small network for tests: stages 16, 32; 64 features.
    public static func tiny(_ task: EvaluatorTask, imageSize: Int = 16) -> EvaluatorConfiguration {
        EvaluatorConfiguration(task: task, channels: task == .shapes ? 3 : 1, imageSize: imageSize,
                               stageWidths: [16, 32], featureDimension: 64)
    }

    /// Side of the last feature map.
    public var finalMapSize: Int { imageSize >> stageWidths.count }

    /// The classification heads, in a fixed order: (name, number of classes).
    public var heads: [(name: String, classes: Int)] {
        switch task {
        case .fashion: return [("class", 10)]
        case .shapes: return ShapesTargets.heads
        }
    }

    func validate() throws {
        guard channels >= 1, !stageWidths.isEmpty, stageWidths.allSatisfy({ $0 >= 1 }), featureDimension >= 1 else {
            throw MetricError("evaluator configuration \(self) needs positive channels, stage widths and feature dimension")
        }
        guard imageSize >= (1 << stageWidths.count), imageSize % (1 << stageWidths.count) == 0 else {
            throw MetricError("evaluator image size \(imageSize) must be a multiple of \(1 << stageWidths.count) "
                + "(2 to the number of stages, \(stageWidths.count))")
        }
    }
}

/// The outputs of one evaluator pass.
public struct EvaluatorOutput {
    /// (B, featureDimension) penultimate-layer activations (after ReLU, before `featureScale`).
    public let features: Tensor
    /// One (B, classes) tensor of logits per head, in `EvaluatorConfiguration.heads` order.
    public let logits: [Tensor]
}

/// A small CNN trained on real images of one dataset (docs/design.md §5). Its penultimate layer is
/// the feature space of "FID (evaluator features)" and its heads read the attributes that
/// alignment and reconstruction fidelity score.
///
///     x (B, C, S, S) in [-1, 1]
///     → per stage w: conv3×3(stride 1) → ReLU → conv3×3(stride 2) → ReLU       (B, w, S/2, S/2)
///     → flatten (B, w_last · (S/2^n)²) → Linear → ReLU = features (B, F)
///     → one Linear head per attribute (B, classes)
///
/// The flatten (rather than global pooling) keeps where things are, which position and relation need.
public final class Evaluator: CompositeModule {
    public private(set) var configuration: EvaluatorConfiguration
    /// Pairs of convolutions, one pair per stage.
    let convolutions: [(Conv2d, Conv2d)]
    let feature: Linear
    let heads: [Linear]

    public init(_ configuration: EvaluatorConfiguration, using rng: inout RandomGenerator) throws {
        try configuration.validate()
        self.configuration = configuration
        var convolutions: [(Conv2d, Conv2d)] = []
        var inputs = configuration.channels
        for w in configuration.stageWidths {
            let a = Conv2d(inputs, w, kernel: 3, stride: 1, padding: 1, using: &rng)
            let b = Conv2d(w, w, kernel: 3, stride: 2, padding: 1, using: &rng)
            convolutions.append((a, b))
            inputs = w
        }
        self.convolutions = convolutions
        let m = configuration.finalMapSize
        feature = Linear(inputs * m * m, configuration.featureDimension, activation: .relu, using: &rng)
        heads = configuration.heads.map { Linear(configuration.featureDimension, $0.classes, using: &rng) }
    }

    public var children: [ModuleChild] {
        convolutions.enumerated().flatMap { i, pair in [.one("stages.\(i).conv1", pair.0), .one("stages.\(i).conv2", pair.1)] }
            + [.one("feature", feature)]
            + zip(heads, configuration.heads).map { .one("heads.\($1.name)", $0) }
    }

    /// Features and head logits of `images` (B, C, S, S) in [-1, 1].
    public func callAsFunction(_ images: Tensor) -> EvaluatorOutput {
        let c = configuration
        precondition(images.rank == 4 && images.shape[1] == c.channels && images.shape[2] == c.imageSize
                     && images.shape[3] == c.imageSize,
                     "evaluator for (B, \(c.channels), \(c.imageSize), \(c.imageSize)) images got shape \(images.shape)")
        let B = images.shape[0]
        var x = images
        for (a, b) in convolutions {
            x = a(x).relu()                                   // (B, w, s, s)
            x = b(x).relu()                                   // (B, w, s/2, s/2)
        }
        let features = feature(x.reshape([B, x.count / max(B, 1)]))   // (B, F)
        return EvaluatorOutput(features: features, logits: heads.map { $0(features) })
    }

    /// Runs the network without recording gradients, `batchSize` images at a time, in fp32
    /// whatever the process's precision: the evaluator is the measuring instrument, and a bf16
    /// model is measured with the same one as an fp32 model.
    /// Returns features (N, F) — the penultimate activations times `configuration.featureScale` —
    /// and, per head, the most likely class of every image.
    public func evaluate(_ images: Tensor, batchSize: Int = 128) -> (features: Tensor, classes: [[Int]]) {
        BLAS.withPrecision(.fp32) { evaluateInFP32(images, batchSize: batchSize) }
    }

    private func evaluateInFP32(_ images: Tensor, batchSize: Int) -> (features: Tensor, classes: [[Int]]) {
        precondition(images.rank == 4, "evaluate: expected (N, C, S, S) images, got shape \(images.shape)")
        let N = images.shape[0]
        let F = configuration.featureDimension
        let features = Tensor(zeros: [N, F])                  // (N, F)
        var classes = [[Int]](repeating: [], count: heads.count)
        let per = images.count / max(N, 1)
        Autograd.withoutGrad {
            var start = 0
            while start < N {
                let n = min(batchSize, N - start)
                let batch = Tensor(uninitializedShape: [n] + Array(images.shape.dropFirst()))
                batch.pointer.update(from: images.pointer + start * per, count: n * per)
                let out = self(batch)
                let (src, dst, scale) = (out.features.pointer, features.pointer + start * F, configuration.featureScale)
                for i in 0..<(n * F) { dst[i] = src[i] * scale }
                for (h, logits) in out.logits.enumerated() { classes[h].append(contentsOf: argmaxRows(logits)) }
                start += n
            }
        }
        return (features, classes)
    }

    /// Sets `featureScale` so that the features of `images` (real training images, (N, C, S, S),
    /// N ≥ 2) have mean per-dimension variance 1. Returns the scale.
    @discardableResult
    public func calibrateFeatureScale(images: Tensor) throws -> Float {
        configuration.featureScale = 1
        let (features, _) = evaluate(images)
        let F = configuration.featureDimension
        let n = features.count / F
        guard n >= 2 else { throw MetricError("calibrating the feature scale needs at least 2 images, got \(n)") }
        let p = features.pointer
        var total = 0.0
        for j in 0..<F {
            var mean = 0.0, square = 0.0
            for i in 0..<n { mean += Double(p[i * F + j]) }
            mean /= Double(n)
            for i in 0..<n { let d = Double(p[i * F + j]) - mean; square += d * d }
            total += square / Double(n - 1)
        }
        let variance = total / Double(F)
        guard variance > 0, variance.isFinite else {
            throw MetricError("the evaluator's features do not vary over \(n) images (mean variance \(variance)); the network is untrained or broken")
        }
        configuration.featureScale = Float(1 / variance.squareRoot())
        return configuration.featureScale
    }

    // MARK: Files

    /// The checkpoint kind of evaluator files.
    public static let checkpointKind = "evaluator"

    /// The default file of a trained evaluator: results/models/evaluator-<dataset>-<size>.safetensors.
    public static func defaultPath(task: EvaluatorTask, imageSize: Int) -> String {
        ProjectRoot.path("results/models/evaluator-\(task.rawValue)-\(imageSize).safetensors")
    }

    /// Saves the weights (no optimizer state: a trained evaluator is final) with its configuration.
    public func save(to url: URL, generator: RandomGenerator, step: Int, extra: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try TrainingCheckpoint.save(.init(kind: Self.checkpointKind, configuration: configuration, model: namedParameters,
                                          generator: generator, step: step, extra: extra), to: url)
    }

    /// An evaluator built from the configuration stored in `url` with its weights loaded strictly.
    public static func load(_ url: URL) throws -> Evaluator {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: checkpointKind)
        let configuration = try loaded.configuration(as: EvaluatorConfiguration.self)
        var rng = RandomGenerator(seed: 0)
        let evaluator = try Evaluator(configuration, using: &rng)
        try loaded.loadModel(into: evaluator.namedParameters)
        return evaluator
    }
}

/// The index of the largest value of every row of a (N, C) tensor.
func argmaxRows(_ logits: Tensor) -> [Int] {
    precondition(logits.rank == 2, "argmaxRows: expected (N, C), got shape \(logits.shape)")
    let (N, C) = (logits.shape[0], logits.shape[1])
    let p = logits.pointer
    var out = [Int](repeating: 0, count: N)
    for i in 0..<N {
        var best = 0
        for j in 1..<max(C, 1) where p[i * C + j] > p[i * C + best] { best = j }
        out[i] = best
    }
    return out
}
