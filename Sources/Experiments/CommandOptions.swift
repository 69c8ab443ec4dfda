import ArgumentParser
import Engine
import Foundation
import VQDiffusion

// The option groups that several commands share, written once: the results database, and the
// model store's folders. Defaults are under the project root (`ProjectRoot`: $VQD_HOME, or the
// project folder found from the current folder or the executable), so commands work from any folder.

/// `--db FILE`: the results database.
public struct DatabaseOption: ParsableArguments {
    @Option(help: "The results database (default results/results.sqlite under the project root, or $VQD_HOME).")
    public var db: String = ResultsDatabase.defaultPath

    public init() {}

    /// The database, created when missing.
    public func open() throws -> ResultsDatabase { try ResultsDatabase(path: db) }

    /// For training commands: the database, created when missing — on rank 0 alone of an MPI job
    /// (the other ranks neither log nor open it; nil there).
    public func openForTraining() throws -> ResultsDatabase? { ProcessGroup.world.isRoot ? try open() : nil }

    /// The database, which must exist (for reading).
    public func openExisting() throws -> ResultsDatabase { try ResultsDatabase(path: db, create: false) }
}

/// Where the model store looks: the committed folder and the cache.
public struct ModelFolderOptions: ParsableArguments {
    @Option(help: "The committed models folder (with its index.json).")
    public var models = ProjectRoot.path("results/models")
    @Option(help: "The folder of models trained on demand.")
    public var cache = ProjectRoot.path("cache/models")

    public init() {}

    public func store(database: ResultsDatabase? = nil, profile: String? = nil, showProgress: Bool = true) -> ModelStore {
        ModelStore(committed: URL(fileURLWithPath: models), cache: URL(fileURLWithPath: cache), database: database,
                   profile: profile, showProgress: showProgress)
    }
}

extension ModelStore {
    /// The store at the default folders under the project root.
    public static func standard(database: ResultsDatabase?, profile: String?, showProgress: Bool = true) -> ModelStore {
        ModelStore(database: database, profile: profile, showProgress: showProgress)
    }
}

/// The default folders of the caches, under the project root.
public enum DefaultPaths {
    /// Frozen text features by caption (the encoder is frozen, so a caption's features never change).
    public static var textFeatures: URL { URL(fileURLWithPath: ProjectRoot.path("cache/text-features")) }
}

extension StepSkipping: ExpressibleByArgument {}
extension SamplingOrder: ExpressibleByArgument {}

/// How a generator draws its samples: the options of `vqd sample` and `vqd eval`.
public struct SamplingOptions: ParsableArguments {
    @Option(help: "Diffusion: network evaluations S (T/Δt), e.g. 100, 50, 25 or 10.")
    public var steps: Int = 25
    @Option(help: "Truncation rate r in (0, 1]; 1 keeps every code.")
    public var truncation: Double = 0.86
    @Option(help: "Diffusion: how skipped steps are taken: exact or referenceApproximation.")
    public var skipping: StepSkipping = .exact
    @Option(help: "Classifier-free guidance scale s, both families (1 = none, the paper's sampling; s > 1 strengthens what the caption changes). Needs a model trained with --caption-dropout; VQ-AR then decodes a second, unconditional stream.")
    public var guidance: Double = 1
    @Option(help: "Diffusion: which [MASK] tokens each step fills in: posterior (the paper's: random places) or purity (the schedule's count, purest predictions first, drawn codes kept).")
    public var order: SamplingOrder = .posterior
    @Flag(name: .customLong("kv-cache"), inversion: .prefixedNo,
          help: "AR models: keep the attention keys/values of earlier tokens instead of recomputing the prefix.")
    public var kvCache = true
    @Option(help: "AR models: divide the logits by this; 0 takes the most likely code.")
    public var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "AR models: draw only among the k most likely codes.")
    public var topK: Int?
    @Flag(name: .customLong("raw-weights"), help: "Use the raw weights instead of the EMA weights.")
    public var rawWeights = false
    @Option(name: .customLong("text-length"), help: "Padded caption length in tokens (as in training).")
    public var textLength: Int = 32

    public init() {}

    public func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps).") }
        guard truncation > 0 && truncation <= 1 else { throw ValidationError("--truncation must lie in (0, 1], got \(truncation).") }
        guard guidance >= 0 && guidance.isFinite else { throw ValidationError("--guidance must be a number ≥ 0, got \(guidance).") }
        guard temperature >= 0 && temperature.isFinite else {
            throw ValidationError("--temperature must be finite and at least 0, got \(temperature).")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK).") }
    }

    /// The options as the generator takes them (truncation 1 keeps every code).
    public var generatorOptions: GeneratorSamplingOptions {
        var o = GeneratorSamplingOptions(steps: steps, truncation: truncation < 1 ? truncation : nil, skipping: skipping,
                                         temperature: temperature, topK: topK, useCache: kvCache, useEMA: !rawWeights,
                                         textLength: textLength)
        o.guidance = guidance
        o.order = order
        return o
    }

    /// The options as a run records them.
    public var logged: [String: String] {
        ["steps": String(steps), "truncation": String(truncation), "skipping": skipping.rawValue, "kv_cache": String(kvCache),
         "guidance": String(guidance), "order": order.rawValue, "temperature": String(temperature),
         "top_k": topK.map(String.init) ?? "none", "raw_weights": String(rawWeights)]
    }
}

