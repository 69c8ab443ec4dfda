import Engine
import Foundation
import VQDiffusion

/// Which generator a recipe trains.
public enum GeneratorFamily: String, Codable, Sendable, CaseIterable {
    /// VQ-Diffusion.
    case diffusion
    /// The autoregressive baseline, matched in parameters.
    case ar

    /// The family's name in tables: "VQ-Diffusion" or "VQ-AR".
    public var label: String { self == .diffusion ? "VQ-Diffusion" : "VQ-AR" }
}

/// Every setting of a generator's training besides its tokenizer: data, text, model, diffusion,
/// loss, optimizer and parallelism. VQ-Diffusion and VQ-AR share it; the diffusion-only settings
/// do not apply to VQ-AR (its recipe writes them at their defaults).
public struct GeneratorSettings: Codable, Equatable, Sendable {
    /// Model preset: "tiny" or "small".
    public var preset: String = "small"
    /// "minilm" (frozen, pretrained) or "tiny" (trained jointly).
    public var textEncoder: TextEncoderChoice = .minilm
    /// Training images (the first N of the split; nil = the whole split, for Shapes its 50,000).
    public var trainCount: Int? = nil
    /// Optimizer steps of the whole schedule.
    public var steps: Int = 4000
    public var batchSize: Int = 32
    /// Peak learning rate.
    public var learningRate: Float = 5e-4
    public var warmupSteps: Int = 300
    /// Seed of initialisation, data order and noise.
    public var seed: UInt64 = 0
    /// Diffusion: T.
    public var diffusionSteps: Int = 100
    /// Diffusion: γ̄_T (0.9 in the paper; 0 replace-only, 1 mask-only).
    public var gammaFinal: Double = 0.9
    /// Diffusion: x0-predicting (reparameterized) or direct.
    public var parameterization: DiffusionParameterization = .reparameterized
    /// Diffusion: λ, the auxiliary loss weight.
    public var auxiliaryWeight: Double = 5e-4
    /// Diffusion: scale the auxiliary loss by 2 − t/T.
    public var adaptiveAuxiliary: Bool = false
    /// Diffusion: how t is drawn.
    public var timeSampling: TimeSampling = .importance

    // Schema 2: every further option of `vqd train`.

    /// The split trained on.
    public var split: DatasetSplit = .train
    /// Dataset seed (Shapes scenes, caption templates).
    public var dataSeed: UInt64 = 0
    /// Random tokens (K = 512, 8×8) and random text features instead of a dataset: speed runs.
    public var synthetic: Bool = false
    /// Padded caption length in tokens.
    public var textLength: Int = MiniLMTextEncoder.defaultMaxLength
    /// Diffusion: the released code's schedule (γ̄_T = 0.99999, effectively mask-only); overrides gammaFinal.
    public var referenceSchedule: Bool = false
    /// Diffusion: how the auxiliary loss at [MASK] positions is averaged.
    public var auxiliaryNormalization: DiffusionAuxiliaryNormalization = .tokens
    /// Diffusion: loss weight of positions where x_t is [MASK], and where it is a real code.
    public var maskedWeight: Double = 1
    public var unmaskedWeight: Double = 1
    /// Probability of training on the null text (what classifier-free guidance needs), both families.
    public var captionDropout: Double = 0
    /// Diffusion: standard deviation of the token and position embeddings at initialisation.
    public var embeddingStd: Float = Embedding.defaultStd
    /// Diffusion: how the row and column position tables start.
    public var positionInitialisation: PositionInitialisation = .random
    /// A depthwise 3×3 convolution over the token grid in every block's MLP (not in the paper); for
    /// VQ-AR a causal one that reads only the row above and the left neighbour.
    public var gridConvolution: Bool = false
    /// Floor of the cosine learning-rate decay.
    public var minimumLearningRate: Float = 1e-5
    /// AdamW weight decay of weight matrices.
    public var weightDecay: Float = 0.045
    /// Gradient-norm clipping threshold.
    public var gradientClip: Float = 1
    /// EMA decay of the sampling weights.
    public var emaDecay: Float = 0.999
    /// Operands of the matrix products and convolutions: fp32, or bf16 with fp32 accumulation
    /// (master weights, optimizer state, norms, softmax and losses stay fp32).
    public var precision: Precision = .fp32
    /// Data-parallel shards per batch (0: one per thread when the text encoder is frozen; 1: one batch
    /// whose kernels split over the threads). Changes the float summation order, so it is part of the recipe.
    public var shards: Int = 0

    public init() {}

