import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

struct VQVAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vqvae", abstract: "Train, evaluate and use the VQ-VAE image tokenizer.",
        subcommands: [VQVAETrainCommand.self, VQVAEEvalCommand.self, VQVAEEncodeCommand.self,
                      VQVAEDecodeCommand.self, VQVAEReconstructCommand.self])
}


/// Where images come from: a dataset split or PNG files.
struct VQVAEDataOptions: ParsableArguments {
    @Option(help: "The dataset: shapes, fashion or folder.")
    var dataset: DatasetSelection.Source?

    @Option(help: "The folder of PNG files and captions.jsonl (with --dataset folder).")
    var folder: String?

    @Option(help: "The split (train, val, test; Shapes also novel).")
    var split: DatasetSplit = .test

    @Option(help: "Image side in pixels (Shapes: a multiple of 8 from 16 to 128; Fashion-MNIST: 32).")
    var size: Int = 32

    @Option(name: .customLong("data-seed"), help: "Dataset seed (Shapes scenes, caption templates).")
    var dataSeed: UInt64 = 0

    @Option(help: "Use the first N images of the split (default: all, or 16 for pictures).")
    var count: Int?

    func selection(split: DatasetSplit? = nil, count: Int? = nil) throws -> DatasetSelection? {
        guard let dataset else { return nil }
        if dataset == .folder && folder == nil { throw ValidationError("--dataset folder needs --folder DIR.") }
        return DatasetSelection(source: dataset, split: split ?? self.split, imageSize: size, seed: dataSeed,
                                count: count ?? self.count, folder: folder)
    }
}

/// A VQ-VAE and the images it reads, from PNG files or a dataset: `vqvae encode` and `reconstruct`.
struct VQVAEInputOptions: ParsableArguments {
    @Option(help: "The VQ-VAE model file.") var model: String
    @Argument(help: "PNG files (all of one size); or use --dataset.") var files: [String] = []
    @OptionGroup var data: VQVAEDataOptions
    @Option(help: "BLAS and kernel threads.") var threads: Int?

    /// The model and the images as a batch for it (the first `defaultCount` of a split unless --count).
    func load(defaultCount: Int?) throws -> (VQVAE, Tensor) {
        if let threads { BLAS.setThreads(threads) }
        let model = try loadVQVAE(self.model)
        if !files.isEmpty {
            if data.dataset != nil { throw ValidationError("give PNG files or --dataset, not both.") }
            return (model, try model.batch(files.map { try PNG.read(URL(fileURLWithPath: $0)) }))
        }
        guard let selection = try data.selection(count: data.count ?? defaultCount) else {
            throw ValidationError("give PNG files, or --dataset shapes|fashion with --split.")
        }
        let dataset = try selection.open()
        let loader = BatchLoader(dataset: dataset, batchSize: max(1, dataset.count), shuffle: false, generator: RandomGenerator(seed: 0))
        let images = loader.batch(indices: Array(0..<dataset.count)).images
        try model.checkImages(images.shape)
        return (model, images)
    }
}

func loadVQVAE(_ path: String) throws -> VQVAE {
    try VQVAE.load(URL(fileURLWithPath: path))
}

// MARK: - train

