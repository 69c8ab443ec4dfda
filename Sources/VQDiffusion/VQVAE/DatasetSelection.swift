import Foundation

/// Which captioned images to use, in a form that can be logged, compared and used as a cache key:
/// a source, a split, an image size, a seed and a sample count.
public struct DatasetSelection: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Source: String, Codable, CaseIterable, Sendable {
        case shapes, fashion, folder
    }

    public var source: Source
    public var split: String
    /// Side of the square images (Fashion-MNIST: always 32).
    public var imageSize: Int
    /// Dataset seed (Shapes scenes, caption templates).
    public var seed: UInt64
    /// The first `count` samples of the split; nil for the whole split.
    public var count: Int?
    /// The folder of a folder dataset.
    public var folder: String?

    public init(source: Source, split: DatasetSplit, imageSize: Int = 32, seed: UInt64 = 0, count: Int? = nil,
                folder: String? = nil) {
        self.source = source
        self.split = split.rawValue
        self.imageSize = imageSize
        self.seed = seed
        self.count = count
        self.folder = folder
    }

    public var description: String {
        var s = "\(source.rawValue)/\(split) \(imageSize)×\(imageSize) seed \(seed)"
        if let count { s += ", first \(count)" }
        if let folder { s += " (\(folder))" }
        return s
    }

    /// Opens the selected images (a thrown error says what is missing or unsupported).
    public func open() throws -> any CaptionedDataset {
        guard let split = DatasetSplit(rawValue: split) else {
            throw DatasetError("unknown split \"\(self.split)\": use train, val, test or novel.")
        }
        if let count, count < 1 { throw DatasetError("sample count \(count) is too small: use at least 1.") }
        let data: any CaptionedDataset
        switch source {
        case .shapes:
            data = try ShapesDataset(ShapesConfiguration(imageSize: imageSize, seed: seed, split: split, count: count))
            return data
        case .fashion:
            guard imageSize == FashionMNIST.paddedSize else {
                throw DatasetError("Fashion-MNIST images are \(FashionMNIST.paddedSize)×\(FashionMNIST.paddedSize): use --size \(FashionMNIST.paddedSize).")
            }
            data = try FashionMNIST(split: split, seed: seed)
        case .folder:
            // A folder has no splits: the folder given is the split. Images of another size are
            // resized to the model's (area averaging down, replication up; see FolderDataset).
            guard let folder else { throw DatasetError("a folder dataset needs its folder: give --folder DIR.") }
            data = try FolderDataset(directory: URL(fileURLWithPath: folder), size: imageSize, resize: true)
        }
        guard let count, count < data.count else { return data }
        return PrefixDataset(base: data, count: count)
    }
}

/// The first `count` samples of another dataset.
public struct PrefixDataset: CaptionedDataset {
    public let base: any CaptionedDataset
    public let count: Int
    public var channels: Int { base.channels }
    public var imageSize: Int { base.imageSize }

    public init(base: any CaptionedDataset, count: Int) {
        precondition(count >= 0 && count <= base.count, "PrefixDataset: \(count) of \(base.count) samples")
        self.base = base
        self.count = count
    }

    public func sample(at index: Int) -> DatasetSample {
        precondition(index >= 0 && index < count, "index \(index) out of range 0..<\(count)")
        return base.sample(at: index)
    }
}
