import Foundation

/// The text clean-up and word splitting that BERT applies before WordPiece, as configured for the
/// uncased all-MiniLM-L6-v2 vocabulary (normalizer `BertNormalizer` with clean_text,
/// handle_chinese_chars and lowercase on, strip_accents following lowercase; pre-tokenizer
/// `BertPreTokenizer`).
///
/// The steps, in order:
/// 1. clean: drop NUL, U+FFFD and control characters (categories Cc, Cf, Co; tab, newline and
///    carriage return count as whitespace); every whitespace character becomes a space;
/// 2. surround each CJK ideograph with spaces so that it becomes a word of its own;
/// 3. strip accents: canonical decomposition (NFD), then drop non-spacing marks (Mn);
/// 4. lower-case each scalar (full, context-free mapping: "ΣΑΣ" gives "σασ");
/// 5. split on whitespace, and split off every punctuation character as a word of its own
///    (ASCII 33–47, 58–64, 91–96, 123–126, and the Unicode categories P*).
///
/// The reference implementation classifies characters with the Unicode 8.0 category tables, so
/// characters assigned after 8.0 count as unassigned here too: not punctuation, not control, not a
/// mark (U+2E43 is kept inside its word, and so is a recent emoji). Words are arrays of Unicode
/// scalars, never `String`s compared with canonical equivalence.
public struct BertBasicTokenizer: Sendable {
    public init() {}

    /// The words of `text`, each a non-empty array of scalars, after clean-up and splitting.
    public func words(_ text: String) -> [[Unicode.Scalar]] {
        let normalized = normalize(text)
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in normalized.unicodeScalars {
            if BertCharacters.isWhitespace(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if BertCharacters.isPunctuation(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Steps 1–4: the text the word splitter sees.
    public func normalize(_ text: String) -> String {
        // 1–2: clean and isolate CJK ideographs.
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || BertCharacters.isControl(scalar) { continue }
            if BertCharacters.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if BertCharacters.isCJKIdeograph(scalar) {
                cleaned.append(" "); cleaned.append(scalar); cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        // 3: NFD, then drop non-spacing marks.
        let decomposed = String(cleaned).decomposedStringWithCanonicalMapping
        // 4: lower-case scalar by scalar.
        var result = String.UnicodeScalarView()
        for scalar in decomposed.unicodeScalars where !BertCharacters.isNonspacingMark(scalar) {
            if scalar.properties.changesWhenLowercased {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        return String(result)
    }
}

/// Character classes as BERT's reference tokenizer defines them.
enum BertCharacters {
    /// True when the scalar was assigned by Unicode 8.0, the version of the reference's category tables.
    static func isKnownToReference(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// Tab, newline, carriage return, and the Unicode White_Space property.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r": return true
        default: return scalar.properties.isWhitespace
        }
    }

    /// Categories Cc, Cf, Co (and Cs) except tab, newline and carriage return.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r": return false
        default: break
        }
        guard isKnownToReference(scalar) else { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII punctuation and symbols (33–47, 58–64, 91–96, 123–126) and Unicode categories P*.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        guard isKnownToReference(scalar) else { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// Category Mn: the accents that accent stripping removes after NFD.
    static func isNonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        isKnownToReference(scalar) && scalar.properties.generalCategory == .nonspacingMark
    }

    /// The CJK ideograph blocks the reference isolates. Its list has Extension E start at U+2B920
    /// (not U+2B820), so U+2B820–U+2B91F stay inside their words, as they do here.
    static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