struct VQVAETrainCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a VQ-VAE on a dataset's train split.",
        discussion: """
            Logs to the results database (experiment "vqvae") every --log-every steps, writes a \
            resumable checkpoint every --checkpoint-every steps (model, codebook statistics, optimizer, \
            generator, data position), and at the end the model to --out and its held-out metrics. \
            With --resume, settings not given are taken from the checkpoint; settings given must match it.
            """)

    @Option(help: "The training images: shapes, fashion or folder.") var dataset: DatasetSelection.Source?
    @Option(help: "The folder of PNG files and captions.jsonl (with --dataset folder).") var folder: String?
    @Option(help: "Image side in pixels (default 32).") var size: Int?
    @Option(name: .customLong("data-seed"), help: "Dataset seed (default 0).") var dataSeed: UInt64?
    @Option(name: .customLong("train-count"), help: "Train on the first N images of the train split (default all).") var trainCount: Int?

    @Option(help: "Codebook size K (default 512).") var codes: Int?
    @Option(name: .customLong("code-dim"), help: "Code dimension d (default 64).") var codeDim: Int?
    @Option(help: "Downsampling factor 2, 4 or 8 (default 4).") var downsampling: Int?
    @Option(help: "Feature widths, full resolution first, comma-separated (default 32,64,128 for f = 4).") var widths: String?
    @Option(name: .customLong("res-blocks"), help: "Residual blocks in the encoder and in the decoder (default 2).") var resBlocks: Int?

    @Option(help: "Training steps (default 2500).") var steps: Int?
    @Option(name: .customLong("batch-size"), help: "Images per step (default 32).") var batchSize: Int?
    @Option(help: "Peak learning rate (default 2e-3).") var lr: Float?
    @Option(help: "Seed of initialisation, data order and code restarts (default 0).") var seed: UInt64?
    @OptionGroup var precision: PrecisionOption

    @OptionGroup var recipeFile: RecipeFileOptions
    @Option(help: "BLAS and kernel threads (default: OpenBLAS's choice).") var threads: Int?
    @Option(help: "Where to write the trained model.") var out: String?
    @Option(help: "The resumable checkpoint file (default: --out with .ckpt.safetensors).") var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.") var checkpointEvery: Int = 250
    @Option(help: "Continue the run saved in this checkpoint.") var resume: String?
    @Option(name: .customLong("log-every"), help: "Steps between logged metrics.") var logEvery: Int = 10
    @Option(name: .customLong("eval-split"), help: "Held-out split measured at the end.") var evalSplit: DatasetSplit = .test
    @Option(name: .customLong("eval-count"), help: "Held-out images measured at the end (default: the whole split).") var evalCount: Int?
    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1.") }
        if logEvery < 1 { throw ValidationError("--log-every must be at least 1.") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if !recipeFile.show && out == nil { throw ValidationError("--out FILE is needed: where to write the trained model.") }
        if resume == nil && dataset == nil && recipeFile.file == nil {
            throw ValidationError("give --dataset shapes|fashion|folder (or --resume FILE, or --recipe FILE).")
        }
    }

    /// The recipe these options describe: defaults, overridden by a resumed checkpoint's
    /// settings, overridden by the options given.
    func recipe() throws -> VQVAERecipe {
        var r = try resume.map { try VQVAERecipe(file: URL(fileURLWithPath: $0)) } ?? VQVAERecipe.defaults
        if let dataset {
            if dataset != r.dataset { r.trainCount = nil }
            r.dataset = dataset
        }
        if let folder { r.folder = folder }
        if let size { r.imageSize = size }
        if let dataSeed { r.dataSeed = dataSeed }
        if let trainCount { r.trainCount = trainCount }
        if let codes { r.codes = codes }
        if let codeDim { r.codeDimension = codeDim }
        if let downsampling {
            if downsampling != r.downsampling && widths == nil { r.widths = [] }
            r.downsampling = downsampling
        }
        if let widths { r.widths = try parseIntegers(widths, option: "--widths", example: "32,64,128") }
        if let resBlocks { r.residualBlocks = resBlocks }
        if let steps { r.steps = steps }
        if let batchSize { r.batchSize = batchSize }
        if let lr { r.learningRate = lr }
        if let seed { r.seed = seed }
        if let p = precision.precision { r.precision = p }
        return r
    }

    func run() throws {
        if let threads { BLAS.setThreads(threads) }
        guard let recipe = try recipeFile.recipe(self.recipe) else { return }
        let out = self.out!
        try ensureFolder(of: out)
        // Open the held-out split before training, so a missing file fails now rather than at the end.
        var heldOut = recipe.data
        heldOut.split = evalSplit.rawValue
        heldOut.count = evalCount
        let evalDataset = try heldOut.open()
        let checkpointURL = URL(fileURLWithPath: checkpoint ?? VQVAETrainCommand.checkpointPath(for: out))
        let store = ModelStore.standard(database: try database.openForTraining(), profile: nil)
        let output = TrainingOutput(checkpoint: checkpointURL, checkpointEvery: checkpointEvery,
                                    resume: resume.map { URL(fileURLWithPath: $0) }, database: store.database,
                                    experiment: "vqvae", runName: "train \(recipe.dataset.rawValue) \(recipe.imageSize)",
                                    logEvery: logEvery)
        let job = TrainingJob(output: output, model: URL(fileURLWithPath: out)) { model, run in
            print("model written to \(out) (checkpoint \(checkpointURL.path))")
            let trained = try VQVAE.load(model)
            let metrics = try VQVAEMetrics.evaluate(trained, on: evalDataset)
            printVQVAEMetrics(metrics, heldOut)
            if let run { logVQVAEMetrics(metrics, to: run, step: recipe.steps) }
        }
        try recipe.train(job, store: store)
    }

    /// "a/model.safetensors" → "a/model.ckpt.safetensors".
    static func checkpointPath(for out: String) -> String {
        let base = out.hasSuffix(".safetensors") ? String(out.dropLast(".safetensors".count)) : out
        return base + ".ckpt.safetensors"
    }
}


