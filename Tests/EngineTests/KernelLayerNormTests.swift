import Foundation
import Testing
@testable import Engine

extension KernelTests {
    @Suite("Kernel layer norm")
    struct KernelLayerNormTests {
        /// Naive layer norm in Double.
        func naive(_ x: Tensor, _ w: Tensor?, _ b: Tensor?, eps: Double) -> [Double] {
            let C = x.shape.last!
            let N = x.count / C
            var out = [Double](repeating: 0, count: x.count)
            for r in 0..<N {
                let row = (0..<C).map { Double(x.pointer[r * C + $0]) }
                let mean = row.reduce(0, +) / Double(C)
                let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(C)
                for j in 0..<C {
                    var y = (row[j] - mean) / (variance + eps).squareRoot()
                    if let w { y *= Double(w.pointer[j]) }
                    if let b { y += Double(b.pointer[j]) }
                    out[r * C + j] = y
                }
            }
            return out
        }

        @Test("forward matches a naive loop, with and without affine", arguments: [true, false])
        func forward(affine: Bool) {
            var rng = RandomGenerator(seed: 21)
            // 300 rows so the rows are split over workers.
            let x = Tensor.randn([3, 100, 12], std: 3, using: &rng)
            let w = affine ? Tensor.randn([12], using: &rng) : nil
            let b = affine ? Tensor.randn([12], using: &rng) : nil
            let y = layerNorm(x, weight: w, bias: b)
            let ref = naive(x, w, b, eps: 1e-5)
            let worst = (0..<x.count).map { abs(Double(y.pointer[$0]) - ref[$0]) }.max()!
            #expect(worst < 1e-5, "worst difference \(worst)")
        }

        @Test("gradients with affine")
        func gradientsAffine() {
            var rng = RandomGenerator(seed: 22)
            let x = Tensor.randn([4, 6], using: &rng)
            let w = Tensor.randn([6], using: &rng)
            let b = Tensor.randn([6], using: &rng)
            let err = gradientError([x, w, b], epsilon: 1e-2) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("gradients without affine")
        func gradientsPlain() {
            var rng = RandomGenerator(seed: 23)
            let x = Tensor.randn([2, 3, 5], using: &rng)
            let err = gradientError([x], epsilon: 1e-2) { layerNorm($0[0]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("gradients over many rows (split over workers) match finite differences")
        func gradientsManyRows() {
            var rng = RandomGenerator(seed: 24)
            let x = Tensor.randn([160, 6], std: 2, using: &rng)
            let w = Tensor.randn([6], using: &rng)
            let b = Tensor.randn([6], using: &rng)
            let err = gradientError([x, w, b], epsilon: 1e-2) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }
    }
}
