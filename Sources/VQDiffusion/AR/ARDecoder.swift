import Engine
import Foundation

// Token-by-token decoding of the VQ-AR model, inference only: the forward pass runs on the
// kernels' pointer functions (linearForward, layerNormForward, attentionForward) over buffers
// allocated once per call, with no autograd and no tensors per step.
//
// Two ways, giving the same logits (up to rounding):
//
//   cached    one new token per step: its query attends over the keys/values of all earlier
//             positions, kept per block in a (B, N, C) cache; N steps cost O(N²·C) attention
//             and O(N·C²) projections in total.
//   uncached  the whole prefix is recomputed at every step (what the paper's AR baselines did),
//             O(N³·C) attention and O(N²·C²) projections in total.
//
// In both, the text's cross-attention keys and values are computed once per call. Each step's
// logits (B, K) go through temperature, top-k and the VQ-Diffusion truncation rule
// (`DiffusionSampling.truncate`) before a Gumbel-max draw from the seeded generator; temperature
// 0 takes the most likely code.
//
// Classifier-free guidance (a model trained with caption dropout) decodes a second stream of B
// rows on the null text beside the captions' B, each with its own key/value cache, and feeds
// both the same drawn token: at every position the logits are log p_u + s·(log p_c − log p_u),
// renormalised, before temperature, top-k and truncation.

/// How tokens are drawn from the AR model.
public struct ARSamplingOptions: Equatable, Sendable {
    /// Logits are divided by it; 0 takes the most likely code (greedy).
    public var temperature: Float = 1
    /// Keep only the k most likely codes (nil: all).
    public var topK: Int?
    /// Truncation rate r in (0, 1] as in VQ-Diffusion (nil or 1: keep every code).
    public var truncation: Double?
    /// Decode with the key/value cache (true) or recompute the prefix at every step.
    public var useCache: Bool = true
    /// Classifier-free guidance scale s (1: none; 0: unconditional; > 1 strengthens what the
    /// caption changes). Needs a model trained with caption dropout.
    public var guidance: Double = 1

    public init(temperature: Float = 1, topK: Int? = nil, truncation: Double? = nil, useCache: Bool = true,
                guidance: Double = 1) {
        (self.temperature, self.topK, self.truncation) = (temperature, topK, truncation)
        (self.useCache, self.guidance) = (useCache, guidance)
    }
}

/// Fast decoding with a fixed `ARTransformer` (its current weights are read at each call).
public final class ARDecoder {
    public let model: ARTransformer

    public init(model: ARTransformer) { self.model = model }

