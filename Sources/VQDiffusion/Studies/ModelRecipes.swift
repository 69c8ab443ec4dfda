import Engine
import Foundation

// The prerequisite models of the studies, each described by a recipe: everything that decides the
// trained weights. A recipe's key is a hash of its JSON form, so a model is trained once and then
// found again by any study that asks for the same recipe (ModelStore).

/// A model the studies need, trained from nothing but its recipe.
public protocol ModelRecipe: Codable, Equatable, Sendable {
    /// "vqvae", "evaluator", "diffusion" or "ar": the file name's prefix.
    static var kind: String { get }
    /// A short human-readable description ("vqvae shapes K=64").
    var summary: String { get }
    /// Trains the model and writes it to `url` (a checkpoint that `vqd sample`/`vqd eval` read).
    /// `store` provides the models this one depends on; `resume` is a checkpoint of an
    /// interrupted run of the same recipe, when there is one.
    func train(to url: URL, checkpoint: URL, store: ModelStore) throws
}

extension ModelRecipe {
    /// 16 hex digits identifying the recipe (FNV-1a of its kind and sorted-key JSON).
    public var key: String {
        let json = (try? sortedJSON(self)) ?? summary
        let hash = TokenCache.fnv1a(Array((Self.kind + ":" + json).utf8))
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// "<kind>-<key>.safetensors".
    public var fileName: String { "\(Self.kind)-\(key).safetensors" }
}

/// A recipe of `kind` ("vqvae", "evaluator" or "generator") from its JSON (as the index and
/// `vqd models list` show it).
public func decodeModelRecipe(kind: String, json: String) throws -> any ModelRecipe {
    let data = Data(json.utf8)
    do {
        switch kind {
        case VQVAERecipe.kind: return try JSONDecoder().decode(VQVAERecipe.self, from: data)
        case EvaluatorRecipe.kind: return try JSONDecoder().decode(EvaluatorRecipe.self, from: data)
        case GeneratorRecipe.kind: return try JSONDecoder().decode(GeneratorRecipe.self, from: data)
        default: throw ConfigurationError("unknown model kind '\(kind)': use vqvae, evaluator or generator")
        }
    } catch let error as DecodingError {
        throw ConfigurationError("the recipe is not a valid \(kind) recipe: \(error)")
    }
}

// MARK: - VQ-VAE

/// A VQ-VAE trained on one dataset's train split.
public struct VQVAERecipe: ModelRecipe {
    public static let kind = "vqvae"
    public var dataset: DatasetSelection.Source
    public var imageSize: Int = 32
    public var codes: Int = 512
    public var codeDimension: Int = 64
    public var downsampling: Int = 4
    public var steps: Int = 2500
    public var batchSize: Int = 32
    public var learningRate: Float = 2e-3
    public var seed: UInt64 = 0

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

    public var summary: String { "vqvae \(dataset.rawValue) \(imageSize)px K=\(codes) f=\(downsampling), \(steps) steps" }

    public var data: DatasetSelection { DatasetSelection(source: dataset, split: .train, imageSize: imageSize) }

    public var configuration: VQVAEConfiguration {
        VQVAEConfiguration(channels: dataset == .fashion ? 1 : 3, downsampling: downsampling, codes: codes,
                           codeDimension: codeDimension)
    }

    public var options: TrainingRunSettings {
        TrainingRunSettings.vqvae.with(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
    }

    public func train(to url: URL, checkpoint: URL, store: ModelStore) throws {
        let data = self.data
        let dataset = try data.open()
        let exists = FileManager.default.fileExists(atPath: checkpoint.path)
        let trainer = exists
            ? try VQVAETrainer(resuming: checkpoint, configuration: configuration, options: options, data: data, dataset: dataset)
            : try VQVAETrainer(configuration: configuration, options: options, data: data, dataset: dataset)
        let run = try store.database?.startRun(experiment: "vqvae", name: "prerequisite \(summary)", profile: store.profile,
                                               threads: BLAS.threads)
        run?.logParams(["recipe": try sortedJSON(self), "key": key, "out": portablePath(url)])
        do {
            let progress = store.showProgress ? ProgressBar(total: max(1, steps - trainer.step), label: "vqvae \(dataset.count)") : nil
            let first = trainer.step
            while !trainer.isFinished {
                let m = trainer.trainStep()
                if m.step % 25 == 0 || trainer.isFinished {
                    run?.logMetric("train/loss", m.loss, step: m.step)
                    run?.logMetric("train/psnr", m.psnr, step: m.step)
                    run?.logMetric("train/usage", m.usage, step: m.step)
                }
                progress?.update(m.step - first, ["psnr": m.psnr])
                if m.step % 500 == 0 && !trainer.isFinished { try trainer.saveCheckpoint(to: checkpoint) }
            }
            progress?.finish()
            try trainer.saveModel(to: url)
            try run?.finish()
        } catch {
            try? run?.finish(status: .failed)
            throw error
        }
    }
}

// MARK: - Evaluator

/// The evaluator network of one dataset (features for FID/KID, attribute heads for alignment).
public struct EvaluatorRecipe: ModelRecipe {
    public static let kind = "evaluator"
    public var dataset: DatasetSelection.Source
    public var imageSize: Int = 32
    public var steps: Int = 4000
    public var batchSize: Int = 64
    public var learningRate: Float = 2e-3
    public var seed: UInt64 = 0
    /// Training images that set the feature scale.
    public var calibrationCount: Int = 2000

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

