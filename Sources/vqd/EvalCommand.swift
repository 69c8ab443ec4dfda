import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

/// `vqd eval`: FID and KID (evaluator features), alignment and throughput of a generator.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a generator on a held-out split: FID/KID (evaluator features), alignment, throughput.",
        discussion: """
            Samples N images for the split's first N captions and compares their evaluator features \
            with those of the split's first N real images. The floor — N further real images against \
            the same reference — is measured too: FID and KID cannot go below it at this sample size. \
            --real-only measures the floor alone. The run is logged to the results database \
            (experiment "eval").
            """)

    @Option(help: "The generator checkpoint to evaluate (vqd train: diffusion or ar).")
    var model: String?
    @Option(help: "VQ-VAE decoding the generator's tokens (default: the one it was trained on).")
    var vqvae: String?
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var precision: PrecisionOption
    @Flag(help: "Skip the throughput measurement.")
    var noThroughput = false
    @Flag(help: "Measure only the real floor (N held-out real images against the N reference images).")
    var realOnly = false
    @OptionGroup var heldOut: HeldOutOptions
    @Option(help: "N: images generated and real reference images (the floor needs 2N in the split).")
    var count: Int = 1000
    @Option(help: "Captions per generator call.")
    var batchSize: Int = 16
    @Option(help: "Seed of sampling and of KID's subsets.")
    var seed: UInt64 = 0
    @Option(help: "The evaluator file (default results/models/evaluator-<dataset>-<size>.safetensors).")
    var evaluator: String?
    @OptionGroup var database: DatabaseOption

    var dataset: DatasetName { heldOut.dataset }
    var split: DatasetSplit { heldOut.split }
    var size: Int { heldOut.size }

    func validate() throws {
        if count < 2 { throw ValidationError("--count must be at least 2, got \(count).") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        if realOnly && model != nil { throw ValidationError("--real-only measures real images only: leave out --model.") }
        if !realOnly && model == nil { throw ValidationError("give --model FILE to evaluate a generator, or --real-only for the real floor.") }
    }

    func run() throws {
        try precision.use()
        let (net, evaluatorPath) = try loadEvaluator(evaluator, for: dataset, imageSize: size)
        let data = try openDataset(dataset, split: split, imageSize: net.configuration.imageSize,
                                   count: dataset == .shapes ? max(ShapesConfiguration.defaultCount(split), 2 * count) : nil)
        let database = try self.database.open()
        if let model {
            try evaluateGenerator(model, evaluator: net, evaluatorPath: evaluatorPath, data: data, database: database)
            return
        }
        let configuration = EvalConfiguration(count: count, batchSize: batchSize, seed: seed, measureFloor: true,
                                              throughput: nil, showProgress: true)
        let report = try EvalRunner.run(generator: nil, evaluator: net, dataset: data, configuration: configuration,
                                        database: database, runName: "real-floor-\(dataset.rawValue)-\(split.rawValue)-\(count)",
                                        params: ["dataset": dataset.rawValue, "split": split.rawValue,
                                                 "image_size": String(net.configuration.imageSize), "evaluator": evaluatorPath])
        print("\(dataset.rawValue) \(split.rawValue): real floor, N = \(count) (images \(count)..<\(2 * count) against 0..<\(count))")
        if let floor = report.floor { printMetrics(floor) }
        if let id = report.runID { print("run \(id)") }
    }

    /// Samples N images for the split's captions with the checkpoint and logs the comparison.
    func evaluateGenerator(_ model: String, evaluator net: Evaluator, evaluatorPath: String,
                           data: any CaptionedDataset, database: ResultsDatabase) throws {
        let generator = try CheckpointGenerator(model: ProjectRoot.resolve(model), vqvae: vqvae.map { URL(fileURLWithPath: $0) },
                                                options: sampling.generatorOptions, cacheDirectory: DefaultPaths.textFeatures)
        let configuration = EvalConfiguration(count: count, batchSize: batchSize, seed: seed, measureFloor: true,
                                              throughput: noThroughput ? nil : ThroughputMeter(), showProgress: true)
        let report = try EvalRunner.run(generator: generator, evaluator: net, dataset: data, configuration: configuration,
                                        database: database, runName: "\(generator.name)-\(dataset.rawValue)-\(split.rawValue)-\(count)",
                                        params: sampling.logged.merging(
                                            ["dataset": dataset.rawValue, "split": split.rawValue, "model": model,
                                             "image_size": String(net.configuration.imageSize), "evaluator": evaluatorPath]) { $1 })
        print("\(dataset.rawValue) \(split.rawValue): \(generator.name) (\(generator.kind)), N = \(count)")
        if let generated = report.generated { printMetrics(generated) }
        if let floor = report.floor {
            print("real floor (images \(count)..<\(2 * count) against 0..<\(count)):")
            printMetrics(floor)
        }
        for t in report.throughput {
            print(String(format: "throughput batch %d: %.2f images/s (%d threads)", t.batchSize, t.imagesPerSecond, t.threads))
        }
        if let id = report.runID { print("run \(id)") }
    }

    func printMetrics(_ m: EvalMetrics) {
        print(String(format: "%@  %.4f   (mean term %.4f, trace term %.4f)", EvalRunner.fidName, m.fid.fid, m.fid.meanTerm, m.fid.traceTerm))
        print(String(format: "KID (evaluator features)  %.5f ± %.5f  (%d subsets of %d)", m.kid.mean, m.kid.std, m.kid.subsets, m.kid.subsetSize))
        print(m.alignment.table(title: "alignment"))
        if let readings = m.shapeReadings { print(readings.table()) }
    }
}
