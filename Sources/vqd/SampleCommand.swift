import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate images for a caption with a trained diffusion model or VQ-AR baseline.",
        discussion: """
            Starts from an all-[MASK] token grid and denoises in --steps network evaluations \
            (exact multi-step posterior, or the reference code's shortcut with --skipping \
            referenceApproximation), with optional truncation. Writes a contact sheet (--out), one \
            PNG per image (--out-dir) and/or the token grids as an int32 .npy of shape \
            [count, h, w] (--tokens-out). Images need the VQ-VAE decoder (--vqvae). \
            An autoregressive checkpoint (vqd train --model ar) is recognised from the file and \
            decoded token by token in raster order, with the key/value cache (--kv-cache, the \
            default) or recomputing the whole prefix at every step (--no-kv-cache), drawing with \
            --temperature, --top-k and the same --truncation rule; --steps and --skipping do not \
            apply to it.
            """)

    @Option(help: "Checkpoint written by vqd train (diffusion or ar; the kind is read from the file).")
    var model: String
    @Option(help: "The caption to draw.")
    var prompt: String
    @Option(help: "Number of images.")
    var count: Int = 8
    @Option(help: "Network evaluations S (T/Δt), e.g. 100, 50, 25 or 10.")
    var steps: Int = 25
    @Option(help: "Truncation rate r in (0, 1]; 1 keeps every code.")
    var truncation: Double = 0.86
    @Option(help: "How skipped steps are taken: exact or referenceApproximation.")
    var skipping: StepSkipping = .exact
    @Option(help: "Diffusion: classifier-free guidance scale s (1 = none, the paper's sampling; s > 1 strengthens what the caption changes). Needs a model trained with --caption-dropout.")
    var guidance: Double = 1
    @Option(help: "Diffusion: which [MASK] tokens each step fills in: posterior (the paper's: random places) or purity (the schedule's count, purest predictions first, drawn codes kept).")
    var order: SamplingOrder = .posterior
    @Flag(name: .customLong("kv-cache"), inversion: .prefixedNo,
          help: "AR models: keep the attention keys/values of earlier tokens instead of recomputing the prefix.")
    var kvCache = true
    @Option(help: "AR models: divide the logits by this; 0 takes the most likely code.")
    var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "AR models: draw only among the k most likely codes.")
    var topK: Int?
    @Option(help: "Seed of the sampling noise.")
    var seed: UInt64 = 1
    @Flag(name: .customLong("raw-weights"), help: "Use the raw weights instead of the EMA weights.")
    var rawWeights = false
    @Option(name: .customLong("text-length"), help: "Padded caption length in tokens (as in training).")
    var textLength: Int = 32
    @Option(help: "VQ-VAE checkpoint whose decoder turns tokens into images (default: the one the model was trained on).")
    var vqvae: String?
    @Option(help: "Contact sheet PNG.")
    var out: String?
    @Option(name: .customLong("out-dir"), help: "Folder for one PNG per image.")
    var outDir: String?
    @Option(name: .customLong("tokens-out"), help: "Token grids as an int32 .npy [count, h, w].")
    var tokensOut: String?

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count).") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps).") }
        guard truncation > 0 && truncation <= 1 else { throw ValidationError("--truncation must lie in (0, 1], got \(truncation).") }
        guard out != nil || outDir != nil || tokensOut != nil else {
            throw ValidationError("Nothing to write: give --out, --out-dir and/or --tokens-out.")
        }
        guard temperature >= 0 && temperature.isFinite else {
            throw ValidationError("--temperature must be finite and at least 0, got \(temperature).")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK).") }
        guard guidance >= 0 && guidance.isFinite else { throw ValidationError("--guidance must be a number ≥ 0, got \(guidance).") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let kind = try TrainingCheckpoint.read(url).kind
        let (tokens, gridHeight, gridWidth): ([Int32], Int, Int)
        var trainedVQVAE: String?
        var rng = RandomGenerator(seed: seed)
        let start = Date()
        switch kind {
        case DiffusionTrainer.checkpointKind:
            let file = try DiffusionModelFile(url, useEMA: !rawWeights)
            let encoder = try sampleTextEncoder(for: file, maxLength: textLength)
            let sampler = DiffusionSampler(model: file.model, schedule: file.schedule, textEncoder: encoder)
            tokens = try sampler.sample(captions: [String](repeating: prompt, count: count), steps: steps,
                                        truncation: truncation < 1 ? truncation : nil, skipping: skipping,
                                        guidance: guidance, order: order, using: &rng)
            (gridHeight, gridWidth) = (file.configuration.model.gridHeight, file.configuration.model.gridWidth)
            trainedVQVAE = file.configuration.vqvae
        case ARTrainer.checkpointKind:
            guard guidance == 1 else {
                throw GeneratorCommandError("--guidance applies to diffusion models; \(model) is an autoregressive one.")
            }
            guard order == .posterior else {
                throw GeneratorCommandError("--order applies to diffusion models; \(model) is an autoregressive one.")
            }
            let file = try ARModelFile(url, useEMA: !rawWeights)
            let encoder = try sampleTextEncoder(for: file, maxLength: textLength)
            let sampler = ARSampler(model: file.model, textEncoder: encoder)
            let options = ARSamplingOptions(temperature: temperature, topK: topK, truncation: truncation < 1 ? truncation : nil,
                                            useCache: kvCache)
            tokens = try sampler.sample(captions: [String](repeating: prompt, count: count), options: options, using: &rng)
            (gridHeight, gridWidth) = (file.configuration.model.gridHeight, file.configuration.model.gridWidth)
            trainedVQVAE = file.configuration.vqvae
        default:
            throw GeneratorCommandError("\(model) holds a \"\(kind)\" checkpoint; vqd sample needs one written by vqd train "
                + "(kind \"diffusion\" or \"ar\").")
        }
        let seconds = Date().timeIntervalSince(start)
        let c = (gridHeight: gridHeight, gridWidth: gridWidth)
        print(String(format: "sampled %d grids of %d×%d tokens in %.2f s (%.2f images/s)", count, c.gridHeight, c.gridWidth,
                     seconds, Double(count) / seconds))
        if let tokensOut {
            try Npy.save(TensorData(shape: [count, c.gridHeight, c.gridWidth], .i32(tokens)), to: URL(fileURLWithPath: tokensOut))
            print("wrote \(tokensOut)")
        }
        guard out != nil || outDir != nil else { return }
        guard let decoder = vqvae ?? trainedVQVAE else {
            throw GeneratorCommandError("\(model) does not record the VQ-VAE it was trained on: give --vqvae FILE to draw images.")
        }
        let images = try decodeTokens(tokens, count: count, height: c.gridHeight, width: c.gridWidth, vqvae: decoder)
        if let out {
            try PNG.write(Image.grid(images, columns: min(count, 8)), to: URL(fileURLWithPath: out))
            print("wrote \(out)")
        }
        if let outDir {
            let folder = URL(fileURLWithPath: outDir)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (i, image) in images.enumerated() {
                try PNG.write(image, to: folder.appendingPathComponent(String(format: "%04d.png", i)))
            }
            print("wrote \(images.count) images to \(outDir)")
        }
    }
}