    /// Draws grids (B·N, raster order) for text features (B, L, D). `steps` (≤ N) stops after the
    /// first `steps` tokens (the rest stay 0; for timing). `observe(n, logits)` sees the logits
    /// (B, K) of position n before they are sampled from (with guidance, the guided
    /// log-probabilities). The batch is cut into one row shard per thread when it has at least 4
    /// sequences per shard (`shards` overrides the count). `prefix` fixes the first `lengths[b]`
    /// tokens of grid b (tokens (B·N), only those read) and draws the rest: what raster-order
    /// decoding can do to edit an image. Each grid keeps its own prefix; a step where every grid
    /// keeps its token draws nothing.
    public func decode(text: TextFeatures, options: ARSamplingOptions, steps: Int? = nil, shards: Int? = nil,
                       prefix: ARPrefix? = nil, using rng: inout RandomGenerator,
                       observe: ((Int, UnsafePointer<Float>) -> Void)? = nil) -> [Int32] {
        precondition(options.guidance.isFinite && options.guidance >= 0, "ARDecoder: guidance \(options.guidance) must be ≥ 0")
        let guided = options.guidance != 1
        let B = text.batch
        // With guidance, rows B..<2B decode the null text and follow rows 0..<B's tokens.
        let text = guided ? text.appending(.null(batch: B, length: text.length, width: text.width)) : text
        let c = model.configuration
        let (rows, N, K) = (text.batch, c.tokens, c.classes)
        let S = steps ?? N
        precondition(S >= 0 && S <= N, "ARDecoder: \(S) steps for a grid of \(N) tokens")
        precondition(text.width == c.textWidth, "ARDecoder: text features \(text.features.shape) do not have width \(c.textWidth)")
        if let k = options.topK { precondition(k >= 1, "ARDecoder: top-k must be at least 1, got \(k)") }
        if let r = options.truncation { precondition(r > 0 && r <= 1, "ARDecoder: truncation \(r) outside (0, 1]") }
        if let prefix {
            precondition(prefix.tokens.count == B * N && prefix.lengths.count == B && prefix.lengths.allSatisfy({ (0...N).contains($0) }),
                         "ARDecoder: prefixes \(prefix.lengths) from \(prefix.tokens.count) tokens for \(B) grids of \(N)")
        }
        let shortest = prefix?.lengths.min() ?? 0
        // One forward pass per row shard, each on its own thread with single-threaded kernels when
        // there are several (`Parallel.shards`): a step's matrices are too small to split. As for
        // the diffusion model, a shard needs a few sequences to beat split kernels.
        let shards = max(1, min(shards ?? Parallel.chunkCount(rows, minimumPerChunk: GeneratorShards.inferenceRows), rows))
        let ranges = (0..<shards).map { Parallel.chunkRange(rows, chunks: shards, index: $0) }
        let passes = ranges.map { ARForwardPass(model: model, text: text.rows($0), cached: options.useCache) }
        let logits = Storage(count: rows * K)                // (rows, K)
        var x = [Int32](repeating: 0, count: rows * N)       // (rows, N)
        for n in 0..<S {
            let step = { (i: Int) in
                let rows = ranges[i]
                if options.useCache {
                    let inputs = rows.map { b in n == 0 ? c.startToken : x[b * N + n - 1] }         // (rows, 1)
                    passes[i].run(inputs: inputs, length: 1, start: n)
                } else {
                    var inputs = [Int32](repeating: c.startToken, count: rows.count * (n + 1))    // (rows, n+1)
                    for (r, b) in rows.enumerated() where n > 0 {
                        for j in 0..<n { inputs[r * (n + 1) + j + 1] = x[b * N + j] }
                    }
                    passes[i].run(inputs: inputs, length: n + 1, start: 0)
                }
                (logits.pointer + rows.lowerBound * K).update(from: passes[i].logits.pointer, count: rows.count * K)
            }
            if shards > 1 { _ = Parallel.shards(shards, step) } else { step(0) }
            if let prefix, n < shortest {
                // Every grid keeps this token: the pass above only filled the caches for the next one.
                for b in 0..<B { x[b * N + n] = prefix.tokens[b * N + n] }
                if guided { for b in 0..<B { x[(B + b) * N + n] = prefix.tokens[b * N + n] } }
                continue
            }
            // Guidance: log p_u + s·(log p_c − log p_u) from the two streams' logits (the rows'
            // log-normalisers only shift each row by a constant, which the softmax removes).
            let mixed = guided ? DiffusionSampling.guided(logits.pointer, logits.pointer + B * K, shape: [B, K],
                                                          scale: options.guidance) : nil
            let p = mixed?.pointer ?? logits.pointer
            observe?(n, p)
            var drawn = ARDecoder.draw(p, rows: B, classes: K, options: options, using: &rng)
            if let prefix { for b in 0..<B where n < prefix.lengths[b] { drawn[b] = prefix.tokens[b * N + n] } }
            for b in 0..<B { x[b * N + n] = drawn[b] }
            if guided { for b in 0..<B { x[(B + b) * N + n] = drawn[b] } }
        }
        return Array(x[0..<(B * N)])
    }

