import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// A tiny AR model over K = 16 codes on a 3×5 grid (not square, so rows and columns differ),
/// with 8-wide text features.
func tinyARConfiguration(mlpRatio: Int = 4, gridConvolution: Bool = false) -> ARModelConfiguration {
    ARModelConfiguration(classes: 16, gridHeight: 3, gridWidth: 5, textWidth: 8, width: 32, depth: 2, heads: 4,
                         mlpRatio: mlpRatio, gridConvolution: gridConvolution)
}

@Suite struct ARModelTests {
    /// With or without the causal grid convolution in the MLPs.
    @Test(arguments: [false, true])
    func laterTokensNeverChangeEarlierLogits(gridConvolution: Bool) throws {
        var rng = RandomGenerator(seed: 11)
        let model = ARTransformer(tinyARConfiguration(gridConvolution: gridConvolution), using: &rng)
        let (B, N) = (2, 15)
        let text = try WordVectorTextEncoder().encode(["a red circle", "two blue squares on the left"])
        let x = (0..<(B * N)).map { _ in Int32(rng.int(below: 16)) }
        let base = Autograd.withoutGrad { model.logits(x, text: text) }.values   // (B, N, K)
        for m in [0, 6, 14] {
            var changed = x
            for b in 0..<B { changed[b * N + m] = (changed[b * N + m] + 5) % 16 }
            let other = Autograd.withoutGrad { model.logits(changed, text: text) }.values
            for b in 0..<B {
                for n in 0..<N {
                    let slice = (b * N + n) * 16..<(b * N + n + 1) * 16
                    let same = Array(base[slice]) == Array(other[slice])
                    if n <= m { #expect(same, "changing token \(m) changed the logits of position \(n)") }
                    if n == m + 1 { #expect(!same, "changing token \(m) did not reach position \(n)") }
                }
            }
        }
    }

    @Test func parameterCountsAreCountedFromTheShapes() {
        var rng = RandomGenerator(seed: 1)
        for grid in [false, true] {
            var d = DiffusionModelConfiguration.tiny(classes: 16, gridHeight: 3, gridWidth: 5, steps: 20, textWidth: 8)
            d.gridConvolution = grid
            #expect(DenoisingTransformer(d, using: &rng).parameterCount == ARModelConfiguration.diffusionParameterCount(d))
            for ratio in [1, 4, 6] {
                let c = tinyARConfiguration(mlpRatio: ratio, gridConvolution: grid)
                #expect(ARTransformer(c, using: &rng).parameterCount == c.parameterCount)
            }
            #expect(ARModelConfiguration.matching(d).gridConvolution == grid)
        }
    }

    /// A causal grid convolution reads no later position, and its later taps get no gradient.
    @Test func causalGridConvolutionReadsOnlyEarlierPositions() {
        var rng = RandomGenerator(seed: 2)
        let (h, w, C) = (3, 4, 5)
        let conv = GridConv(channels: C, height: h, width: w, causal: true, using: &rng)
        let x = Tensor(shape: [1, h * w, C], values: (0..<(h * w * C)).map { _ in rng.normal() })
        let y = conv(x)
        for n in [0, 5, 10] {
            var changed = x.values
            for m in (n + 1)..<(h * w) { for c in 0..<C { changed[m * C + c] += 1 } }
            let z = conv(Tensor(shape: x.shape, values: changed))
            #expect(Array(z.values[0..<((n + 1) * C)]) == Array(y.values[0..<((n + 1) * C)]), "position \(n) read a later one")
        }
        y.sum().backward()
        let g = conv.weight.grad!.values
        #expect(g[((GridConvGeometry.centreTap + 1) * C)...].allSatisfy { $0 == 0 })
        #expect(g[0..<((GridConvGeometry.centreTap + 1) * C)].contains { $0 != 0 })
    }

    @Test(arguments: ["tiny", "small"])
    func matchingModelHasTheDiffusionModelsSizeWithinTenPercent(_ preset: String) {
        var rng = RandomGenerator(seed: 2)
        let d = DiffusionModelConfiguration.preset(preset, classes: 512, gridHeight: 8, gridWidth: 8, steps: 100,
                                                   textWidth: 384)!
        let c = ARModelConfiguration.matching(d)
        #expect(c.width == d.width && c.depth == d.depth && c.heads == d.heads && c.classes == d.classes)
        let ar = ARTransformer(c, using: &rng).parameterCount
        let diffusion = DenoisingTransformer(d, using: &rng).parameterCount
        let ratio = Double(ar) / Double(diffusion)
        #expect(abs(ratio - 1) <= 0.10, "\(preset): AR \(ar) vs diffusion \(diffusion) parameters (ratio \(ratio))")
        // Without the widened MLP the baseline would be clearly smaller (AdaLN's projections).
        var plain = c
        plain.mlpRatio = d.mlpRatio
        if preset == "small" { #expect(Double(plain.parameterCount) / Double(diffusion) < 0.9) }
    }
}

@Suite(.serialized) struct ARDecodingTests {
    /// Decodes with random weights, recording the logits of every position.
    static func decode(_ model: ARTransformer, text: TextFeatures, options: ARSamplingOptions,
                       seed: UInt64, shards: Int? = nil) -> (tokens: [Int32], logits: [Float]) {
        let (B, N, K) = (text.batch, model.configuration.tokens, model.configuration.classes)
        var logits = [Float](repeating: 0, count: B * N * K)       // (B, N, K)
        var rng = RandomGenerator(seed: seed)
        let tokens = ARDecoder(model: model).decode(text: text, options: options, shards: shards, using: &rng) { n, step in
            for b in 0..<B { for k in 0..<K { logits[(b * N + n) * K + k] = step[b * K + k] } }
        }
        return (tokens, logits)
    }

    /// Row shards decode the same grids as one batch, cached or not.
    @Test func shardedDecodingMatchesOneBatch() throws {
        var rng = RandomGenerator(seed: 23)
        let model = ARTransformer(tinyARConfiguration(mlpRatio: 6), using: &rng)
        let text = try WordVectorTextEncoder().encode(["a red circle", "two big blue squares", "cross"])
        for useCache in [true, false] {
            let options = ARSamplingOptions(temperature: 1, useCache: useCache)
            let one = ARDecodingTests.decode(model, text: text, options: options, seed: 6, shards: 1)
            for shards in [2, 3] {
                let cut = ARDecodingTests.decode(model, text: text, options: options, seed: 6, shards: shards)
                #expect(cut.tokens == one.tokens, "\(shards) shards, cache \(useCache)")
                let worst = zip(one.logits, cut.logits).map { abs($0 - $1) }.max()!
                #expect(worst < 1e-4, "\(shards) shards: logits differ by \(worst)")
            }
        }
    }

    @Test(arguments: [false, true])
    func cachedAndUncachedDecodingAgreeWithTeacherForcing(gridConvolution: Bool) throws {
        var rng = RandomGenerator(seed: 21)
        let model = ARTransformer(tinyARConfiguration(mlpRatio: 6, gridConvolution: gridConvolution), using: &rng)
        if gridConvolution {
            // Trained-looking convolution weights: the bias and taps away from their start.
            for block in model.blocks { for p in [block.mlpConvolution!.bias] { for i in 0..<p.count { p.pointer[i] = rng.normal() * 0.3 } } }
        }
        // Padded captions of different lengths exercise the cross-attention mask.
        let text = try WordVectorTextEncoder().encode(["a red circle", "two big blue squares", "cross"])
        for options in [ARSamplingOptions(temperature: 1), ARSamplingOptions(temperature: 0.8, topK: 5, truncation: 0.9)] {
            var cachedOptions = options, uncachedOptions = options
            cachedOptions.useCache = true
            uncachedOptions.useCache = false
            let cached = ARDecodingTests.decode(model, text: text, options: cachedOptions, seed: 5)
            let uncached = ARDecodingTests.decode(model, text: text, options: uncachedOptions, seed: 5)
            #expect(cached.tokens == uncached.tokens)
            let worst = zip(cached.logits, uncached.logits).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-4, "cached and uncached logits differ by \(worst)")
            // The autograd forward pass over the drawn grids gives the same logits.
            let forced = Autograd.withoutGrad { model.logits(cached.tokens, text: text) }.values
            let worstForced = zip(cached.logits, forced).map { abs($0 - $1) }.max()!
            #expect(worstForced < 1e-4, "decoder and teacher-forced logits differ by \(worstForced)")
            #expect(cached.tokens.allSatisfy { $0 >= 0 && $0 < 16 })
        }
        // Different seeds give different samples; the same seed the same ones.
        let a = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(), seed: 1).tokens
        let b = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(), seed: 2).tokens
        #expect(a != b)
        #expect(a == ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(), seed: 1).tokens)
    }

