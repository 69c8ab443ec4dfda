import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// The tiny trainable text encoder: its word vocabulary, its features and its gradients.
struct TinyTextEncoderTests {
    static let captions = ["a small red circle in the top left corner", "a blue square to the left of a large green triangle",
                           "A red circle, on the left!", "a green square below a red circle"]

    static func encoder(seed: UInt64 = 3) -> TinyTextEncoder {
        var rng = RandomGenerator(seed: seed)
        return TinyTextEncoder(learningFrom: captions, configuration: .test, using: &rng)
    }

    @Test func vocabularyIsLearnedLowerCasedWithPunctuationSplit() {
        let vocabulary = WordVocabulary(learningFrom: Self.captions)
        #expect(vocabulary.words[0] == "[PAD]" && vocabulary.words[1] == "[UNK]")
        #expect(vocabulary.words[2] == "a")            // the most frequent word comes first
        #expect(vocabulary.id(of: "A") == nil && vocabulary.id(of: ",") != nil && vocabulary.id(of: "!") != nil)
        #expect(WordVocabulary.words(of: "A Red-Circle, Café!") == ["a", "red", "-", "circle", ",", "cafe", "!"])
        #expect(vocabulary == WordVocabulary(learningFrom: Self.captions))   // a pure function of the captions
        let limited = WordVocabulary(learningFrom: Self.captions, maximumSize: 5)
        #expect(limited.count == 5)
    }

    @Test func unknownWordsMapToTheUnknownToken() {
        let vocabulary = WordVocabulary(learningFrom: Self.captions)
        let ids = vocabulary.ids(of: "a purple hexagon on the left")
        #expect(ids[1] == WordVocabulary.unknownID && ids[2] == WordVocabulary.unknownID)
        #expect(ids[0] == vocabulary.id(of: "a") && ids[5] == vocabulary.id(of: "left"))
        #expect(!ids.contains(WordVocabulary.padID))
    }

    @Test func vocabularyRoundTripsThroughItsSerialisedForm() throws {
        let encoder = Self.encoder()
        let json = encoder.vocabularyJSON
        var rng = RandomGenerator(seed: 99)
        let restored = try TinyTextEncoder(vocabularyJSON: json, configuration: .test, using: &rng)
        #expect(restored.vocabulary == encoder.vocabulary)
        // Same parameters: load the first encoder's into the restored one, then features agree.
        for (a, b) in zip(encoder.namedParameters, restored.namedParameters) {
            #expect(a.name == b.name)
            b.tensor.pointer.update(from: a.tensor.pointer, count: a.tensor.count)
        }
        let x = try Autograd.withoutGrad { try encoder.encode(Self.captions) }
        let y = try Autograd.withoutGrad { try restored.encode(Self.captions) }
        #expect(x.features.values == y.features.values)
        #expect(thrownMessage { _ = try WordVocabulary(json: "{\"words\":[\"a\",\"b\"]}") }?.contains("damaged") == true)
        #expect(thrownMessage { _ = try WordVocabulary(json: "nonsense") } != nil)
    }

    @Test func featuresHaveTheConfiguredShapeAndMask() throws {
        let encoder = Self.encoder()
        #expect(encoder.isTrainable && encoder.width == 16 && encoder.maxLength == 8)
        let text = try encoder.encode(["a red circle", "a blue square to the left of a large green triangle"])
        #expect(text.features.shape == [2, 8, 16])
        #expect(text.mask == [true, true, true, false, false, false, false, false] + [Bool](repeating: true, count: 8))
        let f = text.features.values
        #expect(f[(3 * 16)..<(8 * 16)].allSatisfy { $0 == 0 })          // padding rows are 0
        #expect(f.allSatisfy { $0.isFinite })
        #expect(text.features.requiresGrad)
        // Padding words do not change real ones.
        let alone = try encoder.encode(["a red circle"]).features.values
        for i in 0..<(3 * 16) { #expect(abs(alone[i] - f[i]) < 1e-5) }
    }

    @Test func badInputThrowsOrWarns() throws {
        let encoder = Self.encoder()
        var warnings: [String] = []
        encoder.warning = { warnings.append($0) }
        #expect(thrownMessage { _ = try encoder.encode([" \n "]) }?.contains("empty or only whitespace") == true)
        let (ids, truncated) = try encoder.tokenize("a red circle and a blue square and a green triangle")
        #expect(truncated && ids.count == 8)
        #expect(warnings.count == 1 && warnings[0].contains("truncated from 11 to 8 words"))
        _ = try encoder.encode(["日本語 🦜"])
    }

    @Test func gradientsReachEveryParameter() throws {
        let encoder = Self.encoder(seed: 5)
        let text = try encoder.encode(Self.captions)
        var rng = RandomGenerator(seed: 11)
        let weights = (0..<text.features.count).map { _ in rng.uniform(-1, 1) }
        text.features.backward(seed: Tensor(shape: text.features.shape, values: weights))
        for (name, p) in encoder.namedParameters {
            let g = p.grad?.values ?? []
            #expect(g.count == p.count && g.contains { $0 != 0 }, "no gradient reached \(name)")
        }
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        let encoder = Self.encoder(seed: 7)
        let captions = Array(Self.captions.prefix(2))
        let shape = [2, 8, 16]
        var rng = RandomGenerator(seed: 13)
        let weights = (0..<(2 * 8 * 16)).map { _ in rng.uniform(-1, 1) }
        func loss() throws -> Double {
            let f = try Autograd.withoutGrad { try encoder.encode(captions) }.features.values
            return zip(f, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        encoder.zeroGrad()
        try encoder.encode(captions).features.backward(seed: Tensor(shape: shape, values: weights))
        let epsilon: Float = 4e-3
        var worst: Float = 0
        for (name, p) in encoder.namedParameters {
            let analytic = p.grad!.values
            // A few entries of each parameter: the largest-gradient one and two spread over the tensor.
            let largest = analytic.indices.max { abs(analytic[$0]) < abs(analytic[$1]) }!
            for i in Set([largest, p.count / 3, p.count - 1]) {
                let old = p.pointer[i]
                p.pointer[i] = old + epsilon
                let up = try loss()
                p.pointer[i] = old - epsilon
                let down = try loss()
                p.pointer[i] = old
                let numeric = Float((up - down) / Double(2 * epsilon))
                let error = abs(numeric - analytic[i]) / max(1, abs(numeric))
                worst = max(worst, error)
                #expect(error < 1e-2, "\(name)[\(i)]: analytic \(analytic[i]), numeric \(numeric)")
            }
        }
        print("TinyTextEncoder: worst finite-difference relative error \(worst)")
    }

    @Test func factoryBuildsTheTinyEncoderFromCaptions() throws {
        var rng = RandomGenerator(seed: 1)
        let encoder = try makeTextEncoder(choice: .tiny, captions: Self.captions, maxLength: 12,
                                          tiny: .test, using: &rng)
        #expect(encoder.isTrainable && encoder.maxLength == 12 && encoder.width == 16)
        #expect((encoder as? TinyTextEncoder)?.vocabulary == WordVocabulary(learningFrom: Self.captions))
    }
}
