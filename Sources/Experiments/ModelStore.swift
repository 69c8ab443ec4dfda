import Engine
import Foundation
import VQDiffusion
#if canImport(Glibc)
import Glibc
#endif

/// Where the studies' prerequisite models live, found by their recipe's key and trained when
/// missing — once, however many studies ask for them.
///
/// Models are looked up first among the committed ones (`results/models/index.json` maps keys to
/// files in that folder), then in the cache folder (`cache/models/<kind>-<key>.safetensors`).
/// A missing model is trained into the cache under a lock file, so two studies that need the same
/// model at the same time train it once: the second waits and then finds it. An interrupted
/// training resumes from its checkpoint (`<kind>-<key>.ckpt.safetensors`) the next time.
public final class ModelStore {
    /// The folder of committed models with its index.json.
    public let committed: URL
    /// Where models trained on demand are written.
    public let cache: URL
    /// Token grids and text features caches used while training generators.
    public let tokenCache: URL
    public let textFeatureCache: URL
    /// Training runs are logged here (experiments "vqvae", "evaluator", "train-diffusion", "train-ar").
    public let database: ResultsDatabase?
    /// Recorded with the training runs.
    public let profile: String?
    public var showProgress: Bool
    /// Prints what is found, trained or waited for.
    public var log: (String) -> Void

    public static let indexName = "index.json"

    public init(committed: URL = URL(fileURLWithPath: ProjectRoot.path("results/models")),
                cache: URL = URL(fileURLWithPath: ProjectRoot.path("cache/models")),
                tokenCache: URL = TokenCache.defaultDirectory,
                textFeatureCache: URL = DefaultPaths.textFeatures,
                database: ResultsDatabase?, profile: String?, showProgress: Bool = true,
                log: @escaping (String) -> Void = { print($0) }) {
        self.committed = committed
        self.cache = cache
        self.tokenCache = tokenCache
        self.textFeatureCache = textFeatureCache
        self.database = database
        self.profile = profile
        self.showProgress = showProgress
        self.log = log
    }

    // MARK: Index of committed models

    /// One committed model: its file in the committed folder and the recipe it was trained from.
    public struct Entry: Codable, Equatable {
        public var key: String
        public var kind: String
        public var file: String
        public var summary: String
        /// The recipe's JSON as its key hashes it (later options at their defaults left out).
        public var recipe: String
        /// The whole recipe, every field written: what `vqd models train --recipe` rebuilds.
        public var fullRecipe: JSONTree?

        /// The recipe this entry records.
        public func decodedRecipe() throws -> any ModelRecipe { try decodeModelRecipe(kind: kind, json: recipe) }
    }

