import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

/// `vqd evaluator …`: the networks whose features and attribute readings the metrics use.
struct EvaluatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluator",
        abstract: "Train and test the evaluator networks (features for FID/KID, attribute readers for alignment).",
        discussion: """
            One small CNN per dataset, trained once on real training images and reused by every \
            evaluation: its 128-d penultimate layer is the feature space of "FID (evaluator features)", \
            its heads read Shapes attributes or Fashion-MNIST classes.
            """,
        subcommands: [EvaluatorTrainCommand.self, EvaluatorTestCommand.self, EvaluatorCalibrateCommand.self,
                      EvaluatorFidelityCommand.self])
}

struct EvaluatorCalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Set a trained evaluator's feature scale from real training images and save it in place.",
        discussion: """
            `evaluator train` does this itself; use it for files saved before the feature scale \
            existed, or to recalibrate on more images. Weights, step and generator are kept.
            """)

    @Option(help: "The evaluator file (default results/models/evaluator-<dataset>-<size>.safetensors).")
    var model: String?
    @OptionGroup var data: LabelledDatasetOptions
    @Option(help: "Training images used.")
    var count: Int = 2000

    var dataset: DatasetName { data.dataset }
    var size: Int { data.size }

    func validate() throws {
        if count < 2 { throw ValidationError("--count must be at least 2, got \(count).") }
    }

    func run() throws {
        let task = try EvaluatorTask(dataset)
        let path = model ?? Evaluator.defaultPath(task: task, imageSize: size)
        let url = URL(fileURLWithPath: path)
        let evaluator = try Evaluator.load(url)
        guard evaluator.configuration.task == task else {
            throw CommandError("\(path) is a \(evaluator.configuration.task.rawValue) evaluator; use --dataset \(evaluator.configuration.task.rawValue).")
        }
        let stored = try TrainingCheckpoint.read(url, expectingKind: Evaluator.checkpointKind)
        let before = evaluator.configuration.featureScale
        let train = try openDataset(dataset, split: .train, imageSize: evaluator.configuration.imageSize)
        let scale = try evaluator.calibrate(on: train, count: count)
        var extra = stored.metadata
        extra[TrainingCheckpoint.kindKey] = nil
        extra[Safetensors.configurationKey] = nil
        extra[Safetensors.formatVersionKey] = nil
        try evaluator.save(to: url, generator: try stored.generator, step: try stored.step, extra: extra)
        print("\(path): feature scale \(before) → \(scale)")
    }
}

extension EvaluatorTask {
    /// The evaluator task of a dataset; a folder of your own has no labelled attributes to learn.
    init(_ name: DatasetName) throws {
        switch name {
        case .shapes: self = .shapes
        case .fashion: self = .fashion
        case .folder:
            throw CommandError("the evaluator learns labelled attributes, which only shapes and fashion have: "
                + "use --dataset shapes or --dataset fashion")
        }
    }
}

/// The evaluator of `dataset` from `path` (default results/models/evaluator-<dataset>-<size>.safetensors),
/// refused when it was trained for the other task.
func loadEvaluator(_ path: String?, for dataset: DatasetName, imageSize: Int) throws -> (net: Evaluator, path: String) {
    let task = try EvaluatorTask(dataset)
    let path = path ?? Evaluator.defaultPath(task: task, imageSize: imageSize)
    let net = try Evaluator.load(URL(fileURLWithPath: path))
    guard net.configuration.task == task else {
        throw CommandError("\(path) is a \(net.configuration.task.rawValue) evaluator; pass the \(task.rawValue) one with --evaluator.")
    }
    return (net, path)
}

/// Comma-separated integers given to `option` ("--times"), e.g. "10,30,50".
func parseIntegers(_ text: String, option: String, example: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
        throw ValidationError("\(option) \"\(text)\" must be comma-separated integers, e.g. \(example).")
    }
    return values.map { $0! }
}

