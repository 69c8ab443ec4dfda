import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// A test-only text encoder: each word gets a fixed random vector (seeded by its bytes), padded to
/// `maxLength` with a key-padding mask. Frozen: no parameters.
final class WordVectorTextEncoder: TextEncoder {
    let width: Int
    let maxLength: Int
    var isTrainable: Bool { false }

    init(width: Int = 8, maxLength: Int = 6) {
        self.width = width
        self.maxLength = maxLength
    }

    func encode(_ captions: [String]) throws -> TextFeatures {
        let (B, L, D) = (captions.count, maxLength, width)
        var values = [Float](repeating: 0, count: B * L * D)
        var mask = [Bool](repeating: false, count: B * L)
        for (b, caption) in captions.enumerated() {
            for (l, word) in caption.split(separator: " ").prefix(L).enumerated() {
                var seed: UInt64 = 1469598103934665603
                for byte in word.utf8 { seed = (seed ^ UInt64(byte)) &* 1099511628211 }
                var rng = RandomGenerator(seed: seed)
                for d in 0..<D { values[(b * L + l) * D + d] = rng.normal() }
                mask[b * L + l] = true
            }
        }
        return TextFeatures(features: Tensor(shape: [B, L, D], values: values), mask: mask)
    }
}


@Suite struct DiffusionModelTests {
    /// The worst finite-difference error of a block's gradients (input, time, context and every
    /// parameter) over 2 sequences of `length` tokens, with non-zero AdaLN projections so the
    /// time path is exercised.
    func blockGradientError(_ block: TransformerBlock, length: Int, using rng: inout RandomGenerator) -> Float {
        for p in block.namedParameters where p.name.contains("projection.weight") {
            for i in 0..<p.tensor.count { p.tensor.pointer[i] = 0.3 * rng.normal() }
        }
        let x = Tensor.randn([2, length, 8], using: &rng)
        let time = Tensor.randn([2, 8], using: &rng)
        let context = Tensor.randn([2, 4, 6], using: &rng)
        let mask = [true, true, true, false, true, true, false, false]
        let inputs = [x, time, context] + block.parameters
        return gradientError(inputs, epsilon: 1e-2, seed: 3) { v in
            block(v[0], time: v[1], context: v[2], contextMask: mask)
        }
    }

