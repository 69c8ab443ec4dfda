import Engine
import Foundation

// Training of the denoising transformer (Sec. 4.1 of the paper): AdamW (β = 0.9, 0.96, weight
// decay 0.045) with linear warm-up and cosine decay, gradient-norm clipping, EMA weights for
// sampling, t drawn uniformly or by importance sampling. One step:
//
//   batch (x0, captions) → t ~ p(t) → x_t ~ q(x_t | x0) → text features → logits →
//   loss (bound + λ·auxiliary) → backward → clip → AdamW → EMA → record L_t for p(t).
//
// Everything a resumed run needs is in the checkpoint: weights, optimizer moments, EMA, the
// generator, the step and the loss history. The data order is a pure function of the seed and
// the step, so a resumed run sees the same batches as an uninterrupted one.

/// The diffusion model's training settings: a generator's (`GeneratorTrainingConfiguration`,
/// whose fields read through, e.g. `training.learningRate`) plus how t is drawn and the loss
/// weights. Stored as one flat JSON object, as before the shared part was split out.
@dynamicMemberLookup
public struct DiffusionTrainingConfiguration: Equatable, Codable, Sendable {
    /// Batch, schedule, optimizer, EMA and seed (of initialisation, data order and noise).
    public var generator: GeneratorTrainingConfiguration
    /// How t is drawn.
    public var timeSampling: TimeSampling
    /// Loss weights.
    public var loss: DiffusionLossConfiguration

    public init(_ generator: GeneratorTrainingConfiguration = GeneratorTrainingConfiguration(),
                timeSampling: TimeSampling = .importance, loss: DiffusionLossConfiguration = DiffusionLossConfiguration(),
                captionDropout: Double = 0) {
        self.generator = generator
        self.timeSampling = timeSampling
        self.loss = loss
        self.generator.captionDropout = captionDropout
    }

    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<GeneratorTrainingConfiguration, Value>) -> Value {
        get { generator[keyPath: keyPath] }
        set { generator[keyPath: keyPath] = newValue }
    }

    public subscript<Value>(dynamicMember keyPath: KeyPath<GeneratorTrainingConfiguration, Value>) -> Value {
        generator[keyPath: keyPath]
    }

    private enum CodingKeys: String, CodingKey { case timeSampling, loss }

    // Stored as one flat object with the generator's fields (as before they were split out).
    public init(from decoder: any Decoder) throws {
        generator = try GeneratorTrainingConfiguration(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        timeSampling = try container.decode(TimeSampling.self, forKey: .timeSampling)
        loss = try container.decode(DiffusionLossConfiguration.self, forKey: .loss)
    }

    public func encode(to encoder: any Encoder) throws {
        try generator.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(timeSampling, forKey: .timeSampling)
        try container.encode(loss, forKey: .loss)
    }
}

/// What a diffusion checkpoint's `configuration` metadata holds: enough to rebuild the model,
/// the schedule and the text encoder. Its JSON follows the schema rule (`SchemaJSON`).
public struct DiffusionRunConfiguration: Equatable, VersionedSchema, Sendable {
    public static let defaults = DiffusionRunConfiguration(
        model: .tiny(classes: 2, gridHeight: 1, gridWidth: 1, steps: 2, textWidth: 1), diffusion: .paper(classes: 2, steps: 2),
        training: DiffusionTrainingConfiguration(), textEncoder: "")
    public static let firstSchema = """
        {"diffusion":{"alphaEnd":0,"alphaStart":0,"classes":0,"gammaEnd":0,"gammaStart":0,"steps":0},\
        "model":{"classes":0,"depth":0,"gridHeight":0,"gridWidth":0,"heads":0,"mlpRatio":0,"parameterization":0,\
        "steps":0,"textWidth":0,"width":0},"textEncoder":0,"training":{"batchSize":0,"beta2":0,"emaDecay":0,\
        "gradientClip":0,"learningRate":0,"loss":{"adaptiveAuxiliaryWeight":0,"auxiliaryWeight":0,"maskedWeight":0,\
        "unmaskedWeight":0},"minimumLearningRate":0,"seed":0,"timeSampling":0,"totalSteps":0,"warmupSteps":0,\
        "weightDecay":0},"vqvae":0}
        """

