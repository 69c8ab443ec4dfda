import ArgumentParser
import Foundation
import Experiments
import VQDiffusion

/// Where `vqd sample` and `vqd edit` write their images: a sheet, one PNG per image, or both.
struct ImageOutputOptions: ParsableArguments {
    @Option(help: "Sheet PNG: the images in rows (vqd edit: the original and the region first), the prompt written under them.")
    var out: String?
    @Option(help: "Draw the sheet this many times larger (nearest neighbour), e.g. 4.")
    var scale: Int = 1
    @Option(name: .customLong("out-dir"), help: "Folder for one PNG per image.")
    var outDir: String?

    var wantsImages: Bool { out != nil || outDir != nil }

    func validate() throws {
        guard scale >= 1 && scale <= 32 else { throw ValidationError("--scale must lie in 1…32, got \(scale).") }
    }

    /// Refuses a sheet that cannot be written before any work is done.
    func checkFolders() throws {
        if let out { try ensureFolder(of: out) }
    }

    /// Writes the sheet (`leading` images, then `images`, in rows of `columns`, captioned) and the
    /// images one by one.
    func write(_ images: [Image], leading: [Image] = [], columns: Int, caption: String) throws {
        if let out {
            let sheet = Image.grid(leading + images, columns: columns).scaled(by: scale).captioned(caption)
            try PNG.write(sheet, to: URL(fileURLWithPath: out))
            print("wrote \(out)")
        }
        if let outDir {
            try writeNumberedPNGs(images, to: outDir, digits: 4)
            print("wrote \(images.count) images to \(outDir)")
        }
    }
}

/// Writes `images` into `folder` (made when missing) as 0000.png, 0001.png, … with `digits` digits.
func writeNumberedPNGs(_ images: [Image], to folder: String, digits: Int) throws {
    let url = URL(fileURLWithPath: folder)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    for (i, image) in images.enumerated() {
        try PNG.write(image, to: url.appendingPathComponent(String(format: "%0\(digits)d.png", i)))
    }
}

/// The generator and how it draws, shared by `vqd sample` and `vqd edit`.
struct GeneratorDrawOptions: ParsableArguments {
    @Option(help: "Checkpoint written by vqd train (diffusion or ar; the kind is read from the file). A relative path is found from the current folder or the project root.")
    var model: String
    @Option(help: "Number of images drawn.")
    var count: Int = 8
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var precision: PrecisionOption
    @Option(help: "Seed of the sampling noise.")
    var seed: UInt64 = 1
    @Option(help: "VQ-VAE checkpoint whose decoder turns tokens into images (default: the one the model was trained on).")
    var vqvae: String?

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count).") }
    }

    /// Sets the precision, then loads the generator with its text encoder and VQ-VAE.
    func generator() throws -> CheckpointGenerator {
        try precision.use()
        return try CheckpointGenerator(model: ProjectRoot.resolve(model), vqvae: vqvae.map { URL(fileURLWithPath: $0) },
                                       options: sampling.generatorOptions, cacheDirectory: DefaultPaths.textFeatures)
    }
}
