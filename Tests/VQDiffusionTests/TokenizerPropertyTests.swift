import Foundation
import Testing
@testable import VQDiffusion

/// Properties of the basic tokenization and of WordPiece over a small hand-made vocabulary.
struct TokenizerPropertyTests {
    static let vocabulary = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                      // 0–4
        "a", "red", "circle", "cafe", "un", "##aff", "##able", "x", "##x",   // 5–13
        ",", "!", "(", ")", "«", "»", "日", "本", "[", "]", "mask", "deja", "vu", "σ", "##α", "##σ",
    ]

    static func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabulary: vocabulary)
    }

    static func words(_ text: String) -> [String] {
        BertBasicTokenizer().words(text).map { String(String.UnicodeScalarView($0)) }
    }

    @Test func lowerCases() throws {
        #expect(try Self.tokenizer().tokenize("A RED Circle") == ["a", "red", "circle"])
        #expect(Self.words("ΣΑΣ") == ["σασ"])                 // per scalar, no final-sigma rule
    }

    @Test func stripsAccents() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.tokenize("Café") == ["cafe"])
        #expect(tokenizer.tokenize("Cafe\u{301}") == ["cafe"])  // already decomposed
        #expect(tokenizer.tokenize("DÉJÀ vu") == ["deja", "vu"])
        #expect(Self.words("İstanbul Ångström") == ["istanbul", "angstrom"])
        #expect(Self.words("a\u{FE0F}b") == ["ab"])            // variation selectors are Mn too
    }

    @Test func splitsPunctuation() {
        #expect(Self.words("red,circle!") == ["red", ",", "circle", "!"])
        #expect(Self.words("left-hand (x)") == ["left", "-", "hand", "(", "x", ")"])
        #expect(Self.words("$5 ^a` |b~") == ["$", "5", "^", "a", "`", "|", "b", "~"])  // ASCII symbols count
        #expect(Self.words("«a» ¿b? c…") == ["«", "a", "»", "¿", "b", "?", "c", "…"])
        #expect(Self.words("a¬b a€b") == ["a¬b", "a€b"])          // Sm, Sc outside ASCII do not split
        // Category tables of Unicode 8.0: U+2E42 (7.0) splits, U+2E43 (9.0) does not.
        #expect(Self.words("a\u{2E42}b") == ["a", "\u{2E42}", "b"])
        #expect(Self.words("a\u{2E43}b") == ["a\u{2E43}b"])
    }

    @Test func splitsCJKIdeographsIntoSeparateWords() throws {
        #expect(try Self.tokenizer().tokenize("日本") == ["日", "本"])    // not "日", "##本"
        #expect(Self.words("x日本y") == ["x", "日", "本", "y"])
        #expect(Self.words("テキスト") == ["テキスト"])                    // kana are not ideographs
    }

    @Test func cleansWhitespaceAndControlCharacters() {
        #expect(Self.words("  a\tred\ncircle\r\n\u{3000}x\u{A0}y  ") == ["a", "red", "circle", "x", "y"])
        #expect(Self.words("ze\u{200B}ro n\u{0}u\u{FFFD}ll p\u{E000}u") == ["zero", "null", "pu"])
        #expect(Self.words("") == [])
        #expect(Self.words(" \t\n ") == [])
    }

    @Test func splitsWordsIntoContinuationPieces() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(tokenizer.tokenize("ΣΑΣ") == ["σ", "##α", "##σ"])
        #expect(tokenizer.tokenize("xxx") == ["x", "##x", "##x"])
    }

    @Test func unknownForUnpieceableAndOverlongWords() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.tokenize("redq circle") == ["[UNK]", "circle"])   // the whole word, not "red" + [UNK]
        let hundred = String(repeating: "x", count: 100)
        #expect(tokenizer.tokenize(hundred) == ["x"] + Array(repeating: "##x", count: 99))
        #expect(tokenizer.tokenize(hundred + "x") == ["[UNK]"])              // 101 characters
        #expect(tokenizer.pieceIDs("a " + hundred + "x a") == [5, 1, 5])
    }

    @Test func keepsLiteralSpecialTokens() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.tokenize("a [MASK] red") == ["a", "[MASK]", "red"])
        #expect(tokenizer.tokenize("red[SEP]a") == ["red", "[SEP]", "a"])
        #expect(tokenizer.tokenize("[mask]") == ["[", "mask", "]"])         // only the exact upper-case form
    }

    @Test func padsAndMasks() throws {
        let encoding = try Self.tokenizer().encode("A red!", maxLength: 7)
        #expect(encoding.ids == [2, 5, 6, 15, 3, 0, 0])
        #expect(encoding.tokens == ["[CLS]", "a", "red", "!", "[SEP]", "[PAD]", "[PAD]"])
        #expect(encoding.attentionMask == [true, true, true, true, true, false, false])
        #expect(!encoding.truncated)

        let unpadded = try Self.tokenizer().encode("A red!", maxLength: 7, padded: false)
        #expect(unpadded.ids == [2, 5, 6, 15, 3])
        #expect(unpadded.attentionMask == [true, true, true, true, true])

        let empty = try Self.tokenizer().encode("", maxLength: 4)
        #expect(empty.ids == [2, 3, 0, 0])
        #expect(empty.attentionMask == [true, true, false, false])
    }

    @Test func truncatesAndReportsIt() throws {
        let tokenizer = try Self.tokenizer()
        let exact = tokenizer.encode("a red circle", maxLength: 5)
        #expect(exact.ids == [2, 5, 6, 7, 3])
        #expect(!exact.truncated)

        let cut = tokenizer.encode("a red circle", maxLength: 4)
        #expect(cut.ids == [2, 5, 6, 3])                                    // [SEP] still closes it
        #expect(cut.attentionMask == [true, true, true, true])
        #expect(cut.truncated)

        let pieces = tokenizer.encode("unaffable", maxLength: 4)            // cuts inside a word
        #expect(pieces.tokens == ["[CLS]", "un", "##aff", "[SEP]"])
        #expect(pieces.truncated)

        let bare = tokenizer.encode("a", maxLength: 2)
        #expect(bare.ids == [2, 3])
        #expect(bare.truncated)
    }

    @Test func rejectsVocabulariesWithoutSpecialTokensOrWithDuplicates() {
        #expect(throws: WordPieceError.self) { try WordPieceTokenizer(vocabulary: ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"]) }
        #expect(throws: WordPieceError.self) { try WordPieceTokenizer(vocabulary: Self.vocabulary + ["red"]) }
    }

    @Test func readsVocabularyFilesLineByLine() throws {
        let file = FileManager.default.temporaryDirectory
            .appendingPathComponent("wordpiece-vocab-\(UInt32.random(in: 0 ... .max)).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        // CRLF on one line, no newline at the end.
        try Data((Self.vocabulary.joined(separator: "\n") + "\r\nred2").utf8).write(to: file)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: file)
        #expect(tokenizer.vocabularySize == Self.vocabulary.count + 1)
        #expect(tokenizer.id(of: "##σ") == Int32(Self.vocabulary.count - 1))
        #expect(tokenizer.id(of: "red2") == Int32(Self.vocabulary.count))
    }

    @Test func locatesTheModelFolder() {
        let root = URL(fileURLWithPath: "/project")
        #expect(MiniLMFiles.located(projectRoot: root, environment: [:]).directory.path == "/project/cache/minilm")
        #expect(MiniLMFiles.located(projectRoot: root, environment: ["VQD_MINILM_DIR": "/models/minilm"])
            .vocabulary.path == "/models/minilm/vocab.txt")
        #expect(MiniLMFiles.located(projectRoot: root, environment: ["VQD_MINILM_DIR": ""]).directory.path
            == "/project/cache/minilm")
    }

    @Test func missingFilesSayHowToFetchThem() {
        let files = MiniLMFiles(directory: URL(fileURLWithPath: "/nonexistent/minilm"))
        do {
            _ = try files.tokenizer()
            Issue.record("expected an error for a missing vocabulary")
        } catch {
            #expect("\(error)".contains("make deps"))
            #expect("\(error)".contains("VQD_MINILM_DIR"))
        }
    }
}