    /// The settings that only VQ-Diffusion reads, at their defaults.
    func withoutDiffusionOptions() -> GeneratorSettings {
        var s = self
        let d = GeneratorSettings()
        (s.diffusionSteps, s.gammaFinal, s.parameterization) = (d.diffusionSteps, d.gammaFinal, d.parameterization)
        (s.auxiliaryWeight, s.adaptiveAuxiliary, s.timeSampling) = (d.auxiliaryWeight, d.adaptiveAuxiliary, d.timeSampling)
        (s.referenceSchedule, s.auxiliaryNormalization) = (d.referenceSchedule, d.auxiliaryNormalization)
        (s.maskedWeight, s.unmaskedWeight) = (d.maskedWeight, d.unmaskedWeight)
        return s
    }
}

/// VQ-Diffusion or VQ-AR trained on the tokens of a VQ-VAE.
public struct GeneratorRecipe: ModelRecipe {
    public static let kind = "generator"
    public var family: GeneratorFamily = .diffusion
    public var vqvae: VQVAERecipe = .defaults
    public var settings = GeneratorSettings()

    public init(family: GeneratorFamily, vqvae: VQVAERecipe, settings: GeneratorSettings) {
        self.family = family
        self.vqvae = vqvae
        self.settings = settings
    }

    public static let defaults = GeneratorRecipe(family: .diffusion, vqvae: .defaults, settings: GeneratorSettings())
    public static let firstSchema = """
        {"family":0,"settings":{"adaptiveAuxiliary":0,"auxiliaryWeight":0,"batchSize":0,"diffusionSteps":0,\
        "gammaFinal":0,"learningRate":0,"parameterization":0,"preset":0,"seed":0,"steps":0,"textEncoder":0,\
        "timeSampling":0,"warmupSteps":0},"vqvae":\(VQVAERecipe.firstSchema)}
        """

    /// VQ-AR ignores the diffusion-only settings, and synthetic data the tokenizer: they are
    /// written at their defaults, so that the model's key does not change with them.
    public var canonical: GeneratorRecipe {
        var r = self
        if family == .ar { r.settings = settings.withoutDiffusionOptions() }
        if settings.synthetic { r.vqvae = .defaults }
        return r
    }

    public var summary: String {
        let s = settings
        var text = "\(family.rawValue) \(s.preset) on \(s.synthetic ? "synthetic tokens" : vqvae.dataset.rawValue), "
            + "\(s.steps) steps, seed \(s.seed)"
        if family == .diffusion {
            text += s.referenceSchedule ? ", T=\(s.diffusionSteps), reference schedule" : ", T=\(s.diffusionSteps), γ̄_T=\(s.gammaFinal)"
            if s.parameterization != .reparameterized { text += ", \(s.parameterization.rawValue)" }
            if s.gridConvolution { text += ", grid conv" }
        }
        return text
    }

    public func validate() throws {
        let s = settings
        guard s.steps >= 1 else { throw ConfigurationError("--steps must be at least 1, got \(s.steps).") }
        guard s.batchSize >= 1 else { throw ConfigurationError("--batch-size must be at least 1, got \(s.batchSize).") }
        guard ["tiny", "small"].contains(s.preset) else { throw ConfigurationError("--preset must be tiny or small, got \(s.preset).") }
        guard s.diffusionSteps >= 2 else { throw ConfigurationError("--diffusion-steps must be at least 2, got \(s.diffusionSteps).") }
        guard s.learningRate > 0 && s.learningRate.isFinite else { throw ConfigurationError("--lr must be a positive number, got \(s.learningRate).") }
        guard s.warmupSteps >= 0 else { throw ConfigurationError("--warmup must be 0 or more, got \(s.warmupSteps).") }
        guard s.textLength >= 1 else { throw ConfigurationError("--text-length must be at least 1, got \(s.textLength).") }
        guard s.captionDropout >= 0 && s.captionDropout < 1 else {
            throw ConfigurationError("--caption-dropout must lie in [0, 1), got \(s.captionDropout).")
        }
        guard s.embeddingStd > 0 && s.embeddingStd.isFinite else {
            throw ConfigurationError("--embedding-std must be a positive number, got \(s.embeddingStd).")
        }
        guard s.shards >= 0 && s.shards <= s.batchSize else {
            throw ConfigurationError("--shards must lie in 1…\(s.batchSize) (--batch-size), got \(s.shards).")
        }
        if let count = s.trainCount, count < 1 { throw ConfigurationError("--count must be at least 1, got \(count).") }
        guard family == .diffusion else {
            let d = GeneratorSettings()
            guard s.embeddingStd == d.embeddingStd else {
                throw ConfigurationError("--embedding-std is a VQ-Diffusion option; VQ-AR keeps its own initialisation.")
            }
            guard s.positionInitialisation == d.positionInitialisation else {
                throw ConfigurationError("--position-init is a VQ-Diffusion option; VQ-AR keeps its own initialisation.")
            }
            return
        }
        if !s.referenceSchedule && s.gammaFinal != 0.9 {
            _ = try DiffusionConfiguration.paper(classes: 2, steps: s.diffusionSteps).withGammaFinal(s.gammaFinal)
        }
    }

