import Foundation
import Engine

/// How a generator's batches are cut into data-parallel shards (`DataParallel` for training,
/// `Parallel.shards` for sampling): the same rules for VQ-Diffusion and VQ-AR, so both are trained
/// and timed alike.
enum GeneratorShards {
    /// Fewest sequences per sampling shard: below it (guided batch 1 is 2 rows) splitting each
    /// kernel over the threads is faster.
    static let inferenceRows = 4

    /// One shard per thread when the text encoder is frozen and the batch fills them, else 1.
    static func automatic(batchSize: Int, textEncoder: TextEncoder) -> Int {
        textEncoder.isTrainable ? 1 : max(1, min(Parallel.workers, batchSize))
    }

    /// Why `count` shards cannot serve, or nil when they can.
    static func problem(_ count: Int, batchSize: Int, textEncoder: TextEncoder) -> String? {
        if count < 1 || count > batchSize { return "cannot cut batches of \(batchSize) into \(count) shards" }
        if count > 1 && textEncoder.isTrainable {
            return "data-parallel shards need a frozen text encoder; a trainable one trains in one batch"
        }
        return nil
    }

    /// The shards this process cuts its rows of every batch into. `shards` counts them over the
    /// whole batch: in one process, all of them; under MPI, an equal number per rank, so that
    /// `--shards 2` cuts the batch in the same two halves whether two threads or two ranks take
    /// them. Unset: one per thread of this process. Throws naming the problem when the batch or
    /// the text encoder cannot be cut so.
    static func local(_ shards: Int?, batchSize: Int, textEncoder: TextEncoder, group: ProcessGroup = .world) throws -> Int {
        if let problem = group.batchProblem(batchSize) { throw ConfigurationError(problem) }
        let rows = group.rows(ofBatch: batchSize).count
        var count = automatic(batchSize: rows, textEncoder: textEncoder)
        if let shards {
            guard shards % group.size == 0 else {
                throw ConfigurationError("--shards \(shards) cannot be divided among \(group.size) MPI ranks: use a multiple of "
                    + "\(group.size), or leave --shards out (one shard per thread in every rank)")
            }
            count = shards / group.size
        }
        if let problem = problem(count, batchSize: rows, textEncoder: textEncoder) { throw ConfigurationError(problem) }
        return count
    }

    /// ", batches cut into N data-parallel shards" (over all ranks) and ", over R MPI ranks", or "".
    static func describe(_ localShards: Int, group: ProcessGroup) -> String {
        let total = localShards * group.size
        return (total > 1 ? ", batches cut into \(total) data-parallel shards" : "")
            + (group.isDistributed ? " over \(group.size) MPI ranks" : "")
    }

    /// `master` with `count − 1` replicas made by `make`, or nil for one shard. The replicas'
    /// weights are copied from the master before every step; they are initialised from a
    /// generator of their own, so the run's streams are untouched.
    static func dataParallel<M: Module>(_ count: Int, master: M, make: (inout RandomGenerator) -> M) -> DataParallel<M>? {
        guard count > 1 else { return nil }
        var scratch = RandomGenerator(seed: 0)
        return DataParallel(master: master, replicas: (1..<count).map { _ in make(&scratch) })
    }
}

/// What the two generators' trainers set up alike: the checks of the data and text features against
/// the model, the parameters trained (a trainable text encoder's under `textEncoder.`), the
/// optimisation state and the data-parallel replicas, all from the same seed streams
/// (1: initialisation, 2: data order, 3: noise).
enum GeneratorTrainingSetup {
    /// Why `dataset` and `textEncoder` cannot train a model of this shape, or nil when they can.
    private static func problem(dataset: TokenizedDataset, classes: Int, gridHeight: Int, gridWidth: Int, textWidth: Int,
                        textEncoder: TextEncoder, batchSize: Int) -> String? {
        guard dataset.codes == classes, dataset.height == gridHeight, dataset.width == gridWidth else {
            return "the dataset holds \(dataset.height)×\(dataset.width) grids of \(dataset.codes) codes, "
                + "the model expects \(gridHeight)×\(gridWidth) grids of \(classes) codes; tokenize with the matching VQ-VAE"
        }
        guard textEncoder.width == textWidth else {
            return "the text encoder gives \(textEncoder.width)-wide features, the model reads \(textWidth)"
        }
        guard dataset.count >= 1, batchSize >= 1 else { return "need a non-empty dataset and a batch size ≥ 1" }
        return nil
    }