    public var summary: String { "evaluator \(dataset.rawValue) \(imageSize)px, \(steps) steps" }

    public func train(to url: URL, checkpoint: URL, store: ModelStore) throws {
        let task: EvaluatorTask = dataset == .fashion ? .fashion : .shapes
        let trainCount = dataset == .shapes ? max(ShapesConfiguration.defaultCount(.train), steps * batchSize) : nil
        let train = try DatasetSelection(source: dataset, split: .train, imageSize: imageSize, count: trainCount).open()
        let training = TrainingRunSettings.evaluator.with(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
        let trainer = try EvaluatorTrainer(EvaluatorConfiguration.standard(task, imageSize: imageSize), training: training,
                                           dataset: train)
        let run = try store.database?.startRun(experiment: "evaluator", name: "prerequisite \(summary)", profile: store.profile,
                                               threads: BLAS.threads)
        run?.logParams(["recipe": try sortedJSON(self), "key": key, "out": portablePath(url)])
        do {
            let progress = store.showProgress ? ProgressBar(total: steps, label: "evaluator") : nil
            for step in 1...steps {
                let loss = try trainer.trainStep()
                if step % 25 == 0 || step == steps { run?.logMetric("train/loss", loss, step: step) }
                progress?.update(step, ["loss": Double(loss)])
            }
            progress?.finish()
            let scale = try trainer.evaluator.calibrate(on: train, count: calibrationCount)
            run?.logParam("feature_scale", scale)
            try trainer.evaluator.save(to: url, generator: trainer.generator, step: steps, extra: ["run_id": run?.id ?? ""])
            try run?.finish()
        } catch {
            try? run?.finish(status: .failed)
            throw error
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

// MARK: - Generators

/// Which generator a recipe trains.
public enum GeneratorFamily: String, Codable, Sendable, CaseIterable {
    /// VQ-Diffusion.
    case diffusion
    /// The autoregressive baseline, matched in parameters.
    case ar
}

/// Training settings shared by VQ-Diffusion and VQ-AR (the diffusion-only ones are ignored by AR).
public struct GeneratorSettings: Codable, Equatable, Sendable {
    /// Model preset: "tiny" or "small".
    public var preset: String = "small"
    /// "minilm" (frozen, pretrained) or "tiny" (trained jointly).
    public var textEncoder: TextEncoderChoice = .minilm
    /// Training images (the first N of the train split; nil = the whole split, Shapes 20,000).
    public var trainCount: Int? = nil
    public var steps: Int = 4000
    public var batchSize: Int = 32
    public var learningRate: Float = 5e-4
    public var warmupSteps: Int = 300
    public var seed: UInt64 = 0
    /// Diffusion: T.
    public var diffusionSteps: Int = 100
    /// Diffusion: γ̄_T (0.9 in the paper).
    public var gammaFinal: Double = 0.9
    /// Diffusion: x0-predicting (reparameterized) or direct.
    public var parameterization: DiffusionParameterization = .reparameterized
    /// Diffusion: λ, the auxiliary loss weight.
    public var auxiliaryWeight: Double = 5e-4
    /// Diffusion: scale the auxiliary loss by 2 − t/T.
    public var adaptiveAuxiliary: Bool = false
    /// Diffusion: how t is drawn.
    public var timeSampling: TimeSampling = .importance

    public init() {}
}

/// VQ-Diffusion or VQ-AR trained on the tokens of a VQ-VAE.
public struct GeneratorRecipe: ModelRecipe {
    public static let kind = "generator"
    public var family: GeneratorFamily
    public var vqvae: VQVAERecipe
    public var settings: GeneratorSettings

    public init(family: GeneratorFamily, vqvae: VQVAERecipe, settings: GeneratorSettings) {
        self.family = family
        self.vqvae = vqvae
        self.settings = settings
    }

    enum CodingKeys: String, CodingKey { case family, vqvae, settings }

    /// VQ-AR ignores the diffusion-only settings: they are written at their defaults, so that the
    /// baseline's key (and model) does not change with, say, the diffusion loss weights.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(family, forKey: .family)
        try c.encode(vqvae, forKey: .vqvae)
        var s = settings
        if family == .ar {
            let d = GeneratorSettings()
            (s.diffusionSteps, s.gammaFinal, s.parameterization) = (d.diffusionSteps, d.gammaFinal, d.parameterization)
            (s.auxiliaryWeight, s.adaptiveAuxiliary, s.timeSampling) = (d.auxiliaryWeight, d.adaptiveAuxiliary, d.timeSampling)
        }
        try c.encode(s, forKey: .settings)
    }

    public var summary: String {
        var s = "\(family.rawValue) \(settings.preset) on \(vqvae.dataset.rawValue), \(settings.steps) steps, seed \(settings.seed)"
        if family == .diffusion {
            s += ", T=\(settings.diffusionSteps), γ̄_T=\(settings.gammaFinal)"
            if settings.parameterization != .reparameterized { s += ", \(settings.parameterization.rawValue)" }
        }
        return s
    }

    public func train(to url: URL, checkpoint: URL, store: ModelStore) throws {
        let s = settings
        let vqvaeURL = try store.model(vqvae)
        let count = s.trainCount ?? (vqvae.dataset == .shapes ? ShapesConfiguration.defaultCount(.train) : nil)
        let selection = DatasetSelection(source: vqvae.dataset, split: .train, imageSize: vqvae.imageSize, count: count)
        let data = try TokenCache.tokens(vqvae: vqvaeURL, data: selection, directory: store.tokenCache)
        var rng = RandomGenerator(seed: s.seed).derived(7)
        let encoder = try makeTextEncoder(choice: s.textEncoder, captions: data.captions, cacheDirectory: store.textFeatureCache,
                                          showProgress: store.showProgress, using: &rng)
        var model = DiffusionModelConfiguration.preset(s.preset, classes: data.codes, gridHeight: data.height,
                                                       gridWidth: data.width, steps: s.diffusionSteps, textWidth: encoder.width)
        guard model != nil else { throw ConfigurationError("unknown model preset '\(s.preset)': use tiny or small") }
        model!.parameterization = s.parameterization
        // MiniLM's features are unit vectors; the model reads them at unit element scale.
        model!.textScale = s.textEncoder == .minilm ? Float(encoder.width).squareRoot() : nil
        let output = TrainingOutput(checkpoint: checkpoint, checkpointEvery: 250,
                                    resume: FileManager.default.fileExists(atPath: checkpoint.path) ? checkpoint : nil,
                                    database: store.database, experiment: "train-\(family.rawValue)",
                                    runName: "prerequisite \(summary)", logEvery: 25, showProgress: store.showProgress)
        let training = GeneratorTrainingConfiguration(batchSize: s.batchSize, totalSteps: s.steps, learningRate: s.learningRate,
                                                      warmupSteps: s.warmupSteps, seed: s.seed)
        switch family {
        case .diffusion:
            var diffusion = DiffusionConfiguration.paper(classes: data.codes, steps: s.diffusionSteps)
            if s.gammaFinal != 0.9 { diffusion = try diffusion.withGammaFinal(s.gammaFinal) }
            let diffusionTraining = DiffusionTrainingConfiguration(
                training, timeSampling: s.timeSampling,
                loss: DiffusionLossConfiguration(auxiliaryWeight: s.auxiliaryWeight, adaptiveAuxiliaryWeight: s.adaptiveAuxiliary))
            let configuration = DiffusionRunConfiguration(model: model!, diffusion: diffusion, training: diffusionTraining,
                                                          textEncoder: s.textEncoder.rawValue, vqvae: portablePath(vqvaeURL))
            try DiffusionTrainer.run(configuration: configuration, dataset: data, textEncoder: encoder, steps: s.steps,
                                     output: output)
        case .ar:
            let configuration = ARRunConfiguration(model: .matching(model!), training: training,
                                                   textEncoder: s.textEncoder.rawValue, vqvae: portablePath(vqvaeURL))
            try ARTrainer.run(configuration: configuration, dataset: data, textEncoder: encoder, steps: s.steps,
                              output: output, comparedWith: model!)
        }
        try SamplingModelFile.export(checkpoint: checkpoint, to: url)
    }
}