func printVQVAEMetrics(_ m: VQVAEMetrics, _ data: DatasetSelection) {
    print(String(format: "held-out %@ (%d images): PSNR %.2f dB, codebook usage %.1f %%, perplexity %.1f",
                 data.description, m.count, m.psnr, m.codebookUsage * 100, m.perplexity))
}

func logVQVAEMetrics(_ m: VQVAEMetrics, to run: Run, step: Int) {
    run.logMetric("eval/psnr", m.psnr, step: step)
    run.logMetric("eval/mse", m.meanSquaredError, step: step)
    run.logMetric("eval/usage", m.codebookUsage, step: step)
    run.logMetric("eval/perplexity", m.perplexity, step: step)
    run.logMetric("eval/count", Double(m.count), step: step)
}

// MARK: - eval

struct VQVAEEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Measure reconstruction PSNR, codebook usage and perplexity on a split.")

    @Option(help: "The VQ-VAE model file.") var model: String
    @OptionGroup var data: VQVAEDataOptions
    @Option(help: "BLAS and kernel threads.") var threads: Int?
    @OptionGroup var database: DatabaseOption

    func run() throws {
        if let threads { BLAS.setThreads(threads) }
        let vqvae = try loadVQVAE(model)
        guard let selection = try data.selection() else { throw ValidationError("give --dataset shapes|fashion|folder.") }
        let dataset = try selection.open()
        let database = try self.database.open()
        let run = try database.startRun(experiment: "vqvae", name: "eval \(selection.source.rawValue) \(selection.split)", threads: BLAS.threads)
        run.logParams(["model": model, "dataset": selection.source.rawValue, "split": selection.split,
                       "size": "\(selection.imageSize)", "data_seed": "\(selection.seed)", "count": "\(dataset.count)",
                       "codes": "\(vqvae.codes)", "downsampling": "\(vqvae.downsampling)"])
        try run.closing { run in
            let metrics = try VQVAEMetrics.evaluate(vqvae, on: dataset)
            printVQVAEMetrics(metrics, selection)
            logVQVAEMetrics(metrics, to: run, step: 0)
        }
    }
}

// MARK: - encode, decode, reconstruct

