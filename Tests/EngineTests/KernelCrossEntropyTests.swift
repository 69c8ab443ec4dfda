import Foundation
import Testing
@testable import Engine

extension KernelTests {
    @Suite("Kernel cross-entropy")
    struct KernelCrossEntropyTests {
        /// Σ_i w_i·(−log softmax(z_i)[t_i]) / #(t_i ≥ 0), in Double.
        func naive(_ logits: Tensor, _ targets: [Int32], _ weights: [Float]?) -> Double {
            let (N, C) = (logits.shape[0], logits.shape[1])
            var total = 0.0, counted = 0
            for r in 0..<N where targets[r] >= 0 {
                let z = (0..<C).map { Double(logits.pointer[r * C + $0]) }
                let mx = z.max()!
                let lse = mx + log(z.map { exp($0 - mx) }.reduce(0, +))
                total += Double(weights?[r] ?? 1) * (lse - z[Int(targets[r])])
                counted += 1
            }
            return counted == 0 ? 0 : total / Double(counted)
        }

        @Test("forward matches a naive log-softmax, with weights and ignored targets")
        func forward() {
            var rng = RandomGenerator(seed: 41)
            // 70 rows so the rows are split over workers; large logits test the max shift.
            let logits = Tensor.randn([70, 9], std: 20, using: &rng)
            let targets = (0..<70).map { $0 % 5 == 0 ? Int32(-1) : Int32(rng.int(below: 9)) }
            let weights = (0..<70).map { _ in rng.uniform(0, 2) }
            for w in [nil, weights] {
                let loss = crossEntropy(logits: logits, targets: targets, weights: w)
                #expect(loss.shape == [])
                let ref = naive(logits, targets, w)
                #expect(abs(Double(loss.item) - ref) < 1e-4 * max(1, abs(ref)), "loss \(loss.item) vs \(ref)")
            }
        }

        @Test("gradients with weights and ignored targets")
        func gradients() {
            var rng = RandomGenerator(seed: 42)
            let logits = Tensor.randn([6, 5], using: &rng)
            let targets: [Int32] = [0, -1, 4, 2, -3, 1]
            let weights: [Float] = [1, 5, 0.5, 2, 1, 0.25]
            let err = gradientError([logits]) { crossEntropy(logits: $0[0], targets: targets, weights: weights) }
            #expect(err < 5e-3, "gradient error \(err)")
            // Ignored rows get no gradient.
            for j in 0..<5 { #expect(logits.grad!.pointer[5 + j] == 0 && logits.grad!.pointer[20 + j] == 0) }
        }

        @Test("gradients without weights")
        func gradientsPlain() {
            var rng = RandomGenerator(seed: 43)
            let logits = Tensor.randn([4, 3], using: &rng)
            let err = gradientError([logits]) { crossEntropy(logits: $0[0], targets: [2, 0, 1, 1]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("all targets ignored gives 0 and no NaN")
        func allIgnored() {
            let logits = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], requiresGrad: true)
            let loss = crossEntropy(logits: logits, targets: [-1, -1])
            #expect(loss.item == 0)
            loss.backward()
            #expect(logits.grad!.values.allSatisfy { $0 == 0 })
        }
    }
}
