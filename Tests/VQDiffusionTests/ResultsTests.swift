import CLibs
import Engine
import Foundation
import Testing
@testable import Experiments
@testable import VQDiffusion

@Suite struct ResultsTests {
    @Test func schemaIsCreatedAndVersioned() throws {
        let folder = TemporaryFolder()
        let path = folder.file("sub/results.sqlite").path
        let db = try ResultsDatabase(path: path)
        #expect(try db.storedSchemaVersion() == ResultsDatabase.schemaVersion)
        let tables = try db.connection.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").compactMap { $0[0].text }
        #expect(tables == ["experiments", "metrics", "params", "runs", "tags"])
        let indexes = try db.connection.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics' AND sql IS NOT NULL")
        #expect(indexes.count == 1)
        #expect(try db.connection.query("PRAGMA journal_mode").first?.first?.text == "wal")
        let columns = try db.connection.query("PRAGMA table_info(metrics)").compactMap { $0[1].text }
        #expect(columns == ["run_id", "key", "step", "value", "is_nan", "timestamp_ms"])
        // A status outside the four is refused by the CHECK constraint.
        #expect(throws: ResultsError.self) {
            try db.connection.execute("INSERT INTO experiments(name, created_ms) VALUES ('e', 0); INSERT INTO runs(id, experiment_id, status, start_ms) VALUES ('x', 1, 'PAUSED', 0)")
        }
        // Reopening is fine; a newer schema is refused with a clear message.
        _ = try ResultsDatabase(path: path)
        try db.connection.execute("PRAGMA user_version = 99")
        let message = thrownMessage { _ = try ResultsDatabase(path: path) }
        #expect(message?.contains("schema version 99") == true)
        // Missing file without create; a file that is not a database.
        #expect(thrownMessage { _ = try ResultsDatabase(path: folder.file("none.sqlite").path, create: false) }?.contains("none.sqlite") == true)
        try Data("not a database, just text that is long enough to be a header....................................".utf8).write(to: folder.file("text.sqlite"))
        #expect(thrownMessage { _ = try ResultsDatabase(path: folder.file("text.sqlite").path) }?.contains("not an SQLite database") == true)
    }

    @Test func paramsMetricsAndTagsReadBack() throws {
        let folder = TemporaryFolder()
        let db = try ResultsDatabase(path: folder.file("r.sqlite").path)
        let run = try db.startRun(experiment: "study-mask", name: "gamma 0.9", profile: "quick", threads: 2,
                                  gitCommit: "abc123", handleSignals: false)
        run.flushEvery = 7
        run.logParam("gamma_T", 0.9)
        run.logParams(["seed": "1", "steps": "100"])
        run.setTag("note", "first")
        run.setTag("note", "second")
        for step in 0..<20 { run.logMetric("train/loss", 1.0 / Double(step + 1), step: step) }
        run.logMetric("train/loss", Double.nan, step: 20)
        run.logMetric("eval/fid", Double.infinity, step: 20)
        run.logMetric("eval/acc", Float(0.5), step: 3)
        try run.finish(status: .finished)

        let record = try db.run(String(run.id.prefix(10)))
        #expect(record.id == run.id && run.id.count == 32)
        #expect(record.experiment == "study-mask" && record.name == "gamma 0.9" && record.status == .finished)
        #expect(record.profile == "quick" && record.threads == 2 && record.gitCommit == "abc123")
        #expect(record.machine?.isEmpty == false && record.endMs! >= record.startMs)
        #expect(try db.params(runID: run.id).map { "\($0.key)=\($0.value)" } == ["gamma_T=0.9", "seed=1", "steps=100"])
        let tags = Dictionary(uniqueKeysWithValues: try db.tags(runID: run.id).map { ($0.key, $0.value) })
        #expect(tags["note"] == "second")
        #expect(tags["sys.pid"] == String(getpid()))
        #expect(tags["sys.blas_kernels"] == BLASKernels.coreName)
        let loss = try db.metric(runID: run.id, key: "train/loss")
        #expect(loss.count == 21)
        #expect(loss[4] == MetricPoint(step: 4, value: 0.2, timestampMs: loss[4].timestampMs))
        #expect(loss[20].value == nil)
        let nanRows = try db.connection.query("SELECT count(*) FROM metrics WHERE is_nan = 1 AND value IS NULL")
        #expect(nanRows.first?.first?.integer == 2)
        let final = try db.finalMetrics(runID: run.id)
        #expect(final.map(\.key) == ["eval/acc", "eval/fid", "train/loss"])
        #expect(final[0].point.value == 0.5 && final[0].point.step == 3)
        let compared = try db.lastValues(of: "eval/acc", experiment: "study-mask")
        #expect(compared.count == 1 && compared[0].point.value == 0.5)
        #expect(try db.lastValues(of: "eval/acc", experiment: "other").isEmpty)
        #expect(try db.allValues(of: "train/loss").count == 21)
    }

    @Test func runIdPrefixesMustBeUnique() throws {
        let folder = TemporaryFolder()
        let db = try ResultsDatabase(path: folder.file("r.sqlite").path)
        let a = try db.startRun(experiment: "e", gitCommit: nil, handleSignals: false)
        let b = try db.startRun(experiment: "e", gitCommit: nil, handleSignals: false)
        try a.finish(); try b.finish(status: .failed)
        #expect(thrownMessage { _ = try db.run("") }?.contains("ambiguous") == true)
        #expect(thrownMessage { _ = try db.run("zz") }?.contains("no run") == true)
        #expect(try db.run(b.id).status == .failed)
        #expect(try db.runs(experiment: "e").count == 2)
        #expect(try db.experiments() == ["e"])
    }

    // MARK: Several processes

    /// The vqd tool built next to the test binary.
    static func vqd() throws -> URL { try builtExecutable("vqd") }

    /// Starts `vqd results selftest-write` with `arguments`; stdout goes to the returned pipe.
    static func writer(_ arguments: [String]) throws -> (Process, Pipe) {
        let child = try ChildProcess(try vqd(), ["results", "selftest-write"] + arguments, errorsApart: true)
        return (child.process, child.pipe)
    }

    /// Reads the writer's output up to its "ready <id>" line; returns the run id.
    static func waitUntilReady(_ pipe: Pipe) -> String? {
        var text = ""
        while true {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { return nil }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ready ") }) {
                return String(line.dropFirst(6))
            }
        }
    }

    @Test func twoProcessesWritingAtOnceLoseNothing() throws {
        let folder = TemporaryFolder()
        let path = folder.file("shared.sqlite").path
        let count = 20_000
        let startAt = String(Run.nowMs() + 400)   // both start writing together: 800 transactions each
        let writers = try ["a", "b"].map { name in
            try Self.writer(["--db", path, "--run-name", name, "--count", String(count), "--flush-every", "25", "--start-at-ms", startAt])
        }
        for (process, _) in writers { process.waitUntilExit() }
        #expect(writers.allSatisfy { $0.0.terminationStatus == 0 })
        let db = try ResultsDatabase(path: path)
        let runs = try db.runs(experiment: "selftest")
        try #require(runs.count == 2 && runs.allSatisfy { $0.status == .finished })
        for run in runs {
            let values = try db.metric(runID: run.id, key: "value")
            #expect(values.count == count)
            #expect(values.map(\.step) == Array(0..<count))
            #expect(values.allSatisfy { $0.value == Double($0.step) })
        }
        // The writes really interleaved (otherwise this test shows nothing).
        let spans = try runs.map { run in try db.metric(runID: run.id, key: "value").map(\.timestampMs) }
        #expect(spans[0].first! <= spans[1].last! && spans[1].first! <= spans[0].last!)
    }

    /// Starts a writer of `count` metric values that holds its run open, sends it `signal` once it
    /// is ready and waits for it to die of that signal. Returns the run's id.
    static func writeThenKill(db path: String, count: Int, flushEvery: Int, signal: Int32) throws -> String {
        let (process, pipe) = try writer(["--db", path, "--run-name", "victim", "--count", "\(count)",
                                          "--flush-every", "\(flushEvery)", "--hold", "60"])
        let id = try #require(waitUntilReady(pipe))
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == signal)
        return id
    }

    @Test func sigkillLeavesAReadableDatabaseAndReopeningMarksTheRunKilled() throws {
        let folder = TemporaryFolder()
        let path = folder.file("k.sqlite").path
        let id = try Self.writeThenKill(db: path, count: 500, flushEvery: 50, signal: SIGKILL)
        let db = try ResultsDatabase(path: path)
        let run = try db.run(id)
        #expect(run.status == .killed)
        #expect(run.endMs != nil)
        #expect(try db.metric(runID: id, key: "value").count == 500)
        #expect(try db.connection.query("PRAGMA integrity_check").first?.first?.text == "ok")
        #expect(try db.tags(runID: id).contains { $0.key == "sys.end_reason" })
    }

    @Test func sigtermMarksTheRunKilledBeforeExiting() throws {
        let folder = TemporaryFolder()
        let path = folder.file("t.sqlite").path
        let id = try Self.writeThenKill(db: path, count: 10, flushEvery: 1000, signal: SIGTERM)
        // Read without the stale-run check, to see what the process itself wrote.
        let connection = try SQLiteConnection(path: path, create: false, busyTimeoutMs: 1000)
        #expect(try connection.query("SELECT status FROM runs WHERE id = ?", [.text(id)]).first?.first?.text == "KILLED")
        #expect(try connection.query("SELECT value FROM tags WHERE run_id = ? AND key = 'sys.end_reason'", [.text(id)]).first?.first?.text == "signal SIGTERM")
    }

    @Test func liveRunsAreNotMarkedKilled() throws {
        let folder = TemporaryFolder()
        let path = folder.file("l.sqlite").path
        let db = try ResultsDatabase(path: path)
        let run = try db.startRun(experiment: "e", gitCommit: nil, handleSignals: false)
        let again = try ResultsDatabase(path: path)
        #expect(try again.run(run.id).status == .running)
        try run.finish()
    }
}
