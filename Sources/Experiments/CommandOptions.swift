import ArgumentParser
import Engine
import Foundation
import VQDiffusion

// The option groups that several commands share, written once: the results database, and the
// model store's folders. Defaults are under the project root (`ProjectRoot`: $VQD_HOME, or the
// project folder found from the current folder or the executable), so commands work from any folder.

/// `--db FILE`: the results database.
public struct DatabaseOption: ParsableArguments {
    @Option(help: "The results database (default results/results.sqlite under the project root, or $VQD_HOME).")
    public var db: String = ResultsDatabase.defaultPath

    public init() {}

    /// The database, created when missing.
    public func open() throws -> ResultsDatabase { try ResultsDatabase(path: db) }
}

/// Where the model store looks: the committed folder and the cache.
public struct ModelFolderOptions: ParsableArguments {
    @Option(help: "The committed models folder (with its index.json).")
    public var models = ProjectRoot.path("results/models")
    @Option(help: "The folder of models trained on demand.")
    public var cache = ProjectRoot.path("cache/models")

    public init() {}

    public func store(database: ResultsDatabase? = nil, profile: String? = nil, showProgress: Bool = true) -> ModelStore {
        ModelStore(committed: URL(fileURLWithPath: models), cache: URL(fileURLWithPath: cache), database: database,
                   profile: profile, showProgress: showProgress)
    }
}

extension ModelStore {
    /// The store at the default folders under the project root.
    public static func standard(database: ResultsDatabase?, profile: String?, showProgress: Bool = true) -> ModelStore {
        ModelStore(database: database, profile: profile, showProgress: showProgress)
    }
}

/// The default folders of the caches, under the project root.
public enum DefaultPaths {
    /// Frozen text features by caption (the encoder is frozen, so a caption's features never change).
    public static var textFeatures: URL { URL(fileURLWithPath: ProjectRoot.path("cache/text-features")) }
}
