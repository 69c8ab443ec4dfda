import ArgumentParser
import Experiments
import Foundation
import VQDiffusion

struct DatasetExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the first N samples of a split as PNG files plus captions.jsonl.",
        discussion: """
            Files are named 00000.png, 00001.png, … (at least five digits). Each line of captions.jsonl \
            holds "file", "caption", "index" and, where the source knows them, "attributes": for Shapes \
            the objects (shape, color, size, center [x, y] and extent in pixels, rgb drawn), the position \
            or relation and the template; for Fashion-MNIST the class label and name. The folder reads \
            back with --dataset folder --folder OUT. A non-empty output folder is refused unless --force.
            """)

    @OptionGroup var source: DatasetSourceOptions

    @Option(help: "Number of samples to write (the first N of the split).")
    var count: Int

    @Option(help: "The output folder (created if missing).")
    var out: String

    @Flag(help: "Write into a non-empty output folder, replacing files of the same names.")
    var force = false

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1, got \(count).") }
    }

    func run() throws {
        let data = try source.open(count: count)
        let names = try DatasetExport.export(data, count: count, to: URL(fileURLWithPath: out), force: force)
        print("wrote \(names.count) images (\(data.imageSize)×\(data.imageSize), \(data.channels == 3 ? "RGB" : "grey")) "
            + "and \(FolderDataset.captionsFileName) to \(out)")
    }
}

struct DatasetSheetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sheet",
        abstract: "Write a contact sheet PNG: the first N samples with their captions under them.",
        discussion: """
            Images are enlarged by pixel replication (×4 for 32-pixel images: the smallest factor \
            giving at least 128 pixels, or --scale) and each caption is written under its image in a \
            built-in 5×7 font, wrapped at spaces to the image width, at most --lines lines (longer \
            captions end in "..").
            """)

    @OptionGroup var source: DatasetSourceOptions

    @Option(help: "Number of samples (the first N of the split).")
    var count: Int = 16

    @Option(help: "Images per row.")
    var columns: Int = 4

    @Option(help: "Magnification of the images (default: the smallest giving at least 128 pixels).")
    var scale: Int?

    @Option(help: "Caption lines under each image.")
    var lines: Int = 3

    @Option(help: "The output PNG file.")
    var out: String

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1, got \(count).") }
        if columns < 1 { throw ValidationError("--columns must be at least 1, got \(columns).") }
        if let scale, scale < 1 || scale > 16 { throw ValidationError("--scale must be from 1 to 16, got \(scale).") }
        if lines < 1 { throw ValidationError("--lines must be at least 1, got \(lines).") }
    }

    func run() throws {
        let data = try source.open(count: count)
        let samples = (0..<min(count, data.count)).map { data.sample(at: $0) }
        var sheet = ContactSheet(scale: scale, captionLines: lines)
        sheet.gap = 4
        let image = sheet.render(samples.map(\.image), captions: samples.map(\.caption), columns: columns)
        try PNG.write(image, to: URL(fileURLWithPath: out))
        print("wrote \(out): \(image.width)×\(image.height), \(samples.count) samples")
    }
}
