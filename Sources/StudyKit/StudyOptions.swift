import ArgumentParser
import Engine
import Foundation
import VQDiffusion

extension StudyProfile: ExpressibleByArgument {}

/// The options every study executable takes, and the code that runs a study with them.
public struct StudyOptions: ParsableArguments {
    @Option(help: "quick (a tiny configuration, minutes; what the tests run) or paper (the reproduction).")
    public var profile: StudyProfile = .paper
    @Option(help: "The results database.")
    public var db: String = ResultsDatabase.defaultPath
    @Option(help: "Where the claims table is written.")
    public var results: String = "results"
    @Option(help: "The committed models (with their index.json).")
    public var models: String = "results/models"
    @Option(help: "Cache folder: models trained on demand, token grids, text features.")
    public var cache: String = "cache"
    @Option(help: "BLAS and kernel threads (default: OpenBLAS's choice).")
    public var threads: Int?
    @Flag(name: .customLong("show-config"), help: "Print the configuration (after overrides) as key = value and exit.")
    public var showConfig = false
    @Flag(name: .customLong("no-progress"), help: "No progress bars.")
    public var noProgress = false
    @Argument(parsing: .allUnrecognized,
              help: ArgumentHelp("Overrides of configuration fields: --key value (keys as --show-config prints them).",
                                 valueName: "--key value"))
    public var overrides: [String] = []

    public init() {}

    /// The study's configuration for the profile with the overrides applied.
    public func configuration<S: Study>(_ study: S.Type) throws -> S.Configuration {
        try ConfigurationOverrides.apply(ConfigurationOverrides.pairs(overrides), to: S.configuration(profile))
    }

    /// Runs the study (or prints its configuration), exiting non-zero with a message on failure.
    public func run<S: Study>(_ study: S.Type) throws {
        let configuration: S.Configuration
        do { configuration = try self.configuration(study) } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
        if showConfig {
            for (key, value) in try ConfigurationOverrides.listing(configuration) { print("\(key) = \(value)") }
            return
        }
        setvbuf(stdout, nil, _IOLBF, 0)   // line by line, also into a log file
        if let threads { BLAS.setThreads(threads) }
        let database = try ResultsDatabase(path: db)
        let cacheURL = URL(fileURLWithPath: cache)
        let store = ModelStore(committed: URL(fileURLWithPath: models), cache: cacheURL.appendingPathComponent("models"),
                               tokenCache: cacheURL.appendingPathComponent("tokens"),
                               textFeatureCache: cacheURL.appendingPathComponent("text-features"),
                               database: database, profile: profile.rawValue, showProgress: !noProgress)
        let context = StudyContext(study: S.name, profile: profile, database: database, store: store,
                                   resultsDirectory: URL(fileURLWithPath: results), showProgress: !noProgress)
        print("study \(S.name), profile \(profile.rawValue), \(BLAS.threads) thread(s), database \(db)")
        _ = try StudyContext.execute(study, configuration: configuration, context: context)
    }
}