    public var model: DiffusionModelConfiguration
    public var diffusion: DiffusionConfiguration
    public var training: DiffusionTrainingConfiguration
    /// Name of the text encoder (e.g. "minilm", "tiny"); a trainable encoder's weights are stored
    /// with the model's under `textEncoder.`.
    public var textEncoder: String
    /// The VQ-VAE checkpoint whose tokens the model was trained on (its decoder draws the samples).
    public var vqvae: String?

    public init(model: DiffusionModelConfiguration, diffusion: DiffusionConfiguration,
                training: DiffusionTrainingConfiguration, textEncoder: String, vqvae: String? = nil) {
        self.vqvae = vqvae
        self.model = model
        self.diffusion = diffusion
        self.training = training
        self.textEncoder = textEncoder
    }
}

public final class DiffusionTrainer: GeneratorTrainer {
    public static let checkpointKind = "diffusion"
    public static let timeSamplerKey = "time_sampler"

    public let configuration: DiffusionRunConfiguration
    public let model: DenoisingTransformer
    public let schedule: DiffusionSchedule
    public let dataset: TokenizedDataset
    public let textEncoder: TextEncoder
    /// Optimizer, EMA, learning-rate schedule, data order, noise generator and step.
    public let state: TrainingState
    public var optimizer: AdamW { state.optimizer }
    public var ema: EMA { state.ema }
    public private(set) var timeSampler: DiffusionTimeSampler
    /// Noise and time draws; saved in checkpoints.
    public var generator: RandomGenerator { state.generator }

    /// The model's copies for data-parallel steps, or nil when a step runs as one batch whose kernels
    /// split over the threads.
    public let dataParallel: DataParallel<DenoisingTransformer>?
    /// The processes training the model together (`ProcessGroup.world`): each takes its rows of every batch.
    public let group: ProcessGroup

    /// `shards` cuts every batch into that many data-parallel shards (nil: one per thread when
    /// there are several, the text encoder is frozen and the batch fills them; 1: one batch).
    public init(configuration: DiffusionRunConfiguration, dataset: TokenizedDataset, textEncoder: TextEncoder,
                shards: Int? = nil) throws {
        let m = configuration.model, tc = configuration.training
        guard configuration.diffusion.classes == m.classes, configuration.diffusion.steps == m.steps else {
            throw DiffusionTrainingError("the diffusion schedule (K = \(configuration.diffusion.classes), T = \(configuration.diffusion.steps)) "
                + "does not match the model (K = \(m.classes), T = \(m.steps))")
        }
        self.configuration = configuration
        self.dataset = dataset
        self.textEncoder = textEncoder
        schedule = try DiffusionSchedule(configuration.diffusion)
        timeSampler = DiffusionTimeSampler(method: tc.timeSampling, steps: m.steps)
        group = .world
        do {
            (model, state, dataParallel) = try GeneratorTrainingSetup.make(
                tc.generator, dataset: dataset, classes: m.classes, gridHeight: m.gridHeight, gridWidth: m.gridWidth,
                textWidth: m.textWidth, textEncoder: textEncoder, shards: shards
            ) { DenoisingTransformer(m, using: &$0) }
        } catch let error as ConfigurationError { throw DiffusionTrainingError(error.message) }
    }

    /// Dataset indices of the batch at `step`: consecutive slices of a per-epoch permutation.
    func batchIndices(at step: Int) -> [Int] {
        state.batchIndices(at: step, batchSize: configuration.training.batchSize, datasetCount: dataset.count)
    }

