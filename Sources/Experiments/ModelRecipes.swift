import Engine
import Foundation
import VQDiffusion

// One recipe per kind of model (VQ-VAE, evaluator, generator): everything that decides the
// trained weights. `vqd … train` turns its flags into a recipe, a study builds one from its
// configuration, `vqd models train --recipe FILE` reads one; all three train it through the same
// code (`train(_:store:)` and the one `TrainingLoop`).
//
// A recipe's key is a hash of its kind and JSON, so a model is trained once and then found again
// by anyone asking for the same recipe (ModelStore). The JSON follows the schema rule of
// `SchemaJSON`: options added after the first schema are written only when they differ from their
// defaults, so adding an option never moves an existing model's key.

/// A model trained from nothing but its recipe.
public protocol ModelRecipe: VersionedSchema, Equatable, Sendable {
    /// "vqvae", "evaluator" or "generator": the file name's prefix and the recipe file's kind.
    static var kind: String { get }
    /// A short human-readable description ("vqvae shapes 32px K=64 f=4, 2500 steps").
    var summary: String { get }
    /// The recipe as written and hashed (settings that do not apply reset to their defaults).
    var canonical: Self { get }
    /// Throws naming the first setting that cannot be trained.
    func validate() throws
    /// The operands' precision of the training's products (fp32 or bf16).
    var precision: Precision { get }
    /// Trains the model as `job` says; `store` provides the models this one depends on. Called
    /// by `train`, which sets the precision.
    func trainModel(_ job: TrainingJob, store: ModelStore) throws
}

extension ModelRecipe {
    public var canonical: Self { self }

    /// fp32, for recipes without a precision setting.
    public var precision: Precision { .fp32 }

    /// The JSON that the key hashes.
    public func json() throws -> String { try SchemaJSON.encode(canonical) }

    /// The JSON with every field written.
    public func fullJSON() throws -> String { try SchemaJSON.encodeFull(canonical) }

    /// 16 hex digits identifying the recipe (FNV-1a of its kind and its JSON).
    public var key: String {
        let json = (try? json()) ?? summary
        let hash = TokenCache.fnv1a(Array((Self.kind + ":" + json).utf8))
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Trains the model as `job` says, in the recipe's precision (checked against this machine
    /// first); `store` provides the models this one depends on.
    public func train(_ job: TrainingJob, store: ModelStore) throws {
        try ComputePolicy.check(precision)
        try BLAS.withPrecision(precision) { try trainModel(job, store: store) }
    }

    /// "<kind>-<key>.safetensors".
    public var fileName: String { "\(Self.kind)-\(key).safetensors" }
}

/// What a recipe file holds: `{"kind": …, "schema": …, "recipe": {…}}`, the recipe with every
/// field written (as `--show-recipe` prints it). Fields left out read as their defaults.
public struct RecipeFile {
    /// The version of the recipe schema written now. 1: the fields of the first committed models;
    /// 2: every option of the command line.
    public static let schemaVersion = 2

    public let recipe: any ModelRecipe

    public init(_ recipe: any ModelRecipe) { self.recipe = recipe }

    /// Reads a recipe document (a file's text, or a bare recipe when `kind` is given).
    public init(json: String, kind expectedKind: String? = nil) throws {
        let document = try JSONTree(parsing: json)
        let kind: String
        let body: JSONTree
        if case .string(let k)? = document["kind"], let inner = document["recipe"] {
            kind = k
            body = inner
            if case .integer(let v)? = document["schema"], v > Int64(Self.schemaVersion) {
                throw ConfigurationError("the recipe is of schema \(v), newer than this build's \(Self.schemaVersion); update the suite")
            }
        } else if let expectedKind {
            (kind, body) = (expectedKind, document)
        } else {
            throw ConfigurationError("a recipe file holds {\"kind\": …, \"schema\": …, \"recipe\": {…}} (as --show-recipe prints it)")
        }
        if let expectedKind, expectedKind != kind {
            throw ConfigurationError("the recipe is a \(kind) recipe, not a \(expectedKind) one")
        }
        recipe = try Self.decode(kind: kind, body)
    }

