import Experiments
import Foundation
import VQDiffusion

/// Records one benchmark run in the results database (experiment "bench"): the sgemm peak and,
/// per case, the median milliseconds, GFLOP/s and fraction of the peak, plus any extra figures.
/// A database that cannot be opened is reported on stderr; the printed report stands on its own.
func logBenchRun(databasePath: String, threads: Int, peak: Double, peakAfter: Double,
                 results: [BenchResult], extra: [(name: String, value: Double)], peakMemoryMiB: Double) {
    do {
        let db = try ResultsDatabase(path: databasePath)
        let run = try db.startRun(experiment: "bench", name: "engine", profile: "bench", threads: threads)
        run.logParam("sgemm_size", 1024)
        run.logParam("repetitions", 10)
        run.logMetric("sgemm_peak_gflops", peak, step: 0)
        run.logMetric("sgemm_peak_gflops_end", peakAfter, step: 0)
        run.logMetric("peak_memory_mib", peakMemoryMiB, step: 0)
        for r in results {
            let key = metricKey(r.name) + (r.precision == .fp32 ? "" : "." + r.precision.rawValue)
            run.logMetric(key + ".ms", r.medianSeconds * 1e3, step: 0)
            if let g = r.gflops { run.logMetric(key + ".gflops", g, step: 0) }
            if let f = r.fractionOfPeak { run.logMetric(key + ".fraction_of_peak", f, step: 0) }
        }
        for (name, value) in extra { run.logMetric(metricKey(name), value, step: 0) }
        try run.finish(status: .finished)
        print("logged as run \(run.id) in \(databasePath) (experiment \"bench\")")
    } catch {
        fputs("vqd-bench: could not log to \(databasePath): \(error)\n", stderr)
    }
}

/// A case name as a metric key: "(a) linear 4096×256→1024 fwd+bwd" → "a_linear_4096x256_1024_fwd_bwd".
func metricKey(_ name: String) -> String {
    var key = ""
    for ch in name.lowercased().replacingOccurrences(of: "×", with: "x") {
        if ch.isLetter || ch.isNumber { key.append(ch) } else if !key.hasSuffix("_") && !key.isEmpty { key.append("_") }
    }
    while key.hasSuffix("_") { key.removeLast() }
    return key
}
