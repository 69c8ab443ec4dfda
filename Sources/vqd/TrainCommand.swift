import ArgumentParser
import Engine
import Foundation
import VQDiffusion

extension DiffusionParameterization: ExpressibleByArgument {}
extension TimeSampling: ExpressibleByArgument {}
extension DiffusionAuxiliaryNormalization: ExpressibleByArgument {}
extension PositionInitialisation: ExpressibleByArgument {}
extension StepSkipping: ExpressibleByArgument {}
extension SamplingOrder: ExpressibleByArgument {}

extension TextEncoderChoice: ExpressibleByArgument {}

/// Which generator `vqd train` trains.
enum GeneratorKind: String, CaseIterable, ExpressibleByArgument {
    /// VQ-Diffusion.
    case diffusion
    /// The autoregressive baseline VQ-AR, sized to match the diffusion preset.
    case ar
}

struct TrainCommand: ParsableCommand {
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

    @Option(help: "The dataset: shapes, fashion, or folder (PNGs with captions.jsonl, see --folder).")
    var dataset: DatasetSelection.Source = .shapes
    @Option(help: "Dataset split to train on (a folder is its own split).")
    var split: DatasetSplit = .train
    @Option(help: "Images to use (default: the whole split; Shapes: 20000).")
    var count: Int?
    @Option(help: "The folder of --dataset folder.")
    var folder: String?
    @Option(help: "Image side in pixels (the VQ-VAE's; folder images of another size are resized).")
    var size: Int = 32
    @Option(name: .customLong("data-seed"), help: "Dataset seed (Shapes scenes, caption templates).")
    var dataSeed: UInt64 = 0
    @Option(help: "The VQ-VAE checkpoint that tokenizes the images.")
    var vqvae: String?
    @Option(name: .customLong("text-encoder"), help: "Text encoder: minilm (frozen, pretrained) or tiny (trained jointly).")
    var textEncoder: TextEncoderChoice = .minilm
    @Option(name: .customLong("text-length"), help: "Padded caption length in tokens.")
    var textLength: Int = 32
    @Flag(help: "Random tokens and text features instead of a dataset (speed measurements).")
    var synthetic = false

    @Option(help: "What to train: diffusion (VQ-Diffusion) or ar (the autoregressive baseline).")
    var model: GeneratorKind = .diffusion
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
    var steps: Int
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
    var embeddingStd: Float?
    @Option(name: .customLong("position-init"),
            help: "VQ-Diffusion: how the row and column position tables start: random (N(0, std²), the reference's) or sinusoidal (sine-cosine pairs over the grid, scaled to --embedding-std; still trained).")
    var positionInitialisation: PositionInitialisation?
    @Flag(name: .customLong("grid-conv"),
          help: "VQ-Diffusion: a depthwise 3×3 convolution over the token grid inside every block's MLP (Linear → conv → GELU → Linear), so each token mixes with its 8 neighbours; the paper's MLP has none.")
    var gridConvolution = false
    @Option(help: "Cut every batch into this many data-parallel shards, each trained on its own thread with a copy of the model (default: one per thread when the text encoder is frozen; 1 splits each kernel over the threads instead).")
    var shards: Int?
    @Option(name: .customLong("caption-dropout"),
            help: "Probability of training on the null text instead of the caption, so the model can be sampled with classifier-free guidance (vqd sample --guidance); 0 is the paper's setting.")
    var captionDropout: Double = 0
    @Option(help: "Seed of initialisation, data order and noise.")
    var seed: UInt64 = 0