    /// One optimisation step.
    @discardableResult
    public func trainStep() throws -> GeneratorStepMetrics {
        let start = MonotonicClock.seconds()
        let tc = configuration.training
        let B = tc.batchSize
        let indices = batchIndices(at: step)
        let x0 = dataset.grids(indices)
        let captions = indices.map { dataset.captions[$0] }
        let (t, weights) = timeSampler.draw(count: B, using: &state.generator)
        let xt = schedule.noised(x0, t: t, using: &state.generator)
        let text = GeneratorTrainingSetup.droppingCaptions(try textEncoder.encode(captions), rate: tc.captionDropout,
                                                               using: &state.generator)
        // Every process draws the whole batch's data and noise (cheap); it trains its rows alone.
        let shards = try dataParallel.step(model: model, rows: group.rows(ofBatch: B)) { model, rows in
            try self.backpropagate(model: model, rows: rows, x0: x0, xt: xt, t: t, timeWeights: weights, text: text)
        }
        var sums = [Double](repeating: 0, count: 5)            // loss, bound, auxiliary, masked right, masked
        var boundPerElement = [Double]()
        for (_, terms) in shards {
            let share = Double(terms.boundPerElement.count) / Double(B)
            sums[0] += share * Double(terms.loss.item)
            sums[1] += share * terms.bound
            sums[2] += share * terms.auxiliary
            sums[3] += Double(terms.maskedCorrect)
            sums[4] += Double(terms.maskedCount)
            boundPerElement += terms.boundPerElement
        }
        sums = group.sum(sums)
        boundPerElement = group.allGather(boundPerElement)
        for b in 0..<B { timeSampler.record(t: t[b], loss: boundPerElement[b]) }
        let (norm, lr) = state.applyGradients(batchSize: B, group: group)
        return GeneratorStepMetrics(step: step, loss: sums[0], accuracy: sums[4] == 0 ? .nan : sums[3] / sums[4],
                                    gradientNorm: Double(norm), learningRate: Double(lr),
                                    seconds: MonotonicClock.seconds() - start, bound: sums[1], auxiliary: sums[2])
    }

    /// The loss of batch rows `rows` under `model` (the trainer's own or a data-parallel replica),
    /// differentiated into that model's gradients.
    private func backpropagate(model: DenoisingTransformer, rows: Range<Int>, x0: [Int32], xt: [Int32], t: [Int],
                               timeWeights: [Double], text: TextFeatures) throws -> DiffusionLossTerms {
        let N = dataset.sequenceLength
        let tokens = (rows.lowerBound * N)..<(rows.upperBound * N)
        let (x0, xt) = (Array(x0[tokens]), Array(xt[tokens]))
        let (t, timeWeights) = (Array(t[rows]), Array(timeWeights[rows]))
        let logits = model.logits(xt, t: t, text: text.rows(rows))
        let terms = DiffusionLoss.compute(logits: logits, x0: x0, xt: xt, t: t, timeWeights: timeWeights, schedule: schedule,
                                          parameterization: configuration.model.parameterization,
                                          configuration: configuration.training.loss)
        let loss = Double(terms.loss.item)
        guard loss.isFinite else {
            throw DiffusionTrainingError("the loss became \(loss) at step \(step); lower the learning rate or check the data")
        }
        terms.loss.backward()
        return terms
    }

    public var batchSize: Int { configuration.training.batchSize }

    public func forwardFLOPs(batch: Int, textLength: Int) -> Double {
        configuration.model.forwardFLOPs(batch: batch, textLength: textLength)
    }

    /// The step's figures for the training loop: losses and the masked-token accuracy averaged
    /// over a logging window.
    public func advance() throws -> TrainingStepReport {
        let m = try trainStep()
        return report(m, averaged: [("loss", m.loss), ("loss_bound", m.bound), ("loss_aux", m.auxiliary),
                                    ("x0_accuracy_masked", m.accuracy)])
    }

    /// The root-mean-square L_t by tenths of [1, T], as the importance sampler has recorded it.
    public func windowMetrics() -> [(name: String, value: Double)] {
        timeSampler.rootMeanSquareSummary(buckets: 10).enumerated()
            .filter { $0.element.isFinite }.map { (name: "lt_rms_decile_\($0.offset)", value: $0.element) }
    }

    /// One line on the model: parameters, FLOPs per step, data-parallel shards and MPI ranks.
    public var summaryLine: String {
        "diffusion model: \(model.parameterCount) parameters"
            + (trainedParameters.count > model.namedParameters.count
               ? " (+ \(trainedParameters.count - model.namedParameters.count) text-encoder tensors)" : "")
            + String(format: ", %.1f GFLOP per training step", stepFLOPs(textLength: textEncoder.maxLength) / 1e9)
            + GeneratorShards.describe(dataParallel?.shardCount ?? 1, group: group)
    }

    // MARK: Checkpoints

    /// Everything needed to resume (or to sample).
    public func checkpointContents() throws -> TrainingCheckpoint.Contents {
        try state.checkpointContents(
            kind: DiffusionTrainer.checkpointKind, configuration: configuration,
            extra: try TextEncoderCheckpoint.metadata(for: textEncoder)
                .merging([DiffusionTrainer.timeSamplerKey: try timeSampler.json()]) { $1 })
    }

