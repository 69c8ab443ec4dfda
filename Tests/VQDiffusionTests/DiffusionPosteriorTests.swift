import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct DiffusionPosteriorTests {
    /// Runs the kernel on one token per (distribution, x_t) pair and returns probabilities (K+1 each).
    func kernel(_ logX0: [Float], _ xt: [Int32], _ step: ReverseStep) -> [Float] {
        let K = step.classes
        var out = [Float](repeating: .nan, count: xt.count * (K + 1))
        logX0.withUnsafeBufferPointer { lx in xt.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer {
            DiffusionPosterior.forward(logX0: lx.baseAddress!, xt: x.baseAddress!, rows: xt.count, step: step, out: $0.baseAddress!)
        } } }
        return out
    }

    /// Compares kernel output rows with dense Bayes for every x_t, for each distribution in `dists`.
    func checkAgainstDense(_ s: DiffusionSchedule, _ name: String, t: Int, to sTime: Int, step: ReverseStep,
                           prior Qs: [Double], forward F: [Double], dists: [[Float]]) {
        let K = s.classes
        for p in dists {
            let xt = (0...K).map { Int32($0) }
            let out = kernel(Array(repeating: p, count: K + 1).flatMap { $0 }, xt, step)
            for j in 0...K {
                let row = Array(out[(j * (K + 1))..<((j + 1) * (K + 1))])
                #expect(row.allSatisfy { $0.isFinite && $0 <= 1e-6 && $0 >= diffusionLogFloor }, "\(name) t=\(t) x_t=\(j): \(row)")
                let expected = denseReversePosterior(p: p.map { Foundation.exp(Double($0)) }, xt: j, prior: Qs, forward: F, classes: K)
                    ?? (0...K).map { $0 == j ? 1.0 : 0.0 }                       // impossible x_t: point mass
                for k in 0...K {
                    let got = Foundation.exp(Double(row[k]))
                    let want = expected[k]
                    #expect(abs(got - want) < 2e-6, "\(name) t=\(t)→\(sTime) x_t=\(j) k=\(k): \(got) vs \(want)")
                    if want > 1e-20 {   // relative agreement where the probability is representable
                        #expect(abs(Double(row[k]) - Foundation.log(want)) < 1e-3, "\(name) t=\(t)→\(sTime) x_t=\(j) k=\(k): log \(row[k]) vs \(Foundation.log(want))")
                    }
                }
            }
        }
    }

    func testDistributions(_ K: Int, seed: UInt64) -> [[Float]] {
        var rng = RandomGenerator(seed: seed)
        var d: [[Float]] = (0..<K).map { i in (0..<K).map { $0 == i ? 0 : -.infinity } }   // one-hot x0
        for r in 0..<4 { d.append(randomLogDistribution(K, zeros: r % 2 == 1, using: &rng)) }
        return d
    }

    @Test func oneStepPosteriorEqualsDenseBayesAtEveryT() {
        for K in [4, 5] {
            for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
                for t in 1...s.steps {
                    checkAgainstDense(s, name, t: t, to: t - 1, step: s.reverseStep(at: t),
                                      prior: denseSteps(s, from: 0, to: t - 1), forward: s.oneStep(t).denseMatrix(),
                                      dists: testDistributions(K, seed: UInt64(t)))
                }
            }
        }
    }

    @Test func skippingPosteriorEqualsDenseBayes() {
        let K = 4
        for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
            for t in 2...s.steps {
                for sTime in Set([0, t / 2, t - 2, t - 1]) where sTime < t {
                    checkAgainstDense(s, name, t: t, to: sTime, step: s.reverseStep(from: t, to: sTime),
                                      prior: denseSteps(s, from: 0, to: sTime), forward: denseSteps(s, from: sTime, to: t),
                                      dists: testDistributions(K, seed: UInt64(100 * t + sTime)))
                    // The reference shortcut is the ordinary posterior at s+1 applied to x_t.
                    checkAgainstDense(s, name, t: t, to: sTime,
                                      step: s.reverseStep(from: t, to: sTime, skipping: .referenceApproximation),
                                      prior: denseSteps(s, from: 0, to: sTime), forward: s.oneStep(sTime + 1).denseMatrix(),
                                      dists: testDistributions(K, seed: UInt64(100 * t + sTime)))
                }
            }
        }
    }

    @Test func atTimeOneThePosteriorIsThePredictionItself() throws {
        let K = 6
        var rng = RandomGenerator(seed: 9)
        for (_, s) in diffusionTestSchedules(classes: K, steps: 10) {
            let p = randomLogDistribution(K, zeros: false, using: &rng)
            for j in 0...K where !(j == K && s.gammaBar[1] == 0) {   // [MASK] is impossible when γ̄_1 = 0
                let out = kernel(p, [Int32(j)], s.reverseStep(at: 1))
                for k in 0..<K { #expect(abs(out[k] - p[k]) < 1e-5) }
                #expect(out[K] == diffusionLogFloor)
            }
        }
    }

    @Test func extremeSettingsStayFinite() throws {
        for K in [1, 2, 512] {
            var configs = [DiffusionConfiguration.referenceMaskOnly(classes: K), .paper(classes: K)]
            for g in [0.0, 1.0] { configs.append(try DiffusionConfiguration(classes: K).withGammaFinal(g)) }
            var rng = RandomGenerator(seed: UInt64(K))
            // x0: a peaked distribution, one with exact zeros, a one-hot, all-equal, huge logits
            var dists = [randomLogDistribution(K, zeros: false, using: &rng), randomLogDistribution(K, zeros: true, using: &rng)]
            dists.append((0..<K).map { $0 == K - 1 ? 0 : -.infinity })
            dists.append([Float](repeating: 0, count: K))
            dists.append((0..<K).map { Float($0 % 3) * 1e4 - 2e4 })
            for c in configs {
                let s = try DiffusionSchedule(c)
                for t in [1, 2, 50, 99, 100] {
                    for skipping in StepSkipping.allCases {
                        for step in [s.reverseStep(at: t), s.reverseStep(from: t, to: t / 3, skipping: skipping)] {
                            for p in dists {
                                let xt: [Int32] = [0, Int32(K - 1), Int32(K)]
                                let out = kernel(p + p + p, xt, step)
                                #expect(out.allSatisfy { $0.isFinite && $0 <= 1e-6 && $0 >= diffusionLogFloor },
                                        "K=\(K) \(c) t=\(t)")
                                for r in 0..<3 {   // each row is a distribution
                                    let z = out[(r * (K + 1))..<((r + 1) * (K + 1))].reduce(0.0) { $0 + Foundation.exp(Double($1)) }
                                    #expect(abs(z - 1) < 1e-4 + Double(K + 1) * 4e-31, "K=\(K) t=\(t) row \(r): Σ = \(z)")
                                }
                            }
                        }
                    }
                }
                // the true posterior with one-hot x0, every x_t, including impossible ones
                let x0 = [Int32](repeating: Int32(K - 1), count: 3)
                let truth = s.truePosteriorLogProbabilities(x0: x0, xt: [0, Int32(K - 1), Int32(K)], t: [100])
                #expect(truth.allSatisfy { $0.isFinite && $0 >= diffusionLogFloor && $0 <= 1e-6 })
            }
        }
    }

    @Test func batchedTensorMatchesPerElementCallsAndClassesFirstLayout() throws {
        let (B, N, K) = (3, 4, 5)
        let s = try DiffusionSchedule(.paper(classes: K, steps: 10))
        var rng = RandomGenerator(seed: 21)
        var logX0 = [Float]()
        for _ in 0..<(B * N) { logX0 += randomLogDistribution(K, zeros: false, using: &rng) }
        let xt = (0..<(B * N)).map { _ in Int32(rng.int(below: K + 1)) }
        let t = [1, 5, 10]
        let out = s.posteriorLogProbabilities(logX0: Tensor(shape: [B, N, K], values: logX0), xt: xt, t: t)
        #expect(out.shape == [B, N, K + 1])
        for b in 0..<B {
            let part = kernel(Array(logX0[(b * N * K)..<((b + 1) * N * K)]), Array(xt[(b * N)..<((b + 1) * N)]), s.reverseStep(at: t[b]))
            #expect(Array(out.values[(b * N * (K + 1))..<((b + 1) * N * (K + 1))]) == part)
            // classes-first layout: (B, K, N) in, (B, K+1, N) out
            var cf = [Float](repeating: 0, count: K * N)
            for k in 0..<K { for n in 0..<N { cf[k * N + n] = logX0[(b * N + n) * K + k] } }
            let cfOut = s.posteriorLogProbabilitiesClassesFirst(xt: Array(xt[(b * N)..<((b + 1) * N)]), logX0: cf, batch: 1, t: t[b])
            for k in 0...K { for n in 0..<N { #expect(cfOut[k * N + n] == part[n * (K + 1) + k]) } }
        }
        // the true posterior for indices agrees with the kernel on one-hot log-probabilities
        let x0 = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        let truth = s.truePosteriorLogProbabilities(x0: x0, xt: xt, t: t)
        let oneHot = x0.flatMap { i in (0..<K).map { $0 == Int(i) ? Float(0) : -.infinity } }
        let viaTensor = s.posteriorLogProbabilities(logX0: Tensor(shape: [B, N, K], values: oneHot), xt: xt, t: t)
        #expect(truth == viaTensor.values)
    }

    /// Finite differences of L = Σ w ⊙ posterior(logX0) against the fused backward.
    func gradientError(_ s: DiffusionSchedule, steps: [ReverseStep], B: Int, N: Int, seed: UInt64) -> Double {
        let K = s.classes
        var rng = RandomGenerator(seed: seed)
        var logits = [Float]()
        for _ in 0..<(B * N) { logits += (0..<K).map { _ in rng.normal() } }
        let xt = (0..<(B * N)).map { r in Int32(r % 3 == 0 ? K : rng.int(below: K)) }
        let x = Tensor(shape: [B, N, K], values: logits, requiresGrad: true)
        let out = s.posteriorLogProbabilities(logX0: x, xt: xt, steps: steps)
        let weights = (0..<out.count).map { _ in rng.uniform(-1, 1) }
        out.backward(seed: Tensor(shape: out.shape, values: weights))
        let analytic = x.grad!.values
        func loss() -> Double {
            let y = Autograd.withoutGrad { s.posteriorLogProbabilities(logX0: x, xt: xt, steps: steps) }
            return zip(y.values, weights).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        var worst = 0.0, scale = 1.0
        var numeric = [Double](repeating: 0, count: x.count)
        let eps: Float = 1e-2
        for i in 0..<x.count {
            let old = x.pointer[i]
            x.pointer[i] = old + eps; let up = loss()
            x.pointer[i] = old - eps; let down = loss()
            x.pointer[i] = old
            numeric[i] = (up - down) / (2 * Double(eps))
            scale = max(scale, abs(numeric[i]))
        }
        for i in 0..<x.count { worst = max(worst, abs(Double(analytic[i]) - numeric[i]) / scale) }
        return worst
    }

    @Test func fusedBackwardMatchesFiniteDifferences() throws {
        let K = 5
        for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
            let steps = [s.reverseStep(at: 1), s.reverseStep(at: 2), s.reverseStep(at: 6), s.reverseStep(at: 10),
                         s.reverseStep(from: 9, to: 4), s.reverseStep(from: 7, to: 3, skipping: .referenceApproximation)]
            let err = gradientError(s, steps: steps, B: steps.count, N: 4, seed: 17)
            #expect(err < 5e-3, "\(name): relative gradient error \(err)")
        }
        // also with a realistic codebook size
        let big = try DiffusionSchedule(.paper(classes: 64, steps: 100))
        #expect(gradientError(big, steps: [big.reverseStep(at: 37), big.reverseStep(at: 100)], B: 2, N: 2, seed: 3) < 5e-3)
    }
}
