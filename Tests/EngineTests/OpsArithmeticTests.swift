import Testing
import Engine

extension OpsTests {
    @Suite struct OpsArithmeticTests {
        /// Shape pairs covering the fast paths and the general broadcast.
        static let shapePairs: [([Int], [Int])] = [
            ([2, 3], [2, 3]),          // same shape
            ([3, 1], [1, 4]),          // both broadcast
            ([2, 3, 4], [4]),          // [..., C] with [C]
            ([4], [2, 3, 4]),          // [C] with [..., C]
            ([2, 3], []),              // scalar on the right
            ([], [2, 3]),              // scalar on the left
            ([2, 1, 4], [2, 3, 4]),    // AdaLN-style [B, 1, C] with [B, T, C]
            ([2, 3, 4], [2, 3, 1]),    // per-row scale
            ([2, 1, 3, 1], [4, 1, 5]), // mixed
            ([1, 1], [3, 4]),
        ]

        func reference(_ a: Tensor, _ b: Tensor, _ op: (Float, Float) -> Float) -> (shape: [Int], values: [Float]) {
            let shape = broadcastShapes(a.shape, b.shape)!
            let n = shape.reduce(1, *)
            let values = (0..<n).map { i -> Float in
                let idx = opsIndex(i, shape)
                return op(opsBroadcastValue(a, idx), opsBroadcastValue(b, idx))
            }
            return (shape, values)
        }

