import Foundation

/// A word-level vocabulary learned from training captions, for the tiny trainable text encoder.
///
/// Words are those of BERT's basic tokenizer: text cleaned, lower-cased, accents stripped, split
/// at whitespace and at every punctuation character (which becomes a word of its own), CJK
/// ideographs one word each. Id 0 is `[PAD]`, id 1 is `[UNK]` (any word not learned); learned
/// words follow, most frequent first, ties in code-point order, so a vocabulary is a pure
/// function of its captions.
public struct WordVocabulary: Equatable, Sendable {
    public static let padToken = "[PAD]"
    public static let unknownToken = "[UNK]"
    public static let padID: Int32 = 0
    public static let unknownID: Int32 = 1

    /// id → word; entries 0 and 1 are `[PAD]` and `[UNK]`.
    public let words: [String]
    private let ids: [String: Int32]

    /// A vocabulary over `words` as stored (`words[0] == "[PAD]"`, `words[1] == "[UNK]"`, no duplicates).
    public init(words: [String]) throws {
        guard words.count >= 2, words[0] == Self.padToken, words[1] == Self.unknownToken else {
            throw WordVocabularyError.invalid("it must start with \(Self.padToken) and \(Self.unknownToken)")
        }
        var ids: [String: Int32] = [:]
        for (i, word) in words.enumerated() {
            guard ids[word] == nil else { throw WordVocabularyError.invalid("\"\(word)\" appears twice") }
            ids[word] = Int32(i)
        }
        self.words = words
        self.ids = ids
    }

    /// Learns the words of `captions` that occur at least `minimumCount` times, keeping the
    /// `maximumSize − 2` most frequent when a maximum is given.
    public init(learningFrom captions: [String], minimumCount: Int = 1, maximumSize: Int? = nil) {
        precondition(minimumCount >= 1, "WordVocabulary: minimumCount must be ≥ 1, got \(minimumCount)")
        var counts: [String: Int] = [:]
        for caption in captions {
            for word in Self.words(of: caption) { counts[word, default: 0] += 1 }
        }
        var learned = counts.filter { $0.value >= minimumCount && $0.key != Self.padToken && $0.key != Self.unknownToken }
            .sorted { $0.value != $1.value ? $0.value > $1.value : Array($0.key.unicodeScalars).lexicographicallyPrecedes(Array($1.key.unicodeScalars)) }
            .map(\.key)
        if let maximumSize {
            precondition(maximumSize >= 2, "WordVocabulary: maximumSize must leave room for [PAD] and [UNK]")
            learned = Array(learned.prefix(maximumSize - 2))
        }
        try! self.init(words: [Self.padToken, Self.unknownToken] + learned)
    }

    public var count: Int { words.count }

    /// The words of `text`: cleaned, lower-cased, accents stripped, punctuation split off.
    public static func words(of text: String) -> [String] {
        BertBasicTokenizer().words(text).map { String(String.UnicodeScalarView($0)) }
    }

    /// The id of every word of `text` (`[UNK]` for words not learned).
    public func ids(of text: String) -> [Int32] {
        Self.words(of: text).map { ids[$0] ?? Self.unknownID }
    }

    /// The id of `word` as stored, or nil.
    public func id(of word: String) -> Int32? { ids[word] }

    /// The vocabulary as JSON, `{"words":[…]}`, for storing with a checkpoint's metadata.
    public var json: String {
        struct Stored: Encodable { let words: [String] }
        return String(decoding: try! JSONEncoder().encode(Stored(words: words)), as: UTF8.self)
    }

    /// Reads the JSON written by `json`.
    public init(json: String) throws {
        struct Stored: Decodable { let words: [String] }
        guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(json.utf8)) else {
            throw WordVocabularyError.invalid("it is not a JSON object {\"words\": [...]}")
        }
        try self.init(words: stored.words)
    }
}

public enum WordVocabularyError: Error, CustomStringConvertible, LocalizedError {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let reason):
            return "the stored word vocabulary of the tiny text encoder is damaged (\(reason)); use a checkpoint saved by this suite"
        }
    }
    public var errorDescription: String? { description }
}