struct VQVAEEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Turn PNG files or a dataset split into token grids (.npy int32 [N, h, w]).")

    @OptionGroup var input: VQVAEInputOptions
    @Option(help: "The .npy file to write.") var out: String

    func run() throws {
        let (vqvae, images) = try input.load(defaultCount: nil)
        let N = images.shape[0]
        var tokens: [Int32] = []
        var grid = (0, 0)
        for start in stride(from: 0, to: N, by: 256) {
            let n = min(256, N - start)
            let plane = images.count / N
            let part = Tensor(shape: [n] + Array(images.shape.dropFirst()),
                              values: Array(images.buffer[(start * plane)..<((start + n) * plane)]))
            let (t, h, w) = try vqvae.encode(part)
            tokens += t
            grid = (h, w)
        }
        try Npy.save(TensorData(shape: [N, grid.0, grid.1], .i32(tokens)), to: URL(fileURLWithPath: out))
        print("\(N) token grids of \(grid.0)×\(grid.1) written to \(out)")
    }
}

struct VQVAEDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Turn token grids (.npy int32 [N, h, w]) into images: a PNG sheet or one PNG each.")

    @Option(help: "The VQ-VAE model file.") var model: String
    @Option(help: "The .npy file of token grids.") var tokens: String
    @Option(help: "The PNG sheet to write.") var out: String?
    @Option(name: .customLong("out-dir"), help: "A folder to write one PNG per grid into (000000.png, …).") var outDir: String?
    @Option(help: "Images per row of the sheet.") var columns: Int = 8
    @Option(help: "BLAS and kernel threads.") var threads: Int?

    func validate() throws {
        if (out == nil) == (outDir == nil) { throw ValidationError("give exactly one of --out SHEET.png and --out-dir DIR.") }
        if columns < 1 { throw ValidationError("--columns must be at least 1.") }
    }

    func run() throws {
        if let threads { BLAS.setThreads(threads) }
        let vqvae = try loadVQVAE(model)
        let array = try Npy.read(URL(fileURLWithPath: tokens))
        let values: [Int32]
        switch array.values {
        case .i32(let v): values = v
        case .i64(let v): values = v.map { Int32(clamping: $0) }
        default: throw ValidationError("\(tokens) holds \(array.dtype.rawValue) values; token grids are int32 (or int64).")
        }
        guard array.shape.count == 3 || array.shape.count == 2 else {
            throw ValidationError("\(tokens) has shape \(array.shape); token grids are [N, h, w] (or one [h, w]).")
        }
        let shape = array.shape.count == 3 ? array.shape : [1] + array.shape
        let images = try Image.batch(vqvae.decode(values, count: shape[0], height: shape[1], width: shape[2]))
        if let out {
            try PNG.write(Image.grid(images, columns: columns), to: URL(fileURLWithPath: out))
            print("\(images.count) images written to \(out)")
        } else if let outDir {
            try writeNumberedPNGs(images, to: outDir, digits: 6)
            print("\(images.count) images written to \(outDir)/")
        }
    }
}

struct VQVAEReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct", abstract: "A sheet of originals, each followed by its reconstruction.")

    @OptionGroup var input: VQVAEInputOptions
    @Option(help: "The PNG sheet to write.") var out: String
    @Option(help: "Original–reconstruction pairs per row.") var pairs: Int = 4

    func validate() throws {
        if pairs < 1 { throw ValidationError("--pairs must be at least 1.") }
    }

    func run() throws {
        let (vqvae, images) = try input.load(defaultCount: 16)
        let reconstruction = try vqvae.reconstruct(images)
        let originals = Image.batch(images), decoded = Image.batch(reconstruction)
        var sheet: [Image] = []
        for i in originals.indices { sheet += [originals[i], decoded[i]] }
        try PNG.write(Image.grid(sheet, columns: 2 * pairs), to: URL(fileURLWithPath: out))
        var accumulator = VQVAEMetrics.Accumulator(codes: vqvae.codes)
        accumulator.add(original: images, reconstruction: reconstruction, tokens: try vqvae.encode(images).tokens)
        print(String(format: "%d pairs written to %@ (PSNR of these images %.2f dB)", originals.count, out, accumulator.result.psnr))
    }
}
