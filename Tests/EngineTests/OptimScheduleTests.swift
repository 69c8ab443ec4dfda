import Foundation
import Testing
@testable import Engine

@Suite struct OptimScheduleTests {
    @Test func warmupCosineValues() {
        let s = WarmupCosineSchedule(peak: 1e-3, warmupSteps: 10, totalSteps: 110, minimum: 1e-5)
        func close(_ a: Float, _ b: Float) -> Bool { abs(a - b) <= 1e-9 + 1e-6 * abs(b) }
        #expect(close(s.learningRate(at: 0), 1e-4))         // warm-up start: peak / warmupSteps
        #expect(close(s.learningRate(at: 4), 5e-4))         // warm-up middle
        #expect(close(s.learningRate(at: 9), 1e-3))         // warm-up end
        #expect(close(s.learningRate(at: 10), 1e-3))        // cosine start
        #expect(close(s.learningRate(at: 60), (1e-3 + 1e-5) / 2))   // cosine middle
        #expect(close(s.learningRate(at: 35), 1e-5 + (1e-3 - 1e-5) * Float(0.5 * (1 + cos(Double.pi / 4)))))
        #expect(s.learningRate(at: 110) == 1e-5)            // end
        #expect(s.learningRate(at: 5000) == 1e-5)           // after the end
        for t in 10..<110 { #expect(s.learningRate(at: t + 1) <= s.learningRate(at: t)) }
        for t in 0..<9 { #expect(s.learningRate(at: t + 1) > s.learningRate(at: t)) }
    }

    @Test func noWarmup() {
        let s = WarmupCosineSchedule(peak: 2, warmupSteps: 0, totalSteps: 4)
        #expect(s.learningRate(at: 0) == 2)
        #expect(abs(s.learningRate(at: 2) - 1) < 1e-6)
        #expect(s.learningRate(at: 4) == 0)
    }
}
