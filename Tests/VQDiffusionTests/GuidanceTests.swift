import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// Classifier-free guidance: the null text, caption dropout in training, the guided combination
/// and guided sampling.
@Suite struct GuidanceTests {
    static func randomLogProbabilities(rows: Int, classes C: Int, using rng: inout RandomGenerator) -> [Float] {
        var v = [Float](repeating: 0, count: rows * C)
        for r in 0..<rows {
            var total = 0.0
            for k in 0..<C { v[r * C + k] = Float(rng.uniformDouble(-4, 2)); total += Foundation.exp(Double(v[r * C + k])) }
            for k in 0..<C { v[r * C + k] -= Float(Foundation.log(total)) }
        }
        return v
    }

    /// guided = normalise(exp(log p_u + s·(log p_c − log p_u))), checked in Float64 for several s;
    /// s = 1 is the conditional prediction and s = 0 the unconditional one.
    @Test func guidedCombinationMatchesTheDenseFormula() {
        var rng = RandomGenerator(seed: 5)
        let (B, N, C) = (2, 3, 7)
        let lc = GuidanceTests.randomLogProbabilities(rows: B * N, classes: C, using: &rng)
        let lu = GuidanceTests.randomLogProbabilities(rows: B * N, classes: C, using: &rng)
        let (conditional, unconditional) = (Tensor(shape: [B, N, C], values: lc), Tensor(shape: [B, N, C], values: lu))
        for s in [0.0, 0.5, 1, 3, 7.5] {
            let out = DiffusionSampling.guided(conditional: conditional, unconditional: unconditional, scale: s).values
            for r in 0..<(B * N) {
                let raw = (0..<C).map { k in Double(lu[r * C + k]) + s * Double(lc[r * C + k] - lu[r * C + k]) }
                let total = raw.map { Foundation.exp($0) }.reduce(0, +)
                for k in 0..<C {
                    let expected = raw[k] - Foundation.log(total)
                    #expect(abs(Double(out[r * C + k]) - expected) < 1e-4, "s = \(s), row \(r), code \(k)")
                }
                if s == 1 { for k in 0..<C { #expect(abs(out[r * C + k] - lc[r * C + k]) < 1e-5) } }
                if s == 0 { for k in 0..<C { #expect(abs(out[r * C + k] - lu[r * C + k]) < 1e-5) } }
            }
        }
    }

    /// A code that either prediction rules out (−∞, e.g. by truncation) stays ruled out, with no NaN.
    @Test func guidedCombinationKeepsImpossibleCodesImpossible() {
        let c = Tensor(shape: [1, 1, 3], values: [-.infinity, log(0.5), log(0.5)])
        let u = Tensor(shape: [1, 1, 3], values: [log(0.2), -.infinity, log(0.8)])
        let out = DiffusionSampling.guided(conditional: c, unconditional: u, scale: 4).values
        #expect(out[0] == -.infinity && out[1] == -.infinity)
        #expect(abs(out[2]) < 1e-6)
    }

    @Test func nullTextIsOneZeroKeyPerCaption() {
        let null = TextFeatures.null(batch: 2, length: 4, width: 3)
        #expect(null.features.shape == [2, 4, 3] && null.features.values.allSatisfy { $0 == 0 })
        #expect(null.mask == [true, false, false, false, true, false, false, false])
    }

    /// Dropped captions become the null text; kept ones are unchanged and still receive gradients.
    @Test func droppedCaptionsBecomeTheNullText() throws {
        let text = try WordVectorTextEncoder().encode(["a red circle", "a blue square on the left"])
        let features = Tensor(shape: text.features.shape, values: text.features.values, requiresGrad: true)
        let input = TextFeatures(features: features, mask: text.mask)
        let out = input.replacingCaptions(where: [false, true])
        let (L, D) = (text.length, text.width)
        let values = out.features.values, original = text.features.values
        #expect(Array(values[0..<(L * D)]) == Array(original[0..<(L * D)]))
        #expect(values[(L * D)...].allSatisfy { $0 == 0 })
        #expect(Array(out.mask[0..<L]) == Array(text.mask[0..<L]))
        #expect(Array(out.mask[L...]) == [true] + [Bool](repeating: false, count: L - 1))
        out.features.sum().backward()
        let grad = try #require(features.grad).values
        #expect(grad[0..<(L * D)].allSatisfy { $0 == 1 } && grad[(L * D)...].allSatisfy { $0 == 0 })
        #expect(input.replacingCaptions(where: [false, false]).features === features)
    }

    /// The caption dropout is stored in a checkpoint's configuration only when it is on, so
    /// earlier files read as before.
    @Test func captionDropoutIsStoredOnlyWhenOn() throws {
        func run(_ training: DiffusionTrainingConfiguration) -> DiffusionRunConfiguration {
            DiffusionRunConfiguration(model: .tiny(classes: 4, gridHeight: 2, gridWidth: 2, steps: 10, textWidth: 8),
                                      diffusion: .paper(classes: 4, steps: 10), training: training, textEncoder: "tiny")
        }
        let off = try SchemaJSON.encode(run(DiffusionTrainingConfiguration()))
        #expect(!off.contains("captionDropout"))
        let on = try SchemaJSON.encode(run(DiffusionTrainingConfiguration(captionDropout: 0.1)))
        #expect(on.contains("\"captionDropout\":0.1"))
        #expect(try SchemaJSON.decode(DiffusionRunConfiguration.self, from: on).training.captionDropout == 0.1)
        #expect(try SchemaJSON.decode(DiffusionRunConfiguration.self, from: off).training.captionDropout == 0)
    }

    /// One network evaluation on 2B rows gives the same guided prediction as the conditional and
    /// unconditional evaluations done separately.
    @Test func guidedPredictionEqualsSeparateEvaluations() throws {
        var rng = RandomGenerator(seed: 8)
        let config = DiffusionModelConfiguration.tiny(classes: 6, gridHeight: 2, gridWidth: 3, steps: 10, textWidth: 8)
        let model = DenoisingTransformer(config, using: &rng)
        let encoder = WordVectorTextEncoder()
        let sampler = DiffusionSampler(model: model, schedule: try DiffusionSchedule(.paper(classes: 6, steps: 10)),
                                       textEncoder: encoder)
        let text = try encoder.encode(["a red circle", "a green cross at the top"])
        let null = TextFeatures.null(batch: 2, length: text.length, width: text.width)
        let x: [Int32] = (0..<12).map { _ in Int32(rng.int(below: 7)) }
        try Autograd.withoutGrad {
            let conditional = model(x, t: [4, 4], text: text)
            let unconditional = model(x, t: [4, 4], text: null)
            for s in [0.0, 1, 2.5] {
                let expected = DiffusionSampling.guided(conditional: conditional, unconditional: unconditional, scale: s).values
                let got = sampler.guidedPrediction(x, t: 4, captionsAndNull: text.appending(null), scale: s).values
                #expect(zip(expected, got).allSatisfy { abs($0 - $1) < 1e-4 }, "scale \(s)")
            }
            var a = RandomGenerator(seed: 2), b = RandomGenerator(seed: 2)
            let plain = try sampler.sample(captions: ["a red circle"], steps: 5, using: &a)
            let one = try sampler.sample(captions: ["a red circle"], steps: 5, guidance: 1, using: &b)
            #expect(plain == one)
            #expect(throws: DiffusionSamplingError.self) { try sampler.sample(captions: ["x"], steps: 5, guidance: -1, using: &a) }
        }
    }

    /// A tiny model trained with caption dropout learns both its captions and the null text: it
    /// samples the training grids back with guidance, and without text it draws grids that are
    /// not tied to one caption.
    @Test func captionDropoutTrainsAModelThatGuidanceSamples() throws {
        let data = DiffusionTrainingTests.dataset()
        var configuration = DiffusionTrainingTests.configuration(steps: 400)
        configuration.training.captionDropout = 0.25
        let trainer = try DiffusionTrainer(configuration: configuration, dataset: data, textEncoder: WordVectorTextEncoder())
        for _ in 0..<400 { try trainer.trainStep() }
        let sampler = DiffusionSampler(model: trainer.model, schedule: trainer.schedule, textEncoder: trainer.textEncoder)
        var rng = RandomGenerator(seed: 9)
        for scale in [1.0, 2.0] {
            let samples = try sampler.sample(captions: data.captions, steps: 20, truncation: 0.86, guidance: scale, using: &rng)
            let exact = zip(samples, data.tokens).filter { $0 == $1 }.count
            #expect(Double(exact) / Double(data.tokens.count) > 0.9, "guidance \(scale): \(exact) of \(data.tokens.count) tokens")
        }
    }
}