    /// Reads the recipe file at `path`.
    public init(contentsOf path: String, kind: String? = nil) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigurationError("cannot read the recipe file \(path): \(error.localizedDescription)")
        }
        do { try self.init(json: text, kind: kind) } catch let error as ConfigurationError {
            throw ConfigurationError("\(path): \(error.message)")
        }
    }

    static func decode(kind: String, _ body: JSONTree) throws -> any ModelRecipe {
        do {
            switch kind {
            case VQVAERecipe.kind: return try SchemaJSON.decode(VQVAERecipe.self, from: body)
            case EvaluatorRecipe.kind: return try SchemaJSON.decode(EvaluatorRecipe.self, from: body)
            case GeneratorRecipe.kind: return try SchemaJSON.decode(GeneratorRecipe.self, from: body)
            default: throw ConfigurationError("unknown model kind '\(kind)': use vqvae, evaluator or generator")
            }
        } catch let error as DecodingError {
            throw ConfigurationError("the recipe is not a valid \(kind) recipe: \(error)")
        }
    }

    /// The document, pretty-printed with every field.
    public func json() throws -> String {
        let body = try JSONTree(parsing: try recipe.fullJSON())
        let document = JSONTree.object(["kind": .string(type(of: recipe).kind),
                                         "schema": .integer(Int64(Self.schemaVersion)), "recipe": body])
        return try SchemaJSON.encodeFull(document, pretty: true)
    }
}

/// A recipe of `kind` ("vqvae", "evaluator" or "generator") from its JSON (the index's form).
public func decodeModelRecipe(kind: String, json: String) throws -> any ModelRecipe {
    try RecipeFile(json: json, kind: kind).recipe
}

/// How a recipe is trained: where the run logs and saves, and what follows the last step.
public struct TrainingJob {
    /// The run's database, experiment, checkpoint (and its cadence) and what to resume from.
    public var output: TrainingOutput
    /// Where the finished model goes; nil keeps the training checkpoint as the model (`vqd train --out`).
    public var model: URL?
    /// Stop after this step of the schedule (the learning rate follows the whole schedule).
    public var stopAt: Int?
    /// Called inside the run with the finished model's file (held-out measurements of `vqd … train`).
    public var afterTraining: ((URL, Run?) throws -> Void)?

    public init(output: TrainingOutput, model: URL?, stopAt: Int? = nil, afterTraining: ((URL, Run?) throws -> Void)? = nil) {
        self.output = output
        self.model = model
        self.stopAt = stopAt
        self.afterTraining = afterTraining
    }

    /// The step this job trains to.
    func lastStep(of steps: Int) -> Int { min(stopAt ?? steps, steps) }
}

// MARK: - VQ-VAE

/// A VQ-VAE trained on one dataset's train split.
public struct VQVAERecipe: ModelRecipe {
    public static let kind = "vqvae"
    public var dataset: DatasetSelection.Source = .shapes
    public var imageSize: Int = 32
    public var codes: Int = 512
    public var codeDimension: Int = 64
    public var downsampling: Int = 4
    public var steps: Int = 2500
    public var batchSize: Int = 32
    public var learningRate: Float = 2e-3
    public var seed: UInt64 = 0
    // Schema 2.
    /// The folder of a folder dataset ("" for shapes and fashion).
    public var folder: String = ""
    /// Dataset seed (Shapes scenes, caption templates).
    public var dataSeed: UInt64 = 0
    /// Train on the first N images of the train split (nil: all of it).
    public var trainCount: Int? = nil
    /// Feature widths, full resolution first (empty: the default for the downsampling factor).
    public var widths: [Int] = []
    /// Residual blocks in the encoder and in the decoder.
    public var residualBlocks: Int = VQVAEConfiguration().residualBlocks
    /// Operands of the products and convolutions: fp32, or bf16 with fp32 accumulation.
    public var precision: Precision = .fp32

