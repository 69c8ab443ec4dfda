import Foundation
import Testing
@testable import Engine

extension KernelTests {
    @Suite("Kernel grid convolution")
    struct KernelGridConvTests {
        /// The grid convolution written as an ordinary convolution: x (B, h·w, C) moved to
        /// (B, C, h, w), a dense (C, C, 3, 3) weight that is zero off the diagonal, padding 1.
        func denseReference(_ x: Tensor, h: Int, w: Int, weight: Tensor, bias: Tensor?) -> [Float] {
            let (B, C) = (x.shape[0], x.shape[2])
            var dense = [Float](repeating: 0, count: C * C * 9)
            for c in 0..<C { for tap in 0..<9 { dense[(c * C + c) * 9 + tap] = weight.pointer[tap * C + c] } }
            let planar = x.reshape([B, h, w, C]).permute([0, 3, 1, 2])
            let y = conv2d(planar, weight: Tensor(shape: [C, C, 3, 3], values: dense), bias: bias, stride: 1, padding: 1)
            return y.permute([0, 2, 3, 1]).values
        }

        /// (B, h, w, C)
        static let geometries: [[Int]] = [
            [2, 4, 5, 3],   // rectangular grid
            [3, 3, 3, 8],   // every position touches an edge but the centre
            [1, 1, 6, 2],   // a single row: only the middle row of taps
            [5, 6, 6, 4],   // more grid rows than workers by far
        ]

        @Test("forward equals a dense convolution with a diagonal weight", arguments: geometries)
        func forward(_ g: [Int]) {
            var rng = RandomGenerator(seed: 61)
            let x = Tensor.randn([g[0], g[1] * g[2], g[3]], using: &rng)
            let weight = Tensor.randn([9, g[3]], using: &rng)
            let bias = Tensor.randn([g[3]], using: &rng)
            for b in [bias, nil] {
                let y = gridConv(x, height: g[1], width: g[2], weight: weight, bias: b)
                #expect(y.shape == x.shape)
                let worst = opsMaxDiff(y.values, denseReference(x, h: g[1], w: g[2], weight: weight, bias: b))
                #expect(worst < 1e-5, "worst difference \(worst)")
            }
        }

        @Test("a centre-only kernel scales each channel; an off-centre tap shifts the grid")
        func taps() {
            let (h, w) = (3, 4)
            let x = Tensor(shape: [1, h * w, 1], values: (0..<(h * w)).map { Float($0 + 1) })
            var centre = [Float](repeating: 0, count: 9); centre[4] = 2
            #expect(gridConv(x, height: h, width: w, weight: Tensor(shape: [9, 1], values: centre)).values
                    == x.values.map { 2 * $0 })
            // Tap (u, v) = (0, +1) reads the right-hand neighbour; the last column reads padding.
            var right = [Float](repeating: 0, count: 9); right[5] = 1
            let shifted = gridConv(x, height: h, width: w, weight: Tensor(shape: [9, 1], values: right)).values
            let expected: [Float] = (0..<(h * w)).map { $0 % w == w - 1 ? 0 : Float($0 + 2) }
            #expect(shifted == expected)
        }

        @Test("gradients of input, weight and bias match finite differences", arguments: geometries)
        func gradients(_ g: [Int]) {
            var rng = RandomGenerator(seed: 62)
            let x = Tensor.randn([g[0], g[1] * g[2], g[3]], using: &rng)
            let weight = Tensor.randn([9, g[3]], using: &rng)
            let bias = Tensor.randn([g[3]], using: &rng)
            let err = gradientError([x, weight, bias]) { gridConv($0[0], height: g[1], width: g[2], weight: $0[1], bias: $0[2]) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("one worker and two give the same result")
        func workerSplit() {
            var rng = RandomGenerator(seed: 63)
            let g = GridConvGeometry(B: 3, h: 5, w: 4, C: 6)
            let x = Tensor.randn([g.B, g.h * g.w, g.C], using: &rng)
            let weight = Tensor.randn([9, g.C], using: &rng)
            let dy = Tensor.randn([g.B, g.h * g.w, g.C], using: &rng)
            func run() -> [Float] {
                var out = [Float](repeating: 0, count: x.count)
                var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: 9 * g.C)
                var db = [Float](repeating: 0, count: g.C)
                gridConvForward(out: &out, x: x.pointer, weight: weight.pointer, bias: nil, g)
                gridConvBackward(dx: &dx, dweight: &dw, dbias: &db, dy: dy.pointer, x: x.pointer, weight: weight.pointer, g)
                return out + dx + dw + db
            }
            let split = run()
            let alone = Parallel.shards(1) { _ in run() }[0]
            #expect(opsMaxDiff(split, alone) < 1e-5)
            #expect(run() == split)
        }
    }
}
