import Engine
import Foundation

/// The frozen pretrained text encoder of the generators: all-MiniLM-L6-v2's last hidden states,
/// each token's vector divided by its L2 norm (as the paper does with CLIP's per-token features),
/// padded to `maxLength` tokens with a key-padding mask; padding rows are 0.
///
/// Features of each distinct caption are computed once and kept in a `TextFeatureCache` (in
/// memory, and on disk when a cache folder is given), so training never runs the encoder twice on
/// a caption. `precompute` fills the cache for a whole list of captions in batches.
///
/// ```swift
/// let encoder = try MiniLMTextEncoder(files: .located(), maxLength: 32, cacheDirectory: cacheFolder)
/// try encoder.precompute(dataset.distinctCaptions)     // once
/// let text = try encoder.encode(batchCaptions)         // (B, 32, 384) + mask, from the cache
/// ```
public final class MiniLMTextEncoder: TextEncoder {
    public let model: MiniLM
    public let tokenizer: WordPieceTokenizer
    /// Tokens per caption, `[CLS]` and `[SEP]` included (default 32); longer captions are truncated
    /// with a warning.
    public let maxLength: Int
    public let cache: TextFeatureCache
    public var width: Int { model.width }
    public var isTrainable: Bool { false }
    /// Receives warnings (a truncated caption); standard error by default.
    public var warning: TextWarningHandler = standardErrorWarning
    /// Number of captions that went through the network (cache misses), for checking the cache.
    public private(set) var encodedCaptionCount = 0
    /// Captions per forward pass when filling the cache.
    public var batchSize = 32

    /// Default maximum length of the conditioning features.
    public static let defaultMaxLength = 32
    /// Name prefix of the feature cache files.
    public static let cachePrefix = "minilm-features"

    /// Loads the model and tokenizer from `files` (an error says to run `make deps` when they are
    /// missing). With a `cacheDirectory`, features are saved to and loaded from
    /// `<cacheDirectory>/minilm-features-<fingerprint>-L<maxLength>.safetensors`.
    public convenience init(files: MiniLMFiles = .located(), maxLength: Int = defaultMaxLength,
                            cacheDirectory: URL? = nil) throws {
        try self.init(model: MiniLM(files: files), tokenizer: files.tokenizer(), maxLength: maxLength,
                      cacheDirectory: cacheDirectory)
    }

    public init(model: MiniLM, tokenizer: WordPieceTokenizer, maxLength: Int = defaultMaxLength,
                cacheDirectory: URL? = nil) throws {
        precondition(maxLength >= 3 && maxLength <= model.configuration.maxPositions,
                     "MiniLMTextEncoder: maxLength \(maxLength) outside 3...\(model.configuration.maxPositions)")
        self.model = model
        self.tokenizer = tokenizer
        self.maxLength = maxLength
        let file = cacheDirectory.map {
            $0.appendingPathComponent(TextFeatureCache.fileName(prefix: Self.cachePrefix, encoder: model.fingerprint,
                                                                 maxLength: maxLength))
        }
        cache = try TextFeatureCache(encoder: model.fingerprint, maxLength: maxLength, width: model.width, file: file)
    }

    /// `[CLS] pieces [SEP]` of one caption, unpadded, at most `maxLength` tokens. Throws for an
    /// empty or whitespace-only caption; warns when the caption is truncated. Any other text is
    /// accepted: one made only of characters the clean-up drops (control, format, private-use)
    /// encodes as `[CLS] [SEP]`.
    public func tokenize(_ caption: String) throws -> WordPieceTokenizer.Encoding {
        try TextEncoderError.checkNotBlank([caption])
        let encoding = tokenizer.encode(caption, maxLength: maxLength, padded: false)
        if encoding.truncated {
            let total = tokenizer.pieceIDs(caption).count + 2
            warning("caption truncated from \(total) to \(maxLength) tokens (max length \(maxLength)): \"\(caption.prefix(80))…\"")
        }
        return encoding
    }

