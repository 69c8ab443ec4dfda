import Engine
import Foundation

/// The architecture of all-MiniLM-L6-v2, read from its config.json (a BERT encoder).
public struct MiniLMConfiguration: Codable, Equatable, Sendable {
    /// Width of every hidden state (384).
    public var hiddenSize: Int
    /// Number of encoder layers (6).
    public var layers: Int
    /// Attention heads per layer (12).
    public var heads: Int
    /// Width of the feed-forward layer (1536).
    public var intermediateSize: Int
    /// Number of position embeddings: the longest input in tokens (512).
    public var maxPositions: Int
    /// Number of token-type embeddings (2; every token here has type 0).
    public var typeVocabularySize: Int
    /// WordPiece vocabulary size (30,522).
    public var vocabularySize: Int
    /// Epsilon of every LayerNorm (1e-12).
    public var layerNormEpsilon: Float

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", layers = "num_hidden_layers", heads = "num_attention_heads"
        case intermediateSize = "intermediate_size", maxPositions = "max_position_embeddings"
        case typeVocabularySize = "type_vocab_size", vocabularySize = "vocab_size"
        case layerNormEpsilon = "layer_norm_eps"
    }

    /// all-MiniLM-L6-v2's values.
    public static let allMiniLML6v2 = MiniLMConfiguration(
        hiddenSize: 384, layers: 6, heads: 12, intermediateSize: 1536, maxPositions: 512,
        typeVocabularySize: 2, vocabularySize: 30_522, layerNormEpsilon: 1e-12)
}

extension MiniLMConfiguration {
    /// Reads config.json; the activation must be BERT's exact GELU and positions absolute.
    public init(contentsOf url: URL) throws {
        let data = try AtomicFile.read(url)
        do {
            self = try JSONDecoder().decode(MiniLMConfiguration.self, from: data)
        } catch {
            throw FileError(url, "is not a BERT config.json (\(error)); run `make deps` to fetch the all-MiniLM-L6-v2 files again")
        }
        struct Extra: Decodable { let hidden_act: String?; let position_embedding_type: String? }
        let extra = try? JSONDecoder().decode(Extra.self, from: data)
        if let act = extra?.hidden_act, act != "gelu" {
            throw FileError(url, "hidden_act is \"\(act)\"; this encoder implements BERT's exact GELU (\"gelu\") only")
        }
        if let pos = extra?.position_embedding_type, pos != "absolute" {
            throw FileError(url, "position_embedding_type is \"\(pos)\"; this encoder implements absolute positions only")
        }
        guard hiddenSize > 0, heads > 0, hiddenSize % heads == 0, layers > 0 else {
            throw FileError(url, "hidden_size \(hiddenSize) must be a positive multiple of num_attention_heads \(heads)")
        }
    }
}

/// all-MiniLM-L6-v2 (a 6-layer, width-384 BERT encoder), frozen, for inference only.
///
/// Forward (Devlin et al. 2019, post-LN): x = LN(word[id] + position[i] + type[0]); then per layer
/// x = LN(x + Wo·attention(Wq x, Wk x, Wv x)) and x = LN(x + W2·gelu(W1 x)), with exact (erf) GELU
/// and padding keys hidden from attention. Q, K and V are fused into one [3·D, D] linear at load
/// time. Weights load from model.safetensors by explicit key names; the file must hold exactly
/// those plus the keys in `ignoredKeys`.
public final class MiniLM {
    /// One encoder layer's weights. Linear weights are [out, in].
    struct Layer {
        let qkvWeight: Tensor        // (3·D, D): query, key, value rows stacked
        let qkvBias: Tensor          // (3·D)
        let outputWeight: Tensor     // (D, D)
        let outputBias: Tensor       // (D)
        let attentionNormWeight: Tensor, attentionNormBias: Tensor   // (D)
        let intermediateWeight: Tensor   // (F, D)
        let intermediateBias: Tensor     // (F)
        let feedForwardWeight: Tensor    // (D, F)
        let feedForwardBias: Tensor      // (D)
        let outputNormWeight: Tensor, outputNormBias: Tensor         // (D)
    }

