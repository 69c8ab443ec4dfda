import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct ThroughputTests {
    /// A clock that advances 0.25 s per generated image, so rates are exact.
    final class FakeSampler {
        var now = 0.0
        var calls: [Int] = []
        func generate(_ b: Int) { calls.append(b); now += 0.25 * Double(b) }
    }

    @Test func warmUpThenTimedRunsAtEachBatchSize() {
        let sampler = FakeSampler()
        let meter = ThroughputMeter(batchSizes: [1, 16], warmupRuns: 1, minimumRuns: 3, minimumSeconds: 1,
                                    clock: { sampler.now })
        let m = meter.measure { sampler.generate($0) }
        #expect(m.map(\.batchSize) == [1, 16])
        // Batch 1: 1 warm-up, then 4 runs to pass 1 s. Batch 16: 1 warm-up, then the 3 minimum runs.
        #expect(sampler.calls == [1, 1, 1, 1, 1, 16, 16, 16, 16])
        #expect(m[0].runs == 4 && m[1].runs == 3)
        #expect(m.allSatisfy { abs($0.imagesPerSecond - 4) < 1e-9 })
        #expect(m.allSatisfy { $0.threads == BLAS.threads })
    }

    @Test func runsAreCapped() {
        let sampler = FakeSampler()
        let meter = ThroughputMeter(batchSizes: [2], warmupRuns: 0, minimumRuns: 1, minimumSeconds: 1e9,
                                    maximumRuns: 5, clock: { sampler.now })
        let m = meter.measure { sampler.generate($0) }
        #expect(m[0].runs == 5 && sampler.calls.count == 5)
    }
}
