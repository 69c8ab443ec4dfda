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

    @Option(help: "The caption to draw.")
    var prompt: String
    @OptionGroup var draw: GeneratorDrawOptions
    @OptionGroup var output: ImageOutputOptions
    @Option(name: .customLong("tokens-out"), help: "Token grids as an int32 .npy [count, h, w].")
    var tokensOut: String?

    func validate() throws {
        guard output.wantsImages || tokensOut != nil else {
            throw ValidationError("Nothing to write: give --out, --out-dir and/or --tokens-out.")
        }
    }

    func run() throws {
        // Refuse an output that cannot be written before the sampling, not after it.
        try output.checkFolders()
        if let tokensOut { try ensureFolder(of: tokensOut) }
        let generator = try draw.generator()
        let (count, seed) = (draw.count, draw.seed)
        var rng = RandomGenerator(seed: seed)
        let start = Date()
        let tokens = try generator.tokens(captions: [String](repeating: prompt, count: count), using: &rng)
        let seconds = Date().timeIntervalSince(start)
        let (h, w) = (generator.gridHeight, generator.gridWidth)
        print(String(format: "sampled %d grids of %d×%d tokens in %.2f s (%.2f images/s)", count, h, w, seconds, Double(count) / seconds))
        if let tokensOut {
            try Npy.save(TensorData(shape: [count, h, w], .i32(tokens)), to: URL(fileURLWithPath: tokensOut))
            print("wrote \(tokensOut)")
        }
        guard output.wantsImages else { return }
        let images = Image.batch(try generator.decode(tokens, count: count))
        try output.write(images, columns: min(count, 8), caption: prompt)
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
