import Foundation
import Engine
import VQDiffusion

/// The status of a run, as stored in `runs.status`.
public enum RunStatus: String, Sendable, CaseIterable {
    case running = "RUNNING", finished = "FINISHED", failed = "FAILED", killed = "KILLED"
}

/// One run in the results database: parameters, tags and metrics, written in batches.
///
/// Logging never throws, so it can sit in a training loop: entries are buffered in memory and
/// written in one transaction every `flushEvery` metrics or `flushInterval` seconds (parameters
/// and tags at once). A write that fails is kept and retried; its error is thrown by the next
/// `flush()` or by `finish(status:)`. Call `finish` exactly once.
public final class Run {
    public let id: String
    public let experiment: String
    public let name: String?
    public let database: ResultsDatabase
    /// Metrics buffered before a write (default 1000).
    public var flushEvery = 1000
    /// Seconds between writes while metrics arrive (default 5).
    public var flushInterval = 5.0
    public private(set) var status = RunStatus.running

    private struct PendingMetric {
        let key: String
        let step: Int64
        let value: Double
        let timestampMs: Int64
    }
    private var metrics: [PendingMetric] = []
    private var params: [(String, String)] = []
    private var tags: [(String, String?)] = []
    private var lastWrite = Run.monotonicSeconds()
    private var nextWriteCount: Int
    private var deferredError: Error?
    private let insertMetric: SQLiteStatement
    private let insertParam: SQLiteStatement
    private let insertTag: SQLiteStatement
    private let updateStatus: SQLiteStatement

    init(id: String, experiment: String, name: String?, database: ResultsDatabase) throws {
        self.id = id
        self.experiment = experiment
        self.name = name
        self.database = database
        nextWriteCount = 1000
        let c = database.connection
        (insertMetric, insertParam, insertTag, updateStatus) = try database.withLock {
            (try c.prepare("INSERT INTO metrics(run_id, key, step, value, is_nan, timestamp_ms) VALUES (?, ?, ?, ?, ?, ?)"),
             try c.prepare("INSERT OR REPLACE INTO params(run_id, key, value) VALUES (?, ?, ?)"),
             try c.prepare("INSERT OR REPLACE INTO tags(run_id, key, value) VALUES (?, ?, ?)"),
             try c.prepare("UPDATE runs SET status = ?, end_ms = ? WHERE id = ?"))
        }
        metrics.reserveCapacity(1024)
    }

    // MARK: Logging

    /// Records a parameter (replacing an earlier value of the same key).
    public func logParam(_ key: String, _ value: any CustomStringConvertible) {
        database.withLock {
            params.append((key, value.description))
            writeNow()
        }
    }

    public func logParams(_ values: [String: String]) {
        database.withLock {
            params.append(contentsOf: values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            writeNow()
        }
    }

    /// Sets a tag (replacing an earlier value of the same key).
    public func setTag(_ key: String, _ value: String?) {
        database.withLock {
            tags.append((key, value))
            writeNow()
        }
    }

    /// Records `value` of metric `key` at `step`. NaN and ±infinity are stored as is_nan = 1 with
    /// value NULL.
    public func logMetric(_ key: String, _ value: Double, step: Int = 0) {
        database.withLock {
            metrics.append(PendingMetric(key: key, step: Int64(step), value: value, timestampMs: Run.nowMs()))
            if metrics.count >= nextWriteCount || Run.monotonicSeconds() - lastWrite >= flushInterval { writeNow() }
        }
    }

    public func logMetric(_ key: String, _ value: Float, step: Int = 0) {
        logMetric(key, Double(value), step: step)
    }

    /// Writes everything buffered; throws the error of this or an earlier failed write.
    public func flush() throws {
        try database.withLock {
            if let error = deferredError {
                deferredError = nil
                try write()
                throw error
            }
            try write()
        }
    }

    /// Writes what is buffered and sets the final status and end time.
    public func finish(status final: RunStatus = .finished) throws {
        precondition(final != .running, "finish needs a final status, not RUNNING")
        try database.withLock {
            precondition(status == .running, "run \(id) was already finished with status \(status.rawValue)")
            var failure: Error? = deferredError
            deferredError = nil
            do { try write() } catch { failure = failure ?? error }
            try database.connection.writeTransaction {
                try updateStatus.run([.text(final.rawValue), .integer(Run.nowMs()), .text(id)])
            }
            status = final
            RunTermination.shared.unregister(self)
            if let failure { throw failure }
        }
    }

    /// Called by the termination handler: write what can be written, mark KILLED.
    func markKilled(reason: String) {
        database.withLock {
            guard status == .running else { return }
            tags.append(("sys.end_reason", reason))
            try? write()
            try? database.connection.writeTransaction {
                try updateStatus.run([.text(RunStatus.killed.rawValue), .integer(Run.nowMs()), .text(id)])
            }
            status = .killed
        }
    }

    // MARK: Writing

    private func writeNow() {
        do { try write() } catch {
            deferredError = deferredError ?? error
            nextWriteCount = metrics.count + flushEvery
            lastWrite = Run.monotonicSeconds()
        }
    }

    private func write() throws {
        defer { lastWrite = Run.monotonicSeconds() }
        guard !metrics.isEmpty || !params.isEmpty || !tags.isEmpty else { return }
        let runID = SQLValue.text(id)
        try database.connection.writeTransaction {
            for (key, value) in params { try insertParam.run([runID, .text(key), .text(value)]) }
            for (key, value) in tags { try insertTag.run([runID, .text(key), value.sql]) }
            for m in metrics {
                let finite = m.value.isFinite
                try insertMetric.run([runID, .text(m.key), .integer(m.step), finite ? .real(m.value) : .null,
                                      .integer(finite ? 0 : 1), .integer(m.timestampMs)])
            }
        }
        params.removeAll()
        tags.removeAll()
        metrics.removeAll(keepingCapacity: true)
        nextWriteCount = flushEvery
    }

    // MARK: Ids and clocks

    /// 32 hex digits: milliseconds since 1970 (12 digits, so ids sort by start time) then 80
    /// random bits from the system generator (ids must be unique, not reproducible).
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let time = String(UInt64(nowMs()), radix: 16)
        let high = String(generator.next() & 0xFFFF, radix: 16)
        let low = String(generator.next(), radix: 16)
        func pad(_ s: String, _ n: Int) -> String { String(repeating: "0", count: max(0, n - s.count)) + s }
        return pad(time, 12) + pad(high, 4) + pad(low, 16)
    }

    /// Milliseconds since 1970 (the time stamps of the database).
    public static func nowMs() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }

    public static func monotonicSeconds() -> Double { MonotonicClock.seconds() }
}

extension Run {
    /// Runs `body` with this run and closes it: FINISHED when `body` returns, FAILED (and the
    /// error rethrown) when it throws. The one place a run's end is decided.
    public func closing<T>(_ body: (Run) throws -> T) throws -> T {
        do {
            let value = try body(self)
            try finish(status: .finished)
            return value
        } catch {
            try? finish(status: .failed)
            throw error
        }
    }
}