    @Option(help: "Checkpoint file to write (.safetensors).")
    var out: String
    @Flag(help: "Continue from --out if it exists.")
    var resume = false
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.")
    var checkpointEvery: Int = 500
    @Option(name: .customLong("log-every"), help: "Steps between metric rows in the results database.")
    var logEvery: Int = 10
    @Option(help: "Results database.")
    var db: String = ResultsDatabase.defaultPath
    @Option(help: "Experiment name in the results database (default: train-diffusion, or train-ar with --model ar).")
    var experiment: String?
    @Option(name: .customLong("run-name"), help: "Run name in the results database.")
    var runName: String?

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps).") }
        if let stopAt, !(1...steps).contains(stopAt) {
            throw ValidationError("--stop-at must lie in 1…\(steps) (--steps), got \(stopAt).")
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        guard ["tiny", "small"].contains(preset) else { throw ValidationError("--preset must be tiny or small, got \(preset).") }
        guard diffusionSteps >= 2 else { throw ValidationError("--diffusion-steps must be at least 2, got \(diffusionSteps).") }
        guard synthetic || vqvae != nil else {
            throw ValidationError("--vqvae FILE is needed to tokenize the dataset (or use --synthetic for a speed run).")
        }
        guard checkpointEvery >= 1 && logEvery >= 1 else { throw ValidationError("--checkpoint-every and --log-every must be at least 1.") }
        guard captionDropout >= 0 && captionDropout < 1 else {
            throw ValidationError("--caption-dropout must lie in [0, 1), got \(captionDropout).")
        }
        if let embeddingStd {
            guard embeddingStd > 0 && embeddingStd.isFinite else {
                throw ValidationError("--embedding-std must be a positive number, got \(embeddingStd).")
            }
            guard model != .ar else { throw ValidationError("--embedding-std is a VQ-Diffusion option; VQ-AR keeps its own initialisation.") }
        }
        if let shards {
            guard shards >= 1 && shards <= batchSize else {
                throw ValidationError("--shards must lie in 1…\(batchSize) (--batch-size), got \(shards).")
            }
        }
        guard positionInitialisation == nil || model != .ar else {
            throw ValidationError("--position-init is a VQ-Diffusion option; VQ-AR keeps its own initialisation.")
        }
        guard !gridConvolution || model != .ar else {
            throw ValidationError("--grid-conv is a VQ-Diffusion option; VQ-AR reads its tokens in order, with its own MLP.")
        }
        guard captionDropout == 0 || model != .ar else {
            throw ValidationError("--caption-dropout is a VQ-Diffusion option (guidance); VQ-AR trains without it.")
        }
    }

    func run() throws {
        let (data, encoder, encoderName): (TokenizedDataset, TextEncoder, String)
        if synthetic {
            data = SyntheticDiffusionData.dataset(count: 1024, codes: 512, height: 8, width: 8, seed: seed)
            encoder = RandomTextEncoder(width: 384, maxLength: textLength)
            encoderName = "synthetic"
        } else {
            let selection = DatasetSelection(source: dataset, split: split, imageSize: size, seed: dataSeed,
                                             count: count ?? (dataset == .shapes ? 20_000 : nil), folder: folder)
            data = try tokenizedDataset(selection, vqvae: vqvae!)
            encoder = try makeTextEncoder(textEncoder, maxLength: textLength, captions: data.captions, seed: seed)
            encoderName = textEncoder.rawValue
        }
        var diffusion = DiffusionConfiguration.paper(classes: data.codes, steps: diffusionSteps)
        if referenceSchedule {
            diffusion = .referenceMaskOnly(classes: data.codes, steps: diffusionSteps)
        } else if gammaFinal != 0.9 {
            diffusion = try diffusion.withGammaFinal(gammaFinal)
        }
        var diffusionModel = DiffusionModelConfiguration.preset(preset, classes: data.codes, gridHeight: data.height,
                                                                gridWidth: data.width, steps: diffusionSteps,
                                                                textWidth: encoder.width)!
        diffusionModel.parameterization = parameterization
        diffusionModel.textScale = textEncoder == .minilm && !synthetic ? Float(encoder.width).squareRoot() : nil
        diffusionModel.embeddingStd = embeddingStd
        diffusionModel.positionInitialisation = positionInitialisation
        diffusionModel.gridConvolution = gridConvolution ? true : nil
        let outURL = URL(fileURLWithPath: out)
        let resumeURL = resume && FileManager.default.fileExists(atPath: out) ? outURL : nil
        let database = try ResultsDatabase(path: db)
        let output = TrainingOutput(checkpoint: outURL, checkpointEvery: checkpointEvery, resume: resumeURL,
                                    database: database, experiment: experiment ?? "train-\(model.rawValue)",
                                    runName: runName, logEvery: logEvery)
        let training = GeneratorTrainingConfiguration(
            batchSize: batchSize, totalSteps: steps, learningRate: learningRate, warmupSteps: warmup,
            minimumLearningRate: minimumLearningRate, weightDecay: weightDecay, beta2: 0.96, gradientClip: clip,
            emaDecay: emaDecay, seed: seed)
        if model == .ar {
            let configuration = ARRunConfiguration(model: .matching(diffusionModel), training: training,
                                                   textEncoder: encoderName, vqvae: vqvae)
            try ARTrainer.run(configuration: configuration, dataset: data, textEncoder: encoder, steps: stopAt ?? steps,
                              output: output, comparedWith: diffusionModel, shards: shards)
            print("wrote \(out)")
            return
        }
        let diffusionTraining = DiffusionTrainingConfiguration(
            training, timeSampling: timeSampling,
            loss: DiffusionLossConfiguration(auxiliaryWeight: auxiliaryWeight, adaptiveAuxiliaryWeight: adaptiveAuxiliary,
                                             maskedWeight: maskedWeight, unmaskedWeight: unmaskedWeight,
                                             auxiliaryNormalization: auxiliaryNormalization),
            captionDropout: captionDropout)
        let configuration = DiffusionRunConfiguration(model: diffusionModel, diffusion: diffusion, training: diffusionTraining,
                                                      textEncoder: encoderName, vqvae: vqvae)
        try DiffusionTrainer.run(configuration: configuration, dataset: data, textEncoder: encoder, steps: stopAt ?? steps,
                                 output: output, shards: shards)
        print("wrote \(out)")
    }
}