    /// Features of `captions` (B, maxLength, 384) and their mask; captions not yet in the cache
    /// are encoded first (and added to the in-memory cache; call `saveCache` to persist them).
    public func encode(_ captions: [String]) throws -> TextFeatures {
        try TextEncoderError.checkNotBlank(captions)
        try fill(captions, progress: nil)
        return cache.features(of: captions)
    }

    /// Encodes every distinct caption of `captions` not yet cached, in batches, reporting progress
    /// when there are many (≥ `progressThreshold`), then saves the cache file if there is one.
    public func precompute(_ captions: [String], progress: ProgressReport? = nil, progressThreshold: Int = 256) throws {
        try TextEncoderError.checkNotBlank(captions)
        try fill(captions, progress: progress, threshold: progressThreshold)
        try cache.save()
    }

    /// Writes the cache file (when there is one and it has new entries).
    public func saveCache() throws { try cache.save() }

    /// Everything about one caption, computed afresh (the cache is neither read nor filled).
    public struct Inspection {
        /// `[CLS] pieces [SEP]`, unpadded; `truncated` when pieces were cut off.
        public let encoding: WordPieceTokenizer.Encoding
        /// (1, L_c, D): last hidden states of the real tokens.
        public let hiddenStates: Tensor
        /// (1, D): mean-pooled, L2-normalised sentence embedding (all-MiniLM-L6-v2's).
        public let sentenceEmbedding: Tensor
        /// (1, maxLength, D) features and mask, as `encode` gives them.
        public let features: TextFeatures
    }

    /// Tokenizes and encodes one caption without the cache (throws and warns as `tokenize`).
    public func inspect(_ caption: String) throws -> Inspection {
        let encoding = try tokenize(caption)
        let L = encoding.ids.count
        let hidden = model.hiddenStates(ids: encoding.ids, batch: 1, length: L)              // (1, L, D)
        let sentence = MiniLM.sentenceEmbeddings(hidden: hidden, mask: encoding.attentionMask)
        let features = Tensor(zeros: [1, maxLength, width])                                    // (1, maxLength, D)
        features.pointer.update(from: hidden.pointer, count: hidden.count)
        Self.normalizeRows(features.pointer, rows: L, width: width)
        let mask = (0..<maxLength).map { $0 < L }
        return Inspection(encoding: encoding, hiddenStates: hidden, sentenceEmbedding: sentence,
                          features: TextFeatures(features: features, mask: mask))
    }

    // MARK: Filling the cache

    private func fill(_ captions: [String], progress: ProgressReport?, threshold: Int = .max) throws {
        var seen = Set<String>()
        var missing: [(caption: String, ids: [Int32])] = []
        for caption in captions where cache[caption] == nil && seen.insert(caption).inserted {
            missing.append((caption, try tokenize(caption).ids))
        }
        guard !missing.isEmpty else { return }
        // Batches of captions with the same token count need no padding, so a caption's features
        // never depend on the batch it fell in.
        let byLength = Dictionary(grouping: missing, by: { $0.ids.count }).sorted { $0.key < $1.key }
        let report = missing.count >= threshold ? progress : nil
        var done = 0
        for (L, group) in byLength {
            var start = 0
            while start < group.count {
                let batch = group[start..<min(start + batchSize, group.count)]
                let B = batch.count
                let hidden = model.hiddenStates(ids: batch.flatMap(\.ids), batch: B, length: L)   // (B, L, D)
                Self.normalizeRows(hidden.pointer, rows: B * L, width: width)
                let values = hidden.buffer
                for (b, item) in batch.enumerated() {
                    cache.insert(item.caption, features: Array(values[(b * L * width)..<((b + 1) * L * width)]))
                }
                encodedCaptionCount += B
                done += B
                start += B
                report?(done, missing.count)
            }
        }
    }

    /// Divides each row of `rows × width` values by its L2 norm (rows of zeros stay zero).
    static func normalizeRows(_ p: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        for r in 0..<rows {
            let row = p + r * width
            var sum: Float = 0
            for j in 0..<width { sum += row[j] * row[j] }
            let scale = sum > 0 ? 1 / sum.squareRoot() : 0
            for j in 0..<width { row[j] *= scale }
        }
    }
}
