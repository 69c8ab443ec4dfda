import Engine

/// Per-token conditioning features for a batch of captions: what the generators cross-attend to.
public struct TextFeatures {
    /// (B, L, D): one feature vector per token, padded to a fixed length L.
    public let features: Tensor
    /// (B·L): true for a real token, false for padding (the key-padding mask of cross-attention).
    public let mask: [Bool]

    /// The same features multiplied by `scale` (differentiable; 1 returns them unchanged).
    public func scaled(by scale: Float) -> TextFeatures {
        guard scale != 1 else { return self }
        return TextFeatures(features: features * scale, mask: mask)
    }

    public init(features: Tensor, mask: [Bool]) {
        precondition(features.rank == 3, "text features must be [B, L, D], got \(features.shape)")
        precondition(mask.count == features.shape[0] * features.shape[1],
                     "text mask has \(mask.count) entries for features \(features.shape)")
        self.features = features
        self.mask = mask
    }

    public var batch: Int { features.shape[0] }
    public var length: Int { features.shape[1] }
    public var width: Int { features.shape[2] }

    /// The null text of classifier-free guidance: B captions of one zero vector each, the rest
    /// padding. Every encoder's features can be replaced by it, and a model reads it as "no
    /// caption": its cross-attention sees one key, the projection's bias.
    public static func null(batch B: Int, length L: Int, width D: Int) -> TextFeatures {
        precondition(B >= 0 && L >= 1 && D >= 1, "null text: need length ≥ 1 and width ≥ 1, got \(L) and \(D)")
        var mask = [Bool](repeating: false, count: B * L)
        for b in 0..<B { mask[b * L] = true }
        return TextFeatures(features: Tensor(zeros: [B, L, D]), mask: mask)
    }

    /// These features with the captions of the rows where `dropped` is true replaced by the null
    /// text (differentiable for the rows kept).
    public func replacingCaptions(where dropped: [Bool]) -> TextFeatures {
        precondition(dropped.count == batch, "replacingCaptions: \(dropped.count) flags for \(batch) captions")
        guard dropped.contains(true) else { return self }
        let (L, D) = (length, width)
        var keep = [Float](repeating: 1, count: batch * L * D)
        var newMask = mask
        for b in 0..<batch where dropped[b] {
            for i in (b * L * D)..<((b + 1) * L * D) { keep[i] = 0 }
            for l in 0..<L { newMask[b * L + l] = l == 0 }
        }
        return TextFeatures(features: features * Tensor(shape: features.shape, values: keep), mask: newMask)
    }

    /// Batch rows `range`: for a frozen encoder's features a copy without a graph (for splitting a
    /// batch over data-parallel shards, whose threads must not share one); for features that carry
    /// gradients a differentiable slice (an MPI rank's rows, trained on one thread). The whole
    /// batch is returned as it is.
    public func rows(_ range: Range<Int>) -> TextFeatures {
        precondition(range.lowerBound >= 0 && range.upperBound <= batch, "text features: rows \(range) of \(batch)")
        if range == 0..<batch { return self }
        let (L, D) = (length, width)
        let rowMask = Array(mask[(range.lowerBound * L)..<(range.upperBound * L)])
        if features.requiresGrad {
            return TextFeatures(features: features.slice(axis: 0, start: range.lowerBound, end: range.upperBound), mask: rowMask)
        }
        let values = Array(features.buffer[(range.lowerBound * L * D)..<(range.upperBound * L * D)])
        return TextFeatures(features: Tensor(shape: [range.count, L, D], values: values), mask: rowMask)
    }

    /// The rows of `self` followed by the rows of `other` (same length and width).
    public func appending(_ other: TextFeatures) -> TextFeatures {
        precondition(other.length == length && other.width == width,
                     "appending text features: \(other.features.shape) does not match \(features.shape)")
        return TextFeatures(features: concat([features, other.features], axis: 0), mask: mask + other.mask)
    }
}

/// Turns captions into per-token features. A frozen encoder (pretrained MiniLM) returns features
/// without a graph; a trainable one (the tiny encoder) is also a `Module` whose parameters the
/// generator's optimizer trains jointly, and returns features that carry gradients.
public protocol TextEncoder: AnyObject {
    /// Feature width D.
    var width: Int { get }
    /// Padded length L (tokens beyond it are truncated).
    var maxLength: Int { get }
    /// Whether `encode` builds a graph into trainable parameters.
    var isTrainable: Bool { get }
    /// Features for each caption. Throws for input a user can fix (e.g. an empty prompt).
    func encode(_ captions: [String]) throws -> TextFeatures
}

/// Random features of a fixed length per caption (a pure function of the caption), no padding:
/// a stand-in encoder for speed measurements, where the generator's cost does not depend on what
/// the features say.
public final class RandomTextEncoder: TextEncoder {
    public let width: Int
    public let maxLength: Int
    public var isTrainable: Bool { false }

    public init(width: Int, maxLength: Int) {
        self.width = width
        self.maxLength = maxLength
    }

    public func encode(_ captions: [String]) throws -> TextFeatures {
        let (B, L, D) = (captions.count, maxLength, width)
        var values = [Float](repeating: 0, count: B * L * D)
        for (b, caption) in captions.enumerated() {
            var rng = RandomGenerator(seed: TokenCache.fnv1a(Array(caption.utf8)))
            for i in 0..<(L * D) { values[b * L * D + i] = rng.normal() }
        }
        return TextFeatures(features: Tensor(shape: [B, L, D], values: values), mask: [Bool](repeating: true, count: B * L))
    }
}