    public init(dataset: DatasetSelection.Source, imageSize: Int = 32, codes: Int = 512, codeDimension: Int = 64,
                downsampling: Int = 4, steps: Int = 2500, batchSize: Int = 32, learningRate: Float = 2e-3, seed: UInt64 = 0) {
        self.dataset = dataset
        self.imageSize = imageSize
        self.codes = codes
        self.codeDimension = codeDimension
        self.downsampling = downsampling
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.seed = seed
    }

    public static let defaults = VQVAERecipe(dataset: .shapes)
    public static let firstSchema = #"{"batchSize":0,"codeDimension":0,"codes":0,"dataset":0,"downsampling":0,"imageSize":0,"learningRate":0,"seed":0,"steps":0}"#

    /// The recipe a VQ-VAE file was trained from, read from the settings it records.
    public init(file url: URL) throws {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: VQVAE.kind)
        let (c, options, data) = try VQVAETrainer.storedSettings(loaded)
        self.init(dataset: data.source, imageSize: data.imageSize, codes: c.codes, codeDimension: c.codeDimension,
                  downsampling: c.downsampling, steps: options.steps, batchSize: options.batchSize,
                  learningRate: options.learningRate, seed: options.seed)
        folder = data.folder ?? ""
        dataSeed = data.seed
        trainCount = data.count
        widths = c.widths ?? []
        residualBlocks = c.residualBlocks
        guard options == self.options, c == configuration else {
            throw ConfigurationError("\(url.path) was trained with settings a recipe cannot state (\(options), \(c.summary))")
        }
    }

    public var summary: String { "vqvae \(dataset.rawValue) \(imageSize)px K=\(codes) f=\(downsampling), \(steps) steps" }

    public var data: DatasetSelection {
        DatasetSelection(source: dataset, split: .train, imageSize: imageSize, seed: dataSeed, count: trainCount,
                         folder: folder.isEmpty ? nil : folder)
    }

    public var configuration: VQVAEConfiguration {
        var c = VQVAEConfiguration(channels: dataset == .fashion ? 1 : 3, downsampling: downsampling, codes: codes,
                                   codeDimension: codeDimension)
        c.widths = widths.isEmpty ? nil : widths
        c.residualBlocks = residualBlocks
        return c
    }

    public var options: TrainingRunSettings {
        TrainingRunSettings.vqvae.with(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
    }

    public func validate() throws {
        try options.validate()
        try configuration.validate()
        if dataset == .folder && folder.isEmpty { throw ConfigurationError("--dataset folder needs --folder DIR.") }
    }

    public func trainModel(_ job: TrainingJob, store: ModelStore) throws {
        try validate()
        let (data, configuration, options) = (self.data, self.configuration, self.options)
        let dataset = try data.open()
        let trainer = try job.output.resume.map {
            try VQVAETrainer(resuming: $0, configuration: configuration, options: options, data: data, dataset: dataset)
        } ?? VQVAETrainer(configuration: configuration, options: options, data: data, dataset: dataset)
        store.log("VQ-VAE: \(configuration.summary); \(trainer.model.parameterCount) parameters; data \(data) "
            + "(\(dataset.count) images); \(BLAS.threads) thread(s)")
        let model = job.model ?? job.output.checkpoint!
        let params = ["recipe": try json(), "key": key, "out": portablePath(model),
                      "parameters": "\(trainer.model.parameterCount)", "train_count": "\(dataset.count)"]
        try TrainingLoop.run(trainer, until: job.lastStep(of: steps), label: "vqvae", output: job.output,
                             params: params) { trainer, run in
            guard trainer.isFinished else { return }
            try trainer.saveModel(to: model)
            try job.afterTraining?(model, run)
        }
    }
}

// MARK: - Evaluator

