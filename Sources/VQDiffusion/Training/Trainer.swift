import Engine
import Foundation

// What every trainer of the suite (VQ-VAE, evaluator, VQ-Diffusion, VQ-AR) offers the one training
// loop of the experiment harness: a step, the figures to log about it, and checkpoints. The loop
// (progress, logging windows, checkpoint cadence, the run's status) is written once, there; a
// trainer supplies only what is its own.

/// A model's trainer as the training loop drives it.
public protocol Trainer: AnyObject {
    /// Steps taken so far (a resumed trainer starts where its checkpoint stopped).
    var step: Int { get }
    /// One optimisation step, and what to log about it. Under MPI every rank takes the step on its
    /// rows of the batch, and the ranks' gradients are summed before the optimizer's step.
    func advance() throws -> TrainingStepReport
    /// Everything a resumed run needs (weights, optimizer, generator, data position): what a
    /// checkpoint holds, and what the ranks of an MPI job must agree on.
    func checkpointContents() throws -> TrainingCheckpoint.Contents
    /// Writes `checkpointContents()` atomically (the default).
    func saveCheckpoint(to url: URL) throws
    /// Figures logged once per logging window besides the steps' own (e.g. the loss history by t).
    func windowMetrics() -> [(name: String, value: Double)]
}

extension Trainer {
    public func windowMetrics() -> [(name: String, value: Double)] { [] }

    public func saveCheckpoint(to url: URL) throws { try TrainingCheckpoint.save(try checkpointContents(), to: url) }
}

/// The figures of one training step, sorted by how the loop logs them.
public struct TrainingStepReport {
    /// Averaged over the steps of a logging window (NaN values, e.g. an accuracy with nothing to
    /// count, are left out of the mean).
    public var averaged: [(name: String, value: Double)]
    /// Logged as they stand at the window's last step (learning rate, gradient norm).
    public var latest: [(name: String, value: Double)]
    /// Work done per step (tokens, GFLOP, steps); logged as rates per second over the window.
    public var perStep: [(name: String, value: Double)]
    /// Shown on the progress bar.
    public var shown: [(name: String, value: Double)]
    /// Wall time of the step.
    public var seconds: Double

    public init(averaged: [(name: String, value: Double)], latest: [(name: String, value: Double)] = [],
                perStep: [(name: String, value: Double)] = [], shown: [(name: String, value: Double)] = [],
                seconds: Double) {
        self.averaged = averaged
        self.latest = latest
        self.perStep = perStep
        self.shown = shown
        self.seconds = seconds
    }
}

/// The figures of one generator training step (VQ-Diffusion or VQ-AR).
public struct GeneratorStepMetrics {
    public var step: Int
    /// The loss optimised: diffusion, L_vlb + λ·L_aux; VQ-AR, the mean cross-entropy per token (nats).
    public var loss: Double
    /// Fraction of tokens whose most likely prediction is the true token: diffusion, of the masked
    /// tokens (NaN when none is masked); VQ-AR, of all tokens.
    public var accuracy: Double
    /// The global gradient norm before clipping, the learning rate, the step's wall time.
    public var gradientNorm: Double, learningRate: Double, seconds: Double
    /// Diffusion only: the bound term L_vlb and the auxiliary cross-entropy L_aux.
    public var bound: Double = 0
    public var auxiliary: Double = 0
}

/// How far a long job has come: (done, total). The harness draws it as a progress bar.
public typealias ProgressReport = (_ done: Int, _ total: Int) -> Void
