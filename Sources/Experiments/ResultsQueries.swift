import Foundation
import VQDiffusion

/// A row of the runs table with its experiment's name.
public struct RunRecord: Sendable {
    public let id: String
    public let experiment: String
    public let name: String?
    public let status: RunStatus
    public let startMs: Int64
    public let endMs: Int64?
    public let gitCommit: String?
    public let profile: String?
    public let machine: String?
    public let threads: Int?

    /// Seconds from start to end (or to `nowMs` while running).
    public func durationSeconds(nowMs: Int64 = Run.nowMs()) -> Double {
        Double((endMs ?? nowMs) - startMs) / 1000
    }
}

/// One recorded value of a metric; `value` is nil for NaN or infinity (is_nan = 1).
public struct MetricPoint: Equatable, Sendable {
    public let step: Int
    public let value: Double?
    public let timestampMs: Int64
}

/// Read-side queries, for people (`vqd results`) and for studies drawing figures.
extension ResultsDatabase {
    private static let runColumns = """
        r.id, e.name, r.name, r.status, r.start_ms, r.end_ms, r.git_commit, r.profile, r.machine, r.threads
        FROM runs r JOIN experiments e ON e.id = r.experiment_id
        """

    private func record(_ row: [SQLValue]) -> RunRecord {
        RunRecord(id: row[0].text ?? "", experiment: row[1].text ?? "", name: row[2].text,
                  status: RunStatus(rawValue: row[3].text ?? "") ?? .failed, startMs: row[4].integer ?? 0,
                  endMs: row[5].integer, gitCommit: row[6].text, profile: row[7].text, machine: row[8].text,
                  threads: row[9].integer.map { Int($0) })
    }

    /// Experiment names, oldest first.
    public func experiments() throws -> [String] {
        try withLock { try connection.query("SELECT name FROM experiments ORDER BY id").compactMap { $0[0].text } }
    }

    /// Runs, oldest first, optionally of one experiment.
    public func runs(experiment: String? = nil) throws -> [RunRecord] {
        try withLock {
            let rows = experiment == nil
                ? try connection.query("SELECT \(Self.runColumns) ORDER BY r.start_ms, r.id")
                : try connection.query("SELECT \(Self.runColumns) WHERE e.name = ? ORDER BY r.start_ms, r.id", [.text(experiment!)])
            return rows.map(record)
        }
    }

    /// The run whose id is `idOrPrefix` or uniquely starts with it.
    public func run(_ idOrPrefix: String) throws -> RunRecord {
        try withLock {
            let escaped = idOrPrefix.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            let rows = try connection.query("SELECT \(Self.runColumns) WHERE r.id LIKE ? ESCAPE '\\' ORDER BY r.id LIMIT 6",
                                            [.text(escaped + "%")])
            if let exact = rows.first(where: { $0[0].text == idOrPrefix }) { return record(exact) }
            guard !rows.isEmpty else { throw ResultsError("no run with id \(idOrPrefix) in \(path); list them with `vqd results runs`") }
            guard rows.count == 1 else {
                let ids = rows.prefix(5).compactMap { $0[0].text }.joined(separator: ", ")
                throw ResultsError("run id prefix \(idOrPrefix) is ambiguous (\(ids)\(rows.count > 5 ? ", …" : "")); give more characters")
            }
            return record(rows[0])
        }
    }

    /// The latest study run of study `name` and `profile` — FINISHED, or of any status when not
    /// `finishedOnly` — that logged the parameter `param`, when given.
    public func latestStudyRun(_ name: String, profile: String, withParam param: String? = nil,
                               finishedOnly: Bool = true) throws -> String? {
        try withLock {
            try connection.query("""
                SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id
                JOIN tags k ON k.run_id = r.id AND k.key = 'kind' AND k.value = 'study'
                WHERE e.name = ? AND r.profile = ? AND (r.status = 'FINISHED' OR ? = 0)
                  AND (? IS NULL OR EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = ?))
                ORDER BY r.start_ms DESC LIMIT 1
                """, [.text("study-" + name), .text(profile), .integer(finishedOnly ? 1 : 0), param.map { .text($0) } ?? .null, param.map { .text($0) } ?? .null])
                .first?[0].text
        }
    }

    public func params(runID: String) throws -> [(key: String, value: String)] {
        try withLock {
            try connection.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [.text(runID)])
                .map { (key: $0[0].text ?? "", value: $0[1].text ?? "") }
        }
    }

    public func tags(runID: String) throws -> [(key: String, value: String?)] {
        try withLock {
            try connection.query("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", [.text(runID)])
                .map { (key: $0[0].text ?? "", value: $0[1].text) }
        }
    }

    /// Every value of `key` in `runID`, by step then time of logging.
    public func metric(runID: String, key: String) throws -> [MetricPoint] {
        try withLock {
            try connection.query("""
                SELECT step, CASE WHEN is_nan THEN NULL ELSE value END, timestamp_ms FROM metrics
                WHERE run_id = ? AND key = ? ORDER BY step, timestamp_ms, rowid
                """, [.text(runID), .text(key)])
                .map { MetricPoint(step: Int($0[0].integer ?? 0), value: $0[1].real, timestampMs: $0[2].integer ?? 0) }
        }
    }

    /// The last value (highest step, then latest logged) of every metric of `runID`, by key.
    public func finalMetrics(runID: String) throws -> [(key: String, point: MetricPoint)] {
        try withLock {
            let keys = try connection.query("SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key", [.text(runID)])
                .compactMap { $0[0].text }
            return try keys.compactMap { key in try lastPoint(runID: runID, key: key).map { (key: key, point: $0) } }
        }
    }

    /// The last value of `key` in each run (of `experiment`, if given) that logged it.
    public func lastValues(of key: String, experiment: String? = nil) throws -> [(run: RunRecord, point: MetricPoint)] {
        try withLock {
            try runs(experiment: experiment).compactMap { run in
                try lastPoint(runID: run.id, key: key).map { (run: run, point: $0) }
            }
        }
    }

    /// Every value of `key` as (run id, point), runs oldest first, for export.
    public func allValues(of key: String, experiment: String? = nil) throws -> [(runID: String, point: MetricPoint)] {
        try withLock {
            var out: [(runID: String, point: MetricPoint)] = []
            for run in try runs(experiment: experiment) {
                out += try metric(runID: run.id, key: key).map { (runID: run.id, point: $0) }
            }
            return out
        }
    }

    private func lastPoint(runID: String, key: String) throws -> MetricPoint? {
        try connection.query("""
            SELECT step, CASE WHEN is_nan THEN NULL ELSE value END, timestamp_ms FROM metrics
            WHERE run_id = ? AND key = ? ORDER BY step DESC, timestamp_ms DESC, rowid DESC LIMIT 1
            """, [.text(runID), .text(key)])
            .first.map { MetricPoint(step: Int($0[0].integer ?? 0), value: $0[1].real, timestampMs: $0[2].integer ?? 0) }
    }
}
