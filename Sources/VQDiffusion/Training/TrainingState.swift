import Engine
import Foundation

// The optimisation machinery the generators' trainers share (VQ-Diffusion and the VQ-AR
// baseline train the same way, so the comparison is about the decoders, not the recipe):
//
//   AdamW (β = 0.9, β₂, decoupled weight decay of matrices) · linear warm-up then cosine decay ·
//   gradient-norm clipping · EMA of the weights used for sampling · a data order that is a pure
//   function of the seed and the step · a generator for the step's noise.
//
// All of it goes into a `TrainingCheckpoint` and comes back from one, so a resumed run continues
// exactly where an uninterrupted one would be.

/// The optimizer settings shared by the generators' trainers.
public struct OptimizationSettings: Equatable, Sendable {
    /// Peak learning rate after warm-up.
    public var learningRate: Float
    /// Linear warm-up steps.
    public var warmupSteps: Int
    /// Length of the schedule (the cosine reaches its floor here).
    public var totalSteps: Int
    /// Floor of the cosine decay.
    public var minimumLearningRate: Float
    /// Decoupled weight decay of weight matrices.
    public var weightDecay: Float
    /// AdamW's second-moment decay.
    public var beta2: Float
    /// Largest global gradient norm.
    public var gradientClip: Float
    /// EMA decay of the sampling weights (with the (1+n)/(10+n) warm-up).
    public var emaDecay: Float
}

/// The training settings of a generator (VQ-Diffusion or VQ-AR): batch, schedule, optimizer, EMA
/// and seed. The VQ-AR baseline needs just these; VQ-Diffusion adds how t is drawn and the loss
/// weights (`DiffusionTrainingConfiguration`).
public struct GeneratorTrainingConfiguration: Equatable, Codable, Sendable {
    /// Images per step.
    public var batchSize: Int = 32
    /// Length of the learning-rate schedule (the cosine reaches its floor here).
    public var totalSteps: Int = 10_000
    /// Peak learning rate after warm-up.
    public var learningRate: Float = 5e-4
    /// Linear warm-up steps.
    public var warmupSteps: Int = 500
    /// Floor of the cosine decay.
    public var minimumLearningRate: Float = 1e-5
    /// Decoupled weight decay of weight matrices (the paper's 0.045).
    public var weightDecay: Float = 0.045
    /// AdamW's second-moment decay (the paper's 0.96).
    public var beta2: Float = 0.96
    /// Largest global gradient norm.
    public var gradientClip: Float = 1
    /// EMA decay of the sampling weights (with the (1+n)/(10+n) warm-up).
    public var emaDecay: Float = 0.999
    /// Seed of initialisation and data order.
    public var seed: UInt64 = 0
    /// Probability that a training caption is replaced by the null text (`TextFeatures.null`), so
    /// that the same network also learns to generate without text — what classifier-free guidance
    /// needs (diffusion: `DiffusionSampler`; VQ-AR: `ARDecoder`). 0, the paper's setting, never
    /// drops one. A later field: the schema rule leaves it out at 0.
    public var captionDropout: Double = 0

    public init(batchSize: Int = 32, totalSteps: Int = 10_000, learningRate: Float = 5e-4, warmupSteps: Int = 500,
                minimumLearningRate: Float = 1e-5, weightDecay: Float = 0.045, beta2: Float = 0.96,
                gradientClip: Float = 1, emaDecay: Float = 0.999, seed: UInt64 = 0, captionDropout: Double = 0) {
        (self.captionDropout, self.batchSize, self.totalSteps) = (captionDropout, batchSize, totalSteps)
        (self.learningRate, self.warmupSteps) = (learningRate, warmupSteps)
        (self.minimumLearningRate, self.weightDecay, self.beta2) = (minimumLearningRate, weightDecay, beta2)
        (self.gradientClip, self.emaDecay, self.seed) = (gradientClip, emaDecay, seed)
    }

    /// The optimizer part of the configuration.
    public var optimization: OptimizationSettings {
        OptimizationSettings(learningRate: learningRate, warmupSteps: warmupSteps, totalSteps: totalSteps,
                             minimumLearningRate: minimumLearningRate, weightDecay: weightDecay, beta2: beta2,
                             gradientClip: gradientClip, emaDecay: emaDecay)
    }
}