        /// backward(seed:) borrows the seed's storage for the root's gradient: the seed must come
        /// out unchanged and give the same gradients as a copied seed would, over two passes that
        /// accumulate into a leaf, with and without a retained graph.
        @Test func seedIsReadNotWritten() {
            let x = opsUniform([3, 4], seed: 7)
            x.requiresGrad = true
            let seed = opsUniform([3, 4], seed: 8)
            let before = seed.values
            ((x * x) * 2).backward(seed: seed)
            (x * x).backward(seed: seed, retainGraph: true)
            #expect(seed.values == before)
            let expected = zip(x.values, before).map { xi, s in 4 * xi * s + 2 * xi * s }
            for (g, e) in zip(x.grad!.values, expected) { #expect(abs(g - e) <= 1e-5 * max(1, abs(e))) }
        }

        @Test func broadcastShapeRules() {
            #expect(broadcastShapes([3, 1], [1, 4]) == [3, 4])
            #expect(broadcastShapes([2, 3, 4], [4]) == [2, 3, 4])
            #expect(broadcastShapes([], [5]) == [5])
            #expect(broadcastShapes([2, 1, 8], [2, 7, 8]) == [2, 7, 8])
            #expect(broadcastShapes([3], [4]) == nil)
            #expect(broadcastShapes([2, 3], [3, 3]) == nil)
        }

        @Test func forwardMatchesNaiveBroadcast() {
            for (k, (sa, sb)) in Self.shapePairs.enumerated() {
                let a = opsUniform(sa, seed: UInt64(10 + k))
                let b = opsUniform(sb, 0.5, 2, seed: UInt64(50 + k))
                let cases: [(Tensor, (Float, Float) -> Float)] = [
                    (a + b, { $0 + $1 }), (a - b, { $0 - $1 }), (a * b, { $0 * $1 }), (a / b, { $0 / $1 }),
                ]
                for (got, op) in cases {
                    let ref = reference(a, b, op)
                    #expect(got.shape == ref.shape, "shapes \(sa) and \(sb)")
                    #expect(opsMaxDiff(got.values, ref.values) < 1e-6, "shapes \(sa) and \(sb)")
                }
            }
        }

        @Test func gradientsReduceOverBroadcastDimensions() {
            for (k, (sa, sb)) in Self.shapePairs.enumerated() {
                let a = opsUniform(sa, seed: UInt64(100 + k))
                let b = opsUniform(sb, 0.5, 2, seed: UInt64(200 + k))
                for (name, f) in [("add", { (x: [Tensor]) in x[0] + x[1] }), ("sub", { $0[0] - $0[1] }),
                                  ("mul", { $0[0] * $0[1] }), ("div", { $0[0] / $0[1] })] {
                    let err = gradientError([a, b]) { f($0) }
                    #expect(err < 1e-2, "\(name) of \(sa) and \(sb): error \(err)")
                    #expect(a.grad?.shape == sa && b.grad?.shape == sb, "\(name) gradient shapes for \(sa), \(sb)")
                }
            }
        }

        @Test func biasGradientIsColumnSum() {
            // [B, T, C] + [C]: the bias gradient is the sum over B and T of the output gradient.
            let x = opsUniform([2, 3, 4], seed: 1)
            let bias = Tensor(zeros: [4], requiresGrad: true)
            let seed = opsUniform([2, 3, 4], seed: 2)
            (x + bias).backward(seed: seed)
            var expected = [Float](repeating: 0, count: 4)
            for i in 0..<24 { expected[i % 4] += seed.pointer[i] }
            #expect(opsMaxDiff(bias.grad!.values, expected) < 1e-5)
        }

        @Test func scalarOperands() {
            let x = opsUniform([2, 3], 0.5, 2, seed: 3)
            let v = x.values
            #expect(opsMaxDiff((x + 2).values, v.map { $0 + 2 }) < 1e-6)
            #expect(opsMaxDiff((2 + x).values, v.map { 2 + $0 }) < 1e-6)
            #expect(opsMaxDiff((x - 2).values, v.map { $0 - 2 }) < 1e-6)
            #expect(opsMaxDiff((2 - x).values, v.map { 2 - $0 }) < 1e-6)
            #expect(opsMaxDiff((x * 3).values, v.map { $0 * 3 }) < 1e-6)
            #expect(opsMaxDiff((3 * x).values, v.map { 3 * $0 }) < 1e-6)
            #expect(opsMaxDiff((x / 4).values, v.map { $0 / 4 }) < 1e-6)
            #expect(opsMaxDiff((4 / x).values, v.map { 4 / $0 }) < 1e-5)
            #expect(opsMaxDiff((-x).values, v.map { -$0 }) < 1e-6)
            let fs: [([Tensor]) -> Tensor] = [
                { $0[0] + 2 }, { 2 + $0[0] }, { $0[0] - 2 }, { 2 - $0[0] }, { $0[0] * 3 }, { 3 * $0[0] },
                { $0[0] / 4 }, { 4 / $0[0] }, { -$0[0] },
            ]
            for (i, f) in fs.enumerated() {
                let err = gradientError([x], f)
                #expect(err < 1e-2, "scalar op \(i): error \(err)")
            }
        }

        @Test func reusedTensorAccumulatesGradient() {
            let x = opsUniform([5], seed: 4)
            x.requiresGrad = true
            (x * x).sum().backward()
            #expect(opsMaxDiff(x.grad!.values, x.values.map { 2 * $0 }) < 1e-6)
            x.zeroGrad()
            (x + x).sum().backward()
            #expect(x.grad!.values == [Float](repeating: 2, count: 5))
            x.zeroGrad()
            // Through a broadcast: y = x[3,1] * x-derived row, used twice.
            let err = gradientError([opsUniform([3, 1], seed: 5)]) { ($0[0] * $0[0].reshape([1, 3])) + $0[0] }
            #expect(err < 1e-2)
        }

        @Test func noGradModeRecordsNothing() {
            let a = opsUniform([2, 3], seed: 6), b = opsUniform([3], seed: 7)
            a.requiresGrad = true
            b.requiresGrad = true
            let outs: [Tensor] = Autograd.withoutGrad {
                [a + b, a * b, a - 1, a.exp(), a.sum(axis: 0), a.reshape([6]), a.transpose(0, 1), a.softmax(),
                 matmul(a, a, transposeB: true), a.logSumExp(axis: -1), a.gather(indices: [0, 2])]
            }
            for o in outs {
                #expect(o.gradNode == nil)
                #expect(!o.requiresGrad)
            }
            let c = opsUniform([2, 3], seed: 8)  // requires no gradient: nothing is recorded either
            #expect((c * c).gradNode == nil)
            #expect((a * c).gradNode != nil)
        }

        @Test func largeBroadcastsTakeTheParallelPath() {
            // [B, T, C] * [B, 1, C] and + [C] above the threading threshold, against serial loops.
            let (B, T, C) = (4, 520, 512)
            let x = opsUniform([B, T, C], seed: 11), s = opsUniform([B, 1, C], seed: 12), bias = opsUniform([C], seed: 13)
            for t in [x, s, bias] { t.requiresGrad = true }
            let y = x * s + bias
            let seed = opsUniform([B, T, C], seed: 14)
            y.backward(seed: seed)
            let (px, ps, pbias, py, pg) = (x.pointer, s.pointer, bias.pointer, y.pointer, seed.pointer)
            let (gx, gs, gbias) = (x.grad!.pointer, s.grad!.pointer, bias.grad!.pointer)
            var worstY: Float = 0, worstX: Float = 0
            var refS = [Double](repeating: 0, count: B * C), refBias = [Double](repeating: 0, count: C)
            for b in 0..<B { for t in 0..<T { for c in 0..<C {
                let i = (b * T + t) * C + c
                worstY = max(worstY, abs(py[i] - (px[i] * ps[b * C + c] + pbias[c])))
                worstX = max(worstX, abs(gx[i] - pg[i] * ps[b * C + c]))
                refS[b * C + c] += Double(pg[i] * px[i])
                refBias[c] += Double(pg[i])
            } } }
            #expect(worstY == 0 && worstX == 0)
            #expect(opsMaxDiff((0..<(B * C)).map { gs[$0] }, refS.map { Float($0) }) < 1e-3)
            #expect(opsMaxDiff((0..<C).map { gbias[$0] }, refBias.map { Float($0) }) < 1e-3)
        }

        @Test func largeTensorsTakeTheParallelPath() {
            // Above the threading threshold the results must equal the serial reference.
            let n = 1 << 20 + 3
            let a = opsUniform([n], seed: 9), b = opsUniform([n], seed: 10)
            a.requiresGrad = true
            let y = a * b
            let (pa, pb, py) = (a.pointer, b.pointer, y.pointer)
            var worst: Float = 0
            for i in 0..<n { worst = max(worst, abs(py[i] - pa[i] * pb[i])) }
            #expect(worst == 0)
            y.backward(seed: Tensor(shape: [n], repeating: 1))
            let g = a.grad!.pointer
            worst = 0
            for i in 0..<n { worst = max(worst, abs(g[i] - pb[i])) }
            #expect(worst == 0)
        }
    }
}
