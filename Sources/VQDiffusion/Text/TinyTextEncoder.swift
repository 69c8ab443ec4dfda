import Engine
import Foundation

/// Configuration of the tiny trainable text encoder.
public struct TinyTextEncoderConfiguration: Codable, Equatable, Sendable {
    /// Feature width D (default 128).
    public var width = 128
    /// Transformer blocks (default 2; 2–4 is the intended range).
    public var layers = 2
    /// Attention heads (default 4); must divide `width`.
    public var heads = 4
    /// Padded length L in words; longer captions are truncated with a warning (default 32).
    public var maxLength = 32
    /// Hidden width of each MLP as a multiple of `width` (default 4).
    public var mlpRatio = 4

    public init(width: Int = 128, layers: Int = 2, heads: Int = 4, maxLength: Int = 32, mlpRatio: Int = 4) {
        self.width = width
        self.layers = layers
        self.heads = heads
        self.maxLength = maxLength
        self.mlpRatio = mlpRatio
    }

    /// For tests: width 16, 2 layers, 2 heads, 8 words.
    public static let test = TinyTextEncoderConfiguration(width: 16, layers: 2, heads: 2, maxLength: 8, mlpRatio: 2)
}

/// A small text encoder trained jointly with the generator: the fallback when the pretrained
/// MiniLM weights are not wanted, and the test double of the generators.
///
/// Words (see `WordVocabulary`, learned from the training captions) are embedded, learned position
/// embeddings added, then `layers` pre-LN transformer blocks run — x += Attn(LN(x)) with the padding
/// mask, x += MLP(LN(x)) with tanh GELU — and a final LayerNorm gives the per-token features;
/// padding rows are multiplied by 0. `encode` builds a graph into the parameters whenever
/// gradients are enabled.
///
/// Parameter names: `tokenEmbedding.weight`, `positionEmbedding.weight`,
/// `blocks.<i>.{attentionNorm,qkv,projection,mlpNorm,mlpIn,mlpOut}.{weight,bias}`,
/// `finalNorm.{weight,bias}`. The vocabulary travels with the checkpoint as `vocabularyJSON`.
public final class TinyTextEncoder: TextEncoder, CompositeModule {
    /// One pre-LN transformer block.
    public final class Block: CompositeModule {
        public let attentionNorm: LayerNorm
        public let qkv: Linear          // (3D, D)
        public let projection: Linear   // (D, D)
        public let mlpNorm: LayerNorm
        public let mlpIn: Linear        // (rD, D), GELU fused
        public let mlpOut: Linear       // (D, rD)
        let heads: Int

        init(_ c: TinyTextEncoderConfiguration, using rng: inout RandomGenerator) {
            let D = c.width
            attentionNorm = LayerNorm(D)
            qkv = Linear(D, 3 * D, using: &rng)
            projection = Linear(D, D, using: &rng)
            mlpNorm = LayerNorm(D)
            mlpIn = Linear(D, c.mlpRatio * D, activation: .gelu, using: &rng)
            mlpOut = Linear(c.mlpRatio * D, D, using: &rng)
            heads = c.heads
        }

        /// x: (B, L, D), mask: (B·L) → (B, L, D).
        func callAsFunction(_ x: Tensor, mask: [Bool]) -> Tensor {
            let D = x.shape[2]
            let h = qkv(attentionNorm(x))                                    // (B, L, 3D)
            let q = h.slice(axis: 2, start: 0, end: D)                       // (B, L, D)
            let k = h.slice(axis: 2, start: D, end: 2 * D)
            let v = h.slice(axis: 2, start: 2 * D, end: 3 * D)
            let attended = attention(query: q, key: k, value: v, heads: heads, keyPaddingMask: mask)
            let y = x + projection(attended)
            return y + mlpOut(mlpIn(mlpNorm(y)))
        }

        public var children: [ModuleChild] {
            [.one("attentionNorm", attentionNorm), .one("qkv", qkv), .one("projection", projection),
             .one("mlpNorm", mlpNorm), .one("mlpIn", mlpIn), .one("mlpOut", mlpOut)]
        }
    }