// MARK: - Tokens and text features

/// The token grids and captions of a dataset split, tokenized by the VQ-VAE in `vqvae` once and
/// then read from the token cache (cache/tokens, keyed by the VQ-VAE file's content and the data).
func tokenizedDataset(_ selection: DatasetSelection, vqvae: String) throws -> TokenizedDataset {
    let url = URL(fileURLWithPath: vqvae)
    guard FileManager.default.fileExists(atPath: vqvae) else {
        throw GeneratorCommandError("VQ-VAE checkpoint \(vqvae) does not exist: train one with vqd vqvae train, "
            + "or use results/models/vqvae-shapes-32.safetensors.")
    }
    var progress: ProgressBar?
    let tokens = try TokenCache.tokens(vqvae: url, data: selection) { done, total in
        if progress == nil { progress = ProgressBar(total: total, label: "tokenize") }
        progress?.update(done)
    }
    progress?.finish()
    return tokens
}

/// Where frozen text features are cached between runs (the encoder is frozen, so a caption's
/// features never change).
let textFeatureCacheDirectory = URL(fileURLWithPath: "cache/text-features")

/// The text encoder for `vqd train`: frozen MiniLM with every caption's features precomputed and
/// cached, or the small trainable encoder with its vocabulary learned from the captions.
func makeTextEncoder(_ choice: TextEncoderChoice, maxLength: Int, captions: [String], seed: UInt64) throws -> TextEncoder {
    var rng = RandomGenerator(seed: seed).derived(7)
    return try VQDiffusion.makeTextEncoder(choice: choice, captions: captions, maxLength: maxLength,
                                           cacheDirectory: textFeatureCacheDirectory, using: &rng)
}

// MARK: - Synthetic data for speed runs

enum SyntheticDiffusionData {
    /// Uniformly random token grids with numbered captions.
    static func dataset(count: Int, codes: Int, height: Int, width: Int, seed: UInt64) -> TokenizedDataset {
        var rng = RandomGenerator(seed: seed).derived(99)
        let tokens = (0..<(count * height * width)).map { _ in Int32(rng.int(below: codes)) }
        return TokenizedDataset(tokens: tokens, count: count, height: height, width: width, codes: codes,
                                captions: (0..<count).map { "caption \($0)" })
    }
}

/// A failure of `vqd train` or `vqd sample` that is not a usage mistake (printed without the usage text).
struct GeneratorCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
