import Engine
import Foundation

extension DiffusionTrainer {
    /// Trains a diffusion model on `dataset` with `textEncoder` for `steps` steps in total (a
    /// resumed run continues to the same total), logging to the results database and writing
    /// checkpoints. Returns the trainer (its model holds the final raw weights).
    @discardableResult
    public static func run(configuration: DiffusionRunConfiguration, dataset: TokenizedDataset, textEncoder: TextEncoder,
                           steps: Int, output: TrainingOutput, shards: Int? = nil) throws -> DiffusionTrainer {
        let trainer = try DiffusionTrainer(configuration: configuration, dataset: dataset, textEncoder: textEncoder,
                                           shards: shards)
        if let resume = output.resume { try trainer.resume(from: resume) }
        let flops = trainer.stepFLOPs(textLength: textEncoder.maxLength)
        print("diffusion model: \(trainer.model.parameterCount) parameters"
              + (trainer.trainedParameters.count > trainer.model.namedParameters.count
                 ? " (+ \(trainer.trainedParameters.count - trainer.model.namedParameters.count) text-encoder tensors)" : "")
              + String(format: ", %.1f GFLOP per training step", flops / 1e9)
              + (trainer.dataParallel.map { ", batches cut into \($0.shardCount) data-parallel shards" } ?? ""))
        let params = [
            "configuration": try sortedJSON(configuration),
            "parameters": "\(trainer.model.parameterCount)",
            "seed": "\(configuration.training.seed)",
            "steps": "\(steps)",
            "dataset_count": "\(dataset.count)",
            "text_encoder": configuration.textEncoder,
            "resumed_from_step": "\(trainer.step)",
            "shards": "\(trainer.dataParallel?.shardCount ?? 1)",
            "checkpoint": portablePath(output.checkpoint),
        ]
        try output.withRun(params: params) { run in
            run?.logMetric("step_gflop", flops / 1e9)
            try trainer.train(until: steps, run: run, showProgress: output.showProgress, logEvery: output.logEvery,
                              checkpoint: output.checkpoint, checkpointEvery: output.checkpointEvery)
        }
        return trainer
    }
}