    /// The model made from the seed's initialisation stream, its training state and its replicas,
    /// once `dataset` and `textEncoder` are found to fit a model of `classes` codes on a
    /// gridHeight×gridWidth grid reading textWidth-wide features (a ConfigurationError otherwise).
    static func make<M: Module>(_ training: GeneratorTrainingConfiguration, dataset: TokenizedDataset, classes: Int,
                                gridHeight: Int, gridWidth: Int, textWidth: Int, textEncoder: TextEncoder, shards: Int?,
                                model make: (inout RandomGenerator) -> M) throws
        -> (model: M, state: TrainingState, dataParallel: DataParallel<M>?) {
        if let problem = problem(dataset: dataset, classes: classes, gridHeight: gridHeight, gridWidth: gridWidth,
                                 textWidth: textWidth, textEncoder: textEncoder, batchSize: training.batchSize) {
            throw ConfigurationError(problem)
        }
        guard training.captionDropout >= 0 && training.captionDropout < 1 else {
            throw ConfigurationError("the caption dropout must lie in [0, 1), got \(training.captionDropout)")
        }
        let root = RandomGenerator(seed: training.seed)
        var initGenerator = root.derived(1)
        let model = make(&initGenerator)
        var named = model.namedParameters
        if textEncoder.isTrainable, let encoder = textEncoder as? Module {
            named += encoder.namedParameters.map { (name: "textEncoder." + $0.name, tensor: $0.tensor) }
        }
        let state = TrainingState(parameters: named, settings: training.optimization, dataOrder: root.derived(2),
                                  generator: root.derived(3))
        let count = try GeneratorShards.local(shards, batchSize: training.batchSize, textEncoder: textEncoder)
        return (model, state, GeneratorShards.dataParallel(count, master: model, make: make))
    }

    /// Caption dropout: each caption of `text` replaced by the null text with probability `rate`.
    /// The draws come from `generator` only when the rate is above 0, so runs without dropout keep
    /// their random stream.
    static func droppingCaptions(_ text: TextFeatures, rate: Double, using generator: inout RandomGenerator) -> TextFeatures {
        guard rate > 0 else { return text }
        return text.replacingCaptions(where: (0..<text.batch).map { _ in generator.uniformDouble() < rate })
    }
}

/// A generator's trainer (VQ-Diffusion or VQ-AR): its optimizer, EMA, schedule, data order and
/// step live in one `TrainingState`.
public protocol GeneratorTrainer: Trainer {
    var state: TrainingState { get }
    var dataset: TokenizedDataset { get }
    var textEncoder: TextEncoder { get }
    var batchSize: Int { get }
    /// FLOPs of the model's forward pass over `batch` grids with captions of `textLength` tokens.
    func forwardFLOPs(batch: Int, textLength: Int) -> Double
    /// Continues from a checkpoint of the same configuration.
    func resume(from url: URL) throws
}

extension GeneratorTrainer {
    /// Steps taken so far.
    public var step: Int { state.step }
    /// Parameters trained: the model's, then a trainable text encoder's under `textEncoder.`.
    public var trainedParameters: [(name: String, tensor: Tensor)] { state.trainedParameters }

    /// FLOPs of one training step (forward + backward ≈ 3× forward), text encoder excluded.
    public func stepFLOPs(textLength: Int) -> Double { 3 * forwardFLOPs(batch: batchSize, textLength: textLength) }

    /// A step's figures for the training loop: `averaged` (the model's losses and accuracy) over a
    /// logging window, the gradient norm and learning rate as they stand, tokens and GFLOP per step
    /// as rates, loss and accuracy on the progress bar.
    func report(_ m: GeneratorStepMetrics, averaged: [(name: String, value: Double)]) -> TrainingStepReport {
        TrainingStepReport(
            averaged: averaged, latest: [("grad_norm", m.gradientNorm), ("lr", m.learningRate)],
            perStep: [("tokens_per_s", Double(batchSize * dataset.sequenceLength)),
                      ("gflops", stepFLOPs(textLength: textEncoder.maxLength) / 1e9)],
            shown: [("loss", m.loss), ("acc", m.accuracy)], seconds: m.seconds)
    }
}