/// A problem found while a command runs (a file of the wrong kind, a feature not yet available).
struct CommandError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Opens a split of a dataset for evaluator work. Shapes takes `count` samples (default: the
/// split's default count); Fashion-MNIST takes the whole split (callers use its first N).
func openDataset(_ name: DatasetName, split: DatasetSplit, imageSize: Int, count: Int? = nil,
                 seed: UInt64 = 0) throws -> any CaptionedDataset {
    switch name {
    case .shapes:
        return try ShapesDataset(ShapesConfiguration(imageSize: imageSize, seed: seed, split: split, count: count))
    case .fashion:
        guard imageSize == FashionMNIST.paddedSize else {
            throw CommandError("Fashion-MNIST images are \(FashionMNIST.paddedSize)×\(FashionMNIST.paddedSize): use --size \(FashionMNIST.paddedSize).")
        }
        return try FashionMNIST(split: split, seed: seed)
    case .folder:
        throw CommandError("a folder of your own has no labelled attributes: use --dataset shapes or --dataset fashion")
    }
}

struct EvaluatorTrainCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an evaluator on a dataset's training split and save it.",
        discussion: """
            Shapes trains on fresh procedural scenes (steps × batch of them), Fashion-MNIST on its \
            55,000 training images. At the end the held-out accuracy on the val split is printed \
            and logged. The run is logged to the results database (experiment "evaluator").
            """)

    @OptionGroup var data: LabelledDatasetOptions
    @Option(help: "Optimizer steps.")
    var steps: Int = 4000
    @Option(help: "Images per step.")
    var batchSize: Int = 64
    @Option(help: "Peak learning rate (AdamW, warm-up then cosine decay).")
    var learningRate: Float = 2e-3
    @Option(help: "Seed of initialisation and data order.")
    var seed: UInt64 = 0
    @OptionGroup var precision: PrecisionOption
    @Option(help: "Held-out (val) images scored at the end.")
    var valCount: Int = 2000
    @Option(help: "Training images that set the feature scale (mean per-dimension variance 1).")
    var calibrationCount: Int = 2000
    @Option(help: "Where to save the evaluator (default results/models/evaluator-<dataset>-<size>.safetensors).")
    var out: String?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (written beside --out as .ckpt.safetensors).")
    var checkpointEvery: Int = 500
    @Flag(help: "Continue from the checkpoint beside --out when there is one.")
    var resume = false
    @OptionGroup var recipeFile: RecipeFileOptions
    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if valCount < 1 { throw ValidationError("--val-count must be at least 1, got \(valCount).") }
        if checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1, got \(checkpointEvery).") }
    }

    /// The recipe these options describe.
    func recipe() throws -> EvaluatorRecipe {
        var r = EvaluatorRecipe(dataset: data.dataset, imageSize: data.size, steps: steps, batchSize: batchSize,
                                learningRate: learningRate, seed: seed, calibrationCount: calibrationCount)
        r.precision = precision.forRecipe
        return r
    }

    func run() throws {
        guard let recipe = try recipeFile.recipe(self.recipe) else { return }
        let task = try EvaluatorTask(DatasetName(rawValue: recipe.dataset.rawValue)!)
        let path = out ?? Evaluator.defaultPath(task: task, imageSize: recipe.imageSize)
        try ensureFolder(of: path)
        let val = try openDataset(DatasetName(rawValue: recipe.dataset.rawValue)!, split: .val, imageSize: recipe.imageSize)
        let checkpoint = URL(fileURLWithPath: VQVAETrainCommand.checkpointPath(for: path))
        let store = ModelStore.standard(database: try database.openForTraining(), profile: nil)
        let output = TrainingOutput(checkpoint: checkpoint, checkpointEvery: checkpointEvery,
                                    resume: resume && FileManager.default.fileExists(atPath: checkpoint.path) ? checkpoint : nil,
                                    database: store.database, experiment: "evaluator",
                                    runName: "evaluator-\(task.rawValue)-\(recipe.imageSize)", logEvery: 10)
        let job = TrainingJob(output: output, model: URL(fileURLWithPath: path)) { model, run in
            let scores = try EvaluatorAccuracy.measure(try Evaluator.load(model), on: val, count: valCount)
            for (name, fraction) in scores.scoredFractions { run?.logMetric("val/accuracy/\(name)", fraction, step: recipe.steps) }
            print(scores.table(title: "val (\(min(valCount, val.count)) images)"))
            print("saved \(path)")
        }
        try recipe.train(job, store: store)
    }
}

