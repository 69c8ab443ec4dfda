import Foundation

/// BERT's uncased WordPiece tokenizer, producing the same token ids as the reference tokenizer of
/// all-MiniLM-L6-v2 (its tokenizer.json) for single sentences.
///
/// `encode` gives `[CLS] pieces… [SEP]`, truncated to `maxLength` (the content keeps its first
/// `maxLength - 2` pieces) and padded with `[PAD]` to exactly `maxLength`.
///
/// Pieces: each word of `BertBasicTokenizer` is split greedily, longest match first, into vocabulary
/// entries, pieces after the first carrying the `##` prefix. A word longer than 100 scalars, or one
/// that cannot be split into vocabulary entries, becomes a single `[UNK]`.
/// As in the reference, the special tokens written literally and in upper case in the input
/// (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`) are kept as those tokens, before any clean-up.
public struct WordPieceTokenizer: Sendable {
    /// One tokenized sentence.
    public struct Encoding: Equatable, Sendable {
        /// Token ids: `[CLS]`, the pieces, `[SEP]`, then `[PAD]`s up to the requested length.  // (maxLength)
        public var ids: [Int32]
        /// True for real tokens (including `[CLS]` and `[SEP]`), false for padding.  // (maxLength)
        public var attentionMask: [Bool]
        /// The vocabulary entries the ids stand for.  // (maxLength)
        public var tokens: [String]
        /// True when pieces of the input were cut off to fit `maxLength`.
        public var truncated: Bool
    }

    /// Longest word, in Unicode scalars, that is split into pieces; longer words become `[UNK]`.
    public static let maxWordLength = 100
    /// Prefix of pieces that continue a word.
    public static let continuationPrefix = "##"

    public let padID: Int32
    public let unknownID: Int32
    public let classID: Int32
    public let separatorID: Int32
    public let maskID: Int32
    /// Number of vocabulary entries (30,522 for all-MiniLM-L6-v2).
    public var vocabularySize: Int { entries.count }

