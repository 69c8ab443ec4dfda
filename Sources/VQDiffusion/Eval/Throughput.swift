import Engine
import Foundation

/// Images per second of a sampler at one batch size.
public struct ThroughputMeasurement: Equatable, Sendable {
    /// Images per `generate` call.
    public let batchSize: Int
    /// Timed calls (after the warm-up).
    public let runs: Int
    /// Wall-clock seconds of the timed calls.
    public let seconds: Double
    /// runs · batchSize / seconds.
    public let imagesPerSecond: Double
    /// Threads the engine and BLAS used.
    public let threads: Int
}

/// Measures how fast a sampler makes images: for each batch size, `warmupRuns` untimed calls
/// (caches, allocations, thread pools), then timed calls until at least `minimumRuns` calls and
/// `minimumSeconds` have passed (or `maximumRuns` calls). The thread count is recorded with every
/// figure, since it changes them.
public struct ThroughputMeter {
    /// Batch sizes measured, in order (the paper-style figures use 1 and 16).
    public var batchSizes: [Int]
    /// Untimed calls before timing each batch size.
    public var warmupRuns: Int
    /// Fewest timed calls per batch size.
    public var minimumRuns: Int
    /// Shortest timed duration per batch size, in seconds.
    public var minimumSeconds: Double
    /// Most timed calls per batch size.
    public var maximumRuns: Int
    /// Seconds from any origin; a monotonic clock unless a test passes its own.
    public var clock: () -> Double

    public init(batchSizes: [Int] = [1, 16], warmupRuns: Int = 1, minimumRuns: Int = 2, minimumSeconds: Double = 2,
                maximumRuns: Int = 100, clock: (() -> Double)? = nil) {
        precondition(batchSizes.allSatisfy { $0 >= 1 }, "ThroughputMeter: batch sizes must be ≥ 1, got \(batchSizes)")
        precondition(warmupRuns >= 0 && minimumRuns >= 1 && maximumRuns >= minimumRuns,
                     "ThroughputMeter: need warmupRuns ≥ 0 and 1 ≤ minimumRuns ≤ maximumRuns, got \(warmupRuns), \(minimumRuns), \(maximumRuns)")
        self.batchSizes = batchSizes
        self.warmupRuns = warmupRuns
        self.minimumRuns = minimumRuns
        self.minimumSeconds = minimumSeconds
        self.maximumRuns = maximumRuns
        self.clock = clock ?? {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
        }
    }

    /// Times `generate(batchSize)` (which makes `batchSize` images) at every batch size.
    public func measure(_ generate: (Int) throws -> Void) rethrows -> [ThroughputMeasurement] {
        var out: [ThroughputMeasurement] = []
        for b in batchSizes {
            for _ in 0..<warmupRuns { try generate(b) }
            let start = clock()
            var runs = 0
            var elapsed = 0.0
            repeat {
                try generate(b)
                runs += 1
                elapsed = clock() - start
            } while runs < maximumRuns && (runs < minimumRuns || elapsed < minimumSeconds)
            out.append(ThroughputMeasurement(batchSize: b, runs: runs, seconds: elapsed,
                                             imagesPerSecond: elapsed > 0 ? Double(runs * b) / elapsed : .infinity,
                                             threads: BLAS.threads))
        }
        return out
    }
}
