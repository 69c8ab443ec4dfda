import Engine
import Foundation

/// What one training step measured on its batch.
public struct VQVAEStepMetrics: Sendable {
    public var step: Int
    public var loss: Double
    /// Mean squared error on the [-1, 1] scale.
    public var reconstruction: Double
    public var commitment: Double
    /// PSNR of the batch from its mean squared error (0…255 scale, not rounded to 8 bits).
    public var psnr: Double
    /// Fraction of codes the batch used.
    public var usage: Double
    public var perplexity: Double
    /// Dead codes restarted after the step.
    public var restarted: Int
    public var learningRate: Double
}

/// Trains a VQ-VAE on a dataset: AdamW on the encoder and decoder, EMA on the codebook, one batch
/// per step from a resumable stream. Checkpoints hold the model state (parameters, codebook and
/// its EMA statistics), the optimizer, the generator, the step and the position in the data
/// stream, so that an interrupted run resumed from its last checkpoint ends with the same weights
/// as an uninterrupted one (for the same thread count).
///
/// Seeds: the model is initialised from `RandomGenerator(seed).derived(1)`, the data order from
/// `derived(2)`, and code restarts draw from `derived(3)` (the generator saved in checkpoints).
public final class VQVAETrainer: Trainer {
    public let model: VQVAE
    public let optimizer: AdamW
    public let options: TrainingRunSettings
    /// The training images, as logged and compared on resume.
    public let data: DatasetSelection
    public let schedule: WarmupCosineSchedule
    /// Steps done.
    public private(set) var step = 0
    /// The generator of code restarts.
    public private(set) var generator: RandomGenerator
    private var stream: BatchStream
    /// The processes training the model together (`ProcessGroup.world`): each takes its rows of every batch.
    public let group: ProcessGroup = .world

    /// A fresh run.
    public init(configuration: VQVAEConfiguration, options: TrainingRunSettings, data: DatasetSelection,
                dataset: any CaptionedDataset) throws {
        try configuration.validate()
        try options.validate()
        guard dataset.channels == configuration.channels else {
            throw VQVAEError("the dataset has \(dataset.channels)-channel images but the VQ-VAE is configured for \(configuration.channels).")
        }
        try VQVAEConfigurationCheck.imageSize(dataset.imageSize, configuration)
        guard dataset.count >= options.batchSize else {
            throw VQVAEError("the dataset holds \(dataset.count) images, fewer than one batch of \(options.batchSize): lower --batch-size.")
        }
        if let problem = ProcessGroup.world.batchProblem(options.batchSize) { throw VQVAEError(problem + ".") }
        let root = RandomGenerator(seed: options.seed)
        var modelRNG = root.derived(1)
        model = try VQVAE(configuration, using: &modelRNG)
        optimizer = AdamW(named: model.namedParameters,
                          configuration: AdamWConfiguration(learningRate: options.learningRate, weightDecay: options.weightDecay))
        self.options = options
        self.data = data
        schedule = options.schedule(floor: 0.1)
        generator = root.derived(3)
        let loader = BatchLoader(dataset: dataset, batchSize: options.batchSize, shuffle: true, dropLast: true,
                                 generator: root.derived(2))
        stream = loader.stream()
    }

    /// Continues the run saved in `checkpoint`. The configuration, options and data must be the
    /// ones the checkpoint was trained with; otherwise this throws naming what differs.
    public convenience init(resuming checkpoint: URL, configuration: VQVAEConfiguration, options: TrainingRunSettings,
                            data: DatasetSelection, dataset: any CaptionedDataset) throws {
        let loaded = try TrainingCheckpoint.read(checkpoint, expectingKind: VQVAE.kind)
        let stored = try VQVAETrainer.storedSettings(loaded)
        var differences: [String] = []
        if stored.configuration != configuration {
            differences.append("model configuration (checkpoint: \(stored.configuration.summary); requested: \(configuration.summary))")
        }
        if stored.options != options { differences.append("training options (checkpoint: \(stored.options); requested: \(options))") }
        if stored.data != data { differences.append("data (checkpoint: \(stored.data); requested: \(data))") }
        if !differences.isEmpty {
            throw VQVAEError("\(checkpoint.path) was saved by a different run: " + differences.joined(separator: "; ")
                             + ". Resume with the checkpoint's own settings, or start a new run.")
        }
        try self.init(configuration: configuration, options: options, data: data, dataset: dataset)
        guard loaded.hasOptimizer else {
            throw VQVAEError("\(checkpoint.path) holds a finished model without optimizer state; resume from a training checkpoint.")
        }
        try loaded.loadModel(into: model.stateTensors)
        try loaded.loadOptimizer(optimizer)
        generator = try loaded.generator
        step = try loaded.step
        guard let epoch = Int(loaded.metadata["stream.epoch"] ?? ""), let position = Int(loaded.metadata["stream.step"] ?? "") else {
            throw VQVAEError("\(checkpoint.path) does not record its data stream position (stream.epoch, stream.step).")
        }
        stream = stream.loader.stream(epoch: epoch, step: position)
    }