    @Test func blockGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 11)
        let config = TransformerBlockConfiguration(width: 8, heads: 2, mlpRatio: 2, contextWidth: 6)
        let error = blockGradientError(TransformerBlock(config, using: &rng), length: 3, using: &rng)
        #expect(error < 2e-2, "block gradient error \(error)")
    }

    @Test func gridConvolutionBlockGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 12)
        var config = TransformerBlockConfiguration(width: 8, heads: 2, mlpRatio: 2, contextWidth: 6)
        config.mlpGrid = .init(height: 2, width: 3)
        let block = TransformerBlock(config, using: &rng)
        #expect(block.namedParameters.map(\.name).contains("mlpConvolution.weight"))
        #expect(block.mlpConvolution?.weight.shape == [9, 16])
        // A non-zero bias so the convolution's bias gradient is exercised through GELU.
        for i in 0..<16 { block.mlpConvolution!.bias.pointer[i] = 0.2 * rng.normal() }
        let error = blockGradientError(block, length: 6, using: &rng)
        #expect(error < 2e-2, "grid-convolution block gradient error \(error)")
        let plain = TransformerBlockConfiguration(width: 8, heads: 2, mlpRatio: 2, contextWidth: 6)
        #expect(config.forwardFLOPs(batch: 2, length: 6, contextLength: 4)
                - plain.forwardFLOPs(batch: 2, length: 6, contextLength: 4) == 2 * 2 * 6 * 9 * 16)
    }

    /// `gridConvolution` puts a grid convolution in every block's MLP and, when off, is left out of
    /// a checkpoint's configuration JSON, so the files of earlier models are unchanged.
    @Test func gridConvolutionOptionBuildsConvolutionalMLPs() throws {
        var c = DiffusionModelConfiguration.tiny(classes: 10, gridHeight: 2, gridWidth: 3, steps: 7, textWidth: 8)
        #expect(try !storedJSON(c).contains("gridConvolution"))
        var rng = RandomGenerator(seed: 4)
        let plain = DenoisingTransformer(c, using: &rng)
        c.gridConvolution = true
        #expect(try storedJSON(c).contains("\"gridConvolution\":true"))
        #expect(try JSONDecoder().decode(DiffusionModelConfiguration.self, from: JSONEncoder().encode(c)) == c)
        #expect(c.block.mlpGrid == .init(height: 2, width: 3))
        rng = RandomGenerator(seed: 4)
        let convolutional = DenoisingTransformer(c, using: &rng)
        let hidden = c.mlpRatio * c.width
        #expect(convolutional.parameterCount - plain.parameterCount == c.depth * 10 * hidden)
        #expect(convolutional.namedParameters.map(\.name).contains("blocks.0.mlpConvolution.weight"))
        let text = try WordVectorTextEncoder().encode(["a red circle", "a blue square on the left"])
        let out = convolutional([0, 10, 3, 10, 10, 9, 1, 2, 10, 4, 5, 6], t: [1, 7], text: text)
        #expect(out.shape == [2, 6, 10])
        #expect(out.values.allSatisfy { $0.isFinite })
    }

    @Test func causalBlockIgnoresLaterTokens() {
        var rng = RandomGenerator(seed: 5)
        let config = TransformerBlockConfiguration(width: 8, heads: 2, causal: true, timeConditioned: false, contextWidth: nil)
        let block = TransformerBlock(config, using: &rng)
        let x = Tensor.randn([1, 5, 8], using: &rng)
        let y = x.copy()
        for i in (3 * 8)..<(5 * 8) { y.pointer[i] += 1 }
        let (a, b) = Autograd.withoutGrad { (block(x, time: nil, context: nil, contextMask: nil), block(y, time: nil, context: nil, contextMask: nil)) }
        for i in 0..<(3 * 8) { #expect(a.pointer[i] == b.pointer[i]) }
        #expect(a.pointer[4 * 8] != b.pointer[4 * 8])
    }

    @Test func adaptiveNormStartsAsLayerNormAndDependsOnTime() {
        var rng = RandomGenerator(seed: 2)
        let norm = BlockNorm(width: 6, timeConditioned: true, using: &rng)
        let x = Tensor.randn([2, 3, 6], using: &rng)
        let time = Tensor.randn([2, 6], using: &rng)
        let plain = layerNorm(x)
        let adaptive = norm(x, time: time)
        for i in 0..<x.count { #expect(abs(plain.pointer[i] - adaptive.pointer[i]) < 1e-6) }
        norm.projection!.weight.storage.fill(0.1)
        let moved = norm(x, time: time)
        #expect((0..<x.count).contains { abs(plain.pointer[$0] - moved.pointer[$0]) > 1e-3 })
    }

    @Test func shapesParameterCountsAndPresets() throws {
        let encoder = WordVectorTextEncoder()
        for parameterization in DiffusionParameterization.allCases {
            var c = DiffusionModelConfiguration.tiny(classes: 10, gridHeight: 2, gridWidth: 3, steps: 7, textWidth: 8)
            c.parameterization = parameterization
            var rng = RandomGenerator(seed: 1)
            let model = DenoisingTransformer(c, using: &rng)
            let text = try encoder.encode(["a red circle", "a blue square on the left"])
            let xt: [Int32] = [0, 10, 3, 10, 10, 9, 1, 2, 10, 4, 5, 6]
            let out = model(xt, t: [1, 7], text: text)
            #expect(out.shape == [2, 6, parameterization == .direct ? 11 : 10])
            // Rows are normalised log-probabilities.
            for r in 0..<12 {
                var s = 0.0
                for k in 0..<out.shape[2] { s += Foundation.exp(Double(out.pointer[r * out.shape[2] + k])) }
                #expect(abs(s - 1) < 1e-4)
            }
        }
        let small = DiffusionModelConfiguration.small(classes: 512, gridHeight: 8, gridWidth: 8, steps: 100, textWidth: 384)
        var rng = RandomGenerator(seed: 1)
        let model = DenoisingTransformer(small, using: &rng)
        print("small preset: \(model.parameterCount) parameters, \(small.forwardFLOPs(batch: 32, textLength: 32) / 1e9) GFLOP per forward at batch 32")
        #expect(model.parameterCount > 3_000_000 && model.parameterCount < 8_000_000)
        // Decay groups: AdaLN projections and embeddings are not decayed.
        let decayed = ParameterGroup.standard(model.namedParameters, weightDecay: 0.045)[0].parameters.map(\.name)
        #expect(!decayed.contains { $0.contains("Norm") || $0.contains("Embedding") })
        #expect(decayed.contains("blocks.0.selfAttention.query.weight"))
    }

    /// `embeddingStd` sets the spread of the token and position tables (0.02 by default) and is
    /// left out of a checkpoint's configuration JSON at its default, so earlier files are unchanged.
    @Test func embeddingStdSetsTheInitialScaleOfTokenAndPositionTables() throws {
        func spread(_ t: Tensor) -> Double {
            let v = (0..<t.count).map { Double(t.pointer[$0]) }
            return (v.map { $0 * $0 }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        var c = DiffusionModelConfiguration.tiny(classes: 50, gridHeight: 8, gridWidth: 8, steps: 7, textWidth: 8)
        var rng = RandomGenerator(seed: 2)
        let plain = DenoisingTransformer(c, using: &rng)
        #expect(abs(spread(plain.tokenEmbedding.weight) - 0.02) < 0.003)
        #expect(try !storedJSON(c).contains("embeddingStd"))
        c.embeddingStd = 1
        rng = RandomGenerator(seed: 2)
        let unit = DenoisingTransformer(c, using: &rng)
        #expect(abs(spread(unit.tokenEmbedding.weight) - 1) < 0.1)
        #expect(abs(spread(unit.positionEmbedding.rows.weight) - 1) < 0.2)
        #expect(abs(spread(unit.positionEmbedding.columns.weight) - 1) < 0.2)
        #expect(try JSONDecoder().decode(DiffusionModelConfiguration.self, from: JSONEncoder().encode(c)) == c)
    }

    @Test func sinusoidalPositionsHaveUnitScaleAndDependOnlyOnTheOffset() throws {
        var c = DiffusionModelConfiguration.tiny(classes: 50, gridHeight: 6, gridWidth: 8, steps: 7, textWidth: 8)
        c.embeddingStd = 1
        var rng = RandomGenerator(seed: 3)
        let random = DenoisingTransformer(c, using: &rng)
        c.positionInitialisation = .sinusoidal
        rng = RandomGenerator(seed: 3)
        let sinusoidal = DenoisingTransformer(c, using: &rng)
        // The tables are drawn either way, so everything initialised after them is the same.
        #expect(random.tokenEmbedding.weight.values == sinusoidal.tokenEmbedding.weight.values)
        #expect(random.head.weight.values == sinusoidal.head.weight.values)
        #expect(random.positionEmbedding.rows.weight.values != sinusoidal.positionEmbedding.rows.weight.values)

        let (h, w, C) = (6, 8, c.width)
        let e = sinusoidal.positionEmbedding().values   // (1, h·w, C)
        func vector(_ i: Int, _ j: Int) -> [Double] { (0..<C).map { Double(e[(i * w + j) * C + $0]) } }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { $0 * $1 }.reduce(0, +) }
        for i in 0..<h {
            for j in 0..<w {
                // Every position has RMS exactly --embedding-std.
                #expect(abs(dot(vector(i, j), vector(i, j)) / Double(C) - 1) < 1e-5)
            }
        }
        // Rows live in the first half of the channels and columns in the second.
        let rows = sinusoidal.positionEmbedding.rows.weight.values
        let columns = sinusoidal.positionEmbedding.columns.weight.values
        #expect((0..<h).allSatisfy { i in (C / 2..<C).allSatisfy { rows[i * C + $0] == 0 } })
        #expect((0..<w).allSatisfy { j in (0..<C / 2).allSatisfy { columns[j * C + $0] == 0 } })
        // The similarity of two positions is a function of their offset, largest at offset 0.
        for (di, dj) in [(0, 1), (1, 0), (1, 2), (2, 3)] {
            let reference = dot(vector(0, 0), vector(di, dj))
            for (i, j) in [(1, 1), (2, 3), (3, 4)] where i + di < h && j + dj < w {
                #expect(abs(dot(vector(i, j), vector(i + di, j + dj)) - reference) < 1e-3 * Double(C))
            }
            #expect(reference < dot(vector(0, 0), vector(0, 0)) - 1)
        }
        #expect(try JSONDecoder().decode(DiffusionModelConfiguration.self, from: JSONEncoder().encode(c)) == c)
    }

    /// Inference in row shards gives the rows one batch gives, in order, with no graph.
    @Test func shardedPredictionMatchesOneBatch() throws {
        let c = DiffusionModelConfiguration.tiny(classes: 12, gridHeight: 3, gridWidth: 4, steps: 9, textWidth: 8)
        var rng = RandomGenerator(seed: 8)
        let model = DenoisingTransformer(c, using: &rng)
        let B = 5
        let xt: [Int32] = (0..<(B * c.tokens)).map { _ in Int32(rng.int(below: c.classes + 1)) }
        let t = (0..<B).map { _ in 1 + rng.int(below: c.steps) }
        let text = try WordVectorTextEncoder().encode(["a red circle", "a blue square on the left", "x", "two green crosses", "a b c"])
        let whole = Autograd.withoutGrad { model(xt, t: t, text: text) }
        for shards in [1, 2, 3] {
            let sharded = model.predict(xt, t: t, text: text, shards: shards)
            #expect(sharded.shape == whole.shape && !sharded.requiresGrad)
            let error = zip(whole.values, sharded.values).map { abs($0 - $1) }.max()!
            #expect(error < 1e-5, "\(shards) shards: the prediction differs by \(error)")
        }
    }
}

/// The configuration JSON a checkpoint of a model shaped `c` stores.
func storedJSON(_ c: DiffusionModelConfiguration) throws -> String {
    try SchemaJSON.encode(DiffusionRunConfiguration(model: c, diffusion: .paper(classes: c.classes, steps: c.steps),
                                                    training: DiffusionTrainingConfiguration(), textEncoder: "tiny"))
}