    // MARK: Training

    /// The token grids and captions trained on: the VQ-VAE's tokens of the recipe's split (the VQ-VAE
    /// from `store`, trained first when missing), or random tokens for a synthetic run.
    func tokens(store: ModelStore) throws -> (data: TokenizedDataset, vqvae: URL?) {
        let s = settings
        if s.synthetic {
            return (SyntheticTokens.dataset(count: 1024, codes: 512, height: 8, width: 8, seed: s.seed), nil)
        }
        let vqvaeURL = try store.model(vqvae)
        let count = s.trainCount ?? (vqvae.dataset == .shapes ? ShapesConfiguration.defaultCount(.train) : nil)
        var selection = vqvae.data
        selection.split = s.split.rawValue
        selection.seed = s.dataSeed
        selection.count = count
        // Under MPI rank 0 tokenizes and caches first; the other ranks then read its cache, and
        // check that they all train on the same grids and captions.
        let group = ProcessGroup.world
        let data = try group.rootFirst {
            try TokenCache.tokens(vqvae: vqvaeURL, data: selection, directory: store.tokenCache,
                                  progress: ProgressBar.reporter(label: "tokenize", enabled: store.showProgress))
        }
        if group.isDistributed {
            let fingerprint = data.tokens.withUnsafeBytes { TokenCache.fnv1a($0) }
                ^ TokenCache.fnv1a(Array(data.captions.joined(separator: "\n").utf8))
            try group.checkAgreement(fingerprint, "the token grids and captions trained on")
        }
        return (data, vqvaeURL)
    }

    /// The text encoder: random features for a synthetic run, else MiniLM (frozen, every caption's
    /// features precomputed and cached) or the small trainable encoder.
    func textEncoder(captions: [String], store: ModelStore) throws -> any TextEncoder {
        if settings.synthetic { return RandomTextEncoder(width: 384, maxLength: settings.textLength) }
        var rng = RandomGenerator(seed: settings.seed).derived(7)
        // Under MPI rank 0 computes and caches the features first; the other ranks then read them.
        return try ProcessGroup.world.rootFirst {
            try makeTextEncoder(choice: settings.textEncoder, captions: captions, maxLength: settings.textLength,
                                cacheDirectory: store.textFeatureCache,
                                progress: ProgressBar.reporter(label: "text features", enabled: store.showProgress),
                                using: &rng)
        }
    }

    /// The denoising transformer's shape for tokens `data` and text features `textWidth` wide.
    func diffusionModel(_ data: TokenizedDataset, textWidth: Int) throws -> DiffusionModelConfiguration {
        let s = settings
        guard var model = DiffusionModelConfiguration.preset(s.preset, classes: data.codes, gridHeight: data.height,
                                                             gridWidth: data.width, steps: s.diffusionSteps,
                                                             textWidth: textWidth) else {
            throw ConfigurationError("unknown model preset '\(s.preset)': use tiny or small")
        }
        model.parameterization = s.parameterization
        // MiniLM's features are unit vectors; the model reads them at unit element scale.
        model.textScale = s.textEncoder == .minilm && !s.synthetic ? Float(textWidth).squareRoot() : 1
        (model.embeddingStd, model.positionInitialisation) = (s.embeddingStd, s.positionInitialisation)
        model.gridConvolution = s.gridConvolution
        return model
    }

    /// Batch, schedule, optimizer, EMA and seed.
    var training: GeneratorTrainingConfiguration {
        let s = settings
        return GeneratorTrainingConfiguration(batchSize: s.batchSize, totalSteps: s.steps, learningRate: s.learningRate,
                                              warmupSteps: s.warmupSteps, minimumLearningRate: s.minimumLearningRate,
                                              weightDecay: s.weightDecay, beta2: 0.96, gradientClip: s.gradientClip,
                                              emaDecay: s.emaDecay, seed: s.seed, captionDropout: s.captionDropout)
    }

    /// The forward process: the paper's schedule with γ̄_T, or the released code's.
    func diffusion(classes: Int) throws -> DiffusionConfiguration {
        let s = settings
        if s.referenceSchedule { return .referenceMaskOnly(classes: classes, steps: s.diffusionSteps) }
        let paper = DiffusionConfiguration.paper(classes: classes, steps: s.diffusionSteps)
        return s.gammaFinal == 0.9 ? paper : try paper.withGammaFinal(s.gammaFinal)
    }

