import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct DiffusionSamplingTests {
    /// An oracle p(x0 | x_t) that is one-hot at the truth (−∞ elsewhere).
    static func oracle(_ x0: [Int32], batch B: Int, classes K: Int) -> Tensor {
        let N = x0.count / B
        var v = [Float](repeating: -.infinity, count: x0.count * K)
        for r in 0..<x0.count { v[r * K + Int(x0[r])] = 0 }
        return Tensor(shape: [B, N, K], values: v)
    }

    /// Both sampling orders; the purity order ignores the skipping rule.
    @Test func oracleSamplingReturnsTheTruthForEveryStepsSetting() throws {
        let (K, T, B, N) = (12, 100, 3, 16)
        var rng = RandomGenerator(seed: 21)
        let x0: [Int32] = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        for config in [DiffusionConfiguration.paper(classes: K, steps: T), .referenceMaskOnly(classes: K, steps: T)] {
            let schedule = try DiffusionSchedule(config)
            for steps in [100, 50, 25, 10] {
                for truncation in [nil, 0.86] as [Double?] {
                    for skipping in StepSkipping.allCases {
                        for order in SamplingOrder.allCases {
                            var g = RandomGenerator(seed: UInt64(steps))
                            let options = DiffusionSamplingOptions(steps: steps, truncation: truncation, skipping: skipping,
                                                                   order: order)
                            var visited: [Int] = []
                            let out = DiffusionSampling.run(batch: B, tokens: N, schedule: schedule, options: options,
                                                            using: &g, observe: { _, t in visited.append(t) }) { _, _ in
                                DiffusionSamplingTests.oracle(x0, batch: B, classes: K)
                            }
                            #expect(out == x0, "steps \(steps), truncation \(String(describing: truncation)), \(skipping), \(order)")
                            #expect(visited == DiffusionSampling.timeGrid(diffusionSteps: T, samplingSteps: steps))
                        }
                    }
                }
            }
        }
    }

    /// The purity order (the oracle's truth is checked with the posterior's above): with a predictor
    /// whose purity rises with the position, each step leaves round(M·γ̄_s/γ̄_t) of the M masked
    /// tokens masked, fills the purest of the others, and never changes a drawn code.
    @Test func purityOrderFillsThePurestTokensAndKeepsThem() throws {
        let (K, T, B, N) = (6, 100, 2, 20)
        // Position n puts probability 0.3 + 0.6·n/N on code n mod K, the rest spread evenly.
        var v = [Float](repeating: 0, count: B * N * K)
        for b in 0..<B {
            for n in 0..<N {
                let top = 0.3 + 0.6 * Double(n) / Double(N)
                for k in 0..<K { v[(b * N + n) * K + k] = Float(Foundation.log(k == n % K ? top : (1 - top) / Double(K - 1))) }
            }
        }
        let peaked = Tensor(shape: [B, N, K], values: v)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        var previous: [Int32]? = nil, previousTime = T
        var g = RandomGenerator(seed: 5)
        _ = DiffusionSampling.run(batch: B, tokens: N, schedule: schedule,
                                  options: DiffusionSamplingOptions(steps: 10, order: .purity), using: &g,
                                  observe: { x, s in
                                      defer { previous = x; previousTime = s }
                                      guard let before = previous else { return }
                                      let kept = schedule.cumulative(s).mask / schedule.cumulative(previousTime).mask
                                      for b in 0..<B {
                                          let was = (0..<N).filter { before[b * N + $0] == Int32(K) }
                                          let now = (0..<N).filter { x[b * N + $0] == Int32(K) }
                                          #expect(now.count == Int((Double(was.count) * kept).rounded()), "s = \(s)")
                                          // the still-masked ones are the least pure: the lowest positions
                                          #expect(now == Array(was.prefix(now.count)), "s = \(s)")
                                          for n in 0..<N where before[b * N + n] != Int32(K) {
                                              #expect(x[b * N + n] == before[b * N + n])
                                          }
                                      }
                                  }) { _, _ in peaked }
        #expect(previous.map { !$0.contains(Int32(K)) } == true)
    }

    /// Started from real grids noised to x_t (masked and replaced tokens), the oracle restores the
    /// truth from any start time, walking the grid from t down to 0 with at most t steps.
    @Test func oracleRestoresNoisedGridsFromAnyStartTime() throws {
        let (K, T, B, N) = (12, 100, 3, 16)
        var rng = RandomGenerator(seed: 22)
        let x0: [Int32] = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        for (t, steps) in [(1, 1), (10, 10), (30, 100), (60, 25), (100, 100)] {
            let xt = schedule.noised(x0, t: [Int](repeating: t, count: B), using: &rng)
            var visited: [Int] = []
            let out = DiffusionSampling.run(batch: B, tokens: N, schedule: schedule,
                                            options: DiffusionSamplingOptions(steps: steps, truncation: 0.86),
                                            start: (xt, t), using: &rng, observe: { x, time in
                                                if visited.isEmpty { #expect(x == xt) }
                                                visited.append(time)
                                            }) { _, _ in
                DiffusionSamplingTests.oracle(x0, batch: B, classes: K)
            }
            #expect(out == x0, "start t = \(t), \(steps) steps")
            #expect(visited == DiffusionSampling.timeGrid(diffusionSteps: t, samplingSteps: min(steps, t)))
        }
    }

    /// Under the exact posterior a real token never becomes [MASK] again on the way down, and in
    /// the forward process [MASK] is absorbing.
    @Test func maskedTokensStayMaskedGoingForward() throws {
        let (K, T, B, N) = (10, 40, 4, 25)
        let schedule = try DiffusionSchedule(.paper(classes: K, steps: T))
        var rng = RandomGenerator(seed: 5)
        // Forward: x_{t} from x_{t−1} one step at a time.
        var x: [Int32] = (0..<(B * N)).map { _ in Int32(rng.int(below: K)) }
        for t in 1...T {
            let previous = x
            for r in 0..<x.count { x[r] = schedule.oneStep(t).sample(from: x[r], using: &rng) }
            for r in 0..<x.count where previous[r] == Int32(K) { #expect(x[r] == Int32(K)) }
        }
        // Reverse with a random (untrained) predictor: masked positions only shrink.
        var previous: [Int32]? = nil
        var g = RandomGenerator(seed: 6)
        var predictorRNG = RandomGenerator(seed: 7)
        _ = DiffusionSampling.run(batch: B, tokens: N, schedule: schedule, options: DiffusionSamplingOptions(steps: 20),
                                  using: &g, observe: { x, _ in
            if let previous {
                for r in 0..<x.count where previous[r] != Int32(K) { #expect(x[r] != Int32(K)) }
            }
            previous = x
        }) { _, _ in Tensor.randn([B, N, K], std: 2, using: &predictorRNG).logSoftmax() }
        #expect(previous!.allSatisfy { $0 >= 0 && $0 < Int32(K) })
    }

    @Test func truncationKeepsTheTopCodesBelowTheRate() {
        // Probabilities 0.5, 0.3, 0.15, 0.05 (shuffled): r = 0.86 keeps 0.5, 0.3 and 0.15
        // (cumulative before them 0, 0.5, 0.8 < 0.86) and drops 0.05 (before it: 0.95).
        var row: [Float] = [0.15, 0.05, 0.5, 0.3].map { Foundation.log($0) }
        row.withUnsafeMutableBufferPointer { DiffusionSampling.truncate($0.baseAddress!, rows: 1, classes: 4, rate: 0.86) }
        #expect(row[1] == -.infinity && row[0].isFinite && row[2].isFinite && row[3].isFinite)
        var small: [Float] = [0.15, 0.05, 0.5, 0.3].map { Foundation.log($0) }
        small.withUnsafeMutableBufferPointer { DiffusionSampling.truncate($0.baseAddress!, rows: 1, classes: 4, rate: 0.1) }
        #expect(small[2].isFinite && [0, 1, 3].allSatisfy { small[$0] == -.infinity }, "the top code is always kept")
    }

    @Test func timeGrids() {
        #expect(DiffusionSampling.timeGrid(diffusionSteps: 100, samplingSteps: 25).prefix(3) == [100, 96, 92])
        #expect(DiffusionSampling.timeGrid(diffusionSteps: 100, samplingSteps: 10).last == 0)
        #expect(DiffusionSampling.timeGrid(diffusionSteps: 100, samplingSteps: 100).count == 101)
        let odd = DiffusionSampling.timeGrid(diffusionSteps: 7, samplingSteps: 3)
        #expect(odd.first == 7 && odd.last == 0 && zip(odd, odd.dropFirst()).allSatisfy { $0 > $1 })
    }

    @Test func samplingIsSeededAndBatched() throws {
        var rng = RandomGenerator(seed: 1)
        let config = DiffusionModelConfiguration.tiny(classes: 6, gridHeight: 2, gridWidth: 2, steps: 10, textWidth: 8)
        let model = DenoisingTransformer(config, using: &rng)
        let sampler = DiffusionSampler(model: model, schedule: try DiffusionSchedule(.paper(classes: 6, steps: 10)),
                                       textEncoder: WordVectorTextEncoder())
        var a = RandomGenerator(seed: 3), b = RandomGenerator(seed: 3)
        let first = try sampler.sample(captions: ["a red circle", "a blue cross"], steps: 5, truncation: 0.86, using: &a)
        let second = try sampler.sample(captions: ["a red circle", "a blue cross"], steps: 5, truncation: 0.86, using: &b)
        #expect(first == second && first.count == 8 && first.allSatisfy { $0 >= 0 && $0 < 6 })
        #expect(throws: DiffusionSamplingError.self) { try sampler.sample(captions: ["x"], steps: 11, using: &a) }
    }
}
