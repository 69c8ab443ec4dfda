import ArgumentParser
import Engine
import Foundation
import Experiments
import VQDiffusion

extension DiffusionParameterization: ExpressibleByArgument {}
extension TimeSampling: ExpressibleByArgument {}
extension DiffusionAuxiliaryNormalization: ExpressibleByArgument {}
extension PositionInitialisation: ExpressibleByArgument {}

extension TextEncoderChoice: ExpressibleByArgument {}

extension GeneratorFamily: ExpressibleByArgument {}

struct TrainCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the text-conditioned VQ-Diffusion model (or the VQ-AR baseline) on VQ-VAE tokens.",
        discussion: """
            The dataset is tokenized once with the VQ-VAE (--vqvae) and cached; the model learns to \
            reverse the mask-and-replace diffusion conditioned on the captions' text features. \
            Checkpoints hold everything needed to resume (--resume) or to sample (vqd sample). \
            --synthetic trains on random tokens and random text features (K = 512, 8×8 tokens, \
            32 × 384 features) to measure speed without a VQ-VAE. \
            --model ar trains the autoregressive baseline instead: the same blocks with causal \
            self-attention, the preset's width and depth and (within 10 %) its parameter count, \
            with teacher forcing and the same optimizer, schedule and EMA; the diffusion-only \
            options (schedule, time sampling, loss weights) do not apply to it.
            """)

    @OptionGroup var recipeFile: RecipeFileOptions

    @Option(help: "The dataset: shapes, fashion, or folder (default: the one the VQ-VAE was trained on, which it must match).")
    var dataset: DatasetSelection.Source?
    @Option(help: "Dataset split to train on (a folder is its own split).")
    var split: DatasetSplit = .train
    @Option(help: "Images to use (default: the whole split; Shapes: 20000).")
    var count: Int?
    @Option(help: "The folder of --dataset folder (default: the VQ-VAE's).")
    var folder: String?
    @Option(help: "Image side in pixels (the VQ-VAE's, which is the default).")
    var size: Int?
    @Option(name: .customLong("data-seed"), help: "Dataset seed (Shapes scenes, caption templates).")
    var dataSeed: UInt64 = 0
    @Option(help: "The VQ-VAE checkpoint that tokenizes the images (its recorded settings become the recipe's tokenizer); a relative path is found from the current folder or the project root.")
    var vqvae: String?
    @Option(name: .customLong("text-encoder"), help: "Text encoder: minilm (frozen, pretrained) or tiny (trained jointly).")
    var textEncoder: TextEncoderChoice = .minilm
    @Option(name: .customLong("text-length"), help: "Padded caption length in tokens.")
    var textLength: Int = 32
    @Flag(help: "Random tokens and text features instead of a dataset (speed measurements).")
    var synthetic = false

    @Option(help: "What to train: diffusion (VQ-Diffusion) or ar (the autoregressive baseline).")
    var model: GeneratorFamily = .diffusion
    @Option(help: "Model preset: tiny or small.")
    var preset: String = "small"
    @Option(help: "Output meaning: reparameterized (predict x0) or direct (predict x_{t-1}).")
    var parameterization: DiffusionParameterization = .reparameterized
    @Option(name: .customLong("diffusion-steps"), help: "T, the number of diffusion steps.")
    var diffusionSteps: Int = 100
    @Option(name: .customLong("gamma-final"), help: "Final mask rate γ̄_T (paper 0.9; 0 replace-only; 1 mask-only).")
    var gammaFinal: Double = 0.9
    @Flag(name: .customLong("reference-schedule"), help: "The released code's schedule (γ̄_T = 0.99999, effectively mask-only); overrides --gamma-final.")
    var referenceSchedule = false

    @Option(help: "Total training steps (a resumed run continues to this total).")
    var steps: Int?
    @Option(name: .customLong("stop-at"),
            help: "Stop after this step of the --steps schedule (the learning rate follows the whole schedule; --resume continues it). For comparing recipes early.")
    var stopAt: Int?
    @Option(name: .customLong("batch-size"), help: "Images per step.")
    var batchSize: Int = 32
    @Option(name: .customLong("lr"), help: "Peak learning rate.")
    var learningRate: Float = 5e-4
    @Option(help: "Warm-up steps.")
    var warmup: Int = 500
    @Option(name: .customLong("min-lr"), help: "Learning rate at the end of the cosine decay.")
    var minimumLearningRate: Float = 1e-5
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay of weight matrices.")
    var weightDecay: Float = 0.045
    @Option(help: "Gradient-norm clipping threshold.")
    var clip: Float = 1
    @Option(name: .customLong("ema-decay"), help: "EMA decay of the sampling weights.")
    var emaDecay: Float = 0.999
    @Option(name: .customLong("time-sampling"), help: "How t is drawn: importance or uniform.")
    var timeSampling: TimeSampling = .importance
    @Option(name: .customLong("aux-weight"), help: "λ, the auxiliary loss weight.")
    var auxiliaryWeight: Double = 5e-4
    @Flag(name: .customLong("adaptive-aux"), help: "Scale the auxiliary loss by 2 − t/T.")
    var adaptiveAuxiliary = false
    @Option(name: .customLong("aux-normalization"),
            help: "How the auxiliary loss at [MASK] positions is averaged: tokens (over all tokens, the paper's) or masked-tokens (over each image's masked positions, so every t weighs the same).")
    var auxiliaryNormalization: DiffusionAuxiliaryNormalization = .tokens
    @Option(name: .customLong("masked-weight"), help: "Loss weight of positions where x_t is [MASK].")
    var maskedWeight: Double = 1
    @Option(name: .customLong("unmasked-weight"), help: "Loss weight of positions where x_t is a real code.")
    var unmaskedWeight: Double = 1
    @Option(name: .customLong("embedding-std"),
            help: "VQ-Diffusion: standard deviation of the token and position embeddings at initialisation (default 0.02; 1 starts them at unit scale).")
    var embeddingStd: Float = Embedding.defaultStd
    @Option(name: .customLong("position-init"),
            help: "VQ-Diffusion: how the row and column position tables start: random (N(0, std²), the reference's) or sinusoidal (sine-cosine pairs over the grid, scaled to --embedding-std; still trained).")
    var positionInitialisation: PositionInitialisation = .random
    @Flag(name: .customLong("grid-conv"),
          help: "A depthwise 3×3 convolution over the token grid inside every block's MLP (Linear → conv → GELU → Linear), so each token mixes with its 8 neighbours (VQ-AR: a causal one, with the row above and the left neighbour only); the paper's MLP has none.")
    var gridConvolution = false
    @Option(help: "Cut every batch into this many data-parallel shards, each trained on its own thread with a copy of the model (default: one per thread when the text encoder is frozen; 1 splits each kernel over the threads instead).")
    var shards: Int?
    @Option(name: .customLong("caption-dropout"),
            help: "Probability of training on the null text instead of the caption, so the model can be sampled with classifier-free guidance (vqd sample --guidance); 0 is the paper's setting.")
    var captionDropout: Double = 0
    @Option(help: "Seed of initialisation, data order and noise.")
    var seed: UInt64 = 0
    @OptionGroup var precision: PrecisionOption

    @Option(help: "Checkpoint file to write (.safetensors).")
    var out: String?
    @Flag(help: "Continue from --out if it exists.")
    var resume = false
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.")
    var checkpointEvery: Int = 500
    @Option(name: .customLong("log-every"), help: "Steps between metric rows in the results database.")
    var logEvery: Int = 10
    @OptionGroup var database: DatabaseOption
    @Option(help: "Experiment name in the results database (default: train-diffusion, or train-ar with --model ar).")
    var experiment: String?
    @Option(name: .customLong("run-name"), help: "Run name in the results database.")
    var runName: String?

    func validate() throws {
        guard recipeFile.show || out != nil else { throw ValidationError("--out FILE is needed: the checkpoint to write.") }
        guard recipeFile.file != nil || synthetic || vqvae != nil else {
            throw ValidationError("--vqvae FILE is needed to tokenize the dataset (or use --synthetic for a speed run, or --recipe FILE).")
        }
        guard recipeFile.file != nil || steps != nil else { throw ValidationError("--steps N is needed (or --recipe FILE).") }
        guard checkpointEvery >= 1 && logEvery >= 1 else { throw ValidationError("--checkpoint-every and --log-every must be at least 1.") }
        if let stopAt, stopAt < 1 { throw ValidationError("--stop-at must be at least 1, got \(stopAt).") }
        if let shards, shards < 1 { throw ValidationError("--shards must be at least 1, got \(shards).") }
    }

    /// The recipe these options describe.
    func recipe() throws -> GeneratorRecipe {
        var s = GeneratorSettings()
        (s.preset, s.textEncoder, s.parameterization) = (preset, textEncoder, parameterization)
        (s.split, s.dataSeed, s.synthetic, s.textLength) = (split, dataSeed, synthetic, textLength)
        (s.diffusionSteps, s.gammaFinal, s.referenceSchedule) = (diffusionSteps, gammaFinal, referenceSchedule)
        (s.steps, s.batchSize, s.learningRate, s.warmupSteps) = (steps!, batchSize, learningRate, warmup)
        (s.minimumLearningRate, s.weightDecay, s.gradientClip, s.emaDecay) = (minimumLearningRate, weightDecay, clip, emaDecay)
        (s.timeSampling, s.auxiliaryWeight, s.adaptiveAuxiliary) = (timeSampling, auxiliaryWeight, adaptiveAuxiliary)
        (s.auxiliaryNormalization, s.maskedWeight, s.unmaskedWeight) = (auxiliaryNormalization, maskedWeight, unmaskedWeight)
        (s.embeddingStd, s.positionInitialisation, s.gridConvolution) = (embeddingStd, positionInitialisation, gridConvolution)
        (s.captionDropout, s.shards, s.seed) = (captionDropout, shards ?? 0, seed)
        s.precision = precision.forGeneratorRecipe
        var tokenizer = VQVAERecipe.defaults
        if !synthetic, let vqvae {
            tokenizer = try tokenizerRecipe(vqvae)
            s.trainCount = count ?? (tokenizer.dataset == .shapes ? 20_000 : nil)
        }
        return GeneratorRecipe(family: model, vqvae: tokenizer, settings: s)
    }

    /// The recipe of the VQ-VAE in `path`, checked against the data options given.
    func tokenizerRecipe(_ path: String) throws -> VQVAERecipe {
        guard FileManager.default.fileExists(atPath: ProjectRoot.resolve(path).path) else {
            throw GeneratorCommandError("VQ-VAE checkpoint \(path) does not exist: train one with vqd vqvae train, "
                + "or use results/models/vqvae-shapes-32.safetensors.")
        }
        let recipe = try VQVAERecipe(file: ProjectRoot.resolve(path))
        if let dataset, dataset != recipe.dataset {
            throw GeneratorCommandError("\(path) was trained on \(recipe.dataset.rawValue); a generator trains on its tokenizer's "
                + "dataset: drop --dataset, or pass a VQ-VAE trained on \(dataset.rawValue).")
        }
        if let size, size != recipe.imageSize {
            throw GeneratorCommandError("\(path) tokenizes \(recipe.imageSize)-pixel images; drop --size or use --size \(recipe.imageSize).")
        }
        if let folder, URL(fileURLWithPath: folder).standardizedFileURL != URL(fileURLWithPath: recipe.folder).standardizedFileURL {
            throw GeneratorCommandError("\(path) was trained on the folder \(recipe.folder); drop --folder or pass a VQ-VAE trained on \(folder).")
        }
        return recipe
    }

    func run() throws {
        guard let recipe = try recipeFile.recipe(self.recipe) else { return }
        if let stopAt, stopAt > recipe.settings.steps {
            throw ValidationError("--stop-at must lie in 1…\(recipe.settings.steps) (--steps), got \(stopAt).")
        }
        let out = self.out!
        let store = ModelStore.standard(database: try database.openForTraining(), profile: nil)
        if !recipe.settings.synthetic, let vqvae { store.provide(ProjectRoot.resolve(vqvae), for: recipe.vqvae) }
        let outURL = URL(fileURLWithPath: out)
        let output = TrainingOutput(checkpoint: outURL, checkpointEvery: checkpointEvery,
                                    resume: resume && FileManager.default.fileExists(atPath: out) ? outURL : nil,
                                    database: store.database, experiment: experiment ?? "train-\(recipe.family.rawValue)",
                                    runName: runName, logEvery: logEvery)
        try recipe.train(TrainingJob(output: output, model: nil, stopAt: stopAt), store: store)
        print("wrote \(out)")
    }
}

/// A failure of `vqd train` or `vqd sample` that is not a usage mistake (printed without the usage text).
struct GeneratorCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
