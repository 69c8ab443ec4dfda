import Engine
import Foundation

/// Where a training run logs and saves.
public struct DiffusionTrainingOutput {
    /// The checkpoint written every `checkpointEvery` steps and at the end.
    public var checkpoint: URL
    public var checkpointEvery: Int = 500
    /// Continue from this checkpoint (usually the same file) instead of starting afresh.
    public var resume: URL?
    /// The results database (nil: log nothing).
    public var database: ResultsDatabase?
    public var experiment: String = "train-diffusion"
    public var runName: String?
    public var logEvery: Int = 10
    public var showProgress: Bool = true

    public init(checkpoint: URL, checkpointEvery: Int = 500, resume: URL? = nil, database: ResultsDatabase? = nil,
                experiment: String = "train-diffusion", runName: String? = nil, logEvery: Int = 10,
                showProgress: Bool = true) {
        self.checkpoint = checkpoint
        self.checkpointEvery = checkpointEvery
        self.resume = resume
        self.database = database
        self.experiment = experiment
        self.runName = runName
        self.logEvery = logEvery
        self.showProgress = showProgress
    }
}

extension DiffusionTrainer {
    /// Trains a diffusion model on `dataset` with `textEncoder` for `steps` steps in total (a
    /// resumed run continues to the same total), logging to the results database and writing
    /// checkpoints. Returns the trainer (its model holds the final raw weights).
    @discardableResult
    public static func run(configuration: DiffusionRunConfiguration, dataset: TokenizedDataset, textEncoder: TextEncoder,
                           steps: Int, output: DiffusionTrainingOutput) throws -> DiffusionTrainer {
        let trainer = try DiffusionTrainer(configuration: configuration, dataset: dataset, textEncoder: textEncoder)
        if let resume = output.resume { try trainer.resume(from: resume) }
        let flops = trainer.stepFLOPs(textLength: textEncoder.maxLength)
        print("diffusion model: \(trainer.model.parameterCount) parameters"
              + (trainer.trainedParameters.count > trainer.model.namedParameters.count
                 ? " (+ \(trainer.trainedParameters.count - trainer.model.namedParameters.count) text-encoder tensors)" : "")
              + String(format: ", %.1f GFLOP per training step", flops / 1e9))
        let run = try output.database?.startRun(experiment: output.experiment, name: output.runName, threads: BLAS.threads)
        do {
            if let run {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                run.logParams([
                    "configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
                    "parameters": "\(trainer.model.parameterCount)",
                    "seed": "\(configuration.training.seed)",
                    "steps": "\(steps)",
                    "dataset_count": "\(dataset.count)",
                    "text_encoder": configuration.textEncoder,
                    "resumed_from_step": "\(trainer.step)",
                    "checkpoint": output.checkpoint.path,
                ])
                run.logMetric("step_gflop", flops / 1e9)
            }
            try trainer.train(until: steps, run: run, showProgress: output.showProgress, logEvery: output.logEvery,
                              checkpoint: output.checkpoint, checkpointEvery: output.checkpointEvery)
            try run?.finish()
        } catch {
            try? run?.finish(status: .failed)
            throw error
        }
        return trainer
    }
}
