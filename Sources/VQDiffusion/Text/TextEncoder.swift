import Engine

/// Per-token conditioning features for a batch of captions: what the generators cross-attend to.
public struct TextFeatures {
    /// (B, L, D): one feature vector per token, padded to a fixed length L.
    public let features: Tensor
    /// (B·L): true for a real token, false for padding (the key-padding mask of cross-attention).
    public let mask: [Bool]

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