    /// Keys of the file that the encoder deliberately does not use: the position-id buffer
    /// (positions are 0..<L) and the pooler (a [CLS] projection for next-sentence prediction;
    /// sentence embeddings here are mean-pooled, as all-MiniLM-L6-v2 was trained).
    public static let ignoredKeys: Set<String> = ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"]

    public let configuration: MiniLMConfiguration
    /// A 64-bit fingerprint (16 hex digits) of the weights file's bytes: the key of feature caches.
    public let fingerprint: String

    let wordEmbeddings: Tensor       // (V, D)
    let positionEmbeddings: Tensor   // (P, D)
    let typeEmbedding: Tensor        // (D): row 0 of the token-type table
    let embeddingNormWeight: Tensor, embeddingNormBias: Tensor   // (D)
    let layers: [Layer]

    public var width: Int { configuration.hiddenSize }

    /// Loads config.json and model.safetensors from `files`; an error says to run `make deps` when
    /// they are missing.
    public convenience init(files: MiniLMFiles) throws {
        let configuration = try MiniLMConfiguration(contentsOf: files.require(files.modelConfiguration))
        try self.init(weights: files.require(files.weights), configuration: configuration)
    }

    /// Loads the weights from a safetensors file, strictly: every key the encoder uses must be
    /// present, F32 and of the configured shape, and no key outside those and `ignoredKeys` may appear.
    public init(weights url: URL, configuration c: MiniLMConfiguration) throws {
        let data = try AtomicFile.read(url)
        fingerprint = Self.fingerprint(of: data)
        let file = try Safetensors.decode(data, path: url.path)
        let (D, F) = (c.hiddenSize, c.intermediateSize)

        var used: Set<String> = []
        var problems: [String] = []
        func take(_ name: String, _ shape: [Int]) -> Tensor {
            used.insert(name)
            guard let entry = file[name] else { problems.append("missing \(name)"); return Tensor(zeros: shape) }
            guard let floats = entry.floats else {
                problems.append("\(name) has dtype \(entry.dtype.rawValue), expected F32"); return Tensor(zeros: shape)
            }
            guard entry.shape == shape else {
                problems.append("\(name) has shape \(entry.shape), expected \(shape)"); return Tensor(zeros: shape)
            }
            return Tensor(shape: shape, values: floats)
        }

        wordEmbeddings = take("embeddings.word_embeddings.weight", [c.vocabularySize, D])
        positionEmbeddings = take("embeddings.position_embeddings.weight", [c.maxPositions, D])
        let types = take("embeddings.token_type_embeddings.weight", [c.typeVocabularySize, D])
        typeEmbedding = Tensor(shape: [D], values: Array(types.values.prefix(D)))
        embeddingNormWeight = take("embeddings.LayerNorm.weight", [D])
        embeddingNormBias = take("embeddings.LayerNorm.bias", [D])

        var layers: [Layer] = []
        for i in 0..<c.layers {
            let p = "encoder.layer.\(i)."
            let q = take(p + "attention.self.query.weight", [D, D]), k = take(p + "attention.self.key.weight", [D, D])
            let v = take(p + "attention.self.value.weight", [D, D])
            let qb = take(p + "attention.self.query.bias", [D]), kb = take(p + "attention.self.key.bias", [D])
            let vb = take(p + "attention.self.value.bias", [D])
            layers.append(Layer(
                qkvWeight: Tensor(shape: [3 * D, D], values: q.values + k.values + v.values),
                qkvBias: Tensor(shape: [3 * D], values: qb.values + kb.values + vb.values),
                outputWeight: take(p + "attention.output.dense.weight", [D, D]),
                outputBias: take(p + "attention.output.dense.bias", [D]),
                attentionNormWeight: take(p + "attention.output.LayerNorm.weight", [D]),
                attentionNormBias: take(p + "attention.output.LayerNorm.bias", [D]),
                intermediateWeight: take(p + "intermediate.dense.weight", [F, D]),
                intermediateBias: take(p + "intermediate.dense.bias", [F]),
                feedForwardWeight: take(p + "output.dense.weight", [D, F]),
                feedForwardBias: take(p + "output.dense.bias", [D]),
                outputNormWeight: take(p + "output.LayerNorm.weight", [D]),
                outputNormBias: take(p + "output.LayerNorm.bias", [D])))
        }
        self.layers = layers
        let unexpected = file.names.filter { !used.contains($0) && !Self.ignoredKeys.contains($0) }
        if !unexpected.isEmpty { problems.append("unexpected \(unexpected.sorted().joined(separator: ", "))") }
        if !problems.isEmpty {
            throw FileError(url, "is not the all-MiniLM-L6-v2 checkpoint this encoder expects: "
                            + problems.joined(separator: "; ") + ". Delete cache/minilm and run `make deps` again.")
        }
        configuration = c
    }

