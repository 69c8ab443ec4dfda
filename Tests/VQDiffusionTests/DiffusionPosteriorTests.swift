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

    /// log p(x_{t−1} | x_t) from an independent Float64 evaluation of the released reference
    /// formula (classes-first (K+1, N) with N = K+1 positions holding x_t = 0…K), K = 4, T = 100.
    /// Entries below −50 are "impossible" (the reference leaves about −65 there, this library −70).
    @Test func matchesReferencePosteriorValues() throws {
        let K = 4
        let logX0: [Float] = [-2.0065879821777344, -3.5065879821777344, -0.30658799409866333, -2.3065879344940186]
        let cases: [(DiffusionConfiguration, Int, [Double])] = [
            (.paper(classes: K), 2, [-2.00030264, -2.00756679, -2.0075681, -2.00756692, -2.00757664, -3.50756138, -3.47541151, -3.50756639, -3.50756109, -3.50757017, -0.307568308, -0.307568273, -0.306236674, -0.307568297, -0.307578175, -2.30756637, -2.30756611, -2.30756788, -2.29777321, -2.30757594, -70, -70, -70, -70, -6.91878514]),
            (.paper(classes: K), 50, [-0.0341359207, -5.16818036, -5.27696379, -5.17839474, -5.82710555, -6.30547465, -0.0383274046, -6.62549651, -6.28973372, -6.90935715, -3.59767947, -3.59451334, -0.0103334703, -3.59662206, -4.25690157, -5.43841213, -5.41862726, -5.56066391, -0.0355323447, -6.07631208, -65.6552415, -65.5442817, -66.7816721, -65.6168378, -0.0206188699]),
            (.paper(classes: K), 100, [-1.42713913, -1.4309656, -1.43120648, -1.43098935, -6.0252036, -1.4722948, -1.46838117, -1.47250869, -1.47228241, -6.06649522, -1.22158014, -1.22155124, -1.21794897, -1.2215705, -5.81579117, -1.44458906, -1.44455294, -1.44479711, -1.44071023, -6.03879079, -65.5041445, -65.5041069, -65.504361, -65.504132, -0.0101522731]),
            (.referenceMaskOnly(classes: K), 2, [-0.00878132934, -6.60171602, -6.60171734, -6.60171615, -2.00747774, -8.10171062, -0.00984621717, -8.10171563, -8.10171032, -3.50747127, -4.90171755, -4.90171751, -0.00267067578, -4.90171753, -0.307479275, -6.90171561, -6.90171535, -6.90171712, -0.00913647451, -2.30747704, -65.6384201, -65.5244921, -66.8256642, -65.5989506, -7.02403775]),
            (.referenceMaskOnly(classes: K), 50, [-0.0171169972, -5.93842952, -5.93843207, -5.93842977, -5.8984248, -7.43841902, -0.0192024809, -7.43842875, -7.43841846, -7.39841223, -4.23843246, -4.23843239, -0.00519073655, -4.23843244, -4.19842776, -6.23842876, -6.23842825, -6.23843169, -0.0178122794, -6.19842349, -54.7440533, -54.6301254, -55.9312968, -54.7045838, -0.020618912]),
            (.referenceMaskOnly(classes: K), 100, [-2.00071704, -2.00739897, -2.00752529, -2.00741142, -6.60163183, -3.50686129, -3.4774355, -3.50734349, -3.50683336, -8.10099177, -0.307548318, -0.307544904, -0.306261792, -0.307547179, -4.90178215, -2.30736169, -2.30733646, -2.30750697, -2.29835289, -6.90156745, -54.0261071, -53.9155329, -55.1449135, -53.9878417, -0.0101522833]),
        ]
        let N = K + 1
        var classesFirst = [Float](repeating: 0, count: K * N)
        for k in 0..<K { for n in 0..<N { classesFirst[k * N + n] = logX0[k] } }
        for (config, t, expected) in cases {
            let s = try DiffusionSchedule(config)
            let out = s.posteriorLogProbabilitiesClassesFirst(xt: (0...K).map { Int32($0) }, logX0: classesFirst, batch: 1, t: t)
            for i in 0..<out.count {
                if expected[i] > -50 {
                    #expect(abs(Double(out[i]) - expected[i]) < 2e-5, "t=\(t) entry \(i): \(out[i]) vs \(expected[i])")
                } else {
                    #expect(out[i] < -50, "t=\(t) entry \(i): \(out[i]) should be impossible")
                }
            }
        }
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
