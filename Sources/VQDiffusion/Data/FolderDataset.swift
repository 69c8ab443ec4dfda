import Foundation

/// What a folder says about one of its images before it was made square and unified.
public struct FolderEntry: Equatable, Sendable {
    /// The file name as written in captions.jsonl (relative to the folder).
    public var file: String
    public var caption: String
    /// The size and channels stored in the file (channels 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
    public var storedWidth: Int, storedHeight: Int, storedChannels: Int

    /// Whether the image was resized to the dataset's side.
    public func wasResized(to size: Int) -> Bool { storedWidth != size || storedHeight != size }
}

/// A folder of your own captioned images: PNG files plus `captions.jsonl`, one JSON object per
/// line, `{"file": "0001.png", "caption": "a red circle"}` (other keys are ignored; blank lines
/// are skipped; `file` is relative to the folder).
///
/// Everything is checked when the folder is opened, so `sample(at:)` cannot fail afterwards:
/// a missing captions.jsonl, a line that is not such an object (the line number is given), a
/// missing, unreadable or non-PNG file, or an empty caption is a thrown `DatasetError` that names
/// the file and says how to fix it. The decoded pixels are held in memory.
///
/// - Size: every image is made S×S, S = `size` (default: the first image's side, which must
///   then be square). An image of another size is rejected unless `resize` is true; then it is
///   resampled by area averaging (each output pixel is the overlap-weighted mean of the source
///   pixels it covers, per axis, so non-square images are stretched).
/// - Channels: alpha is composited over black (value·alpha/255, rounded) and dropped, so RGBA
///   becomes RGB and grey+alpha grey. If any image is colour, grey images are repeated into
///   RGB and the dataset is RGB; otherwise it is grey.
public struct FolderDataset: CaptionedDataset, Sendable {
    /// The captions file every folder must hold.
    public static let captionsFileName = "captions.jsonl"

    public let directory: URL
    /// One entry per sample, in captions.jsonl order.
    public let entries: [FolderEntry]
    public let imageSize: Int
    public let channels: Int
    public var count: Int { entries.count }
    /// (count) decoded S×S images with `channels` channels.
    private let images: [DatasetImage]

    /// Opens and checks the folder. `size` nil takes the first image's side.
    public init(directory: URL, size: Int? = nil, resize: Bool = false) throws {
        let captionsURL = directory.appendingPathComponent(FolderDataset.captionsFileName)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError("\(directory.path) is not a folder: give a folder holding PNG files and \(FolderDataset.captionsFileName).")
        }
        guard let text = try? String(contentsOf: captionsURL, encoding: .utf8) else {
            let exists = FileManager.default.fileExists(atPath: captionsURL.path)
            throw DatasetError(exists
                ? "\(captionsURL.path) is not readable UTF-8 text: write one JSON object per line, {\"file\": \"0001.png\", \"caption\": \"…\"}."
                : "\(captionsURL.path) is missing: add it with one JSON object per line, {\"file\": \"0001.png\", \"caption\": \"…\"}.")
        }
        if let size, size < 1 {
            throw DatasetError("image size \(size) is not valid: give a positive side in pixels.")
        }

