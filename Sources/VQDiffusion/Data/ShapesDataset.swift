import Engine

/// Settings of a Shapes split.
public struct ShapesConfiguration: Equatable, Sendable {
    /// Canvas side S: a multiple of 8 from 16 to 128.
    public var imageSize = 32
    /// Seed of the whole dataset; each sample draws from the sub-stream (split, index).
    public var seed: UInt64 = 0
    public var split: DatasetSplit = .train
    /// Samples in the split; nil takes `ShapesConfiguration.defaultCount(split)`.
    public var count: Int? = nil

    public init(imageSize: Int = 32, seed: UInt64 = 0, split: DatasetSplit = .train, count: Int? = nil) {
        self.imageSize = imageSize
        self.seed = seed
        self.split = split
        self.count = count
    }

    /// 50,000 training scenes; 5,000 in each of val, test and novel.
    public static func defaultCount(_ split: DatasetSplit) -> Int { split == .train ? 50_000 : 5_000 }
}

/// The procedural Shapes dataset (docs/design.md §3): one or two coloured shapes on a noisy background,
/// captioned by templates. Sample `index` of a split is a pure function of (seed, split, index):
/// it draws from `RandomGenerator(seed: seed).derived(split.streamKey, index)`, first the scene
/// (`ShapesLayout`), then the background (`ShapesRenderer`).
public struct ShapesDataset: CaptionedDataset, Sendable {
    public let configuration: ShapesConfiguration
    public let count: Int
    public var channels: Int { 3 }
    public var imageSize: Int { configuration.imageSize }
    private let root: RandomGenerator

    /// Checks the configuration (a thrown error for a bad size or count).
    public init(_ configuration: ShapesConfiguration = ShapesConfiguration()) throws {
        guard ShapesLayout.isValidSize(configuration.imageSize) else {
            throw DatasetError("Shapes image size \(configuration.imageSize) is not supported: use a multiple of 8 from 16 to 128 (e.g. 32).")
        }
        let n = configuration.count ?? ShapesConfiguration.defaultCount(configuration.split)
        guard n >= 0 else { throw DatasetError("Shapes sample count \(n) is negative: give a count of 0 or more.") }
        self.configuration = configuration
        self.count = n
        self.root = RandomGenerator(seed: configuration.seed)
    }

    /// The generator of sample `index`: scene draws, then background draws.
    public func generator(at index: Int) -> RandomGenerator {
        root.derived(configuration.split.streamKey, UInt64(index))
    }

    /// The attributes and caption of sample `index`, without rendering it (cheap).
    public func scene(at index: Int) -> ShapesScene {
        precondition(index >= 0 && index < count, "Shapes index \(index) out of range 0..<\(count)")
        var rng = generator(at: index)
        return ShapesLayout.scene(size: imageSize, novel: configuration.split == .novel, using: &rng)
    }

    /// Sample `index` with its image and attributes.
    public func shapesSample(at index: Int) -> ShapesSample {
        precondition(index >= 0 && index < count, "Shapes index \(index) out of range 0..<\(count)")
        let S = imageSize
        var rng = generator(at: index)
        let scene = ShapesLayout.scene(size: S, novel: configuration.split == .novel, using: &rng)
        var work = [Float](repeating: 0, count: S * S * 3)
        var pixels = [UInt8](repeating: 0, count: S * S * 3)
        work.withUnsafeMutableBufferPointer { w in
            pixels.withUnsafeMutableBufferPointer { p in
                ShapesRenderer.render(scene, size: S, using: &rng, work: w, pixels: p)
            }
        }
        return ShapesSample(image: DatasetImage(width: S, height: S, channels: 3, pixels: pixels), scene: scene)
    }

    public func sample(at index: Int) -> DatasetSample {
        let s = shapesSample(at: index)
        return DatasetSample(image: s.image, caption: s.caption, attributes: .shapes(s.scene))
    }
}
