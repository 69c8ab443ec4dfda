import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct DiffusionForwardTests {
    /// log of a dense probability, floored as the library floors it.
    func flooredLog(_ p: Double) -> Double { max(Foundation.log(p), Double(diffusionLogFloor)) }

    @Test func oneHotLogProbabilitiesMatchDenseRows() {
        let K = 5, n = K + 1
        for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
            for t in 1...s.steps {
                for q in [s.oneStep(t), s.cumulative(t), s.transition(from: t / 2, to: t)] {
                    let dense = q.denseMatrix()
                    let x = (0...K).map { Int32($0) }
                    var out = [Float](repeating: 0, count: n * n)
                    x.withUnsafeBufferPointer { xp in
                        out.withUnsafeMutableBufferPointer { q.logProbabilities(fromIndices: xp.baseAddress!, count: n, into: $0.baseAddress!) }
                    }
                    for i in 0..<(n * n) {
                        #expect(abs(Double(out[i]) - flooredLog(dense[i])) < 1e-5, "\(name) t=\(t) entry \(i)")
                    }
                }
            }
        }
    }

    @Test func distributionLogProbabilitiesMatchDenseProducts() {
        let K = 4, n = K + 1
        var rng = RandomGenerator(seed: 11)
        for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
            for t in 1...s.steps {
                let q = s.transition(from: t - 1 - (t - 1) / 3, to: t)
                let dense = q.denseMatrix()
                let rows = 6
                var logX = [Float]()
                for r in 0..<rows {   // random distributions over K+1 classes, some with exact zeros
                    var l = (0..<n).map { _ in 2 * rng.normal() }
                    if r % 2 == 0 { l[rng.int(below: n)] = -.infinity; l[rng.int(below: n)] = -.infinity }
                    if l.allSatisfy({ $0 == -.infinity }) { l[0] = 0 }
                    logX += l
                }
                var out = [Float](repeating: 0, count: rows * n)
                logX.withUnsafeBufferPointer { lx in
                    out.withUnsafeMutableBufferPointer { q.logProbabilities(fromLogDistributions: lx.baseAddress!, rows: rows, into: $0.baseAddress!) }
                }
                for r in 0..<rows {
                    for k in 0..<n {
                        var v = 0.0
                        for i in 0..<n { v += Foundation.exp(Double(logX[r * n + i])) * dense[i * n + k] }
                        let got = Double(out[r * n + k])
                        #expect(got.isFinite && abs(got - flooredLog(v)) < 1e-4, "\(name) t=\(t) row \(r) class \(k): \(got) vs \(flooredLog(v))")
                    }
                }
            }
        }
    }

    @Test func sampledTokensFollowTheCumulativeTransitionAndMaskIsAbsorbing() throws {
        let K = 4, T = 10
        let s = try DiffusionSchedule(.paper(classes: K, steps: T))
        var rng = RandomGenerator(seed: 5)
        let draws = 40_000
        for t in [1, 4, 10] {
            let x0 = [Int32](repeating: 2, count: draws)
            let xt = s.noised(x0, t: [t], using: &rng)
            var counts = [Int](repeating: 0, count: K + 1)
            for x in xt { counts[Int(x)] += 1 }
            let q = s.cumulative(t)
            for k in 0...K {
                let p = q.probability(from: 2, to: k)
                let sd = (p * (1 - p) / Double(draws)).squareRoot()
                #expect(abs(Double(counts[k]) / Double(draws) - p) < 5 * sd + 1e-4, "t=\(t) class \(k)")
            }
        }
        // Masked tokens stay masked at every step and after any jump.
        let masked = [Int32](repeating: Int32(K), count: 1000)
        for t in 1...T { #expect(s.noised(masked, t: [t], using: &rng).allSatisfy { $0 == Int32(K) }) }
        var x = (0..<1000).map { Int32($0 % (K + 1)) }
        for t in 1...T {
            let next = x.map { s.oneStep(t).sample(from: $0, using: &rng) }
            for (a, b) in zip(x, next) where a == Int32(K) { #expect(b == Int32(K)) }
            x = next
        }
        // Replace-only never masks; per-element times are honoured.
        let replaceOnly = try DiffusionSchedule(DiffusionConfiguration(classes: K, steps: T).withGammaFinal(0))
        #expect(replaceOnly.noised([Int32](repeating: 1, count: 2000), t: [T, 1], using: &rng).allSatisfy { $0 < Int32(K) })
    }

    @Test func gumbelMaxDrawsWithTheGivenProbabilities() {
        var rng = RandomGenerator(seed: 3)
        let p: [Double] = [0.5, 0.3, 0.2, 0]
        let rows = 20_000
        var logP = [Float]()
        for _ in 0..<rows { logP += p.map { Float(Foundation.log($0)) } }
        let draws = logP.withUnsafeBufferPointer { DiffusionSchedule.sampleLogCategorical($0.baseAddress!, rows: rows, classes: 4, using: &rng) }
        for c in 0..<4 {
            let f = Double(draws.filter { $0 == Int32(c) }.count) / Double(rows)
            #expect(abs(f - p[c]) < 0.015, "class \(c): \(f) vs \(p[c])")
        }
    }
}
