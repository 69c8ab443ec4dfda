import Foundation

/// The images datasets hand out: 8-bit, 1 (grey) or 3 (RGB) channels as stored in PNG files;
/// `CaptionedBatch` turns them into Float32 tensors.
public typealias DatasetImage = Image

/// What a sample says about its content beyond the caption, when its source knows it.
public enum SampleAttributes: Equatable, Sendable {
    /// A procedural Shapes scene: every object's shape, colour, size, centre, extent; the position
    /// or relation; the caption template.
    case shapes(ShapesScene)
    /// A class label (Fashion-MNIST: 0…9, see `FashionMNIST.classNames`).
    case classLabel(Int)
}

/// One captioned image.
public struct DatasetSample: Equatable, Sendable {
    public var image: DatasetImage
    public var caption: String
    /// nil for sources that only know the caption (a folder of PNG files).
    public var attributes: SampleAttributes?

    public init(image: DatasetImage, caption: String, attributes: SampleAttributes? = nil) {
        self.image = image
        self.caption = caption
        self.attributes = attributes
    }
}

/// The splits every source may offer. Shapes has all four; Fashion-MNIST has train, val and test;
/// a folder is a single split.
public enum DatasetSplit: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    case train, val, test
    /// Shapes only: scenes containing a held-out colour–shape pair (compositional generalization).
    case novel

    /// The generator sub-stream key of the split; distinct keys give disjoint streams.
    public var streamKey: UInt64 {
        switch self {
        case .train: return 1
        case .val: return 2
        case .test: return 3
        case .novel: return 4
        }
    }

    public var description: String { rawValue }
}

/// A finite, indexable source of captioned square images.
///
/// Every source checks its files when it is opened (a thrown error with a message a user can act
/// on) so that `sample(at:)` cannot fail afterwards; a sample is a pure function of the source's
/// configuration and the index. Procedural sources render on demand; file sources hold the decoded
/// pixels (or decode on demand from files already validated).
public protocol CaptionedDataset {
    /// Number of samples; valid indices are 0..<count.
    var count: Int { get }
    /// Channels per pixel: 1 (grey) or 3 (RGB).
    var channels: Int { get }
    /// Side of the square images, in pixels.
    var imageSize: Int { get }
    /// The sample at `index` (0..<count).
    func sample(at index: Int) -> DatasetSample
}

/// An error from outside the program: a missing or malformed data file, an unknown split.
public struct DatasetError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
