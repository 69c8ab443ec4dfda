import Engine
import Foundation

/// Fashion-MNIST (docs/design.md §3): 28×28 grey images of 10 clothing classes, padded to 32×32
/// (2 pixels of value 0 on every side), captioned from per-class templates.
///
/// Read from the gzip IDX files of the Debian package `dataset-fashion-mnist`. Splits: train = the
/// first 55,000 images of the training file, val = its last 5,000, test = the 10,000 of the t10k
/// file. The caption template of sample `index` is drawn from
/// `RandomGenerator(seed: seed).derived(split.streamKey, index)`.
public struct FashionMNIST: CaptionedDataset, Sendable {
    /// Where the Debian package installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// How to get the files, appended to every file error.
    public static let installHint =
        "Install the Fashion-MNIST files with `make deps` or `sudo apt-get install dataset-fashion-mnist`."
    /// Images at the end of the training file that form the val split.
    public static let validationCount = 5_000
    /// Side of the stored images and of the padded ones.
    public static let storedSize = 28
    public static let paddedSize = 32

    /// The class names, by label.
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    /// How captions name each class, with its article.
    public static let classPhrases = ["a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat",
                                      "a sandal", "a shirt", "a sneaker", "a bag", "an ankle boot"]
    /// Caption templates; "{item}" is the class phrase.
    public static let templates = ["a photo of {item}", "{item}", "a picture of {item}",
                                   "a black and white photo of {item}"]

    public let split: DatasetSplit
    public let seed: UInt64
    public let count: Int
    public var channels: Int { 1 }
    public var imageSize: Int { FashionMNIST.paddedSize }

    /// All images of the file the split comes from, (n, 28, 28), and their labels.
    private let images: [UInt8]
    private let labels: [UInt8]
    /// Index in the file of the split's first sample.
    private let offset: Int
    private let root: RandomGenerator

    /// Loads the split's file from `directory` (a thrown error says what is missing and how to
    /// install it). `split` is train, val or test.
    public init(split: DatasetSplit, seed: UInt64 = 0, directory: String = FashionMNIST.defaultDirectory) throws {
        let prefix: String
        switch split {
        case .train, .val: prefix = "train"
        case .test: prefix = "t10k"
        case .novel: throw DatasetError("Fashion-MNIST has no novel split: use train, val or test.")
        }
        let dir = URL(fileURLWithPath: directory)
        let imagePath = dir.appendingPathComponent("\(prefix)-images-idx3-ubyte.gz").path
        let labelPath = dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte.gz").path
        let hint = FashionMNIST.installHint
        let imageFile = try IDXFile.read(gzipPath: imagePath, hint: hint)
        let labelFile = try IDXFile.read(gzipPath: labelPath, hint: hint)
        let s = FashionMNIST.storedSize
        guard imageFile.dimensions.count == 3, imageFile.dimensions[1] == s, imageFile.dimensions[2] == s else {
            throw DatasetError("\(imagePath) holds an array of shape \(imageFile.dimensions), not (n, 28, 28) images. \(hint)")
        }
        let n = imageFile.dimensions[0]
        guard labelFile.dimensions == [n] else {
            throw DatasetError("\(labelPath) holds an array of shape \(labelFile.dimensions), not \(n) labels to match \(imagePath). \(hint)")
        }
        if let bad = labelFile.values.first(where: { $0 >= 10 }) {
            throw DatasetError("\(labelPath) contains label \(bad); Fashion-MNIST labels are 0…9. \(hint)")
        }
        let v = FashionMNIST.validationCount
        if split != .test && n <= v {
            throw DatasetError("\(imagePath) holds \(n) images, too few to set \(v) aside for val. \(hint)")
        }
        switch split {
        case .train: (offset, count) = (0, n - v)
        case .val: (offset, count) = (n - v, v)
        default: (offset, count) = (0, n)
        }
        self.split = split
        self.seed = seed
        self.images = imageFile.values
        self.labels = labelFile.values
        self.root = RandomGenerator(seed: seed)
    }

    /// The class label (0…9) of sample `index`.
    public func label(at index: Int) -> Int {
        precondition(index >= 0 && index < count, "Fashion-MNIST index \(index) out of range 0..<\(count)")
        return Int(labels[offset + index])
    }

    /// The caption template (index into `templates`) of sample `index`.
    public func templateIndex(at index: Int) -> Int {
        var rng = root.derived(split.streamKey, UInt64(index))
        return rng.int(below: FashionMNIST.templates.count)
    }

    /// The caption of class `label` under template `template`.
    public static func caption(label: Int, template: Int) -> String {
        templates[template].replacingOccurrences(of: "{item}", with: classPhrases[label])
    }

    /// The class a caption names, if it names exactly one (e.g. "a photo of a sneaker" → 7).
    public static func classLabel(inCaption caption: String) -> Int? {
        let words = caption.lowercased().split(whereSeparator: { !$0.isLetter && $0 != "-" }).map(String.init)
        // Match on the class's head noun; "t-shirt" is one word, so "shirt" does not match it.
        let nouns = ["t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
        let found = nouns.indices.filter { words.contains(nouns[$0]) }
        return found.count == 1 ? found[0] : nil
    }

    public func sample(at index: Int) -> DatasetSample {
        let label = label(at: index)
        let (s, p) = (FashionMNIST.storedSize, FashionMNIST.paddedSize)
        let pad = (p - s) / 2
        var pixels = [UInt8](repeating: 0, count: p * p)  // (32, 32)
        images.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                let base = (offset + index) * s * s
                for y in 0..<s {
                    for x in 0..<s { dst[(y + pad) * p + x + pad] = src[base + y * s + x] }
                }
            }
        }
        return DatasetSample(image: DatasetImage(width: p, height: p, channels: 1, pixels: pixels),
                             caption: FashionMNIST.caption(label: label, template: templateIndex(at: index)),
                             attributes: .classLabel(label))
    }
}