        // Read every line and decode every image, in order.
        var listed: [(file: String, caption: String, image: Image)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let (file, caption) = try FolderDataset.parseLine(trimmed, number: number + 1, captionsURL: captionsURL)
            let url = directory.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw DatasetError("\(url.path) (captions.jsonl line \(number + 1)) does not exist: add the image or remove the line.")
            }
            let image: Image
            do {
                image = try PNG.read(url)
            } catch let error as FileError {
                throw DatasetError("\(url.path) (captions.jsonl line \(number + 1)) is not a readable PNG (\(error.reason)): convert it to PNG or remove the line.")
            }
            guard image.width > 0 && image.height > 0 else {
                throw DatasetError("\(url.path) is an empty \(image.width)×\(image.height) image: replace it or remove its line.")
            }
            listed.append((file, caption, image))
        }
        guard let first = listed.first else {
            throw DatasetError("\(captionsURL.path) lists no images: add one line per image, {\"file\": \"0001.png\", \"caption\": \"…\"}.")
        }

        let side: Int
        if let size {
            side = size
        } else {
            guard first.image.width == first.image.height else {
                throw DatasetError("\(directory.appendingPathComponent(first.file).path) is \(first.image.width)×\(first.image.height), not square, so it cannot set the dataset's size: give a size (--size S) and allow resizing (--resize).")
            }
            side = first.image.width
        }
        if !resize {
            for item in listed where item.image.width != side || item.image.height != side {
                throw DatasetError("\(directory.appendingPathComponent(item.file).path) is \(item.image.width)×\(item.image.height) but the dataset's images are \(side)×\(side): resize it, or allow resizing (--resize), or choose the size (--size).")
            }
        }

        let colour = listed.contains { $0.image.channels >= 3 }
        let channels = colour ? 3 : 1
        var entries: [FolderEntry] = []
        var images: [DatasetImage] = []
        entries.reserveCapacity(listed.count)
        images.reserveCapacity(listed.count)
        for item in listed {
            var image = FolderDataset.droppingAlphaOverBlack(item.image)
            if image.width != side || image.height != side { image = FolderDataset.resized(image, width: side, height: side) }
            image = image.converted(toChannels: channels)
            images.append(DatasetImage(width: side, height: side, channels: channels, pixels: image.pixels))
            entries.append(FolderEntry(file: item.file, caption: item.caption, storedWidth: item.image.width,
                                       storedHeight: item.image.height, storedChannels: item.image.channels))
        }
        self.directory = directory
        self.entries = entries
        self.images = images
        self.imageSize = side
        self.channels = channels
    }

    public func sample(at index: Int) -> DatasetSample {
        precondition(index >= 0 && index < count, "folder index \(index) out of range 0..<\(count)")
        return DatasetSample(image: images[index], caption: entries[index].caption)
    }

    /// Reads `{"file": …, "caption": …}` from line `number` of captions.jsonl.
    static func parseLine(_ line: String, number: Int, captionsURL: URL) throws -> (file: String, caption: String) {
        let place = "\(captionsURL.path) line \(number)"
        let shape = "write it as {\"file\": \"0001.png\", \"caption\": \"…\"}"
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw DatasetError("\(place) is not a JSON object: \(shape).")
        }
        guard let file = object["file"] as? String, !file.isEmpty else {
            throw DatasetError("\(place) has no \"file\" string: \(shape).")
        }
        guard let caption = object["caption"] as? String else {
            throw DatasetError("\(place) (\(file)) has no \"caption\" string: \(shape).")
        }
        guard !caption.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DatasetError("\(place) (\(file)) has an empty caption: write what the image shows, or remove the line.")
        }
        return (file, caption)
    }

    /// The image without its alpha channel, composited over black: v ↦ round(v·a/255).
    /// Grey and RGB images are returned unchanged.
    public static func droppingAlphaOverBlack(_ image: Image) -> Image {
        guard image.channels == 2 || image.channels == 4 else { return image }
        let (C, colours) = (image.channels, image.channels - 1)
        var out = [UInt8](repeating: 0, count: image.width * image.height * colours)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(image.width * image.height) {
                    let a = Int(src[i * C + colours])
                    for c in 0..<colours { dst[i * colours + c] = UInt8((Int(src[i * C + c]) * a + 127) / 255) }
                }
            }
        }
        return Image(width: image.width, height: image.height, channels: colours, pixels: out)
    }

    /// `image` resampled to width×height by area averaging: output pixel x covers the source
    /// interval [x·w/W, (x+1)·w/W) and takes the overlap-weighted mean of the source pixels
    /// there, separately along each axis (rows first, then columns), rounded to 8 bits at the end.
    public static func resized(_ image: Image, width W: Int, height H: Int) -> Image {
        precondition(W > 0 && H > 0, "resized: target size \(W)×\(H) must be positive")
        let (w, h, C) = (image.width, image.height, image.channels)
        let horizontal = areaWeights(from: w, to: W)
        let vertical = areaWeights(from: h, to: H)
        var rows = [Double](repeating: 0, count: h * W * C)        // (h, W, C) after the horizontal pass
        image.pixels.withUnsafeBufferPointer { src in
            rows.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    for (x, taps) in horizontal.enumerated() {
                        for (sx, weight) in taps {
                            for c in 0..<C { dst[(y * W + x) * C + c] += weight * Double(src[(y * w + sx) * C + c]) }
                        }
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: H * W * C)           // (H, W, C)
        rows.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (y, taps) in vertical.enumerated() {
                    for x in 0..<W {
                        for c in 0..<C {
                            var v = 0.0
                            for (sy, weight) in taps { v += weight * src[(sy * W + x) * C + c] }
                            dst[(y * W + x) * C + c] = UInt8(min(max(v.rounded(), 0), 255))
                        }
                    }
                }
            }
        }
        return Image(width: W, height: H, channels: C, pixels: out)
    }

    /// For each of `m` output cells, the source cells of 0..<n it overlaps and the weights
    /// (overlap / cell width), which sum to 1.
    static func areaWeights(from n: Int, to m: Int) -> [[(Int, Double)]] {
        let scale = Double(n) / Double(m)
        return (0..<m).map { i in
            let (lo, hi) = (Double(i) * scale, Double(i + 1) * scale)
            var taps: [(Int, Double)] = []
            var s = Int(lo.rounded(.down))
            while s < n && Double(s) < hi {
                let overlap = min(hi, Double(s + 1)) - max(lo, Double(s))
                if overlap > 1e-12 { taps.append((s, overlap / scale)) }
                s += 1
            }
            return taps
        }
    }
}