    /// A trainer of this recipe, ready to step: its data and text encoder, what `train` logs about it.
    public struct PreparedTrainer {
        public let trainer: any GeneratorTrainer
        /// The run configuration as JSON, the parameter count, the shards per batch (over all MPI
        /// ranks), a summary line.
        public let configuration: String
        public let parameters: Int
        public let shardCount: Int
        public let summary: String
    }

    /// Builds the recipe's trainer at step 0: its tokens (the VQ-VAE trained first when missing),
    /// text encoder, model and optimizer.
    public func prepareTrainer(store: ModelStore) throws -> PreparedTrainer {
        try validate()
        let s = settings
        let (data, vqvaeURL) = try tokens(store: store)
        let encoder = try textEncoder(captions: data.captions, store: store)
        let model = try diffusionModel(data, textWidth: encoder.width)
        let encoderName = s.synthetic ? "synthetic" : s.textEncoder.rawValue
        let vqvaePath = vqvaeURL.map(portablePath)
        let shards = s.shards == 0 ? nil : s.shards
        switch family {
        case .diffusion:
            let configuration = DiffusionRunConfiguration(
                model: model, diffusion: try diffusion(classes: data.codes),
                training: DiffusionTrainingConfiguration(
                    training, timeSampling: s.timeSampling,
                    loss: DiffusionLossConfiguration(auxiliaryWeight: s.auxiliaryWeight, adaptiveAuxiliaryWeight: s.adaptiveAuxiliary,
                                                     maskedWeight: s.maskedWeight, unmaskedWeight: s.unmaskedWeight,
                                                     auxiliaryNormalization: s.auxiliaryNormalization)),
                textEncoder: encoderName, vqvae: vqvaePath)
            let trainer = try DiffusionTrainer(configuration: configuration, dataset: data, textEncoder: encoder, shards: shards)
            return PreparedTrainer(trainer: trainer, configuration: try SchemaJSON.encode(configuration),
                                   parameters: trainer.model.parameterCount,
                                   shardCount: (trainer.dataParallel?.shardCount ?? 1) * trainer.group.size,
                                   summary: trainer.summaryLine)
        case .ar:
            let configuration = ARRunConfiguration(model: .matching(model), training: training, textEncoder: encoderName,
                                                   vqvae: vqvaePath)
            let trainer = try ARTrainer(configuration: configuration, dataset: data, textEncoder: encoder, shards: shards)
            return PreparedTrainer(trainer: trainer, configuration: try SchemaJSON.encode(configuration),
                                   parameters: trainer.model.parameterCount,
                                   shardCount: (trainer.dataParallel?.shardCount ?? 1) * trainer.group.size,
                                   summary: trainer.summaryLine(comparedWith: model))
        }
    }

    public var precision: Precision { settings.precision }

    public func trainModel(_ job: TrainingJob, store: ModelStore) throws {
        let s = settings
        let prepared = try prepareTrainer(store: store)
        let trainer = prepared.trainer
        var params = ["recipe": try json(), "key": key, "seed": "\(s.seed)", "dataset_count": "\(trainer.dataset.count)",
                      "text_encoder": s.synthetic ? "synthetic" : s.textEncoder.rawValue,
                      "configuration": prepared.configuration, "parameters": "\(prepared.parameters)",
                      "shards": "\(prepared.shardCount)",
                      "step_gflop": "\(trainer.stepFLOPs(textLength: trainer.textEncoder.maxLength) / 1e9)"]
        if let checkpoint = job.output.checkpoint { params["checkpoint"] = portablePath(checkpoint) }
        if family == .ar {
            let matched = try diffusionModel(trainer.dataset, textWidth: trainer.textEncoder.width)
            params["diffusion_parameters"] = "\(ARModelConfiguration.diffusionParameterCount(matched))"
        }
        let lastStep = job.lastStep(of: s.steps)
        if let resume = job.output.resume { try trainer.resume(from: resume) }
        store.log(prepared.summary)
        try TrainingLoop.run(trainer, until: lastStep, label: "train \(family.rawValue)", output: job.output,
                             params: params) { _, run in
            guard lastStep == s.steps, let out = job.model, let checkpoint = job.output.checkpoint else { return }
            try SamplingModelFile.export(checkpoint: checkpoint, to: out)
            try job.afterTraining?(out, run)
        }
    }
}

/// Uniformly random token grids with numbered captions, for speed runs without a tokenizer.
public enum SyntheticTokens {
    public static func dataset(count: Int, codes: Int, height: Int, width: Int, seed: UInt64) -> TokenizedDataset {
        var rng = RandomGenerator(seed: seed).derived(99)
        let tokens = (0..<(count * height * width)).map { _ in Int32(rng.int(below: codes)) }
        return TokenizedDataset(tokens: tokens, count: count, height: height, width: width, codes: codes,
                                captions: (0..<count).map { "caption \($0)" })
    }
}