    /// The configuration, options and data a checkpoint was trained with.
    public static func storedSettings(_ loaded: TrainingCheckpoint.Loaded) throws
        -> (configuration: VQVAEConfiguration, options: TrainingRunSettings, data: DatasetSelection) {
        let configuration = try loaded.configuration(as: VQVAEConfiguration.self)
        func decode<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            guard let json = loaded.metadata[key] else {
                throw VQVAEError("\(loaded.path) does not record its \(key); it was not written by a VQ-VAE training run.")
            }
            do { return try JSONDecoder().decode(T.self, from: Data(json.utf8)) } catch {
                throw VQVAEError("\(loaded.path): the recorded \(key) does not decode: \(error)")
            }
        }
        return (configuration, try decode("training", TrainingRunSettings.self), try decode("data", DatasetSelection.self))
    }

    /// Whether every step of the run is done.
    public var isFinished: Bool { step >= options.steps }

    /// One optimizer step and one codebook update on the next batch. Under MPI each rank encodes
    /// and decodes its rows of the batch; the ranks' gradients are summed, and the codebook is
    /// updated from every rank's encoder outputs, in rank order — the batch's order.
    @discardableResult
    public func trainStep() -> VQVAEStepMetrics {
        let indices = stream.nextIndices()
        let (rows, share) = (group.rows(ofBatch: indices.count), group.share(ofBatch: indices.count))
        let batch = stream.loader.batch(indices: Array(indices[rows]))
        let rate = schedule.learningRate(at: step)
        optimizer.learningRate = rate
        let out = model(batch.images)
        out.loss.backward()
        group.sumGradients(optimizer.parameters, weight: share)
        optimizer.step()
        optimizer.zeroGrad()
        let (encoded, codes) = (group.allGather(out.rows), group.allGather(out.indices))
        let report = model.quantizer.update(rows: encoded, indices: codes, using: &generator)
        step += 1
        var histogram = [Int](repeating: 0, count: model.codes)
        for t in codes { histogram[Int(t)] += 1 }
        var entropy = 0.0
        let total = Double(codes.count)
        for n in histogram where n > 0 { entropy -= Double(n) / total * Foundation.log(Double(n) / total) }
        let means = group.sum([out.loss, out.reconstructionLoss, out.commitmentLoss].map { Double(share) * Double($0.item) })
        let mse = means[1]
        return VQVAEStepMetrics(step: step, loss: means[0], reconstruction: mse,
                                commitment: means[2],
                                psnr: VQVAEMetrics.psnr(meanSquaredError: mse * 127.5 * 127.5),
                                usage: Double(histogram.filter { $0 > 0 }.count) / Double(model.codes),
                                perplexity: Foundation.exp(entropy), restarted: report.restarted,
                                learningRate: Double(rate))
    }

    /// The step's figures for the training loop, averaged over a logging window.
    public func advance() throws -> TrainingStepReport {
        let start = MonotonicClock.seconds()
        let m = trainStep()
        return TrainingStepReport(
            averaged: [("train/loss", m.loss), ("train/reconstruction", m.reconstruction), ("train/commitment", m.commitment),
                       ("train/psnr", m.psnr), ("train/usage", m.usage), ("train/perplexity", m.perplexity),
                       ("train/restarted", Double(m.restarted))],
            latest: [("train/lr", m.learningRate)], perStep: [("train/steps_per_second", 1)],
            shown: [("loss", m.loss), ("psnr", m.psnr), ("usage", m.usage)], seconds: MonotonicClock.seconds() - start)
    }

    /// Metadata shared by checkpoints and the final model file.
    public func settingsMetadata() throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ["training": String(decoding: try encoder.encode(options), as: UTF8.self),
                "data": String(decoding: try encoder.encode(data), as: UTF8.self)]
    }

    /// Everything needed to resume.
    public func checkpointContents() throws -> TrainingCheckpoint.Contents {
        var extra = try settingsMetadata()
        extra["stream.epoch"] = String(stream.epoch)
        extra["stream.step"] = String(stream.step)
        var g = generator
        g.discardSpare()
        return try TrainingCheckpoint.Contents(kind: VQVAE.kind, configuration: model.configuration,
                                               model: model.stateTensors, optimizer: optimizer,
                                               generator: g, step: step, extra: extra)
    }

    /// Writes the model alone (no optimizer state), for encoding, decoding and evaluation.
    public func saveModel(to url: URL) throws {
        try model.save(to: url, step: step, generator: generator, extra: try settingsMetadata())
    }
}

enum VQVAEConfigurationCheck {
    static func imageSize(_ size: Int, _ c: VQVAEConfiguration) throws {
        guard size % c.downsampling == 0, size >= c.downsampling else {
            throw VQVAEError("\(size)×\(size) images cannot be tokenized with downsampling \(c.downsampling): use a size that is a multiple of \(c.downsampling).")
        }
    }
}