    /// Applies temperature, top-k and truncation to `logits` (rows, K) in place and draws one
    /// code per row.
    static func draw(_ logits: UnsafeMutablePointer<Float>, rows: Int, classes K: Int, options: ARSamplingOptions,
                     using rng: inout RandomGenerator) -> [Int32] {
        if options.temperature <= 0 {
            return (0..<rows).map { r in
                let row = logits + r * K
                var arg = 0
                for k in 1..<K where row[k] > row[arg] { arg = k }
                return Int32(arg)
            }
        }
        if options.temperature != 1 {
            let inverse = 1 / options.temperature
            for i in 0..<(rows * K) { logits[i] *= inverse }
        }
        if let k = options.topK, k < K {
            var sorted = [Float](repeating: 0, count: K)
            for r in 0..<rows {
                let row = logits + r * K
                for j in 0..<K { sorted[j] = row[j] }
                sorted.sort(by: >)
                let threshold = sorted[k - 1]
                for j in 0..<K where row[j] < threshold { row[j] = -.infinity }
            }
        }
        if let r = options.truncation, r < 1 {
            DiffusionSampling.truncate(logits, rows: rows, classes: K, rate: r)
        }
        return DiffusionSampling.draw(logits, rows: rows, stride: K, classes: K, using: &rng)
    }
}

/// Text-to-tokens sampling with the AR model.
public final class ARSampler {
    public let decoder: ARDecoder
    public let textEncoder: TextEncoder

    public init(model: ARTransformer, textEncoder: TextEncoder) {
        decoder = ARDecoder(model: model)
        self.textEncoder = textEncoder
    }

    public var model: ARTransformer { decoder.model }

    /// Token grids (B·N) row-major, one per caption; `prefix` keeps the first `lengths[b]` tokens
    /// of given grids (B·N) and draws the rest.
    public func sample(captions: [String], options: ARSamplingOptions = ARSamplingOptions(),
                       prefix: ARPrefix? = nil, using rng: inout RandomGenerator) throws -> [Int32] {
        guard !captions.isEmpty else { return [] }
        if let k = options.topK, k < 1 { throw DiffusionSamplingError("top-k must be at least 1, got \(k)") }
        if let r = options.truncation, !(r > 0 && r <= 1) {
            throw DiffusionSamplingError("the truncation rate must lie in (0, 1], got \(r)")
        }
        guard options.guidance >= 0 && options.guidance.isFinite else {
            throw DiffusionSamplingError("the guidance scale must be a number ≥ 0 (1 = no guidance), got \(options.guidance)")
        }
        guard options.temperature >= 0 && options.temperature.isFinite else {
            throw DiffusionSamplingError("the temperature must be finite and ≥ 0, got \(options.temperature)")
        }
        let N = model.configuration.tokens
        if let prefix, prefix.tokens.count != captions.count * N || prefix.lengths.count != captions.count
            || !prefix.lengths.allSatisfy({ (0...N).contains($0) }) {
            throw DiffusionSamplingError("a kept prefix needs \(captions.count) grids of \(N) tokens and a length from 0 to \(N) "
                                         + "per grid; got \(prefix.tokens.count) tokens and lengths \(prefix.lengths)")
        }
        let text = try Autograd.withoutGrad { try textEncoder.encode(captions) }
        return decoder.decode(text: text, options: options, prefix: prefix, using: &rng)
    }
}