/// What `vqd dataset stats --dataset folder` prints: counts, stored sizes and caption lengths.
public struct FolderStatistics: Sendable {
    public let samples: Int
    public let imageSize: Int
    public let channels: Int
    /// Samples per stored size and channel count, e.g. ("48×48 RGBA", 3), most frequent first.
    public let storedFormats: [(format: String, count: Int)]
    /// Samples whose stored size was not imageSize×imageSize.
    public let resized: Int
    /// Caption length in characters and in words: (min, mean, max).
    public let captionCharacters: (min: Int, mean: Double, max: Int)
    public let captionWords: (min: Int, mean: Double, max: Int)

    public init(_ data: FolderDataset) {
        let names = [1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"]
        var formats: [String: Int] = [:]
        for e in data.entries { formats["\(e.storedWidth)×\(e.storedHeight) \(names[e.storedChannels] ?? "?")", default: 0] += 1 }
        storedFormats = formats.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        samples = data.count
        imageSize = data.imageSize
        channels = data.channels
        resized = data.entries.filter { $0.wasResized(to: data.imageSize) }.count
        func summary(_ v: [Int]) -> (Int, Double, Int) {
            (v.min() ?? 0, v.isEmpty ? 0 : Double(v.reduce(0, +)) / Double(v.count), v.max() ?? 0)
        }
        captionCharacters = summary(data.entries.map { $0.caption.count })
        captionWords = summary(data.entries.map { $0.caption.split(whereSeparator: { $0.isWhitespace }).count })
    }

    public var report: String {
        var lines = [
            "samples          \(samples)",
            "image size       \(imageSize)×\(imageSize) \(channels == 3 ? "RGB" : "grey")",
            "resized          \(resized)",
        ]
        for (format, n) in storedFormats { lines.append("stored           \(format): \(n)") }
        lines.append(String(format: "caption chars    min %d, mean %.1f, max %d", captionCharacters.min, captionCharacters.mean, captionCharacters.max))
        lines.append(String(format: "caption words    min %d, mean %.1f, max %d", captionWords.min, captionWords.mean, captionWords.max))
        return lines.joined(separator: "\n")
    }
}