    // MARK: Forward

    /// Last hidden states of a batch of token-id rows.
    ///
    /// - ids: (B·L) WordPiece ids, row-major; mask: (B·L), true for real tokens (nil: all real).
    /// - Returns: (B, L, D). Rows at padding positions are computed too (as BERT does) but never
    ///   influence real tokens.
    public func hiddenStates(ids: [Int32], mask: [Bool]? = nil, batch B: Int, length L: Int) -> Tensor {
        precondition(ids.count == B * L, "MiniLM: \(ids.count) ids for batch \(B) × length \(L)")
        precondition(L >= 1 && L <= configuration.maxPositions,
                     "MiniLM: length \(L) outside 1...\(configuration.maxPositions)")
        if let mask { precondition(mask.count == B * L, "MiniLM: mask has \(mask.count) entries for \(B) × \(L)") }
        let V = Int32(configuration.vocabularySize)
        precondition(ids.allSatisfy { $0 >= 0 && $0 < V }, "MiniLM: token id outside the vocabulary of \(V)")
        let (D, H, eps) = (configuration.hiddenSize, configuration.heads, configuration.layerNormEpsilon)
        // A mask with no padding is the same as none: skip it.
        let keyMask = mask.flatMap { $0.allSatisfy { $0 } ? nil : $0 }
        return Autograd.withoutGrad {
            var x = embed(ids: ids, batch: B, length: L)                       // (B, L, D)
            for layer in layers {
                let qkv = linear(x, layer.qkvWeight, layer.qkvBias)            // (B, L, 3D)
                let (q, k, v) = Self.split(qkv, width: D)                      // 3 × (B, L, D)
                let context = attention(query: q, key: k, value: v, heads: H, keyPaddingMask: keyMask)
                let attended = linear(context, layer.outputWeight, layer.outputBias)
                Self.addInPlace(attended, x)
                x = layerNorm(attended, weight: layer.attentionNormWeight, bias: layer.attentionNormBias, eps: eps)
                let hidden = linear(x, layer.intermediateWeight, layer.intermediateBias)                     // (B, L, F)
                Self.geluErfInPlace(hidden.pointer, count: hidden.count)
                let fed = linear(hidden, layer.feedForwardWeight, layer.feedForwardBias)                     // (B, L, D)
                Self.addInPlace(fed, x)
                x = layerNorm(fed, weight: layer.outputNormWeight, bias: layer.outputNormBias, eps: eps)
            }
            return x
        }
    }

    /// The sentence embedding of all-MiniLM-L6-v2: the mean of the hidden states over real
    /// tokens, divided by its L2 norm. hidden: (B, L, D), mask (B·L) → (B, D).
    public static func sentenceEmbeddings(hidden: Tensor, mask: [Bool]) -> Tensor {
        let (B, L, D) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        precondition(mask.count == B * L, "sentenceEmbeddings: mask has \(mask.count) entries for hidden \(hidden.shape)")
        let out = Tensor(zeros: [B, D])
        let (h, o) = (hidden.pointer, out.pointer)
        for b in 0..<B {
            let row = o + b * D
            var real = 0
            for i in 0..<L where mask[b * L + i] {
                real += 1
                let src = h + (b * L + i) * D
                for j in 0..<D { row[j] += src[j] }
            }
            var norm: Float = 0
            for j in 0..<D { norm += row[j] * row[j] }
            norm = norm.squareRoot()
            // The mean's 1/real cancels in the normalisation; kept out of the loop.
            let scale: Float = real > 0 && norm > 0 ? 1 / max(norm, 1e-12) : 0
            for j in 0..<D { row[j] *= scale }
        }
        return out
    }