    private let entries: [String]                       // id -> entry
    private let ids: [[Unicode.Scalar]: Int32]          // entry scalars -> id (no canonical equivalence)
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int32)]
    private let basic = BertBasicTokenizer()

    /// Reads a vocabulary file with one entry per line; the line number (from 0) is the id.
    public init(vocabularyFile: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: vocabularyFile)
        } catch {
            throw WordPieceError.unreadableVocabulary(path: vocabularyFile.path, reason: "\(error)")
        }
        // Split on LF bytes (a CR before it is dropped); no trailing empty entry.
        var lines: [String] = []
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            var lineEnd = end
            if lineEnd > start && data[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            guard let line = String(data: data[start..<lineEnd], encoding: .utf8) else {
                throw WordPieceError.unreadableVocabulary(
                    path: vocabularyFile.path, reason: "line \(lines.count + 1) is not valid UTF-8")
            }
            lines.append(line)
            start = end == data.endIndex ? end : end + 1
        }
        try self.init(vocabulary: lines, source: vocabularyFile.path)
    }

    /// A tokenizer over the given entries; the position of an entry is its id.
    public init(vocabulary: [String], source: String = "vocabulary") throws {
        var ids: [[Unicode.Scalar]: Int32] = [:]
        ids.reserveCapacity(vocabulary.count)
        for (index, entry) in vocabulary.enumerated() {
            let key = Array(entry.unicodeScalars)
            if ids[key] != nil {
                throw WordPieceError.duplicateEntry(source: source, entry: entry, line: index + 1)
            }
            ids[key] = Int32(index)
        }
        func special(_ token: String) throws -> Int32 {
            guard let id = ids[Array(token.unicodeScalars)] else {
                throw WordPieceError.missingSpecialToken(source: source, token: token)
            }
            return id
        }
        self.entries = vocabulary
        self.ids = ids
        self.padID = try special("[PAD]")
        self.unknownID = try special("[UNK]")
        self.classID = try special("[CLS]")
        self.separatorID = try special("[SEP]")
        self.maskID = try special("[MASK]")
        self.specialTokens = [("[PAD]", padID), ("[UNK]", unknownID), ("[CLS]", classID),
                              ("[SEP]", separatorID), ("[MASK]", maskID)]
            .map { (Array($0.0.unicodeScalars), $0.1) }
    }

    /// The id of a vocabulary entry, compared scalar by scalar.
    public func id(of entry: String) -> Int32? { ids[Array(entry.unicodeScalars)] }

    /// The vocabulary entry of an id.
    public func entry(of id: Int32) -> String {
        precondition(id >= 0 && Int(id) < entries.count, "id \(id) outside the vocabulary of \(entries.count) entries")
        return entries[Int(id)]
    }

    /// The pieces of `text`, without `[CLS]`, `[SEP]` or padding.
    public func tokenize(_ text: String) -> [String] {
        pieceIDs(text).map { entries[Int($0)] }
    }

    /// The piece ids of `text`, without `[CLS]`, `[SEP]` or padding.
    public func pieceIDs(_ text: String) -> [Int32] {
        var result: [Int32] = []
        for segment in splitOnSpecialTokens(text) {
            switch segment {
            case .special(let id):
                result.append(id)
            case .text(let scalars):
                for word in basic.words(String(String.UnicodeScalarView(scalars))) {
                    appendPieces(of: word, to: &result)
                }
            }
        }
        return result
    }

    /// `[CLS] pieces [SEP]`, truncated to `maxLength` tokens and, when `padded`, filled with `[PAD]`
    /// to exactly `maxLength`.
    public func encode(_ text: String, maxLength: Int, padded: Bool = true) -> Encoding {
        precondition(maxLength >= 2, "encode: maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
        let pieces = pieceIDs(text)
        let room = maxLength - 2
        let kept = pieces.prefix(room)
        var ids: [Int32] = [classID]
        ids.reserveCapacity(maxLength)
        ids.append(contentsOf: kept)
        ids.append(separatorID)
        var mask = [Bool](repeating: true, count: ids.count)
        if padded {
            let padding = maxLength - ids.count
            ids.append(contentsOf: repeatElement(padID, count: padding))
            mask.append(contentsOf: repeatElement(false, count: padding))
        }
        return Encoding(ids: ids, attentionMask: mask, tokens: ids.map { entries[Int($0)] },
                        truncated: pieces.count > room)
    }

    // MARK: - Pieces

    /// Greedy longest-match-first split of one word; `[UNK]` for the whole word when it fails.
    private func appendPieces(of word: [Unicode.Scalar], to result: inout [Int32]) {
        if word.count > Self.maxWordLength { result.append(unknownID); return }
        let prefix = Array(Self.continuationPrefix.unicodeScalars)
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32? = nil
            while end > start {
                let candidate = start > 0 ? prefix + word[start..<end] : Array(word[start..<end])
                if let id = ids[candidate] { found = id; break }
                end -= 1
            }
            guard let id = found else { result.append(unknownID); return }
            pieces.append(id)
            start = end
        }
        result.append(contentsOf: pieces)
    }

    private enum Segment {
        case special(Int32)
        case text([Unicode.Scalar])
    }

    /// Cuts the raw text at literal special tokens (`[MASK]` and the like), leftmost first.
    private func splitOnSpecialTokens(_ text: String) -> [Segment] {
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var textStart = 0
        var i = 0
        scan: while i < scalars.count {
            if scalars[i] == "[" {
                for token in specialTokens where i + token.scalars.count <= scalars.count {
                    if scalars[i..<(i + token.scalars.count)].elementsEqual(token.scalars) {
                        if textStart < i { segments.append(.text(Array(scalars[textStart..<i]))) }
                        segments.append(.special(token.id))
                        i += token.scalars.count
                        textStart = i
                        continue scan
                    }
                }
            }
            i += 1
        }
        if textStart < scalars.count { segments.append(.text(Array(scalars[textStart...]))) }
        return segments
    }
}

/// Problems with a vocabulary file, with what to do about them.
public enum WordPieceError: Error, CustomStringConvertible {
    case unreadableVocabulary(path: String, reason: String)
    case duplicateEntry(source: String, entry: String, line: Int)
    case missingSpecialToken(source: String, token: String)

    public var description: String {
        switch self {
        case let .unreadableVocabulary(path, reason):
            return "cannot read the WordPiece vocabulary \(path): \(reason); run `make deps` to fetch it, or set \(MiniLMFiles.environmentVariable) to the folder holding vocab.txt"
        case let .duplicateEntry(source, entry, line):
            return "\(source): entry \"\(entry)\" on line \(line) appears twice; the vocabulary file is damaged, delete it and run `make deps` again"
        case let .missingSpecialToken(source, token):
            return "\(source) has no \(token) entry; it is not a BERT WordPiece vocabulary (expected the all-MiniLM-L6-v2 vocab.txt)"
        }
    }
}
