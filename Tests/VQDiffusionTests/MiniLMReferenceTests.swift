import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// The MiniLM forward against reference outputs of all-MiniLM-L6-v2 (TestData/minilm-embeddings.json,
/// made by scripts/make-text-reference.py with the reference implementation), on the weights fetched
/// by `make deps`. Without the weights these tests fail with the loader's message, which says to
/// run `make deps`.
@Suite(.serialized)
struct MiniLMReferenceTests {
    struct Sentence: Decodable { let text: String; let ids: [Int32]; let embedding: [Float] }
    struct Hidden: Decodable { let text: String; let ids: [Int32]; let last_hidden_state: [[Float]] }
    struct Reference: Decodable {
        let model_sha256: String
        let max_length: Int
        let sentences: [Sentence]
        let hidden_states: [Hidden]
    }

    static let projectRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let files = MiniLMFiles.located(projectRoot: projectRoot)

    static func reference() throws -> Reference {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("TestData/minilm-embeddings.json")
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    /// One model for every test of the process (loading reads 87 MB).
    static let shared: Result<MiniLM, Error> = Result { try MiniLM(files: files) }
    static func model() throws -> MiniLM { try shared.get() }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var (ab, aa, bb) = (0.0, 0.0, 0.0)
        for i in 0..<a.count { ab += Double(a[i] * b[i]); aa += Double(a[i] * a[i]); bb += Double(b[i] * b[i]) }
        return ab / (aa * bb).squareRoot()
    }

    @Test func missingWeightsSayToRunMakeDeps() {
        let empty = TemporaryFolder()
        let message = thrownMessage { _ = try MiniLM(files: MiniLMFiles(directory: empty.url)) }
        #expect(message?.contains("make deps") == true)
    }

    @Test func sentenceEmbeddingsMatchTheReference() throws {
        let model = try Self.model()
        let reference = try Self.reference()
        var worst = 1.0
        for sentence in reference.sentences {
            let L = sentence.ids.count
            let hidden = model.hiddenStates(ids: sentence.ids, batch: 1, length: L)
            let embedding = MiniLM.sentenceEmbeddings(hidden: hidden, mask: [Bool](repeating: true, count: L))
            let cosine = Self.cosine(embedding.values, sentence.embedding)
            worst = min(worst, cosine)
            #expect(cosine >= 0.9999, "\(sentence.text): cosine \(cosine)")
        }
        print("MiniLM: worst sentence-embedding cosine over \(reference.sentences.count) sentences = \(worst)")
    }

    @Test func batchedPaddedSentencesMatchTheReference() throws {
        let model = try Self.model()
        let sentences = try Self.reference().sentences.filter { $0.ids.count <= 32 }
        let L = sentences.map(\.ids.count).max()!
        var ids: [Int32] = [], mask: [Bool] = []
        for s in sentences {
            ids += s.ids + [Int32](repeating: 0, count: L - s.ids.count)
            mask += [Bool](repeating: true, count: s.ids.count) + [Bool](repeating: false, count: L - s.ids.count)
        }
        let hidden = model.hiddenStates(ids: ids, mask: mask, batch: sentences.count, length: L)
        let embeddings = MiniLM.sentenceEmbeddings(hidden: hidden, mask: mask).values
        for (b, s) in sentences.enumerated() {
            let cosine = Self.cosine(Array(embeddings[(b * 384)..<((b + 1) * 384)]), s.embedding)
            #expect(cosine >= 0.9999, "\(s.text): cosine \(cosine) in a padded batch")
        }
    }

    @Test func perTokenHiddenStatesMatchTheReference() throws {
        let model = try Self.model()
        var worst: Float = 0
        for sentence in try Self.reference().hidden_states {
            let L = sentence.ids.count
            let hidden = model.hiddenStates(ids: sentence.ids, batch: 1, length: L).values
            let expected = sentence.last_hidden_state.flatMap { $0 }
            #expect(hidden.count == expected.count)
            var error: Float = 0
            for i in 0..<expected.count { error = max(error, abs(hidden[i] - expected[i])) }
            worst = max(worst, error)
            #expect(error < 1e-4, "\(sentence.text): max abs error \(error)")
        }
        print("MiniLM: max abs error of per-token hidden states = \(worst)")
    }

    @Test func tokenizerGivesTheReferenceIds() throws {
        let tokenizer = try Self.files.tokenizer()
        let reference = try Self.reference()
        for sentence in reference.sentences {
            let encoding = tokenizer.encode(sentence.text, maxLength: reference.max_length, padded: false)
            #expect(encoding.ids == sentence.ids, "\(sentence.text)")
        }
    }

    @Test func fastExactGeluMatchesTheErfFormula() {
        var xs = stride(from: -12.0 as Float, through: 12, by: 0.001).map { $0 }
        xs += [0, -0, 1e-8, -1e-8, 40, -40, 88, -88]
        var ys = xs
        ys.withUnsafeMutableBufferPointer { MiniLM.geluErfInPlace($0.baseAddress!, count: $0.count) }
        var worst: Double = 0
        for (x, y) in zip(xs, ys) {
            let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            worst = max(worst, abs(Double(y) - exact) / max(1, abs(exact)))
        }
        #expect(worst < 1e-6, "GELU error \(worst)")
    }

    @Test func loaderIgnoresOnlyThePoolerAndPositionIds() throws {
        #expect(MiniLM.ignoredKeys == ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"])
        let model = try Self.model()
        #expect(model.configuration == .allMiniLML6v2)
        #expect(model.fingerprint.count == 16)
    }
}
