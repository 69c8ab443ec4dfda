import Foundation

/// Problems with text given to an encoder, or with the choice of encoder, with what to do about them.
public enum TextEncoderError: Error, CustomStringConvertible, LocalizedError {
    /// A caption that is empty or holds only whitespace (`index` counts from 0; nil for a single prompt).
    case emptyCaption(index: Int?)
    /// A caption with characters but no word left after clean-up (only control, format or
    /// private-use characters): the tiny encoder, which has no `[CLS]`, would have nothing to attend to.
    case noTokens(caption: String)
    /// An unknown `--text-encoder` value.
    case unknownChoice(String)

    public var description: String {
        switch self {
        case let .emptyCaption(index):
            let what = index.map { "caption \($0 + 1)" } ?? "the prompt"
            return "\(what) is empty or only whitespace: give a prompt with at least one word"
        case let .noTokens(caption):
            let shown = caption.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
            return "caption \"\(shown)\" has no words once control and format characters are removed: give a prompt with at least one word"
        case let .unknownChoice(value):
            return "unknown text encoder \"\(value)\": choose one of \(TextEncoderChoice.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }

    public var errorDescription: String? { description }

    /// Throws `emptyCaption` for the first caption that is empty or only whitespace.
    static func checkNotBlank(_ captions: [String]) throws {
        for (index, caption) in captions.enumerated()
        where caption.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) {
            throw TextEncoderError.emptyCaption(index: captions.count == 1 ? nil : index)
        }
    }
}

/// Where warnings about input (a truncated caption) go: standard error by default.
public typealias TextWarningHandler = (String) -> Void

func standardErrorWarning(_ message: String) {
    FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
}