    @Test func topKAndTruncationRestrictTheDraws() {
        // Rows of logits 0, −1, −2, … : top-k 1 and a tiny truncation rate keep only code 0;
        // top-k 3 only codes 0…2.
        let K = 10, rows = 200
        var logits = [Float](repeating: 0, count: rows * K)
        for r in 0..<rows { for k in 0..<K { logits[r * K + k] = -Float(k) } }
        var rng = RandomGenerator(seed: 3)
        for (options, allowed) in [(ARSamplingOptions(topK: 1), 0..<1), (ARSamplingOptions(truncation: 0.01), 0..<1),
                                   (ARSamplingOptions(topK: 3), 0..<3), (ARSamplingOptions(temperature: 0), 0..<1)] {
            var copy = logits
            let drawn = copy.withUnsafeMutableBufferPointer {
                ARDecoder.draw($0.baseAddress!, rows: rows, classes: K, options: options, using: &rng)
            }
            #expect(drawn.allSatisfy { allowed.contains(Int($0)) }, "\(options)")
            if allowed.count == 3 { #expect(Set(drawn).count == 3) }
        }
    }

    /// Guidance against a dense reference: every position's guided log-probabilities are
    /// log_softmax(u + s·(c − u)) of the teacher-forced logits of the same grid under the captions
    /// (c) and under the null text (u); s = 1 is exactly unguided decoding; cached and uncached
    /// guided decoding agree; s = 0 with greedy draws decodes what the null text alone does.
    @Test func guidanceMixesTheConditionalAndUnconditionalStreams() throws {
        var rng = RandomGenerator(seed: 31)
        let model = ARTransformer(tinyARConfiguration(), using: &rng)
        let text = try WordVectorTextEncoder().encode(["a red circle", "two big blue squares", "cross"])
        let (B, N, K) = (text.batch, model.configuration.tokens, model.configuration.classes)
        let null = TextFeatures.null(batch: B, length: text.length, width: text.width)
        for s in [0.5, 2.5] {
            let guided = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(guidance: s), seed: 4)
            let c = Autograd.withoutGrad { model.logits(guided.tokens, text: text) }.values    // (B, N, K)
            let u = Autograd.withoutGrad { model.logits(guided.tokens, text: null) }.values
            var worst: Float = 0
            for row in 0..<(B * N) {
                let mixed = (0..<K).map { k in u[row * K + k] + Float(s) * (c[row * K + k] - u[row * K + k]) }
                let m = mixed.max()!
                let lse = m + log(mixed.map { exp($0 - m) }.reduce(0, +))
                for k in 0..<K { worst = max(worst, abs(guided.logits[row * K + k] - (mixed[k] - lse))) }
            }
            #expect(worst < 1e-3, "s = \(s): guided log-probabilities differ from the reference by \(worst)")
            let uncached = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(useCache: false, guidance: s), seed: 4)
            #expect(uncached.tokens == guided.tokens)
        }
        let plain = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(), seed: 9)
        let one = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(guidance: 1), seed: 9)
        #expect(plain.tokens == one.tokens && plain.logits == one.logits)
        let unconditional = ARDecodingTests.decode(model, text: null, options: ARSamplingOptions(temperature: 0), seed: 2)
        let zero = ARDecodingTests.decode(model, text: text, options: ARSamplingOptions(temperature: 0, guidance: 0), seed: 2)
        #expect(zero.tokens == unconditional.tokens)
    }
}