    /// The committed models, by key (empty when there is no index).
    public func index() throws -> [String: Entry] {
        let url = committed.appendingPathComponent(ModelStore.indexName)
        guard FileManager.default.fileExists(atPath: url.path) else { return [:] }
        let entries: [Entry]
        do { entries = try JSONDecoder().decode([Entry].self, from: Data(contentsOf: url)) } catch {
            throw FileError(url.path, "is not a valid model index (\(error)); restore it with git checkout")
        }
        return Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { $1 })
    }

    /// Records `file` (in the committed folder) as the model of `recipe`, replacing an entry of the
    /// same key; every other entry is written anew from its recipe (summary, full recipe), its key
    /// and file kept.
    public func register(_ recipe: some ModelRecipe, file: String) throws {
        var entries = try index().values.filter { $0.key != recipe.key }.map(Self.refreshed)
        entries.append(try Self.entry(recipe, file: file))
        try writeIndex(entries)
    }

    /// `entry` written anew from its recipe, or as it is when its recipe does not read back to its key.
    static func refreshed(_ entry: Entry) -> Entry {
        guard let recipe = try? entry.decodedRecipe(), let fresh = try? Self.entry(recipe, file: entry.file),
              fresh.key == entry.key else { return entry }
        return fresh
    }

    static func entry(_ recipe: some ModelRecipe, file: String) throws -> Entry {
        Entry(key: recipe.key, kind: type(of: recipe).kind, file: file, summary: recipe.summary, recipe: try recipe.json(),
              fullRecipe: try JSONTree(parsing: try recipe.fullJSON()))
    }

    private func writeIndex(_ entries: [Entry]) throws {
        let sorted = entries.sorted { ($0.kind, $0.file) < ($1.kind, $1.file) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(sorted) + Data("\n".utf8), to: committed.appendingPathComponent(ModelStore.indexName))
    }

    /// Files known by other means than the index (a `--vqvae FILE` given on the command line), by key.
    private var provided: [String: URL] = [:]

    /// Makes `url` the model of `recipe` for this store's lookups.
    public func provide(_ url: URL, for recipe: some ModelRecipe) { provided[recipe.key] = url }

    // MARK: Lookup

    /// The file of the model trained from `recipe`, or nil when it does not exist yet.
    public func existing<R: ModelRecipe>(_ recipe: R) throws -> URL? {
        if let url = provided[recipe.key] { return url }
        if let entry = try index()[recipe.key] {
            let url = committed.appendingPathComponent(entry.file)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        let cached = cache.appendingPathComponent(recipe.fileName)
        return FileManager.default.fileExists(atPath: cached.path) ? cached : nil
    }

    /// The file of the model trained from `recipe`, training it first when it does not exist.
    /// Under MPI every rank calls it and they train the model together: rank 0 takes the lock for
    /// the job, and the ranks check that they agree on whether the model is there (they must share
    /// the cache folder).
    public func model<R: ModelRecipe>(_ recipe: R) throws -> URL {
        let group = ProcessGroup.world
        if !group.isDistributed, let url = try existing(recipe) { return url }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let lock = group.isRoot ? try FileLock(cache.appendingPathComponent("\(R.kind)-\(recipe.key).lock")) : nil
        if let lock, !lock.tryLock() {
            log("waiting for another process training \(recipe.summary) (\(recipe.fileName))")
            try lock.lock()
        }
        defer { lock?.unlock() }
        group.barrier()
        let found = try existing(recipe)
        try group.checkAgreement(found == nil ? 0 : 1, "whether \(recipe.fileName) is already there")
        if let found { return found }
        let url = cache.appendingPathComponent(recipe.fileName)
        let checkpoint = cache.appendingPathComponent("\(R.kind)-\(recipe.key).ckpt.safetensors")
        log("training \(recipe.summary) → \(portablePath(url))"
            + (FileManager.default.fileExists(atPath: checkpoint.path) ? " (resuming from its checkpoint)" : ""))
        let start = Run.monotonicSeconds()
        try recipe.train(job(recipe, model: url, checkpoint: checkpoint), store: self)
        if group.isRoot { try? FileManager.default.removeItem(at: checkpoint) }
        log(String(format: "trained %@ in %.1f min", recipe.summary, (Run.monotonicSeconds() - start) / 60))
        return url
    }
}

extension ModelStore {
    /// How the store trains a recipe: a checkpoint beside the model every 250 steps (resumed when
    /// present), metrics every 25 steps, the run named after the recipe.
    public func job(_ recipe: some ModelRecipe, model: URL, checkpoint: URL) -> TrainingJob {
        let experiment = (recipe as? GeneratorRecipe).map { "train-\($0.family.rawValue)" } ?? type(of: recipe).kind
        let resume = FileManager.default.fileExists(atPath: checkpoint.path) ? checkpoint : nil
        return TrainingJob(output: TrainingOutput(checkpoint: checkpoint, checkpointEvery: 250, resume: resume, database: database,
                                                  experiment: experiment, runName: "prerequisite \(recipe.summary)",
                                                  profile: profile, logEvery: 25, showProgress: showProgress),
                           model: model)
    }
}

/// An advisory lock on a file (flock), released on unlock or when the process ends.
final class FileLock {
    private let descriptor: Int32

    init(_ url: URL) throws {
        descriptor = open(url.path, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else { throw FileError(url.path, "cannot be opened as a lock file (errno \(errno))") }
    }

    deinit { close(descriptor) }

    func tryLock() -> Bool { flock(descriptor, LOCK_EX | LOCK_NB) == 0 }

    func lock() throws {
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileError("lock", "flock failed (errno \(errno))") }
        }
    }

    func unlock() { flock(descriptor, LOCK_UN) }
}
