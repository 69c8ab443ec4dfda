import Engine
import Foundation

// Training of the VQ-AR baseline with teacher forcing: every position of a grid predicts its
// token from the true tokens before it, all in one causal forward pass, with the mean
// cross-entropy as the loss. The optimizer, schedule, clipping, EMA, data order, logging and
// checkpoints are the diffusion model's (`TrainingState`), so the two are trained alike:
//
//   batch (x, captions) → text features → teacher-forced logits → cross-entropy → backward →
//   clip → AdamW → EMA.

/// What an "ar" checkpoint's `configuration` metadata holds. Its JSON follows the schema rule
/// (`SchemaJSON`).
public struct ARRunConfiguration: Equatable, VersionedSchema, Sendable {
    public static let defaults = ARRunConfiguration(
        model: ARModelConfiguration(classes: 2, gridHeight: 1, gridWidth: 1, textWidth: 1, width: 4, depth: 1, heads: 1),
        training: GeneratorTrainingConfiguration(), textEncoder: "")
    public static let firstSchema = """
        {"model":{"classes":0,"depth":0,"gridHeight":0,"gridWidth":0,"heads":0,"mlpRatio":0,"textWidth":0,"width":0},\
        "textEncoder":0,"training":{"batchSize":0,"beta2":0,"emaDecay":0,"gradientClip":0,"learningRate":0,\
        "minimumLearningRate":0,"seed":0,"totalSteps":0,"warmupSteps":0,"weightDecay":0},"vqvae":0}
        """

    public var model: ARModelConfiguration
    public var training: GeneratorTrainingConfiguration
    /// Name of the text encoder; a trainable encoder's weights are stored under `textEncoder.`.
    public var textEncoder: String
    /// The VQ-VAE checkpoint whose tokens the model was trained on (its decoder draws the samples).
    public var vqvae: String?

    public init(model: ARModelConfiguration, training: GeneratorTrainingConfiguration, textEncoder: String,
                vqvae: String? = nil) {
        self.vqvae = vqvae
        self.model = model
        self.training = training
        self.textEncoder = textEncoder
    }
}

public final class ARTrainer: GeneratorTrainer {
    public static let checkpointKind = "ar"

    public let configuration: ARRunConfiguration
    public let model: ARTransformer
    public let dataset: TokenizedDataset
    public let textEncoder: TextEncoder
    /// Optimizer, EMA, learning-rate schedule, data order, generator and step.
    public let state: TrainingState
    /// The model's copies for data-parallel steps, or nil when a step runs as one batch.
    public let dataParallel: DataParallel<ARTransformer>?
    /// The processes training the model together (`ProcessGroup.world`): each takes its rows of every batch.
    public let group: ProcessGroup

    /// `shards` cuts every batch into that many data-parallel shards (nil: one per thread when
    /// there are several, the text encoder is frozen and the batch fills them; 1: one batch).
    public init(configuration: ARRunConfiguration, dataset: TokenizedDataset, textEncoder: TextEncoder,
                shards: Int? = nil) throws {
        let m = configuration.model
        self.configuration = configuration
        self.dataset = dataset
        self.textEncoder = textEncoder
        group = .world
        do {
            (model, state, dataParallel) = try GeneratorTrainingSetup.make(
                configuration.training, dataset: dataset, classes: m.classes, gridHeight: m.gridHeight,
                gridWidth: m.gridWidth, textWidth: m.textWidth, textEncoder: textEncoder, shards: shards
            ) { ARTransformer(m, using: &$0) }
        } catch let error as ConfigurationError { throw ARError(error.message) }
    }

    /// One optimisation step.
    @discardableResult
    public func trainStep() throws -> GeneratorStepMetrics {
        let start = MonotonicClock.seconds()
        let (B, N) = (configuration.training.batchSize, dataset.sequenceLength)
        let indices = state.batchIndices(at: step, batchSize: B, datasetCount: dataset.count)
        let x = dataset.grids(indices)
        let text = GeneratorTrainingSetup.droppingCaptions(
            try textEncoder.encode(indices.map { dataset.captions[$0] }), rate: configuration.training.captionDropout,
            using: &state.generator)
        // Every process draws the whole batch (cheap); it trains its rows alone.
        let shards = try dataParallel.step(model: model, rows: group.rows(ofBatch: B)) { model, rows in
            try self.backpropagate(model: model, rows: rows, x: x, text: text)
        }
        var sums = [0.0, 0.0]                                  // loss, tokens right
        for (rows, shard) in shards {
            sums[0] += Double(rows.count) / Double(B) * shard.loss
            sums[1] += Double(shard.correct)
        }
        sums = group.sum(sums)
        let (norm, lr) = state.applyGradients(batchSize: B, group: group)
        return GeneratorStepMetrics(step: step, loss: sums[0], accuracy: sums[1] / Double(B * N),
                             gradientNorm: Double(norm), learningRate: Double(lr), seconds: MonotonicClock.seconds() - start)
    }

