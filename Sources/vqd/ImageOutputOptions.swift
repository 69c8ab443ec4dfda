import ArgumentParser
import Foundation
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
            let folder = URL(fileURLWithPath: outDir)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (i, image) in images.enumerated() {
                try PNG.write(image, to: folder.appendingPathComponent(String(format: "%04d.png", i)))
            }
            print("wrote \(images.count) images to \(outDir)")
        }
    }
}
