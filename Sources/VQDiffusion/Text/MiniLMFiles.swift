import Foundation

/// Where the frozen text encoder's files live: `cache/minilm/` under the project root (filled by
/// `make deps`, which runs scripts/fetch-minilm.sh), or the folder named by `VQD_MINILM_DIR`.
///
/// The folder holds model.safetensors (F32 weights of all-MiniLM-L6-v2), vocab.txt (the uncased
/// WordPiece vocabulary of 30,522 entries), tokenizer.json and config.json.
public struct MiniLMFiles: Sendable {
    /// Environment variable that overrides the default folder.
    public static let environmentVariable = "VQD_MINILM_DIR"
    /// Default folder, relative to the project root.
    public static let defaultRelativePath = "cache/minilm"

    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// `VQD_MINILM_DIR` when set and non-empty, otherwise `cache/minilm` under `projectRoot`
    /// (by default `ProjectRoot.url`).
    public static func located(
        projectRoot: URL = ProjectRoot.url,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> MiniLMFiles {
        if let override = environment[environmentVariable], !override.isEmpty {
            return MiniLMFiles(directory: URL(fileURLWithPath: override, relativeTo: projectRoot).standardizedFileURL)
        }
        return MiniLMFiles(directory: projectRoot.appendingPathComponent(defaultRelativePath))
    }

    public var weights: URL { directory.appendingPathComponent("model.safetensors") }
    public var vocabulary: URL { directory.appendingPathComponent("vocab.txt") }
    public var tokenizerConfiguration: URL { directory.appendingPathComponent("tokenizer.json") }
    public var modelConfiguration: URL { directory.appendingPathComponent("config.json") }

    /// The URL of `file`, or an error telling how to fetch it when it is missing.
    public func require(_ file: URL) throws -> URL {
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw MiniLMFilesError.missing(file: file.lastPathComponent, directory: directory.path)
        }
        return file
    }

    /// The WordPiece tokenizer over this folder's vocab.txt.
    public func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabularyFile: require(vocabulary))
    }
}

public enum MiniLMFilesError: Error, CustomStringConvertible {
    case missing(file: String, directory: String)

    public var description: String {
        switch self {
        case let .missing(file, directory):
            return "\(file) not found in \(directory): run `make deps` (or `make minilm`) to fetch the all-MiniLM-L6-v2 files, or set \(MiniLMFiles.environmentVariable) to a folder that holds them"
        }
    }
}