    /// The mean cross-entropy of batch rows `rows` under `model` (the trainer's own or a
    /// data-parallel replica), differentiated into that model's gradients, and how many of their
    /// tokens the model predicts right.
    private func backpropagate(model: ARTransformer, rows: Range<Int>, x: [Int32],
                               text: TextFeatures) throws -> (loss: Double, correct: Int) {
        let (N, K) = (dataset.sequenceLength, configuration.model.classes)
        let x = Array(x[(rows.lowerBound * N)..<(rows.upperBound * N)])
        let (lossTensor, logits) = model.loss(x, text: text.rows(rows))
        let loss = Double(lossTensor.item)
        guard loss.isFinite else {
            throw ARError("the loss became \(loss) at step \(step); lower the learning rate or check the data")
        }
        var correct = 0
        let p = logits.pointer                          // (rows·N, K)
        for r in 0..<x.count {
            let row = p + r * K
            var arg = 0
            for k in 1..<K where row[k] > row[arg] { arg = k }
            if arg == Int(x[r]) { correct += 1 }
        }
        lossTensor.backward()
        return (loss, correct)
    }

    public var batchSize: Int { configuration.training.batchSize }

    public func forwardFLOPs(batch: Int, textLength: Int) -> Double {
        configuration.model.forwardFLOPs(batch: batch, textLength: textLength)
    }

    /// The step's figures for the training loop: loss and token accuracy averaged over a logging window.
    public func advance() throws -> TrainingStepReport {
        let m = try trainStep()
        return report(m, averaged: [("loss", m.loss), ("token_accuracy", m.accuracy)])
    }

    /// One line on the model: parameters (next to `comparedWith`'s, the diffusion model the
    /// baseline stands against), FLOPs per step, data-parallel shards and MPI ranks.
    public func summaryLine(comparedWith diffusion: DiffusionModelConfiguration?) -> String {
        var line = "ar model: \(model.parameterCount) parameters (MLP ratio \(configuration.model.mlpRatio))"
        if let diffusion {
            let reference = ARModelConfiguration.diffusionParameterCount(diffusion)
            line += String(format: " vs %d for the diffusion model (%+.1f %%)", reference,
                           100 * (Double(model.parameterCount) / Double(reference) - 1))
        }
        return line + String(format: ", %.1f GFLOP per training step", stepFLOPs(textLength: textEncoder.maxLength) / 1e9)
            + GeneratorShards.describe(dataParallel?.shardCount ?? 1, group: group)
    }

    // MARK: Checkpoints

    /// Everything needed to resume (or to sample).
    public func checkpointContents() throws -> TrainingCheckpoint.Contents {
        try state.checkpointContents(kind: ARTrainer.checkpointKind, configuration: configuration,
                                     extra: try TextEncoderCheckpoint.metadata(for: textEncoder))
    }

    /// Continues from a checkpoint written by `saveCheckpoint(to:)` for the same configuration.
    public func resume(from url: URL) throws {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: ARTrainer.checkpointKind)
        let stored = try loaded.configuration(as: ARRunConfiguration.self)
        guard stored.model == configuration.model else {
            throw ARError("\(url.path) was trained with a different model; resume with the options it was started with")
        }
        try state.restore(from: loaded)
    }

    /// A sampler using the EMA weights, on a copy of the model (training continues unaffected).
    public func emaSampler() -> ARSampler {
        var rng = RandomGenerator(seed: 0)
        let copy = ARTransformer(configuration.model, using: &rng)
        state.ema.copy(into: copy.namedParameters)
        return ARSampler(model: copy, textEncoder: textEncoder)
    }
}

/// Loads an "ar" checkpoint for sampling: the model built from the stored configuration with its
/// EMA weights (the raw weights with `useEMA: false`).
public struct ARModelFile {
    public let configuration: ARRunConfiguration
    public let model: ARTransformer
    /// Weights of a trainable text encoder stored with the model, by the encoder's own names.
    public let encoderWeights: [String: Tensor]
    let path: String
    /// The checkpoint's metadata (kind, configuration, text encoder vocabulary, …).
    public let metadata: [String: String]

    public init(_ url: URL, useEMA: Bool = true) throws {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: ARTrainer.checkpointKind)
        configuration = try loaded.configuration(as: ARRunConfiguration.self)
        path = url.path
        metadata = loaded.metadata
        var rng = RandomGenerator(seed: 0)
        model = ARTransformer(configuration.model, using: &rng)
        let prefix = useEMA ? "ema.shadow." : "model."
        var wanted = model.namedParameters
        for name in loaded.file.names where name.hasPrefix(prefix + "textEncoder.") {
            wanted.append((name: String(name.dropFirst(prefix.count)), tensor: Tensor(zeros: loaded.file[name]!.shape)))
        }
        try loaded.loadModel(into: wanted, useEMA: useEMA)
        encoderWeights = Dictionary(uniqueKeysWithValues: wanted.filter { $0.name.hasPrefix("textEncoder.") }
            .map { (String($0.name.dropFirst("textEncoder.".count)), $0.tensor) })
    }

    /// Copies the stored weights into a trainable text encoder (strict: every name must match).
    public func loadTextEncoder(_ encoder: Module) throws {
        let named = encoder.namedParameters
        let missing = named.filter { encoderWeights[$0.name]?.shape != $0.tensor.shape }.map(\.name)
        guard missing.isEmpty, named.count == encoderWeights.count else {
            throw FileError(path, "its text-encoder weights do not match the encoder (\(missing.prefix(3).joined(separator: ", ")))")
        }
        for p in named { p.tensor.pointer.update(from: encoderWeights[p.name]!.pointer, count: p.tensor.count) }
    }
}

public struct ARError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
