import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct DiffusionLossTests {
    @Test func klKernelMatchesNaiveSumAndFiniteDifferences() {
        var rng = RandomGenerator(seed: 4)
        let (rows, C) = (5, 7)
        var logTrue: [Float] = []
        var logModel: [Float] = []
        for _ in 0..<rows {
            logTrue += randomLogDistribution(C, zeros: false, using: &rng)
            logModel += randomLogDistribution(C, zeros: false, using: &rng)
        }
        logTrue[3] = diffusionLogFloor                     // a floored (impossible) entry
        let weights = (0..<rows).map { _ in rng.uniform(0.1, 2) }
        let model = Tensor(shape: [rows, C], values: logModel)
        let (loss, perRow) = diffusionKL(logTrue: logTrue, model: model, weights: weights)
        var expected = 0.0
        for r in 0..<rows {
            var kl = 0.0
            for k in 0..<C {
                let (q, p) = (Double(logTrue[r * C + k]), Double(logModel[r * C + k]))
                kl += Foundation.exp(q) * (q - p)
            }
            #expect(abs(Double(perRow[r]) - kl) < 1e-5)
            expected += Double(weights[r]) * kl
        }
        #expect(abs(Double(loss.item) - expected) < 1e-5)
        let error = gradientError([model], epsilon: 1e-2, seed: 3) { v in
            diffusionKL(logTrue: logTrue, model: v[0], weights: weights).loss
        }
        #expect(error < 1e-3, "KL gradient error \(error)")
    }

    /// The whole bound for random logits against a dense Float64 evaluation: q(x_{t−1} | x_t, x0)
    /// and p_θ(x_{t−1} | x_t) from dense matrices, KL for t ≥ 2, −log p_θ(x0 | x1) at t = 1.
    @Test func boundEqualsDenseFloat64KL() throws {
        let (K, T, B, N) = (4, 6, 4, 3)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        var rng = RandomGenerator(seed: 9)
        let x0: [Int32] = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        let t = [1, 2, 4, 6]
        let xt = schedule.noised(x0, t: t, using: &rng)
        let logits = Tensor.randn([B, N, K], std: 1.5, using: &rng)
        let config = DiffusionLossConfiguration(auxiliaryWeight: 0)
        let terms = DiffusionLoss.compute(logits: logits, x0: x0, xt: xt, t: t, timeWeights: [1, 1, 1, 1],
                                          schedule: schedule, parameterization: .reparameterized, configuration: config)
        let logX0 = Autograd.withoutGrad { logits.logSoftmax() }
        var total = 0.0
        for b in 0..<B {
            let prior = denseSteps(schedule, from: 0, to: t[b] - 1)      // q(x_{t−1} | x0)
            let forward = denseSteps(schedule, from: t[b] - 1, to: t[b]) // q(x_t | x_{t−1})
            for n in 0..<N {
                let r = b * N + n
                let p = (0..<K).map { Foundation.exp(Double(logX0.pointer[r * K + $0])) }
                let model = try #require(denseReversePosterior(p: p, xt: Int(xt[r]), prior: prior, forward: forward, classes: K))
                if t[b] == 1 {
                    total -= Foundation.log(model[Int(x0[r])])
                } else {
                    var onehot = [Double](repeating: 0, count: K)
                    onehot[Int(x0[r])] = 1
                    let q = try #require(denseReversePosterior(p: onehot, xt: Int(xt[r]), prior: prior, forward: forward, classes: K))
                    for k in 0...K where q[k] > 0 { total += q[k] * Foundation.log(q[k] / model[k]) }
                }
            }
        }
        let dense = total / Double(B * N)
        #expect(abs(terms.bound - dense) < 1e-4 * max(1, abs(dense)), "bound \(terms.bound), dense \(dense)")
        #expect(abs(Double(terms.loss.item) - dense) < 1e-4 * max(1, abs(dense)))
    }

    @Test func auxiliaryTermIsWeightedCrossEntropyAndDirectHasNone() throws {
        let (K, T, B, N) = (5, 10, 2, 4)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        var rng = RandomGenerator(seed: 3)
        let x0: [Int32] = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        let t = [3, 8]
        let xt = schedule.noised(x0, t: t, using: &rng)
        let logits = Tensor.randn([B, N, K], using: &rng)
        let config = DiffusionLossConfiguration(auxiliaryWeight: 0.5, adaptiveAuxiliaryWeight: true)
        let terms = DiffusionLoss.compute(logits: logits, x0: x0, xt: xt, t: t, timeWeights: [1, 2],
                                          schedule: schedule, parameterization: .reparameterized, configuration: config)
        let l = Autograd.withoutGrad { logits.logSoftmax() }
        var expected = 0.0
        for b in 0..<B {
            for n in 0..<N {
                let r = b * N + n
                expected -= 0.5 * (2 - Double(t[b]) / Double(T)) * [1.0, 2.0][b] * Double(l.pointer[r * K + Int(x0[r])])
            }
        }
        expected /= Double(B * N)
        #expect(abs(terms.auxiliary - expected) < 1e-5)
        let direct = DiffusionLoss.compute(logits: Tensor.randn([B, N, K + 1], using: &rng), x0: x0, xt: xt, t: t,
                                           timeWeights: [1, 1], schedule: schedule, parameterization: .direct,
                                           configuration: config)
        #expect(direct.auxiliary == 0 && direct.bound > 0)
    }

    /// `.maskedTokens`: each element's masked terms average over its own masked positions, the
    /// unmasked ones over N, against the formula written out; at its default the option is left
    /// out of a checkpoint's configuration, and an earlier file's reads as the default.
    @Test func maskedTokenNormalisationAveragesOverEachElementsMaskedPositions() throws {
        let (K, T, N) = (4, 10, 6)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        let x0: [Int32] = [0, 1, 2, 3, 0, 1, 2, 3, 1, 0, 3, 2]
        let xt: [Int32] = [4, 1, 2, 3, 0, 1,                       // one masked position
                           4, 4, 4, 0, 3, 4]                       // four masked, one replaced
        let t = [2, 9], weights = [1.0, 0.5]
        var rng = RandomGenerator(seed: 12)
        let logits = Tensor.randn([2, N, K], std: 1.3, using: &rng)
        let l = Autograd.withoutGrad { logits.logSoftmax() }
        func aux(_ normalization: DiffusionAuxiliaryNormalization) -> Double {
            DiffusionLoss.compute(logits: logits, x0: x0, xt: xt, t: t, timeWeights: weights, schedule: schedule,
                                  parameterization: .reparameterized,
                                  configuration: DiffusionLossConfiguration(auxiliaryWeight: 0.3, maskedWeight: 2,
                                                                            unmaskedWeight: 0.5,
                                                                            auxiliaryNormalization: normalization)).auxiliary
        }
        var expected = 0.0
        for b in 0..<2 {
            let masked = (0..<N).filter { Int(xt[b * N + $0]) == K }
            var m = 0.0, u = 0.0
            for n in 0..<N {
                let ce = -Double(l.pointer[(b * N + n) * K + Int(x0[b * N + n])])
                if masked.contains(n) { m += 2 * ce } else { u += 0.5 * ce }
            }
            expected += 0.3 * weights[b] * (m / Double(masked.count) + u / Double(N))
        }
        expected /= 2
        #expect(abs(aux(.maskedTokens) - expected) < 1e-5, "\(aux(.maskedTokens)) vs \(expected)")
        #expect(abs(aux(.maskedTokens) - aux(.tokens)) > 1e-3)

        func run(_ loss: DiffusionLossConfiguration) -> DiffusionRunConfiguration {
            DiffusionRunConfiguration(model: .tiny(classes: K, gridHeight: 2, gridWidth: 3, steps: T, textWidth: 8),
                                      diffusion: .paper(classes: K, steps: T),
                                      training: DiffusionTrainingConfiguration(loss: loss), textEncoder: "tiny")
        }
        let json = try SchemaJSON.encode(run(DiffusionLossConfiguration(auxiliaryWeight: 0.1)))
        #expect(!json.contains("auxiliaryNormalization"))
        #expect(try SchemaJSON.decode(DiffusionRunConfiguration.self, from: json).training.loss == DiffusionLossConfiguration(auxiliaryWeight: 0.1))
        let masked = DiffusionLossConfiguration(auxiliaryWeight: 0.1, auxiliaryNormalization: .maskedTokens)
        #expect(try JSONDecoder().decode(DiffusionLossConfiguration.self, from: JSONEncoder().encode(masked)) == masked)
    }

    @Test func maskWeightsScaleMaskedAndUnmaskedTerms() throws {
        let (K, T) = (4, 8)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        let x0: [Int32] = [0, 1, 2, 3]
        let xt: [Int32] = [0, 4, 2, 4]                               // two masked positions
        var rng = RandomGenerator(seed: 8)
        let logits = Tensor.randn([1, 4, K], using: &rng)
        func bound(_ masked: Double, _ unmasked: Double) -> Double {
            DiffusionLoss.compute(logits: logits, x0: x0, xt: xt, t: [5], timeWeights: [1], schedule: schedule,
                                  parameterization: .reparameterized,
                                  configuration: DiffusionLossConfiguration(auxiliaryWeight: 0, maskedWeight: masked,
                                                                            unmaskedWeight: unmasked)).bound
        }
        let (m, u) = (bound(1, 0), bound(0, 1))
        #expect(abs(bound(1, 1) - (m + u)) < 1e-6)
        #expect(abs(bound(3, 0.5) - (3 * m + 0.5 * u)) < 1e-5)
    }

    @Test func importanceSamplingFollowsRootMeanSquareAfterWarmup() throws {
        let T = 5
        var sampler = DiffusionTimeSampler(method: .importance, steps: T)
        var rng = RandomGenerator(seed: 1)
        let losses = [0.5, 1.0, 2.0, 4.0, 0.25]
        for round in 0..<10 {
            #expect(!sampler.isWarm)
            let draw = sampler.draw(count: 3, using: &rng)
            #expect(draw.weights == [1, 1, 1], "uniform during warm-up (round \(round))")
            for t in 1...T { sampler.record(t: t, loss: losses[t - 1]) }
        }
        #expect(sampler.isWarm)
        let roots = losses.map { $0 }                     // sqrt(mean L²) = |L| for a constant L
        let total = roots.reduce(0, +)
        for t in 1...T { #expect(abs(sampler.probabilities[t - 1] - roots[t - 1] / total) < 1e-9) }
        // Each drawn term is weighted by 1/(T·p(t)), and the draws follow p(t).
        var counts = [Int](repeating: 0, count: T)
        let draw = sampler.draw(count: 20_000, using: &rng)
        for (t, w) in zip(draw.t, draw.weights) {
            counts[t - 1] += 1
            #expect(abs(w - 1 / (Double(T) * roots[t - 1] / total)) < 1e-9)
        }
        for t in 1...T { #expect(abs(Double(counts[t - 1]) / 20_000 - roots[t - 1] / total) < 0.015) }
        // The running mean: plain mean of the first 10, then weight 1/10 on the newest value.
        sampler.record(t: 1, loss: 1.5)
        #expect(abs(sampler.meanSquare[0] - (0.9 * 0.25 + 0.1 * 2.25)) < 1e-12)
        // The history round-trips through JSON exactly.
        #expect(try DiffusionTimeSampler.fromJSON(sampler.json()) == sampler)
    }

    @Test func lossIsDividedByTimeWeight() throws {
        let (K, T) = (6, 10)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        var rng = RandomGenerator(seed: 2)
        let x0: [Int32] = (0..<8).map { _ in Int32(rng.int(below: K)) }
        let xt = schedule.noised(x0, t: [7], using: &rng)
        let logits = Tensor.randn([1, 8, K], using: &rng)
        let config = DiffusionLossConfiguration(auxiliaryWeight: 0.1)
        func loss(_ w: Double) -> DiffusionLossTerms {
            DiffusionLoss.compute(logits: logits, x0: x0, xt: xt, t: [7], timeWeights: [w], schedule: schedule,
                                  parameterization: .reparameterized, configuration: config)
        }
        let (one, scaled) = (loss(1), loss(2.5))
        #expect(abs(scaled.bound - 2.5 * one.bound) < 1e-5 * one.bound)
        #expect(abs(scaled.auxiliary - 2.5 * one.auxiliary) < 1e-5 * one.auxiliary)
        #expect(scaled.boundPerElement == one.boundPerElement)     // the history sees unweighted L_t
    }
}