/// `--recipe FILE` and `--show-recipe`, the options every train command shares: the recipe a
/// command line describes can be printed, and a recipe file trained instead.
public struct RecipeFileOptions: ParsableArguments {
    @Option(name: .customLong("recipe"),
            help: "Train this recipe file (as --show-recipe prints it) instead of one built from the options; the options that describe the model are then ignored.")
    public var file: String?
    @Flag(name: .customLong("show-recipe"), help: "Print the recipe these options describe (every field, as JSON) and exit.")
    public var show = false

    public init() {}

    /// The recipe to train: read from --recipe, or `build()` from the options; validated. Nil
    /// when --show-recipe printed it and there is nothing more to do. Mistakes are usage errors.
    public func recipe<R: ModelRecipe>(_ build: () throws -> R) throws -> R? {
        let recipe: R
        do {
            recipe = try file.map { try RecipeFile(contentsOf: $0, kind: R.kind).recipe as! R } ?? build()
            try recipe.validate()
        } catch let error as ConfigurationError { throw ValidationError(error.message) }
        guard !show else {
            print(try RecipeFile(recipe).json())
            return nil
        }
        return recipe
    }
}

extension DatasetSelection.Source: ExpressibleByArgument {}
extension DatasetSplit: ExpressibleByArgument {}

/// The options that pick a dataset, shared by `vqd dataset export`, `sheet` and `stats`.
public struct DatasetSourceOptions: ParsableArguments {
    public init() {}

    @Option(help: "The dataset: shapes, fashion or folder.")
    public var dataset: DatasetSelection.Source = .shapes

    @Option(help: "The split (Shapes: train, val, test, novel; Fashion-MNIST: train, val, test; ignored for a folder). Default: train; `stats` counts every split.")
    public var split: DatasetSplit?

    @Option(help: "Image side. Shapes: a multiple of 8 from 16 to 128 (default 32); Fashion-MNIST: 32 only; folder: default the first image's side.")
    public var size: Int?

    @Option(help: "Dataset seed (Shapes scenes, Fashion-MNIST caption templates).")
    public var seed: UInt64 = 0

    @Option(help: "With --dataset folder: the folder holding the PNG files and captions.jsonl.")
    public var folder: String?

    @Flag(help: "With --dataset folder: resize images of another size to --size (area averaging) instead of rejecting them.")
    public var resize = false

    public func validate() throws {
        try Self.check(dataset: dataset, split: split, size: size, folder: folder, resize: resize)
    }

