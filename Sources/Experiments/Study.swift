import Engine
import Foundation
import VQDiffusion

// The shared plumbing of the studies under studies/: profiles, configuration with overrides,
// the umbrella run and its measurement runs in the results database, the claims table.

/// How big a study run is.
public enum StudyProfile: String, Codable, CaseIterable, Sendable {
    /// A tiny configuration that finishes in minutes (what the tests run).
    case quick
    /// The reproduction on 2 cores.
    case paper
    /// A shorter run of the paper profile's design, for a first look; not a verdict. Only the
    /// studies that list it in `profiles` offer it.
    case preview

    /// The profile whose recorded choices (the quality study's tuning) a run of this profile
    /// reads: the quick profile's own, the paper's for the paper and preview profiles.
    public var tuningSource: StudyProfile { self == .quick ? .quick : .paper }
}

/// One study: a claim of the paper, the configuration that tests it, and the code that does.
public protocol Study {
    associatedtype Configuration: Codable & Equatable
    /// "quality", "speed", "mask" or "reparam": the experiment is "study-<name>".
    static var name: String { get }
    /// The configuration of a profile (before overrides).
    static func configuration(_ profile: StudyProfile) -> Configuration
    /// Runs the study, logging measurement runs through `context`, and returns its claims.
    static func run(_ configuration: Configuration, context: StudyContext) throws -> ClaimsTable
    /// The models the study trains when they are missing, in the order it needs them: what
    /// `--jobs N` prepares in parallel before the study starts. Models found by other means
    /// (the speed study's) are not listed, nor those whose measurements the study finds already
    /// recorded in `context`'s database.
    static func prerequisites(_ configuration: Configuration, context: StudyContext) throws -> [StudyPrerequisite]
    /// The profiles the study offers (default: quick and paper).
    static var profiles: [StudyProfile] { get }
}

extension Study {
    public static var profiles: [StudyProfile] { [.quick, .paper] }
    public static func prerequisites(_ configuration: Configuration, context: StudyContext) throws -> [StudyPrerequisite] { [] }
}

/// A model a study needs, as the model store names it: the recipe's kind and JSON.
public struct StudyPrerequisite: Equatable, Sendable {
    public var kind: String
    public var recipe: String
    public var summary: String
    public var fileName: String

    /// The recipe of `kind` given as JSON.
    public init(kind: String, recipe json: String) throws {
        let r = try decodeModelRecipe(kind: kind, json: json)
        self.init(r)
    }

    public init<R: ModelRecipe>(_ recipe: R) {
        kind = R.kind
        self.recipe = (try? recipe.json()) ?? ""
        summary = recipe.summary
        fileName = recipe.fileName
    }

    /// Each recipe once, and every VQ-VAE and evaluator before the generators (which train on a
    /// VQ-VAE's tokens), keeping the order otherwise.
    public static func ordered(_ list: [StudyPrerequisite]) -> [StudyPrerequisite] {
        var seen = Set<String>(), unique: [StudyPrerequisite] = []
        for p in list where seen.insert(p.fileName).inserted { unique.append(p) }
        return unique.filter { $0.kind != GeneratorRecipe.kind } + unique.filter { $0.kind == GeneratorRecipe.kind }
    }

    /// Trains (or finds) this model with `store`.
    public func prepare(in store: ModelStore) throws -> URL {
        try store.model(try decodeModelRecipe(kind: kind, json: recipe))
    }

    /// Whether the store already has this model (committed or cached).
    public func isAvailable(in store: ModelStore) -> Bool {
        guard let r = try? decodeModelRecipe(kind: kind, json: recipe) else { return false }
        return (try? store.existing(r)) != nil
    }
}

/// Where a study writes and what it records with every run.
public final class StudyContext {
    public let study: String
    public let profile: StudyProfile
    public let database: ResultsDatabase
    public let store: ModelStore
    /// Where the claims table is written (results/ by default).
    public let resultsDirectory: URL
    /// The run that stands for the whole study: its configuration, claims and status. Every
    /// measurement run carries its id in the tag `study_run`.
    public private(set) var studyRun: Run!
    public var showProgress: Bool
    /// Measurement runs started so far (ids, in order).
    public private(set) var runIDs: [String] = []
    /// Trains the missing ones of these models before the study needs them (`--jobs N`: N at a
    /// time in processes of their own; by default nothing, and each is trained when asked for).
    public var prepare: ([StudyPrerequisite]) throws -> Void = { _ in }
    /// How many models `prepare` trains at a time (`--jobs`).
    public var prepareWidth = 1
    /// Measure again what the database already records (`--remeasure`) instead of recalling it.
    public var remeasure = false

    public init(study: String, profile: StudyProfile, database: ResultsDatabase, store: ModelStore,
                resultsDirectory: URL, showProgress: Bool = true) {
        self.study = study
        self.profile = profile
        self.database = database
        self.store = store
        self.resultsDirectory = resultsDirectory
        self.showProgress = showProgress
    }

    public var experiment: String { "study-\(study)" }

