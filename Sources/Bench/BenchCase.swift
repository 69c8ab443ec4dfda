import Engine
import Experiments
import Foundation

/// One benchmark: a name, the analytic FLOPs of one repetition (0 for memory-bound kernels,
/// reported in milliseconds only), and the closure that runs one repetition. Build inputs when
/// constructing the case, not inside `run`.
struct BenchCase {
    var name: String
    var flops: Double
    /// Target as a fraction of the measured sgemm peak, if the case has one.
    var target: Double? = nil
    var run: () -> Void
}

/// What one case measured.
struct BenchResult {
    var name: String
    var precision: Precision = .fp32
    var medianSeconds: Double
    var gflops: Double?
    var fractionOfPeak: Double?
    var target: Double?
}

/// Monotonic wall time in seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Seconds of each of `repetitions` timed runs of `body`, after `warmup` untimed ones.
func timings(warmup: Int, repetitions: Int, _ body: () -> Void) -> [Double] {
    for _ in 0..<warmup { body() }
    return (0..<repetitions).map { _ in
        let t0 = now()
        body()
        return now() - t0
    }
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// Runs a case: median of `repetitions` timed runs after `warmup`, against the sgemm peak (GFLOP/s).
func measure(_ c: BenchCase, peak: Double, precision: Precision = .fp32, warmup: Int = 3, repetitions: Int = 10) -> BenchResult {
    let t = median(timings(warmup: warmup, repetitions: repetitions, c.run))
    let gflops = c.flops > 0 ? c.flops / t / 1e9 : nil
    return BenchResult(name: c.name, precision: precision, medianSeconds: t, gflops: gflops,
                       fractionOfPeak: gflops.map { $0 / peak }, target: c.target)
}

/// This machine's single-precision GEMM peak: best of `repetitions` 1024³ sgemm calls after a
/// warm-up, in GFLOP/s.
func measureSgemmPeak(repetitions: Int = 10) -> Double {
    let n = 1024
    var rng = RandomGenerator(seed: 1)
    let a = Tensor.randn([n, n], using: &rng), b = Tensor.randn([n, n], using: &rng)
    let c = Tensor(zeros: [n, n])
    let t = timings(warmup: 3, repetitions: repetitions) {
        BLAS.gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
    }
    return 2 * Double(n * n * n) / t.min()! / 1e9
}

/// Peak resident memory of this process so far, in MiB.
func peakMemoryMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024   // Linux reports KiB
}

/// `text` padded with spaces (or cut) to `width` characters: the label column of the report.
func padded(_ text: String, _ width: Int = 64) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }

/// Prints one case's line: fp32 (time, GFLOP/s, fraction of the sgemm peak and its target), then
/// bf16's time and GFLOP/s with its speed-up over fp32 when it was measured.
func report(_ results: [BenchResult]) {
    guard let r = results.first else { return }
    var line = padded(r.name, 52) + String(format: "%9.2f ms", r.medianSeconds * 1e3)
    if let g = r.gflops, let f = r.fractionOfPeak {
        line += String(format: "  %7.1f GFLOP/s  %5.1f %% of peak", g, 100 * f)
        if let target = r.target {
            line += String(format: "  (target ≥ %.0f %%: ", 100 * target) + (f >= target ? "met)" : "not met)")
        }
    }
    for other in results.dropFirst() {
        line += String(format: "  | %@ %9.2f ms", other.precision.rawValue, other.medianSeconds * 1e3)
        if let g = other.gflops { line += String(format: "  %7.1f GFLOP/s", g) }
        line += String(format: "  %.2f×", r.medianSeconds / other.medianSeconds)
    }
    print(line)
}