/// The text encoder an AR checkpoint was trained with (a trainable encoder's weights come from the file).
func sampleTextEncoder(for file: ARModelFile, maxLength: Int) throws -> TextEncoder {
    try TextEncoderCheckpoint.rebuild(choice: file.configuration.textEncoder, metadata: file.metadata,
                                      maxLength: maxLength, cacheDirectory: DefaultPaths.textFeatures) {
        try file.loadTextEncoder($0)
    }
}

// MARK: - Text encoders and the decoder of a checkpoint

/// The text encoder a checkpoint was trained with (a trainable encoder's weights come from the file).
func sampleTextEncoder(for file: DiffusionModelFile, maxLength: Int) throws -> TextEncoder {
    try TextEncoderCheckpoint.rebuild(choice: file.configuration.textEncoder, metadata: file.metadata,
                                      maxLength: maxLength, cacheDirectory: DefaultPaths.textFeatures) {
        try file.loadTextEncoder($0)
    }
}

/// The VQ-VAE whose tokens a generator was trained on, at `path`.
func loadGeneratorVQVAE(_ path: String) throws -> VQVAE {
    guard FileManager.default.fileExists(atPath: path) else {
        throw GeneratorCommandError("VQ-VAE checkpoint \(path) does not exist: give the one the model was trained on with --vqvae FILE.")
    }
    return try VQVAE.load(URL(fileURLWithPath: path))
}

/// Images from token grids (count, h, w) through the VQ-VAE decoder in `vqvae`.
func decodeTokens(_ tokens: [Int32], count: Int, height: Int, width: Int, vqvae: String) throws -> [Image] {
    let decoder = try loadGeneratorVQVAE(vqvae)
    let images = try Autograd.withoutGrad { try decoder.decode(tokens, count: count, height: height, width: width) }
    return Image.batch(images)
}