    /// Starts a measurement run of this study (tagged with the study run), runs `body` with it,
    /// and finishes it FINISHED, or FAILED when `body` throws.
    @discardableResult
    public func measure<T>(_ name: String, params: [String: String] = [:], seed: UInt64? = nil,
                           _ body: (Run) throws -> T) throws -> T {
        let run = try database.startRun(experiment: experiment, name: name, profile: profile.rawValue, threads: BLAS.threads)
        runIDs.append(run.id)
        run.setTag("study_run", studyRun.id)
        run.setTag("kind", "measurement")
        var all = params
        if let seed { all["seed"] = String(seed) }
        run.logParams(all)
        return try run.closing(body)
    }

    /// Runs `S` with `configuration`: the study run, the measurements, the claims table (printed,
    /// written to results/claims-<name>.md and stored in the study run).
    public static func execute<S: Study>(_ type: S.Type, configuration: S.Configuration, context: StudyContext) throws -> ClaimsTable {
        let run = try context.database.startRun(experiment: context.experiment, name: "\(S.name) (\(context.profile.rawValue))",
                                                profile: context.profile.rawValue, threads: BLAS.threads)
        context.studyRun = run
        run.setTag("kind", "study")
        run.logParams(["configuration": try sortedJSON(configuration), "profile": context.profile.rawValue])
        let start = Run.monotonicSeconds()
        return try run.closing { run in
            let claims = try S.run(configuration, context: context)
            let seconds = Run.monotonicSeconds() - start
            run.logMetric("study_seconds", seconds)
            for (i, row) in claims.rows.enumerated() {
                run.setTag("claim.\(i + 1)", "\(row.verdict.rawValue): \(row.claim) — ours: \(row.ours)")
            }
            let text = claims.markdown(study: S.name, profile: context.profile, runID: run.id, seconds: seconds,
                                       commit: Machine.gitCommit(),
                                       changes: try ConfigurationOverrides.changes(configuration, from: S.configuration(context.profile)))
            print("\n" + text)
            try FileManager.default.createDirectory(at: context.resultsDirectory, withIntermediateDirectories: true)
            let suffix = context.profile == .paper ? "" : "-\(context.profile.rawValue)"
            try AtomicFile.write(Data(text.utf8),
                                 to: context.resultsDirectory.appendingPathComponent("claims-\(S.name)\(suffix).md"))
            return claims
        }
    }
}

// MARK: - Claims

/// Whether our run reproduces a claim.
public enum Verdict: String, Codable, Sendable {
    case reproduced, partly, not = "not reproduced"
    /// The measured difference is inside the noise (its interval contains 0): neither for nor against.
    case indistinguishable = "not distinguishable at this scale"
}

/// The paper's claims next to this run's numbers.
public struct ClaimsTable {
    public struct Row {
        public var claim: String
        public var paper: String
        public var ours: String
        public var verdict: Verdict
        public var reason: String

        public init(claim: String, paper: String, ours: String, verdict: Verdict, reason: String) {
            self.claim = claim
            self.paper = paper
            self.ours = ours
            self.verdict = verdict
            self.reason = reason
        }
    }

    public var rows: [Row] = []
    /// Lines printed under the table (what the numbers were measured on).
    public var notes: [String] = []
    /// Markdown printed after the notes (the study's own table of measurements).
    public var details: String = ""

    public init(rows: [Row] = [], notes: [String] = []) {
        self.rows = rows
        self.notes = notes
    }

    public mutating func add(_ claim: String, paper: String, ours: String, verdict: Verdict, reason: String) {
        rows.append(Row(claim: claim, paper: paper, ours: ours, verdict: verdict, reason: reason))
    }

    /// A Markdown section: a header line with the run, the table, the notes. `changes` are the
    /// configuration's departures from the profile's ("key = value"), named in the header line so
    /// a rerun with overrides says what it changed.
    public func markdown(study: String, profile: StudyProfile, runID: String, seconds: Double, commit: String?,
                         changes: [String] = []) -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        var lines = [
            "## Claims: study \(study) (profile \(profile.rawValue))",
            "",
            String(format: "Study run %@, commit %@, %.1f min.", runID, String((commit ?? "unknown").prefix(12)), seconds / 60)
                + (changes.isEmpty ? "" : " Configuration changed from the profile's: " + changes.map { "`\($0)`" }.joined(separator: ", ") + "."),
            "",
            "| Claim | Paper | Ours | Verdict | Why |",
            "|---|---|---|---|---|",
        ]
        for r in rows {
            lines.append("| \(cell(r.claim)) | \(cell(r.paper)) | \(cell(r.ours)) | **\(r.verdict.rawValue)** | \(cell(r.reason)) |")
        }
        if !notes.isEmpty {
            lines.append("")
            lines += notes.map { "- " + $0 }
        }
        if !details.isEmpty {
            lines.append("")
            lines.append(details)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

// MARK: - Formatting helpers

public func formatNumber(_ value: Double, digits: Int = 2) -> String {
    guard value.isFinite else { return value.isNaN ? "n/a" : (value > 0 ? "∞" : "−∞") }
    return String(format: "%.\(digits)f", value)
}

public func formatPercent(_ fraction: Double) -> String {
    guard fraction.isFinite else { return "n/a" }
    return String(format: "%.1f %%", 100 * fraction)
}
