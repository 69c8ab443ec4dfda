import ArgumentParser
import Experiments
import Foundation
import VQDiffusion

/// The options that pick a dataset, shared by `vqd dataset export` and `vqd dataset sheet`.
struct DatasetSourceOptions: ParsableArguments {
    @Option(help: "The dataset: shapes, fashion or folder.")
    var dataset: DatasetName = .shapes

    @Option(help: "The split (Shapes: train, val, test, novel; Fashion-MNIST: train, val, test; ignored for a folder).")
    var split: DatasetSplit = .train

    @Option(help: "Image side. Shapes: a multiple of 8 from 16 to 128 (default 32); Fashion-MNIST: 32 only; folder: default the first image's side.")
    var size: Int?

    @Option(help: "Dataset seed (Shapes scenes, Fashion-MNIST caption templates).")
    var seed: UInt64 = 0

    @Option(help: "With --dataset folder: the folder holding the PNG files and captions.jsonl.")
    var folder: String?

    @Flag(help: "With --dataset folder: resize images of another size to --size (area averaging) instead of rejecting them.")
    var resize = false

    func validate() throws {
        try Self.check(dataset: dataset, split: split, size: size, folder: folder, resize: resize)
    }

    /// The checks of a dataset choice, shared with `vqd dataset stats` (whose split is optional).
    static func check(dataset: DatasetName, split: DatasetSplit?, size: Int?, folder: String?, resize: Bool) throws {
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
    func open(count: Int) throws -> any CaptionedDataset {
        switch dataset {
        case .shapes:
            return try ShapesDataset(ShapesConfiguration(imageSize: size ?? 32, seed: seed, split: split, count: count))
        case .fashion:
            return try FashionMNIST(split: split, seed: seed)
        case .folder:
            return try FolderDataset(directory: URL(fileURLWithPath: folder!), size: size, resize: resize)
        }
    }
}

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