/// Everything a trainer carries from step to step besides its model: optimizer, EMA, learning-rate
/// schedule, data order, noise generator and step count.
public final class TrainingState {
    /// Parameters trained (the model's, then e.g. a trainable text encoder's).
    public let trainedParameters: [(name: String, tensor: Tensor)]
    public let settings: OptimizationSettings
    public let optimizer: AdamW
    public private(set) var ema: EMA
    /// The step's noise; saved in checkpoints.
    public var generator: RandomGenerator
    /// Steps taken so far.
    public private(set) var step = 0
    let learningRateSchedule: WarmupCosineSchedule
    private let dataOrder: RandomGenerator
    private var epochOrder: (epoch: Int, order: [Int]) = (-1, [])

    /// `dataOrder` seeds the per-epoch permutations; `generator` the step's noise.
    public init(parameters named: [(name: String, tensor: Tensor)], settings s: OptimizationSettings,
                dataOrder: RandomGenerator, generator: RandomGenerator) {
        trainedParameters = named
        settings = s
        optimizer = AdamW(groups: ParameterGroup.standard(named, weightDecay: s.weightDecay),
                          configuration: AdamWConfiguration(learningRate: s.learningRate, beta1: 0.9, beta2: s.beta2,
                                                            weightDecay: s.weightDecay))
        ema = EMA(decay: s.emaDecay, warmup: true, parameters: named)
        learningRateSchedule = WarmupCosineSchedule(peak: s.learningRate, warmupSteps: min(s.warmupSteps, s.totalSteps),
                                                    totalSteps: s.totalSteps,
                                                    minimum: min(s.minimumLearningRate, s.learningRate))
        self.dataOrder = dataOrder
        self.generator = generator
    }

    /// Dataset indices of the batch at `step`: consecutive slices of a per-epoch permutation of
    /// `count` items.
    public func batchIndices(at step: Int, batchSize B: Int, datasetCount count: Int) -> [Int] {
        (0..<B).map { i in
            let position = step * B + i
            let epoch = position / count
            if epochOrder.epoch != epoch {
                var g = dataOrder.derived(UInt64(epoch))
                epochOrder = (epoch, g.permutation(count))
            }
            return epochOrder.order[position % count]
        }
    }

    /// After `backward()` over this process's rows of a batch of `batchSize` rows (their mean
    /// gradient): sum the MPI ranks' gradients, each weighed by its share of the batch (nothing to
    /// do for one process), clip, set the scheduled learning rate, take the AdamW step, clear the
    /// gradients, update the EMA and count the step. Returns the gradient norm before clipping
    /// and the learning rate used.
    public func applyGradients(batchSize: Int, group: ProcessGroup = .world) -> (gradientNorm: Float, learningRate: Float) {
        group.sumGradients(optimizer.parameters, weight: group.share(ofBatch: batchSize))
        let norm = clipGradientNorm(optimizer.parameters, maxNorm: settings.gradientClip)
        let lr = learningRateSchedule.learningRate(at: step)
        optimizer.learningRate = lr
        optimizer.step()
        optimizer.zeroGrad()
        ema.update(from: trainedParameters)
        generator.discardSpare()
        step += 1
        return (norm, lr)
    }

    /// The checkpoint of the current state.
    public func checkpointContents(kind: String, configuration: some Encodable,
                                   extra: [String: String] = [:]) throws -> TrainingCheckpoint.Contents {
        try TrainingCheckpoint.Contents(kind: kind, configuration: configuration, model: trainedParameters,
                                        optimizer: optimizer, ema: ema, generator: generator, step: step, extra: extra)
    }

    /// Restores weights, optimizer moments, EMA, generator and step from a checkpoint of the same
    /// model (the caller checks the configuration first).
    public func restore(from loaded: TrainingCheckpoint.Loaded) throws {
        try loaded.loadModel(into: trainedParameters)
        try loaded.loadOptimizer(optimizer)
        var restored = ema
        try loaded.loadEMA(&restored)
        ema = restored
        generator = try loaded.generator
        step = try loaded.step
    }
}
