import Engine
import Foundation

/// The settings of a plain training run (the VQ-VAE's, the evaluator's): everything besides the
/// model and the data that decides its weights. The two differ only in their defaults and in
/// the floor of their learning-rate decay.
public struct TrainingRunSettings: Codable, Equatable, Sendable {
    /// Optimizer steps in the whole run.
    public var steps: Int
    /// Images per step.
    public var batchSize: Int
    /// Peak AdamW learning rate, reached after the warm-up, then a cosine decay.
    public var learningRate: Float
    /// Linear warm-up steps.
    public var warmupSteps: Int
    /// AdamW decoupled weight decay of the weight matrices and kernels.
    public var weightDecay: Float
    /// Seed of initialisation and data order (and, for a VQ-VAE, of code restarts).
    public var seed: UInt64

    public init(steps: Int, batchSize: Int, learningRate: Float, warmupSteps: Int, weightDecay: Float, seed: UInt64) {
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.weightDecay = weightDecay
        self.seed = seed
    }

    /// A VQ-VAE's defaults: 2,500 steps of 32, 2e-3 after 50 warm-up steps, no weight decay.
    public static let vqvae = TrainingRunSettings(steps: 2500, batchSize: 32, learningRate: 2e-3, warmupSteps: 50,
                                                  weightDecay: 0, seed: 0)
    /// An evaluator's defaults: 4,000 steps of 64, 2e-3 after 100 warm-up steps, weight decay 0.01.
    public static let evaluator = TrainingRunSettings(steps: 4000, batchSize: 64, learningRate: 2e-3, warmupSteps: 100,
                                                      weightDecay: 0.01, seed: 0)

    /// These settings with the given fields changed.
    public func with(steps: Int? = nil, batchSize: Int? = nil, learningRate: Float? = nil, warmupSteps: Int? = nil,
                     seed: UInt64? = nil) -> TrainingRunSettings {
        var s = self
        s.steps = steps ?? s.steps
        s.batchSize = batchSize ?? s.batchSize
        s.learningRate = learningRate ?? s.learningRate
        s.warmupSteps = warmupSteps ?? s.warmupSteps
        s.seed = seed ?? s.seed
        return s
    }

    /// Throws naming the first setting a run cannot use.
    public func validate() throws {
        guard steps >= 1 else { throw ConfigurationError("--steps is \(steps): train for at least 1 step.") }
        guard batchSize >= 1 else { throw ConfigurationError("--batch-size is \(batchSize): use at least 1.") }
        guard learningRate > 0, learningRate.isFinite else {
            throw ConfigurationError("--lr is \(learningRate): use a positive rate such as 2e-3.")
        }
        guard warmupSteps >= 0 else { throw ConfigurationError("warm-up steps \(warmupSteps) must be 0 or more.") }
        guard weightDecay >= 0 else { throw ConfigurationError("weight decay \(weightDecay) must be 0 or more.") }
    }

    /// Linear warm-up (at most the whole run), then a cosine decay to `floor` × the peak at the last step.
    public func schedule(floor: Float) -> WarmupCosineSchedule {
        WarmupCosineSchedule(peak: learningRate, warmupSteps: min(warmupSteps, steps), totalSteps: steps,
                             minimum: learningRate * floor)
    }
}
