import Foundation
import VQDiffusion

/// The results database (docs/design.md §6): one SQLite file in WAL mode that every training,
/// evaluation, benchmark and study run writes to, and that figures are drawn from.
///
/// ```swift
/// let db = try ResultsDatabase(path: "results/results.sqlite")
/// let run = try db.startRun(experiment: "study-mask", name: "gamma=0.9", profile: "quick", threads: 2)
/// run.logParams(["gamma_T": "0.9", "seed": "1"])
/// for step in 0..<steps { …; run.logMetric("train/loss", loss, step: step) }
/// try run.finish(status: .finished)
/// ```
///
/// Several processes may write to one file at once: each waits up to `busyTimeoutMs` for
/// another's transaction. Opening the database marks RUNNING runs whose process is gone
/// (same host, pid no longer alive) as KILLED.
public final class ResultsDatabase {
    /// The schema this build creates and understands (`PRAGMA user_version`).
    public static let schemaVersion: Int64 = 1
    /// The project's default location.
    public static var defaultPath: String { ProjectRoot.path("results/results.sqlite") }

    public let path: String
    let connection: SQLiteConnection
    /// Serialises use of the connection between the caller's thread and the termination handler.
    let lock = NSRecursiveLock()

    static let schema = """
        CREATE TABLE IF NOT EXISTS experiments(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT,
             status TEXT NOT NULL CHECK (status IN ('RUNNING','FINISHED','FAILED','KILLED')),
             start_ms INTEGER NOT NULL, end_ms INTEGER, git_commit TEXT, profile TEXT, machine TEXT, threads INTEGER);
        CREATE TABLE IF NOT EXISTS params(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
        CREATE TABLE IF NOT EXISTS metrics(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0,
                value REAL, is_nan INTEGER NOT NULL DEFAULT 0, timestamp_ms INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS metrics_run_key_step ON metrics(run_id, key, step);
        CREATE TABLE IF NOT EXISTS tags(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT, PRIMARY KEY (run_id, key));
        """

    /// Opens (and, when `create`, creates with its folder) the database at `path`.
    /// - Throws: `ResultsError` when the file is missing (and `create` is false), is not an SQLite
    ///   database, or was written by a newer version of the suite.
    public init(path: String = ResultsDatabase.defaultPath, create: Bool = true, busyTimeoutMs: Int32 = 10_000) throws {
        self.path = path
        if !create && !FileManager.default.fileExists(atPath: path) {
            throw ResultsError("no results database at \(path): runs create it when they start; pass another path with --db")
        }
        if create {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        connection = try SQLiteConnection(path: path, create: create, busyTimeoutMs: busyTimeoutMs)
        // Switching a new file to WAL needs an exclusive lock, and SQLite may answer "locked" at
        // once (without its busy handler) when another process opens the same new file at the same
        // moment: retry for as long as the busy timeout.
        let deadline = Run.monotonicSeconds() + Double(busyTimeoutMs) / 1000
        while true {
            do {
                try connection.execute("PRAGMA journal_mode=WAL")
                break
            } catch let error as ResultsError where error.description.contains("locked") && Run.monotonicSeconds() < deadline {
                usleep(20_000)
            }
        }
        try connection.execute("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON")
        try checkSchema()
        try markStaleRunsKilled()
    }

    /// The stored schema version.
    public func storedSchemaVersion() throws -> Int64 {
        try connection.query("PRAGMA user_version").first?.first?.integer ?? 0
    }

    private func checkSchema() throws {
        var version = try storedSchemaVersion()
        if version == 0 {
            try connection.writeTransaction {
                version = try storedSchemaVersion()   // another process may have just created it
                guard version == 0 else { return }
                let others = try connection.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('experiments','runs','params','metrics','tags')")
                if let other = others.first?.first?.text {
                    throw ResultsError("\(path) is an SQLite database but not a results database (it has a table \"\(other)\"); pass another path with --db")
                }
                try connection.execute(Self.schema)
                try connection.execute("PRAGMA user_version=\(Self.schemaVersion)")
                version = Self.schemaVersion
            }
        }
        guard version == Self.schemaVersion else {
            throw ResultsError("\(path) has results schema version \(version), this build of vqd understands version \(Self.schemaVersion): use a newer vqd, or another database with --db")
        }
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Runs

    /// Starts a run in `experiment` (created if needed) and returns it, status RUNNING.
    /// Records the git commit, the machine (host and CPU), the profile and the thread count, and
    /// the process id and host as tags `sys.pid`, `sys.host` (used to detect runs whose process died).
    /// When `handleSignals`, SIGINT and SIGTERM mark the run KILLED before the process ends (see
    /// `RunTermination`).
    public func startRun(experiment: String, name: String? = nil, profile: String? = nil, threads: Int? = nil,
                         gitCommit: String? = Machine.gitCommit(), handleSignals: Bool = true) throws -> Run {
        let id = Run.newID()
        let now = Run.nowMs()
        try withLock {
            try connection.writeTransaction {
                try connection.prepare("INSERT OR IGNORE INTO experiments(name, created_ms) VALUES (?, ?)")
                    .run([.text(experiment), .integer(now)])
                try connection.prepare("""
                    INSERT INTO runs(id, experiment_id, name, status, start_ms, git_commit, profile, machine, threads)
                    VALUES (?, (SELECT id FROM experiments WHERE name = ?), ?, 'RUNNING', ?, ?, ?, ?, ?)
                    """).run([.text(id), .text(experiment), name.sql, .integer(now), gitCommit.sql, profile.sql,
                              .text(Machine.description), threads.sql])
                let tags = try connection.prepare("INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?, ?, ?)")
                for (key, value) in Machine.processTags() { try tags.run([.text(id), .text(key), .text(value)]) }
            }
        }
        let run = try Run(id: id, experiment: experiment, name: name, database: self)
        if handleSignals { RunTermination.shared.register(run) }
        return run
    }

    /// Marks RUNNING runs started on this host by processes that no longer exist as KILLED, with
    /// end time their last logged metric (or their start). Returns their ids.
    @discardableResult
    public func markStaleRunsKilled() throws -> [String] {
        try withLock {
            let rows = try connection.query("""
                SELECT r.id, p.value, s.value FROM runs r
                JOIN tags p ON p.run_id = r.id AND p.key = 'sys.pid'
                JOIN tags h ON h.run_id = r.id AND h.key = 'sys.host'
                LEFT JOIN tags s ON s.run_id = r.id AND s.key = 'sys.pid_start'
                WHERE r.status = 'RUNNING' AND h.value = ?
                """, [.text(Machine.hostname)])
            let stale = rows.compactMap { row -> String? in
                guard let id = row[0].text, let pid = row[1].integer.map(Int32.init) else { return nil }
                return Machine.processIsGone(pid: pid, startTime: row[2].text) ? id : nil
            }
            guard !stale.isEmpty else { return [] }
            try connection.writeTransaction {
                let update = try connection.prepare("""
                    UPDATE runs SET status = 'KILLED',
                      end_ms = max(start_ms, coalesce((SELECT max(timestamp_ms) FROM metrics WHERE run_id = runs.id), start_ms))
                    WHERE id = ? AND status = 'RUNNING'
                    """)
                let tag = try connection.prepare("INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?, 'sys.end_reason', ?)")
                for id in stale {
                    try update.run([.text(id)])
                    try tag.run([.text(id), .text("process gone (found when the database was next opened)")])
                }
            }
            return stale
        }
    }
}
