import Foundation
import Testing
@testable import VQDiffusion

/// Token ids against the reference tokenizer (TestData/minilm-tokens.json, made by
/// scripts/make-text-reference.py) over the real all-MiniLM-L6-v2 vocabulary fetched by `make deps`.
struct TokenizerReferenceTests {
    struct Fixed: Decodable {
        let ids: [Int32]
        let attention_mask: [Int]
        let truncated: Bool
    }
    struct Sentence: Decodable {
        let text: String
        let tokens: [String]
        let ids: [Int32]
        let fixed: [String: Fixed]
    }
    struct Reference: Decodable {
        let vocab_sha256: String
        let sentences: [Sentence]
    }

    static let projectRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let testData = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("TestData")

    static func reference() throws -> Reference {
        let data = try Data(contentsOf: testData.appendingPathComponent("minilm-tokens.json"))
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    /// The tokenizer over the fetched vocabulary. When it is absent the test fails (never skips) with
    /// the thrown error, which says to run `make deps`.
    static func tokenizer() throws -> WordPieceTokenizer {
        try MiniLMFiles.located(projectRoot: projectRoot).tokenizer()
    }

    @Test func vocabularyHasTheSpecialTokensWhereBertPutsThem() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.vocabularySize == 30_522)
        #expect(tokenizer.padID == 0)
        #expect(tokenizer.unknownID == 100)
        #expect(tokenizer.classID == 101)
        #expect(tokenizer.separatorID == 102)
        #expect(tokenizer.maskID == 103)
        #expect(tokenizer.entry(of: 2417) == "red")
    }

    @Test func referenceCoversTheIntendedCases() throws {
        let reference = try Self.reference()
        #expect(reference.sentences.count >= 25)
        #expect(reference.sentences.contains { $0.ids.count > 128 })
        #expect(reference.sentences.contains { $0.tokens.contains("[UNK]") })
        #expect(reference.sentences.contains { $0.tokens.contains { $0.hasPrefix("##") } })
        #expect(reference.sentences.contains { $0.fixed["16"]?.truncated == true })
    }

    @Test func idsAndTokensMatchTheReferenceForEverySentence() throws {
        let tokenizer = try Self.tokenizer()
        for sentence in try Self.reference().sentences {
            let encoding = tokenizer.encode(sentence.text, maxLength: 4096, padded: false)
            #expect(encoding.ids == sentence.ids, "ids differ for \(sentence.text.debugDescription)")
            #expect(encoding.tokens == sentence.tokens, "tokens differ for \(sentence.text.debugDescription)")
            #expect(!encoding.truncated)
        }
    }

    @Test(arguments: [16, 128])
    func fixedLengthEncodingsMatchTheReference(length: Int) throws {
        let tokenizer = try Self.tokenizer()
        for sentence in try Self.reference().sentences {
            let expected = try #require(sentence.fixed[String(length)])
            let encoding = tokenizer.encode(sentence.text, maxLength: length)
            #expect(encoding.ids == expected.ids, "ids at length \(length) differ for \(sentence.text.debugDescription)")
            #expect(encoding.attentionMask == expected.attention_mask.map { $0 == 1 },
                    "mask at length \(length) differs for \(sentence.text.debugDescription)")
            #expect(encoding.truncated == expected.truncated,
                    "truncation flag at length \(length) differs for \(sentence.text.debugDescription)")
        }
    }
}