/// The buffers and the pointer-level forward pass of one decoding call.
final class ARForwardPass {
    let model: ARTransformer
    let (B, N, C, H, K, Lc, hidden): (Int, Int, Int, Int, Int, Int, Int)
    let cached: Bool
    let textMask: UnsafeMutablePointer<Bool>            // (B, Lc)
    let textKeys: [Storage], textValues: [Storage]      // depth × (B, Lc, C)
    let cacheKeys: [Storage], cacheValues: [Storage]    // depth × (B, N, C), cached only
    /// Blocks with the causal grid convolution: its weights with the later taps at 0, depth × (9, rC),
    /// and the MLP's hidden rows before it, depth × (B, N, rC), which later positions read.
    let gridWeights: [Storage?], gridInputs: [Storage?]
    let grid: (height: Int, width: Int)
    /// Logits of the last position of each sequence after `run`: (B, K).
    let logits: Storage
    // Work buffers for up to `rows` rows.
    private var rows = 0
    private var x = Storage(count: 0), a = Storage(count: 0), q = Storage(count: 0), k = Storage(count: 0)
    private var v = Storage(count: 0), mixed = Storage(count: 0), tmp = Storage(count: 0), mlp = Storage(count: 0)
    private var mean = Storage(count: 0), rstd = Storage(count: 0), probs = Storage(count: 0)
    private let last: Storage, lastNormed: Storage       // (B, C)

    init(model: ARTransformer, text: TextFeatures, cached: Bool) {
        let c = model.configuration
        self.model = model
        (B, N, C, H, K, Lc, hidden) = (text.batch, c.tokens, c.width, c.heads, c.classes, text.length, c.mlpRatio * c.width)
        self.cached = cached
        textMask = .allocate(capacity: B * Lc)
        for i in 0..<(B * Lc) { textMask[i] = text.mask[i] }
        // Context and the cross-attention keys/values, once.
        let context = Storage(uninitializedCount: B * Lc * C)   // (B, Lc, C)
        let p = model.textProjection
        let features = text.scaled(by: c.textScale).features
        linearForward(out: context.pointer, preact: nil, x: features.pointer, weight: p.weight.pointer,
                      bias: p.bias?.pointer, activation: .none, N: B * Lc, IN: c.textWidth, OUT: C)
        var keys: [Storage] = [], values: [Storage] = []
        for block in model.blocks {
            let cross = block.crossAttention!
            let kb = Storage(uninitializedCount: B * Lc * C), vb = Storage(uninitializedCount: B * Lc * C)
            linearForward(out: kb.pointer, preact: nil, x: context.pointer, weight: cross.key.weight.pointer,
                          bias: cross.key.bias?.pointer, activation: .none, N: B * Lc, IN: C, OUT: C)
            linearForward(out: vb.pointer, preact: nil, x: context.pointer, weight: cross.value.weight.pointer,
                          bias: cross.value.bias?.pointer, activation: .none, N: B * Lc, IN: C, OUT: C)
            keys.append(kb)
            values.append(vb)
        }
        (textKeys, textValues) = (keys, values)
        let cacheCount = cached ? B * N * C : 0
        cacheKeys = model.blocks.map { _ in Storage(count: cacheCount) }
        cacheValues = model.blocks.map { _ in Storage(count: cacheCount) }
        grid = (c.gridHeight, c.gridWidth)
        gridWeights = model.blocks.map { block in
            block.mlpConvolution.map { conv in
                let w = Autograd.withoutGrad { conv.effectiveWeight }
                let s = Storage(uninitializedCount: w.count)
                s.pointer.update(from: w.pointer, count: w.count)
                return s
            }
        }
        let rows = B * N * hidden
        gridInputs = model.blocks.map { $0.mlpConvolution == nil ? nil : Storage(count: rows) }
        logits = Storage(count: B * K)
        last = Storage(count: B * C)
        lastNormed = Storage(count: B * C)
    }

    deinit { textMask.deallocate() }

    private func reserve(rows R: Int, length L: Int) {
        let probsCount = max(H * L * (cached ? N : L), B * H * L * Lc)
        if probs.count < probsCount { probs = Storage(uninitializedCount: probsCount) }
        guard R > rows else { return }
        rows = R
        (x, a, q, k) = (Storage(count: R * C), Storage(count: R * C), Storage(count: R * C), Storage(count: R * C))
        (v, mixed, tmp) = (Storage(count: R * C), Storage(count: R * C), Storage(count: R * C))
        mlp = Storage(uninitializedCount: R * hidden)
        mean = Storage(uninitializedCount: R)
        rstd = Storage(uninitializedCount: R)
    }