/// The evaluator network of one dataset (features for FID/KID, attribute heads for alignment).
public struct EvaluatorRecipe: ModelRecipe {
    public static let kind = "evaluator"
    public var dataset: DatasetSelection.Source = .shapes
    public var imageSize: Int = 32
    public var steps: Int = 4000
    public var batchSize: Int = 64
    public var learningRate: Float = 2e-3
    public var seed: UInt64 = 0
    /// Training images that set the feature scale.
    public var calibrationCount: Int = 2000
    // Schema 2.
    /// Operands of the products and convolutions: fp32, or bf16 with fp32 accumulation.
    public var precision: Precision = .fp32

    public init(dataset: DatasetSelection.Source, imageSize: Int = 32, steps: Int = 4000, batchSize: Int = 64,
                learningRate: Float = 2e-3, seed: UInt64 = 0, calibrationCount: Int = 2000) {
        self.dataset = dataset
        self.imageSize = imageSize
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.seed = seed
        self.calibrationCount = calibrationCount
    }

    public static let defaults = EvaluatorRecipe(dataset: .shapes)
    public static let firstSchema = #"{"batchSize":0,"calibrationCount":0,"dataset":0,"imageSize":0,"learningRate":0,"seed":0,"steps":0}"#

    public var summary: String { "evaluator \(dataset.rawValue) \(imageSize)px, \(steps) steps" }

    var task: EvaluatorTask { dataset == .fashion ? .fashion : .shapes }

    /// Shapes trains on fresh scenes (steps × batch of them, at least the split's default count).
    var trainingData: DatasetSelection {
        let count = dataset == .shapes ? max(ShapesConfiguration.defaultCount(.train), steps * batchSize) : nil
        return DatasetSelection(source: dataset, split: .train, imageSize: imageSize, count: count)
    }

    public func validate() throws {
        guard dataset != .folder else {
            throw ConfigurationError("the evaluator learns labelled attributes, which only shapes and fashion have: "
                + "use --dataset shapes or --dataset fashion")
        }
        try TrainingRunSettings.evaluator.with(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed).validate()
        guard calibrationCount >= 2 else { throw ConfigurationError("--calibration-count must be at least 2, got \(calibrationCount).") }
    }

    public func trainModel(_ job: TrainingJob, store: ModelStore) throws {
        try validate()
        let train = try trainingData.open()
        let training = TrainingRunSettings.evaluator.with(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
        let trainer = try EvaluatorTrainer(EvaluatorConfiguration.standard(task, imageSize: imageSize), training: training,
                                           dataset: train)
        if let resume = job.output.resume { try trainer.resume(from: resume) }
        store.log("evaluator \(task.rawValue) \(imageSize)px: \(trainer.evaluator.parameterCount) parameters, "
            + "\(steps) steps of \(batchSize), \(BLAS.threads) thread(s)")
        let model = job.model ?? job.output.checkpoint!
        let params = ["recipe": try json(), "key": key, "out": portablePath(model),
                      "parameters": "\(trainer.evaluator.parameterCount)", "train_images": "\(train.count)",
                      "configuration": try sortedJSON(trainer.evaluator.configuration)]
        try TrainingLoop.run(trainer, until: job.lastStep(of: steps), label: "evaluator", output: job.output,
                             params: params) { trainer, run in
            guard trainer.step >= steps else { return }
            let scale = try trainer.evaluator.calibrate(on: train, count: calibrationCount)
            run?.logParam("feature_scale", scale)
            try trainer.evaluator.save(to: model, generator: trainer.generator, step: steps, extra: ["run_id": run?.id ?? ""])
            try job.afterTraining?(model, run)
        }
    }
}

extension Evaluator {
    /// Sets the feature scale from the first `count` images of `dataset` and returns it.
    @discardableResult
    public func calibrate(on dataset: any CaptionedDataset, count: Int) throws -> Float {
        let n = min(count, dataset.count)
        let loader = BatchLoader(dataset: dataset, batchSize: n, shuffle: false, generator: RandomGenerator(seed: 0))
        return try calibrateFeatureScale(images: loader.batch(indices: Array(0..<n)).images)
    }
}