    public let configuration: TinyTextEncoderConfiguration
    public let vocabulary: WordVocabulary
    public let tokenEmbedding: Embedding      // (V, D)
    public let positionEmbedding: Embedding   // (L, D)
    public let blocks: [Block]
    public let finalNorm: LayerNorm
    /// Receives warnings (a truncated caption); standard error by default.
    public var warning: TextWarningHandler = standardErrorWarning

    public var width: Int { configuration.width }
    public var maxLength: Int { configuration.maxLength }
    public var isTrainable: Bool { true }

    /// A freshly initialised encoder over `vocabulary`, drawing from `rng`.
    public init(vocabulary: WordVocabulary, configuration c: TinyTextEncoderConfiguration = .init(),
                using rng: inout RandomGenerator) {
        precondition(c.width > 0 && c.heads > 0 && c.width % c.heads == 0,
                     "TinyTextEncoder: width \(c.width) must be a positive multiple of heads \(c.heads)")
        precondition(c.layers >= 1 && c.maxLength >= 1 && c.mlpRatio >= 1,
                     "TinyTextEncoder: layers, maxLength and mlpRatio must be ≥ 1, got \(c)")
        configuration = c
        self.vocabulary = vocabulary
        tokenEmbedding = Embedding(vocabulary.count, c.width, using: &rng)
        positionEmbedding = Embedding(c.maxLength, c.width, using: &rng)
        blocks = (0..<c.layers).map { _ in Block(c, using: &rng) }
        finalNorm = LayerNorm(c.width)
    }

    /// An encoder whose vocabulary is learned from `captions` (see `WordVocabulary`).
    public convenience init(learningFrom captions: [String], configuration: TinyTextEncoderConfiguration = .init(),
                            using rng: inout RandomGenerator) {
        self.init(vocabulary: WordVocabulary(learningFrom: captions), configuration: configuration, using: &rng)
    }

    /// An encoder over a stored vocabulary (`vocabularyJSON` of a saved encoder); load its
    /// parameters from the checkpoint afterwards.
    public convenience init(vocabularyJSON: String, configuration: TinyTextEncoderConfiguration = .init(),
                            using rng: inout RandomGenerator) throws {
        self.init(vocabulary: try WordVocabulary(json: vocabularyJSON), configuration: configuration, using: &rng)
    }

    /// The vocabulary as JSON, to store in a checkpoint's metadata.
    public var vocabularyJSON: String { vocabulary.json }

    /// The word ids of one caption, at most `maxLength`; throws for an empty or whitespace-only
    /// caption (or one with no word after clean-up), warns when it is truncated.
    public func tokenize(_ caption: String) throws -> (ids: [Int32], truncated: Bool) {
        try TextEncoderError.checkNotBlank([caption])
        let ids = vocabulary.ids(of: caption)
        guard !ids.isEmpty else { throw TextEncoderError.noTokens(caption: caption) }
        let truncated = ids.count > maxLength
        if truncated {
            warning("caption truncated from \(ids.count) to \(maxLength) words (max length \(maxLength)): \"\(caption.prefix(80))…\"")
        }
        return (Array(ids.prefix(maxLength)), truncated)
    }

    /// Features (B, maxLength, D) and mask of `captions`, with a graph into the parameters when
    /// gradients are enabled.
    public func encode(_ captions: [String]) throws -> TextFeatures {
        try TextEncoderError.checkNotBlank(captions)
        let (B, L) = (captions.count, maxLength)
        var ids = [Int32](repeating: WordVocabulary.padID, count: B * L)
        var mask = [Bool](repeating: false, count: B * L)
        for (b, caption) in captions.enumerated() {
            for (i, id) in try tokenize(caption).ids.enumerated() {
                ids[b * L + i] = id
                mask[b * L + i] = true
            }
        }
        let positions = (0..<(B * L)).map { Int32($0 % L) }
        var x = tokenEmbedding(ids, shape: [B, L]) + positionEmbedding(positions, shape: [B, L])   // (B, L, D)
        for block in blocks { x = block(x, mask: mask) }
        let keep = Tensor(shape: [B, L, 1], values: mask.map { $0 ? 1 : 0 })
        return TextFeatures(features: finalNorm(x) * keep, mask: mask)                             // (B, L, D)
    }

    public var children: [ModuleChild] {
        [.one("tokenEmbedding", tokenEmbedding), .one("positionEmbedding", positionEmbedding),
         .list("blocks", blocks), .one("finalNorm", finalNorm)]
    }
}
