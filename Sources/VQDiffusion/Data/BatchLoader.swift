import Engine

/// A batch of captioned images as the models take them.
public struct CaptionedBatch {
    /// (B, C, S, S), values in [-1, 1] (0 → −1, 255 → 1).
    public let images: Tensor
    public let captions: [String]
    /// Per sample, what the source knows beyond the caption (nil for caption-only sources).
    public let attributes: [SampleAttributes?]
    /// The dataset indices of the samples.
    public let indices: [Int]

    public var count: Int { indices.count }
}

/// Cuts a dataset into batches, in an order shuffled afresh every epoch.
///
/// The order of epoch e is `generator.derived(e).permutation(count)` (or 0..<count without
/// shuffling), so any epoch can be replayed or resumed on its own.
public struct BatchLoader {
    public let dataset: any CaptionedDataset
    public let batchSize: Int
    /// Shuffle the order each epoch (otherwise dataset order).
    public let shuffle: Bool
    /// Leave out a last batch smaller than `batchSize`.
    public let dropLast: Bool
    /// The source of every epoch's order.
    public let generator: RandomGenerator

    public init(dataset: any CaptionedDataset, batchSize: Int, shuffle: Bool = true, dropLast: Bool = false,
                generator: RandomGenerator) {
        precondition(batchSize > 0, "batch size must be positive, got \(batchSize)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.generator = generator
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The dataset indices in the order epoch `epoch` visits them.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<dataset.count) }
        var rng = generator.derived(UInt64(epoch))
        return rng.permutation(dataset.count)
    }

    /// The batches of one epoch, in order.
    public func batches(epoch: Int) -> EpochBatches { EpochBatches(loader: self, order: order(epoch: epoch)) }

    /// Batches without end, epoch after epoch, starting at batch `step` of epoch `epoch`.
    public func stream(epoch: Int = 0, step: Int = 0) -> BatchStream { BatchStream(loader: self, epoch: epoch, step: step) }

    /// The samples at `indices`, assembled into a batch.
    public func batch(indices: [Int]) -> CaptionedBatch {
        let (C, S) = (dataset.channels, dataset.imageSize)
        let images = Tensor(uninitializedShape: [indices.count, C, S, S])  // (B, C, S, S)
        var captions: [String] = []
        var attributes: [SampleAttributes?] = []
        captions.reserveCapacity(indices.count)
        attributes.reserveCapacity(indices.count)
        let plane = S * S
        for (b, index) in indices.enumerated() {
            let sample = dataset.sample(at: index)
            let image = sample.image
            precondition(image.width == S && image.height == S && image.channels == C,
                         "sample \(index) is \(image.width)×\(image.height)×\(image.channels), the dataset says \(S)×\(S)×\(C)")
            let dst = images.pointer + b * C * plane
            image.pixels.withUnsafeBufferPointer { src in  // (S, S, C) → (C, S, S)
                for p in 0..<plane {
                    for c in 0..<C { dst[c * plane + p] = Float(src[p * C + c]) * (2 / 255) - 1 }
                }
            }
            captions.append(sample.caption)
            attributes.append(sample.attributes)
        }
        return CaptionedBatch(images: images, captions: captions, attributes: attributes, indices: indices)
    }
}

/// The batches of one epoch.
public struct EpochBatches: Sequence, IteratorProtocol {
    let loader: BatchLoader
    let order: [Int]
    var position = 0

    init(loader: BatchLoader, order: [Int]) {
        self.loader = loader
        self.order = order
    }

    public mutating func next() -> CaptionedBatch? {
        let remaining = order.count - position
        guard remaining > 0, !(loader.dropLast && remaining < loader.batchSize) else { return nil }
        let end = Swift.min(order.count, position + loader.batchSize)
        let batch = loader.batch(indices: Array(order[position..<end]))
        position = end
        return batch
    }
}

/// An endless sequence of batches for training loops that count steps; `(epoch, step)` says where
/// it stands, so a run can be resumed exactly.
public struct BatchStream: Sequence, IteratorProtocol {
    public let loader: BatchLoader
    /// The epoch of the next batch.
    public private(set) var epoch: Int
    /// The index within its epoch of the next batch.
    public private(set) var step: Int
    private var order: [Int]

    init(loader: BatchLoader, epoch: Int, step: Int) {
        precondition(loader.batchesPerEpoch > 0,
                     "no batch of \(loader.batchSize) fits in a dataset of \(loader.dataset.count) samples")
        self.loader = loader
        self.epoch = epoch
        self.step = step
        self.order = loader.order(epoch: epoch)
    }

    public mutating func next() -> CaptionedBatch? { loader.batch(indices: nextIndices()) }

    /// The dataset indices of the next batch (without assembling it): a data-parallel process
    /// assembles only its rows of every batch.
    public mutating func nextIndices() -> [Int] {
        if step >= loader.batchesPerEpoch {
            epoch += 1
            step = 0
            order = loader.order(epoch: epoch)
        }
        let start = step * loader.batchSize
        let end = Swift.min(order.count, start + loader.batchSize)
        step += 1
        return Array(order[start..<end])
    }
}