    /// Runs the network on `inputs` (B, L) at positions start..<start+L and leaves the logits of
    /// the last position of each sequence in `logits`. Cached: L = 1 and the cache holds the
    /// keys/values of positions 0..<start. Uncached: start = 0 and the L positions are the whole prefix.
    func run(inputs: [Int32], length L: Int, start: Int) {
        precondition(inputs.count == B * L, "ARForwardPass: \(inputs.count) inputs for \(B) sequences of \(L)")
        precondition(cached ? L == 1 : start == 0, "ARForwardPass: cached passes take one token, uncached ones the whole prefix")
        precondition(start + L <= N, "ARForwardPass: positions up to \(start + L) beyond the grid of \(N)")
        let R = B * L
        reserve(rows: R, length: L)
        let (x, a, q, k) = (self.x.pointer, self.a.pointer, self.q.pointer, self.k.pointer)
        let (v, mixed, tmp) = (self.v.pointer, self.mixed.pointer, self.tmp.pointer)
        let (mean, rstd, probs) = (self.mean.pointer, self.rstd.pointer, self.probs.pointer)
        // Embeddings (R, C): token + row + column of the predicted position.
        let tokenTable = model.tokenEmbedding.weight.pointer
        let rowTable = model.positionEmbedding.rows.weight.pointer
        let columnTable = model.positionEmbedding.columns.weight.pointer
        let gridWidth = model.configuration.gridWidth
        for r in 0..<R {
            let position = start + r % L
            let (token, row, column) = (tokenTable + Int(inputs[r]) * C, rowTable + (position / gridWidth) * C,
                                        columnTable + (position % gridWidth) * C)
            let xr = x + r * C
            for j in 0..<C { xr[j] = token[j] + row[j] + column[j] }
        }
        for (index, block) in model.blocks.enumerated() {
            // Causal self-attention.
            let selfNorm = block.selfAttentionNorm.norm, attention = block.selfAttention
            layerNormForward(out: a, mean: mean, rstd: rstd, x: x, weight: selfNorm.weight?.pointer,
                             bias: selfNorm.bias?.pointer, eps: selfNorm.eps, N: R, C: C)
            project(attention.query, a, into: q, rows: R)
            project(attention.key, a, into: k, rows: R)
            project(attention.value, a, into: v, rows: R)
            if cached {
                let (keys, values) = (cacheKeys[index].pointer, cacheValues[index].pointer)
                for b in 0..<B {
                    (keys + (b * N + start) * C).update(from: k + b * C, count: C)
                    (values + (b * N + start) * C).update(from: v + b * C, count: C)
                }
                for b in 0..<B {
                    attentionForward(out: mixed + b * C, probs: probs, q: q + b * C, ldq: C, k: keys + b * N * C, ldk: C,
                                     v: values + b * N * C, ldv: C, keyMask: nil, causal: false,
                                     B: 1, Lq: 1, Lk: start + 1, D: C, H: H)
                }
            } else {
                for b in 0..<B {
                    let offset = b * L * C
                    attentionForward(out: mixed + offset, probs: probs, q: q + offset, ldq: C, k: k + offset, ldk: C,
                                     v: v + offset, ldv: C, keyMask: nil, causal: true, B: 1, Lq: L, Lk: L, D: C, H: H)
                }
            }
            project(attention.output, mixed, into: tmp, rows: R)
            add(tmp, into: x, count: R * C)
            // Cross-attention to the text.
            let crossNorm = block.crossAttentionNorm!.norm, cross = block.crossAttention!
            layerNormForward(out: a, mean: mean, rstd: rstd, x: x, weight: crossNorm.weight?.pointer,
                             bias: crossNorm.bias?.pointer, eps: crossNorm.eps, N: R, C: C)
            project(cross.query, a, into: q, rows: R)
            attentionForward(out: mixed, probs: probs, q: q, ldq: C, k: textKeys[index].pointer, ldk: C,
                             v: textValues[index].pointer, ldv: C, keyMask: textMask, causal: false,
                             B: B, Lq: L, Lk: Lc, D: C, H: H)
            project(cross.output, mixed, into: tmp, rows: R)
            add(tmp, into: x, count: R * C)
            // MLP.
            let mlpNorm = block.mlpNorm
            layerNormForward(out: a, mean: mean, rstd: rstd, x: x, weight: mlpNorm.weight?.pointer,
                             bias: mlpNorm.bias?.pointer, eps: mlpNorm.eps, N: R, C: C)
            project(block.mlpHidden, a, into: mlp.pointer, rows: R)
            if let weights = gridWeights[index], let inputs = gridInputs[index], let conv = block.mlpConvolution {
                convolve(mlp.pointer, rows: L, start: start, weights: weights.pointer, bias: conv.bias.pointer,
                         inputs: inputs.pointer)
            }
            project(block.mlpOutput, mlp.pointer, into: tmp, rows: R)
            add(tmp, into: x, count: R * C)
        }
        // Head on the last position of each sequence: (B, C) → (B, K).
        for b in 0..<B { (last.pointer + b * C).update(from: x + (b * L + L - 1) * C, count: C) }
        let headNorm = model.headNorm
        layerNormForward(out: lastNormed.pointer, mean: mean, rstd: rstd, x: last.pointer, weight: headNorm.weight?.pointer,
                         bias: headNorm.bias?.pointer, eps: headNorm.eps, N: B, C: C)
        project(model.head, lastNormed.pointer, into: logits.pointer, rows: B)
    }