struct EvaluatorTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Print an evaluator's per-attribute accuracy on a held-out split.",
        discussion: """
            Shapes: number of objects, position (one object), relation axis (two objects), shape, \
            colour and size (every object), and caption (every attribute the image's own caption \
            states read right). Fashion-MNIST: class.
            """)

    @Option(help: "The evaluator file (default results/models/evaluator-<dataset>-<size>.safetensors).")
    var model: String?
    @OptionGroup var data: HeldOutOptions
    @Option(help: "Images to score (default the whole split).")
    var count: Int?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1, got \(count).") }
    }

    func run() throws {
        let (dataset, split) = (data.dataset, data.split)
        let task = try EvaluatorTask(dataset)
        let path = model ?? Evaluator.defaultPath(task: task, imageSize: data.size)
        let evaluator = try Evaluator.load(URL(fileURLWithPath: path))
        guard evaluator.configuration.task == task else {
            throw CommandError("\(path) is a \(evaluator.configuration.task.rawValue) evaluator; test it with --dataset \(evaluator.configuration.task.rawValue).")
        }
        let images = try openDataset(dataset, split: split, imageSize: evaluator.configuration.imageSize)
        let n = min(count ?? images.count, images.count)
        let scores = try EvaluatorAccuracy.measure(evaluator, on: images, count: n)
        print("\(path): \(dataset.rawValue) \(split.rawValue), \(n) images")
        print(scores.table())
    }
}

/// `vqd evaluator fidelity`: how much meaning a VQ-VAE keeps.
struct EvaluatorFidelityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fidelity",
        abstract: "PSNR and evaluator accuracy of VQ-VAE reconstructions against the originals.",
        discussion: """
            Encodes and decodes N held-out images with the VQ-VAE, then reads both the originals and \
            the reconstructions with the evaluator: the drop in accuracy is the meaning the tokenizer \
            loses, and bounds what any generator on its tokens can reach. Logged to the results \
            database (experiment "fidelity").
            """)

    @Option(help: "The VQ-VAE checkpoint.")
    var vqvae: String
    @Option(help: "The evaluator file (default results/models/evaluator-<dataset>-<size>.safetensors).")
    var evaluator: String?
    @OptionGroup var data: HeldOutOptions
    @Option(help: "Images to score.")
    var count: Int = 1000

    var dataset: DatasetName { data.dataset }
    var split: DatasetSplit { data.split }
    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1, got \(count).") }
    }

    func run() throws {
        let task = try EvaluatorTask(dataset)
        let evaluatorPath = evaluator ?? Evaluator.defaultPath(task: task, imageSize: data.size)
        let net = try Evaluator.load(URL(fileURLWithPath: evaluatorPath))
        let tokenizer = try VQVAE.load(URL(fileURLWithPath: vqvae))
        let data = try openDataset(dataset, split: split, imageSize: net.configuration.imageSize,
                                   count: dataset == .shapes ? count : nil)
        let n = min(count, data.count)
        let samples = (0..<n).map { data.sample(at: $0) }
        let images = try tokenizer.batch(samples.map { Image(width: $0.image.width, height: $0.image.height,
                                                             channels: $0.image.channels, pixels: $0.image.pixels) })
        let attributes = try samples.map { s -> SampleAttributes in
            guard let a = s.attributes else { throw CommandError("the dataset gives no attributes to score") }
            return a
        }
        let result = try Autograd.withoutGrad {
            try ReconstructionFidelity.measure(evaluator: net, images: images, attributes: attributes) { try tokenizer.reconstruct($0) }
        }
        let database = try self.database.open()
        let run = try database.startRun(experiment: "fidelity", name: "fidelity-\(dataset.rawValue)-\(split.rawValue)", threads: BLAS.threads)
        run.logParams(["vqvae": vqvae, "evaluator": evaluatorPath, "dataset": dataset.rawValue, "split": split.rawValue,
                       "count": String(n)])
        run.logMetric("psnr", result.psnr, step: 0)
        run.logMetric("mean_image_psnr", result.meanImagePSNR, step: 0)
        for score in result.originalAccuracy.scores where score.total > 0 { run.logMetric("original/\(score.name)", score.fraction, step: 0) }
        for score in result.reconstructionAccuracy.scores where score.total > 0 { run.logMetric("reconstruction/\(score.name)", score.fraction, step: 0) }
        try run.finish()
        print(String(format: "%@ on %@ %@, %d images: PSNR %.2f dB (mean per image %.2f dB)", vqvae, dataset.rawValue,
                     split.rawValue, n, result.psnr, result.meanImagePSNR))
        print(result.originalAccuracy.table(title: "originals"))
        print(result.reconstructionAccuracy.table(title: "reconstructions"))
        print("run \(run.id)")
    }
}

