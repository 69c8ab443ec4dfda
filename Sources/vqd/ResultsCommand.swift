import ArgumentParser
import Experiments
import Foundation
import VQDiffusion

/// `vqd results …`: the results database for people.
struct ResultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "List, inspect, compare and export runs in the results database.",
        discussion: "For anything else, SQL works directly: make query SQL=\"select * from runs\".",
        subcommands: [Runs.self, Show.self, Compare.self, Export.self, SelftestWrite.self])

    struct Runs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Table of runs: id, experiment, name, status, start, duration, profile.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "Only runs of this experiment.") var experiment: String?

        func run() throws {
            let runs = try database.openExisting().runs(experiment: experiment)
            guard !runs.isEmpty else {
                print(experiment.map { "no runs in experiment \($0)" } ?? "no runs yet")
                return
            }
            printTable(["id", "experiment", "name", "status", "start", "duration", "profile"], runs.map { r in
                [String(r.id.prefix(12)), r.experiment, r.name ?? "", r.status.rawValue, formatTime(r.startMs),
                 formatDuration(r.durationSeconds()), r.profile ?? ""]
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Parameters, tags and final metrics of one run (a unique id prefix is enough).")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "Run id or a unique prefix of it.") var runID: String

        func run() throws {
            let db = try database.openExisting()
            let r = try db.run(runID)
            print("run        \(r.id)")
            print("experiment \(r.experiment)")
            print("name       \(r.name ?? "")")
            print("status     \(r.status.rawValue)")
            print("start      \(formatTime(r.startMs))   duration \(formatDuration(r.durationSeconds()))")
            print("profile    \(r.profile ?? "")   threads \(r.threads.map(String.init) ?? "")")
            print("git        \(r.gitCommit ?? "")")
            print("machine    \(r.machine ?? "")")
            let params = try db.params(runID: r.id)
            if !params.isEmpty {
                print("\nparams")
                printTable(["key", "value"], params.map { [$0.key, $0.value] })
            }
            let tags = try db.tags(runID: r.id)
            if !tags.isEmpty {
                print("\ntags")
                printTable(["key", "value"], tags.map { [$0.key, $0.value ?? ""] })
            }
            let metrics = try db.finalMetrics(runID: r.id)
            if !metrics.isEmpty {
                print("\nfinal metrics")
                printTable(["key", "step", "value"], metrics.map { [$0.key, String($0.point.step), formatValue($0.point.value)] })
            }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One row per run: the last value of a metric and its step.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "The metric key, e.g. train/loss.") var metric: String
        @Option(help: "Only runs of this experiment.") var experiment: String?

        func run() throws {
            let rows = try database.openExisting().lastValues(of: metric, experiment: experiment)
            guard !rows.isEmpty else {
                throw ResultsError("no run\(experiment.map { " in experiment \($0)" } ?? "") logged metric \(metric); list the keys of a run with `vqd results show RUN`")
            }
            printTable(["id", "experiment", "name", "status", "step", metric], rows.map { r in
                [String(r.run.id.prefix(12)), r.run.experiment, r.run.name ?? "", r.run.status.rawValue,
                 String(r.point.step), formatValue(r.point.value)]
            })
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write every value of a metric as CSV: run_id,step,value.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "The metric key, e.g. train/loss.") var metric: String
        @Option(help: "The CSV file to write.") var out: String
        @Option(help: "Only runs of this experiment.") var experiment: String?

        func run() throws {
            let rows = try database.openExisting().allValues(of: metric, experiment: experiment)
            var csv = "run_id,step,value\n"
            for (runID, point) in rows {
                csv += "\(runID),\(point.step),\(point.value.map { String($0) } ?? "NaN")\n"
            }
            try AtomicFile.write(Data(csv.utf8), to: URL(fileURLWithPath: out))
            print("wrote \(rows.count) values of \(metric) to \(out)")
        }
    }

    /// Writes `count` metrics to a run and prints "ready <run id>"; used by the tests to check
    /// that concurrent writers lose nothing and that a killed writer leaves a readable database,
    /// and prints the cost of logging one metric.
    struct SelftestWrite: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "selftest-write", abstract: "Write test metrics (for the test suite).", shouldDisplay: false)
        @OptionGroup var database: DatabaseOption
        @Option var experiment = "selftest"
        @Option var runName = "writer"
        @Option var count = 1000
        @Option var flushEvery = 1000
        @Option(help: "Seconds to wait after writing, before finishing (to be killed meanwhile).") var hold = 0.0
        @Option(help: "Start writing at this time (milliseconds since 1970), so that writers overlap.") var startAtMs: Int64?

        func run() throws {
            let db = try ResultsDatabase(path: database.db)
            let run = try db.startRun(experiment: experiment, name: runName, profile: "test", threads: 1, gitCommit: nil)
            run.flushEvery = flushEvery
            run.logParams(["count": String(count), "writer": runName])
            if let startAtMs { Thread.sleep(forTimeInterval: max(0, Double(startAtMs - Run.nowMs()) / 1000)) }
            let start = Date()
            for step in 0..<count { run.logMetric("value", Double(step), step: step) }
            try run.flush()
            let seconds = Date().timeIntervalSince(start)
            print("ready \(run.id)")
            print(String(format: "logged %d metrics in %.1f ms (%.2f µs each, flushing every %d)",
                         count, seconds * 1000, seconds * 1e6 / Double(max(count, 1)), flushEvery))
            fflush(stdout)
            if hold > 0 { Thread.sleep(forTimeInterval: hold) }
            try run.finish(status: .finished)
        }
    }
}

// MARK: Formatting

private func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    print(line(widths.map { String(repeating: "-", count: $0) }))
    for row in rows { print(line(row)) }
}

private func formatTime(_ ms: Int64) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

private func formatDuration(_ seconds: Double) -> String {
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
}

private func formatValue(_ value: Double?) -> String {
    guard let value else { return "NaN" }
    return String(format: "%.6g", value)
}