    /// The checks of a dataset choice, shared with `vqd dataset stats` (whose split is optional).
    public static func check(dataset: DatasetSelection.Source, split: DatasetSplit?, size: Int?, folder: String?, resize: Bool) throws {
        if dataset == .shapes && !ShapesLayout.isValidSize(size ?? 32) {
            throw ValidationError("--size \(size ?? 32) is not supported for Shapes: use a multiple of 8 from 16 to 128.")
        }
        if dataset == .fashion && split == .novel {
            throw ValidationError("Fashion-MNIST has no novel split: use train, val or test.")
        }
        if dataset == .fashion, let size, size != FashionMNIST.paddedSize {
            throw ValidationError("Fashion-MNIST images are \(FashionMNIST.paddedSize)×\(FashionMNIST.paddedSize): leave out --size.")
        }
        if dataset == .folder && folder == nil {
            throw ValidationError("--dataset folder needs --folder DIR (a folder of PNG files plus captions.jsonl).")
        }
        if dataset != .folder && (folder != nil || resize) {
            throw ValidationError("--folder and --resize apply to --dataset folder only.")
        }
    }

    /// The chosen dataset; Shapes gets `count` samples.
    public func open(count: Int) throws -> any CaptionedDataset {
        switch dataset {
        case .shapes:
            return try ShapesDataset(ShapesConfiguration(imageSize: size ?? 32, seed: seed, split: split ?? .train, count: count))
        case .fashion:
            return try FashionMNIST(split: split ?? .train, seed: seed)
        case .folder:
            return try FolderDataset(directory: URL(fileURLWithPath: folder!), size: size, resize: resize)
        }
    }
}

/// A labelled dataset (shapes or fashion) at an image size: what the evaluator commands read.
public struct LabelledDatasetOptions: ParsableArguments {
    public init() {}

    @Option(help: "The dataset: shapes or fashion.")
    public var dataset: DatasetSelection.Source = .shapes
    @Option(help: "Image side (Shapes: a multiple of 8 from 16 to 128; Fashion-MNIST: 32).")
    public var size: Int = 32

    public func validate() throws {
        if dataset == .folder { throw ValidationError("a folder has no labels to score: use --dataset shapes or fashion.") }
        try DatasetSourceOptions.check(dataset: dataset, split: nil, size: size, folder: nil, resize: false)
    }
}

/// A labelled dataset's held-out split at an image size: what `vqd eval`, `vqd evaluator test` and
/// `vqd evaluator fidelity` score.
public struct HeldOutOptions: ParsableArguments {
    public init() {}

    @OptionGroup public var labelled: LabelledDatasetOptions
    @Option(help: "The held-out split (test or val; Shapes also novel).")
    public var split: DatasetSplit = .test

    public var dataset: DatasetSelection.Source { labelled.dataset }
    public var size: Int { labelled.size }

    public func validate() throws {
        if dataset == .fashion && split == .novel { throw ValidationError("Fashion-MNIST has no novel split: use val or test.") }
    }
}

extension Precision: ExpressibleByArgument {}

/// `--precision`: the operands of the matrix products and convolutions.
public struct PrecisionOption: ParsableArguments {
    @Option(help: """
        Operands of the matrix products and convolutions: fp32, or bf16 (bf16 operands with fp32 \
        accumulation, on oneDNN; needs a CPU with AVX512_BF16). Default: fp32, except that vqd train \
        trains generators in bf16 where the CPU has AVX512_BF16 (and VQD_BACKEND is not openblas). \
        Training records it in the recipe.
        """)
    public var precision: Precision?

    public init() {}

    /// Checks the precision against this machine and makes it this process's (the default when none was given).
    @discardableResult
    public func use() throws -> Precision { try ComputePolicy.use(precision) }

    /// The precision a VQ-VAE or evaluator recipe built from the options trains in.
    public var forRecipe: Precision { precision ?? ComputePolicy.defaultPrecision }

    /// The precision a generator recipe built from the options trains in.
    public var forGeneratorRecipe: Precision { precision ?? ComputePolicy.defaultGeneratorTrainingPrecision }
}