    /// (B, L, D): word + position + type-0 embeddings, then LayerNorm.
    private func embed(ids: [Int32], batch B: Int, length L: Int) -> Tensor {
        let D = configuration.hiddenSize
        let sum = Tensor(uninitializedShape: [B, L, D])
        let (s, w, p, t) = (sum.pointer, wordEmbeddings.pointer, positionEmbeddings.pointer, typeEmbedding.pointer)
        for b in 0..<B {
            for i in 0..<L {
                let row = s + (b * L + i) * D
                let word = w + Int(ids[b * L + i]) * D, position = p + i * D
                for j in 0..<D { row[j] = word[j] + position[j] + t[j] }
            }
        }
        return layerNorm(sum, weight: embeddingNormWeight, bias: embeddingNormBias, eps: configuration.layerNormEpsilon)
    }

    /// Splits (B, L, 3D) into query, key and value, each (B, L, D) and contiguous.
    private static func split(_ qkv: Tensor, width D: Int) -> (Tensor, Tensor, Tensor) {
        let rows = qkv.count / (3 * D)
        let shape = Array(qkv.shape.dropLast()) + [D]
        let parts = (0..<3).map { _ in Tensor(uninitializedShape: shape) }
        let src = qkv.pointer
        for (part, tensor) in parts.enumerated() {
            let dst = tensor.pointer
            for r in 0..<rows { (dst + r * D).update(from: src + r * 3 * D + part * D, count: D) }
        }
        return (parts[0], parts[1], parts[2])
    }

    /// x ← x·Φ(x) = 0.5·x·(1 + erf(x/√2)), BERT's exact GELU, with erf from Abramowitz & Stegun
    /// 7.1.26 (absolute error ≤ 1.5e-7) over `FastMath.exp`: branch-free, so the loop vectorises
    /// (about 4× faster than calling the C library's erff per element).
    static func geluErfInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n {
            let v = x[i]
            let z = abs(v) * 0.707_106_781_2                      // |x|/√2
            let t = 1 / (1 + 0.327_591_1 * z)
            var poly: Float = 1.061_405_429
            poly = poly * t - 1.453_152_027
            poly = poly * t + 1.421_413_741
            poly = poly * t - 0.284_496_736
            poly = poly * t + 0.254_829_592
            let erfAbs = 1 - poly * t * FastMath.exp(-z * z)     // erf(|x|/√2)
            // x·Φ(x) = 0.5·x·(1 + sign(x)·erf(|x|/√2)) = 0.5·(x + |x|·erf(|x|/√2)).
            x[i] = 0.5 * (v + abs(v) * erfAbs)
        }
    }

    /// a += b, same shape (no graph: inference only).
    private static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.shape == b.shape, "addInPlace: shapes \(a.shape) and \(b.shape) differ")
        let (pa, pb) = (a.pointer, b.pointer)
        for i in 0..<a.count { pa[i] += pb[i] }
    }

    /// 64-bit FNV-1a over the bytes taken 8 at a time (the tail byte by byte), as 16 hex digits.
    static func fingerprint(of data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let prime: UInt64 = 0x0000_0100_0000_01b3
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let words = raw.count / 8
            for i in 0..<words {
                hash = (hash ^ raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* prime
                hash ^= hash >> 29
            }
            for i in (words * 8)..<raw.count { hash = (hash ^ UInt64(raw[i])) &* prime }
            hash = (hash ^ UInt64(raw.count)) &* prime
        }
        return String(format: "%016llx", hash)
    }
}
