import Engine
import Foundation

/// How a generator checkpoint remembers its text encoder, so sampling can rebuild it exactly:
/// the choice by name, and for the trainable tiny encoder its learned vocabulary and configuration
/// (as metadata; its weights are stored with the generator's under `textEncoder.`).
public enum TextEncoderCheckpoint {
    public static let vocabularyKey = "text_vocabulary"
    public static let configurationKey = "text_encoder_configuration"

    /// Metadata entries describing `encoder` (empty for a frozen encoder, which is rebuilt by name).
    /// Keys sorted, so that the same encoder always writes the same bytes.
    public static func metadata(for encoder: TextEncoder) throws -> [String: String] {
        guard let tiny = encoder as? TinyTextEncoder else { return [:] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(tiny.configuration), as: UTF8.self)
        return [vocabularyKey: tiny.vocabularyJSON, configurationKey: json]
    }

    /// The encoder a checkpoint was trained with. `choice` is the stored name ("minilm" or "tiny");
    /// `loadWeights` restores a trainable encoder's parameters from the checkpoint.
    public static func rebuild(choice: String, metadata: [String: String], maxLength: Int,
                               cacheDirectory: URL? = nil,
                               loadWeights: (Module) throws -> Void) throws -> TextEncoder {
        guard let parsed = TextEncoderChoice(rawValue: choice) else {
            throw TextEncoderSetupError(reason: "the model was trained with \"\(choice)\" text features, which cannot "
                + "encode prompts; train with --text-encoder minilm or tiny")
        }
        switch parsed {
        case .minilm:
            do {
                return try MiniLMTextEncoder(files: .located(), maxLength: maxLength, cacheDirectory: cacheDirectory)
            } catch let error as MiniLMFilesError {
                throw TextEncoderSetupError(reason: "this model reads MiniLM text features: \(error)")
            }
        case .tiny:
            guard let vocabulary = metadata[vocabularyKey], let json = metadata[configurationKey] else {
                throw TextEncoderSetupError(reason: "the checkpoint uses the tiny text encoder but holds no vocabulary "
                    + "(\(vocabularyKey)); it was written by an older version: retrain it")
            }
            let configuration = try JSONDecoder().decode(TinyTextEncoderConfiguration.self, from: Data(json.utf8))
            var rng = RandomGenerator(seed: 0)
            let encoder = try TinyTextEncoder(vocabularyJSON: vocabulary, configuration: configuration, using: &rng)
            try loadWeights(encoder)
            return encoder
        }
    }
}