    /// The causal grid convolution and its GELU, in place on the MLP's hidden rows `h` (B, L, rC)
    /// of positions start..<start+L. The rows are first stored among the sequence's earlier ones
    /// (`inputs`, (B, N, rC), zero beyond what has been decoded); each output then sums its taps
    /// at or before it in raster order, which all lie at positions ≤ its own.
    private func convolve(_ h: UnsafeMutablePointer<Float>, rows L: Int, start: Int, weights: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, inputs: UnsafeMutablePointer<Float>) {
        let (F, w) = (hidden, grid.width)
        for b in 0..<B { (inputs + (b * N + start) * F).update(from: h + b * L * F, count: L * F) }
        for b in 0..<B {
            for position in start..<(start + L) {
                let (i, j) = (position / w, position % w)
                let out = h + (b * L + position - start) * F
                out.update(from: bias, count: F)
                for tap in 0...GridConvGeometry.centreTap {
                    let (r, s) = (i + tap / 3 - 1, j + tap % 3 - 1)
                    guard r >= 0, s >= 0, s < w else { continue }
                    let (x, k) = (inputs + (b * N + r * w + s) * F, weights + tap * F)
                    for f in 0..<F { out[f] += k[f] * x[f] }
                }
                Activation.gelu.apply(out, count: F)
            }
        }
    }

    private func project(_ layer: Linear, _ input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int) {
        linearForward(out: out, preact: nil, x: input, weight: layer.weight.pointer, bias: layer.bias?.pointer,
                      activation: layer.activation, N: rows, IN: layer.inputs, OUT: layer.outputs)
    }

    private func add(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { target[i] += source[i] }
    }
}

/// The tokens raster-order decoding keeps in an edit: grid b's first `lengths[b]` tokens of
/// `tokens` (B·N).
public struct ARPrefix: Sendable {
    public var tokens: [Int32]
    public var lengths: [Int]

    public init(tokens: [Int32], lengths: [Int]) { (self.tokens, self.lengths) = (tokens, lengths) }
}
