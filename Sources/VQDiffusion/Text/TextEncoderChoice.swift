import Engine
import Foundation

/// Which text encoder conditions a generator (`--text-encoder minilm|tiny`).
public enum TextEncoderChoice: String, Codable, CaseIterable, Sendable {
    /// Frozen pretrained all-MiniLM-L6-v2, per-token features of width 384 (needs `make deps`).
    case minilm
    /// The tiny transformer trained jointly with the generator, vocabulary learned from the captions.
    case tiny

    /// Parses `minilm` or `tiny` (case and surrounding spaces ignored).
    public init(parsing text: String) throws {
        guard let choice = TextEncoderChoice(rawValue: text.trimmingCharacters(in: .whitespaces).lowercased()) else {
            throw TextEncoderError.unknownChoice(text)
        }
        self = choice
    }

    /// The default: `minilm` wherever its weights are present, otherwise `tiny`.
    public static func preferred(files: MiniLMFiles = .located()) -> TextEncoderChoice {
        FileManager.default.fileExists(atPath: files.weights.path)
            && FileManager.default.fileExists(atPath: files.vocabulary.path) ? .minilm : .tiny
    }
}

/// The encoder chosen, ready for the captions of a dataset.
///
/// - `minilm`: loads the weights from `files` (when they are missing the error says to run
///   `make deps` or choose `tiny`) and precomputes the features of every distinct caption of
///   `captions`, saved under `cacheDirectory` when one is given.
/// - `tiny`: learns its vocabulary from `captions` and initialises its parameters from `rng`;
///   `maxLength` is its length in words.
public func makeTextEncoder(choice: TextEncoderChoice, captions: [String],
                            maxLength: Int = MiniLMTextEncoder.defaultMaxLength,
                            files: MiniLMFiles = .located(), cacheDirectory: URL? = nil,
                            tiny: TinyTextEncoderConfiguration = .init(), progress: ProgressReport? = nil,
                            using rng: inout RandomGenerator) throws -> any TextEncoder {
    switch choice {
    case .minilm:
        let encoder: MiniLMTextEncoder
        do {
            encoder = try MiniLMTextEncoder(files: files, maxLength: maxLength, cacheDirectory: cacheDirectory)
        } catch let error as MiniLMFilesError {
            throw TextEncoderSetupError(reason: "\(error); or choose the trainable encoder with --text-encoder tiny")
        }
        try encoder.precompute(captions, progress: progress)
        return encoder
    case .tiny:
        var configuration = tiny
        configuration.maxLength = maxLength
        return TinyTextEncoder(learningFrom: captions, configuration: configuration, using: &rng)
    }
}

/// The chosen encoder cannot be set up; the reason says what to do.
public struct TextEncoderSetupError: Error, CustomStringConvertible, LocalizedError {
    public let reason: String
    public var description: String { reason }
    public var errorDescription: String? { reason }
}
