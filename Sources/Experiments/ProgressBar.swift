import Foundation
import VQDiffusion

/// Progress of long work on one line: step/total, rate, time left and the latest named values
/// (a loss, an accuracy). On a terminal the line is redrawn in place with `\r`, at most every
/// `redrawInterval` seconds; otherwise (CI logs, files) a plain line is printed at every 10 % and
/// at least every `logInterval` seconds. `finish()` prints a summary line.
///
/// ```swift
/// let progress = ProgressBar(total: steps, label: "train")
/// for step in 1...steps { …; progress.update(step, ["loss": loss]) }
/// progress.finish()
/// ```
public final class ProgressBar {
    public let total: Int
    public let label: String
    /// Whether the output is a terminal (redraw in place) or a log (periodic lines).
    public let isTerminal: Bool
    /// Seconds between redraws on a terminal (default 0.1).
    public var redrawInterval = 0.1
    /// Longest gap between log lines when not on a terminal (default 30 s).
    public var logInterval = 30.0

    private let write: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private var step = 0
    private var values: [(String, Double)] = []
    private var lastDraw = -Double.infinity
    private var lastLogTime: Double
    private var nextLogPercent = 10
    private var drawn = false
    private var finished = false

    /// - Parameters:
    ///   - total: the number of steps (≥ 1).
    ///   - isTerminal: nil asks `isatty` of standard error.
    ///   - write: where text goes (default standard error, unbuffered).
    ///   - clock: seconds from any origin (default a monotonic clock); tests pass their own.
    public init(total: Int, label: String = "", isTerminal: Bool? = nil,
                write: ((String) -> Void)? = nil, clock: (() -> Double)? = nil) {
        precondition(total >= 1, "ProgressBar needs total ≥ 1, got \(total)")
        self.total = total
        self.label = label
        self.isTerminal = isTerminal ?? (isatty(STDERR_FILENO) == 1)
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
        self.clock = clock ?? { Run.monotonicSeconds() }
        start = self.clock()
        lastLogTime = start
    }

    /// Reports that `step` of `total` steps are done, with the latest named values (shown in the
    /// order given).
    public func update(_ step: Int, _ values: KeyValuePairs<String, Double> = [:]) {
        update(step, values: values.map { ($0.key, $0.value) })
    }

    public func update(_ step: Int, values: [(String, Double)]) {
        precondition(!finished, "ProgressBar.update after finish")
        self.step = min(max(step, 0), total)
        if !values.isEmpty { self.values = values }
        let now = clock()
        if isTerminal {
            guard now - lastDraw >= redrawInterval || self.step == total else { return }
            lastDraw = now
            drawn = true
            write("\r" + barLine(now: now) + "\u{1B}[K")
        } else {
            let percent = self.step * 100 / total
            guard percent >= nextLogPercent || now - lastLogTime >= logInterval else { return }
            while nextLogPercent <= percent { nextLogPercent += 10 }
            lastLogTime = now
            write(logLine(now: now) + "\n")
        }
    }

    /// Prints the summary: steps done, time taken, mean rate and the latest values.
    public func finish() {
        guard !finished else { return }
        finished = true
        let elapsed = clock() - start
        var line = (label.isEmpty ? "" : label + ": ") + "\(step)/\(total) in \(Self.duration(elapsed))"
        if elapsed > 0 { line += " (\(Self.rate(Double(step) / elapsed)))" }
        if !values.isEmpty { line += ", " + valueText }
        write((isTerminal && drawn ? "\r" : "") + line + (isTerminal ? "\u{1B}[K" : "") + "\n")
    }

    // MARK: Formatting

    static let barWidth = 24

    func barLine(now: Double) -> String {
        let filled = step * Self.barWidth / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: Self.barWidth - filled)
        return (label.isEmpty ? "" : label + " ") + "[\(bar)] " + statusText(now: now)
    }

    func logLine(now: Double) -> String {
        (label.isEmpty ? "" : label + " ") + statusText(now: now)
    }

    private func statusText(now: Double) -> String {
        let elapsed = now - start
        var text = "\(step)/\(total) (\(step * 100 / total)%)"
        if elapsed > 0 && step > 0 {
            let perSecond = Double(step) / elapsed
            text += "  \(Self.rate(perSecond))  ETA \(Self.duration(Double(total - step) / perSecond))"
        }
        if !values.isEmpty { text += "  " + valueText }
        return text
    }

    private var valueText: String {
        values.map { "\($0.0) \(String(format: "%.4g", $0.1))" }.joined(separator: "  ")
    }

    static func rate(_ perSecond: Double) -> String {
        perSecond >= 1 ? String(format: "%.3g it/s", perSecond) : String(format: "%.3g s/it", 1 / perSecond)
    }

    /// "12.3s", "4m05s", "2h07m".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }
}

extension ProgressBar {
    /// A progress report for the model library's long jobs (tokenizing, text features): the bar
    /// appears with the first report and finishes with the last.
    public static func reporter(label: String, enabled: Bool = true) -> ProgressReport? {
        guard enabled else { return nil }
        var bar: ProgressBar?
        return { done, total in
            if bar == nil { bar = ProgressBar(total: max(1, total), label: label) }
            bar?.update(done)
            if done >= total { bar?.finish() }
        }
    }
}