    /// Continues from a checkpoint written by `saveCheckpoint(to:)` for the same configuration.
    public func resume(from url: URL) throws {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: DiffusionTrainer.checkpointKind)
        let stored = try loaded.configuration(as: DiffusionRunConfiguration.self)
        guard stored.model == configuration.model, stored.diffusion == configuration.diffusion else {
            throw DiffusionTrainingError("\(url.path) was trained with a different model or schedule; "
                + "resume with the options it was started with")
        }
        guard let history = loaded.metadata[DiffusionTrainer.timeSamplerKey] else {
            throw DiffusionTrainingError("\(url.path) holds no loss history (\(DiffusionTrainer.timeSamplerKey)); it was not written by this trainer")
        }
        let sampler = try DiffusionTimeSampler.fromJSON(history)
        try state.restore(from: loaded)
        timeSampler = sampler
        timeSampler.method = configuration.training.timeSampling
    }

    /// A sampler using the EMA weights of the transformer, on a copy of the model (training
    /// continues unaffected). A trainable text encoder is used with its live weights.
    public func emaSampler() -> DiffusionSampler {
        var rng = RandomGenerator(seed: 0)
        let copy = DenoisingTransformer(configuration.model, using: &rng)
        ema.copy(into: copy.namedParameters)
        return DiffusionSampler(model: copy, schedule: schedule, textEncoder: textEncoder)
    }
}

/// Loads a diffusion checkpoint for sampling: the model built from the stored configuration with
/// its EMA weights (the raw weights with `useEMA: false`). A trainable text encoder's weights are
/// under `textEncoder.` and are restored by `loadTextEncoder`.
public struct DiffusionModelFile {
    public let configuration: DiffusionRunConfiguration
    public let model: DenoisingTransformer
    public let schedule: DiffusionSchedule
    let loaded: TrainingCheckpoint.Loaded
    /// The checkpoint's metadata (kind, configuration, text encoder vocabulary, …).
    public var metadata: [String: String] { loaded.metadata }

    public init(_ url: URL, useEMA: Bool = true) throws {
        loaded = try TrainingCheckpoint.read(url, expectingKind: DiffusionTrainer.checkpointKind)
        configuration = try loaded.configuration(as: DiffusionRunConfiguration.self)
        var rng = RandomGenerator(seed: 0)
        model = DenoisingTransformer(configuration.model, using: &rng)
        schedule = try DiffusionSchedule(configuration.diffusion)
        let prefix = useEMA ? "ema.shadow." : "model."
        let hasEncoder = loaded.file.names.contains { $0.hasPrefix(prefix + "textEncoder.") }
        // loadModel is strict; a stored text encoder is loaded separately, so list its names too.
        var wanted = model.namedParameters
        if hasEncoder {
            for name in loaded.file.names where name.hasPrefix(prefix + "textEncoder.") {
                let shape = loaded.file[name]!.shape
                wanted.append((name: String(name.dropFirst(prefix.count)), tensor: Tensor(zeros: shape)))
            }
        }
        try loaded.loadModel(into: wanted, useEMA: useEMA)
        encoderWeights = Dictionary(uniqueKeysWithValues: wanted.filter { $0.name.hasPrefix("textEncoder.") }
            .map { (String($0.name.dropFirst("textEncoder.".count)), $0.tensor) })
    }

    /// Weights of a trainable text encoder stored with the model, by the encoder's own names.
    public let encoderWeights: [String: Tensor]

    /// Copies the stored weights into a trainable text encoder (strict: every name must match).
    public func loadTextEncoder(_ encoder: Module) throws {
        let named = encoder.namedParameters
        let missing = named.filter { encoderWeights[$0.name]?.shape != $0.tensor.shape }.map(\.name)
        guard missing.isEmpty, named.count == encoderWeights.count else {
            throw FileError(loaded.path, "its text-encoder weights do not match the encoder (\(missing.prefix(3).joined(separator: ", ")))")
        }
        for p in named { p.tensor.pointer.update(from: encoderWeights[p.name]!.pointer, count: p.tensor.count) }
    }
}

public struct DiffusionTrainingError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
