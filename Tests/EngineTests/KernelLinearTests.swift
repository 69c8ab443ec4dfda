import Foundation
import Testing
@testable import Engine

/// Reference activation in Double with libm functions.
func referenceActivation(_ a: Activation, _ x: Double) -> Double {
    switch a {
    case .none: return x
    case .gelu: return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    case .geluErf: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
    case .silu: return x / (1 + exp(-x))
    case .relu: return max(0, x)
    }
}

/// All kernel suites, run one test at a time (they are small): keeps the gradient checks'
/// no-grad sections and the kernels' OpenBLAS thread-count changes from overlapping.
@Suite("Kernel", .serialized)
struct KernelTests {}

extension KernelTests {
    @Suite("Kernel linear")
    struct KernelLinearTests {
        @Test("forward matches a naive loop for every activation", arguments: Activation.allCases)
        func forwardMatchesNaive(activation: Activation) {
            var rng = RandomGenerator(seed: 11)
            let (N, IN, OUT) = (5, 7, 6)
            let x = Tensor.randn([N, IN], using: &rng)
            let w = Tensor.randn([OUT, IN], std: 0.5, using: &rng)
            let b = Tensor.randn([OUT], using: &rng)
            let y = linear(x, w, b, activation: activation)
            #expect(y.shape == [N, OUT])
            var worst = 0.0
            for r in 0..<N {
                for o in 0..<OUT {
                    var z = Double(b.pointer[o])
                    for i in 0..<IN { z += Double(x.pointer[r * IN + i]) * Double(w.pointer[o * IN + i]) }
                    worst = max(worst, abs(referenceActivation(activation, z) - Double(y.pointer[r * OUT + o])))
                }
            }
            #expect(worst < 1e-5, "worst difference \(worst)")
        }

        @Test("gradients match finite differences for every activation", arguments: Activation.allCases)
        func gradients(activation: Activation) {
            var rng = RandomGenerator(seed: 12)
            // Leading axes are flattened: x is (2, 3, 4).
            let x = Tensor.randn([2, 3, 4], using: &rng)
            let w = Tensor.randn([5, 4], std: 0.5, using: &rng)
            let b = Tensor.randn([5], using: &rng)
            // ReLU's kink makes central differences wrong within ε of 0: use a small ε there.
            let eps: Float = activation == .relu ? 1e-3 : 1e-2
            let err = gradientError([x, w, b], epsilon: eps) { linear($0[0], $0[1], $0[2], activation: activation) }
            #expect(err < 5e-3, "\(activation): gradient error \(err)")
        }

        @Test("without bias")
        func withoutBias() {
            var rng = RandomGenerator(seed: 13)
            let x = Tensor.randn([6, 3], using: &rng)
            let w = Tensor.randn([4, 3], using: &rng)
            let err = gradientError([x, w]) { linear($0[0], $0[1], activation: .gelu) }
            #expect(err < 5e-3, "gradient error \(err)")
            let y = linear(x, w)
            for o in 0..<4 {
                var z: Float = 0
                for i in 0..<3 { z += x.pointer[i] * w.pointer[o * 3 + i] }
                #expect(abs(y.pointer[o] - z) < 1e-5)
            }
        }

        @Test("gradients accumulate over two uses of the same weight")
        func accumulates() {
            var rng = RandomGenerator(seed: 14)
            let x = Tensor.randn([3, 4], using: &rng)
            let w = Tensor.randn([4, 4], using: &rng)
            let err = gradientError([x, w]) { linear(linear($0[0], $0[1], activation: .silu), $0[1]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("no graph is recorded without gradients")
        func inference() {
            var rng = RandomGenerator(seed: 15)
            let x = Tensor.randn([2, 3], using: &rng)
            let w = Tensor.randn([4, 3], requiresGrad: true, using: &rng)
            let y = Autograd.withoutGrad { linear(x, w, activation: .gelu) }
            #expect(!y.requiresGrad && y.gradNode == nil)
        }

        @Test("FastMath.exp is accurate to a few ulp and reductions match plain sums")
        func fastMath() {
            var worst: Float = 0
            var x: Float = -87
            while x < 88 {
                let ref = Float(exp(Double(x)))
                worst = max(worst, abs(FastMath.exp(x) - ref) / ref)
                x += 0.0137
            }
            #expect(worst < 3e-7, "relative error \(worst)")
            #expect(FastMath.exp(-1000) < 1e-37 && FastMath.exp(-1000) >= 0)
            #expect(FastMath.exp(1000).isFinite)
            var rng = RandomGenerator(seed: 16)
            for n in [0, 1, 15, 16, 17, 100] {
                let a = (0..<n).map { _ in rng.normal() }, b = (0..<n).map { _ in rng.normal() }
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        let base = pa.baseAddress ?? UnsafePointer(bitPattern: 64)!
                        let baseB = pb.baseAddress ?? UnsafePointer(bitPattern: 64)!
                        #expect(abs(FastMath.sum(base, n) - a.reduce(0, +)) < 1e-4)
                        #expect(abs(FastMath.dot(base, baseB, n) - zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }) < 1e-4)
                        #expect(FastMath.max(base, n) == (a.max() ?? -.infinity))
                    }
                }
            }
        }

        @Test("parallel chunks cover the range exactly once, in fixed contiguous parts")
        func chunks() {
            for n in [1, 2, 7, 64, 1000] {
                var seen = [Int](repeating: 0, count: n)
                let count = Parallel.chunkCount(n, minimumPerChunk: 3)
                seen.withUnsafeMutableBufferPointer { seen in
                    Parallel.chunks(n, count: count) { _, range in
                        for i in range { seen[i] += 1 }
                    }
                }
                #expect(seen.allSatisfy { $0 == 1 })
                let ranges = (0..<count).map { Parallel.chunkRange(n, chunks: count, index: $0) }
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == n)
                var hits = [Int](repeating: 0, count: n)
                hits.withUnsafeMutableBufferPointer { hits in Parallel.parallelFor(n) { hits[$0] += 1 } }
                #expect(hits.allSatisfy { $0 == 1 })
            }
        }
    }
}
