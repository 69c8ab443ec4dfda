import Foundation
import Testing
@testable import Engine

extension KernelTests {
    @Suite("Kernel conv2d")
    struct KernelConvTests {
        /// Naive direct convolution in Double.
        func naive(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int) -> (shape: [Int], values: [Double]) {
            let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let (O, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
            let Ho = (H + 2 * padding - kh) / stride + 1, Wo = (W + 2 * padding - kw) / stride + 1
            var out = [Double](repeating: 0, count: N * O * Ho * Wo)
            for n in 0..<N {
                for o in 0..<O {
                    for oy in 0..<Ho {
                        for ox in 0..<Wo {
                            var s = Double(b?.pointer[o] ?? 0)
                            for c in 0..<C {
                                for i in 0..<kh {
                                    for j in 0..<kw {
                                        let iy = oy * stride - padding + i, ix = ox * stride - padding + j
                                        guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                                        s += Double(x.pointer[((n * C + c) * H + iy) * W + ix])
                                           * Double(w.pointer[((o * C + c) * kh + i) * kw + j])
                                    }
                                }
                            }
                            out[((n * O + o) * Ho + oy) * Wo + ox] = s
                        }
                    }
                }
            }
            return ([N, O, Ho, Wo], out)
        }

        /// (N, C, H, W, O, kh, kw, stride, padding)
        static let geometries: [[Int]] = [
            [2, 3, 5, 6, 4, 3, 3, 1, 1],   // 3×3 same padding
            [3, 2, 7, 7, 3, 3, 3, 2, 1],   // stride 2, padding 1
            [2, 3, 4, 5, 2, 2, 3, 1, 0],   // rectangular kernel, no padding
            [3, 4, 3, 3, 5, 1, 1, 1, 0],   // 1×1 (no im2col)
            [2, 2, 5, 5, 3, 1, 1, 2, 0],   // 1×1 with stride 2 (im2col)
            [5, 2, 6, 6, 3, 3, 3, 1, 2],   // padding larger than needed, many small images (grouped)
            [1, 3, 6, 6, 4, 3, 3, 1, 1],   // one image: no split over workers
        ]

        @Test("forward matches a naive direct convolution", arguments: geometries)
        func forward(_ g: [Int]) {
            var rng = RandomGenerator(seed: 51)
            let x = Tensor.randn([g[0], g[1], g[2], g[3]], using: &rng)
            let w = Tensor.randn([g[4], g[1], g[5], g[6]], using: &rng)
            let b = Tensor.randn([g[4]], using: &rng)
            for bias in [b, nil] {
                let y = conv2d(x, weight: w, bias: bias, stride: g[7], padding: g[8])
                let ref = naive(x, w, bias, stride: g[7], padding: g[8])
                #expect(y.shape == ref.shape)
                let worst = (0..<y.count).map { abs(Double(y.pointer[$0]) - ref.values[$0]) }.max()!
                #expect(worst < 1e-4, "worst difference \(worst)")
            }
        }

        @Test("gradients match finite differences", arguments: geometries)
        func gradients(_ g: [Int]) {
            var rng = RandomGenerator(seed: 52)
            let x = Tensor.randn([g[0], g[1], g[2], g[3]], using: &rng)
            let w = Tensor.randn([g[4], g[1], g[5], g[6]], using: &rng)
            let b = Tensor.randn([g[4]], using: &rng)
            let err = gradientError([x, w, b]) { conv2d($0[0], weight: $0[1], bias: $0[2], stride: g[7], padding: g[8]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("gradients without bias, input only")
        func gradientsNoBias() {
            var rng = RandomGenerator(seed: 53)
            let x = Tensor.randn([2, 2, 4, 4], using: &rng)
            let w = Tensor.randn([3, 2, 3, 3], using: &rng)
            let err = gradientError([x]) { conv2d($0[0], weight: w, stride: 2, padding: 1) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("scratch pool hands out large-enough buffers and reuses them")
        func scratchPool() {
            let pool = ScratchPool(capacity: 2)
            let a = pool.take(100)
            #expect(a.count >= 100)
            pool.give(a)
            let b = pool.take(50)
            #expect(b === a)            // the idle buffer is big enough: reused
            let c = pool.take(10)
            #expect(c !== a)            // a is taken
            pool.give(b)
            pool.give(c)
            pool.give(pool.take(1000))  // a third idle buffer evicts the smallest
            #expect(pool.take(60) === a)
        }
    }
}
