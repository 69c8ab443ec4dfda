import Testing
import Engine

extension OpsTests {
    @Suite struct OpsShapeTests {
        @Test func reshapeSharesStorageAndInfers() {
            let x = opsUniform([2, 3, 4], seed: 1)
            let y = x.reshape([6, -1])
            #expect(y.shape == [6, 4])
            #expect(y.storage === x.storage)
            x.pointer[5] = 42
            #expect(y.pointer[5] == 42)
            #expect(x.reshape([-1]).shape == [24])
            #expect(x.unsqueeze(1).shape == [2, 1, 3, 4])
            #expect(x.unsqueeze(-1).shape == [2, 3, 4, 1])
            #expect(x.unsqueeze(0).squeeze(0).shape == [2, 3, 4])
            let err = gradientError([opsUniform([2, 3, 4], seed: 2)]) { ($0[0].reshape([4, 6]) * $0[0].reshape([4, 6])) }
            #expect(err < 1e-2)
        }

        @Test func permuteMatchesNaive() {
            let shape = [2, 3, 4, 5]
            let x = opsUniform(shape, seed: 3)
            for axes in [[0, 2, 1, 3], [3, 2, 1, 0], [1, 0, 3, 2], [0, 1, 3, 2], [2, 3, 0, 1]] {
                let y = x.permute(axes)
                #expect(y.shape == axes.map { shape[$0] })
                let st = opsStrides(shape)
                var worst: Float = 0
                for i in 0..<y.count {
                    let idx = opsIndex(i, y.shape)
                    var src = 0
                    for d in 0..<4 { src += idx[d] * st[axes[d]] }
                    worst = max(worst, abs(y.pointer[i] - x.pointer[src]))
                }
                #expect(worst == 0, "permute \(axes)")
                let err = gradientError([x.copy()]) { $0[0].permute(axes) }
                #expect(err < 1e-2, "permute \(axes): error \(err)")
            }
            // Transposes spanning several 32×32 tiles, with ragged edges.
            for shape in [[70, 45], [3, 40, 33]] {
                let m = opsUniform(shape, seed: 10)
                let r = shape.count
                let tr = m.transpose(r - 2, r - 1)
                let (P, Q) = (shape[r - 1], shape[r - 2])
                var worst: Float = 0
                for i in 0..<tr.count {
                    let (b, p, q) = (i / (P * Q), (i / Q) % P, i % Q)
                    worst = max(worst, abs(tr.pointer[i] - m.pointer[b * P * Q + q * P + p]))
                }
                #expect(worst == 0, "transpose of \(shape)")
                #expect(tr.transpose(r - 2, r - 1).values == m.values)
            }
            #expect(gradientError([opsUniform([2, 40, 35], seed: 11)]) { $0[0].transpose(1, 2) } < 1e-2)
            let t = x.transpose(1, -1)
            #expect(t.shape == [2, 5, 4, 3])
            #expect(t.values == x.permute([0, 3, 2, 1]).values)
            // Size-1 dimensions.
            let s = opsUniform([1, 3, 1, 2], seed: 4)
            #expect(s.permute([2, 3, 0, 1]).values == [0, 2, 4, 1, 3, 5].map { s.values[$0] })
        }

        @Test func sliceAndConcat() {
            let x = opsUniform([2, 5, 3], seed: 5)
            let s = x.slice(axis: 1, start: 1, end: 4)
            #expect(s.shape == [2, 3, 3])
            for b in 0..<2 { for i in 0..<3 { for c in 0..<3 {
                #expect(s.pointer[(b * 3 + i) * 3 + c] == x.pointer[(b * 5 + i + 1) * 3 + c])
            } } }
            let parts = [x.slice(axis: 1, start: 0, end: 2), x.slice(axis: 1, start: 2, end: 5)]
            #expect(concat(parts, axis: 1).values == x.values)
            let last = [x.slice(axis: -1, start: 0, end: 1), x.slice(axis: -1, start: 1, end: 3)]
            #expect(concat(last, axis: -1).values == x.values)
            #expect(concat([x, x], axis: 0).shape == [4, 5, 3])
            #expect(gradientError([x.copy()]) { $0[0].slice(axis: 1, start: 1, end: 4) } < 1e-2)
            #expect(gradientError([x.copy()]) { $0[0].slice(axis: 2, start: 2, end: 3) } < 1e-2)
            let err = gradientError([opsUniform([2, 2, 3], seed: 6), opsUniform([2, 1, 3], seed: 7)]) {
                concat([$0[0], $0[1], $0[0]], axis: 1)
            }
            #expect(err < 1e-2)
        }

        @Test func broadcastTo() {
            let x = opsUniform([2, 1, 3], seed: 8)
            let y = x.broadcast(to: [4, 2, 5, 3])
            #expect(y.shape == [4, 2, 5, 3])
            for i in 0..<y.count {
                #expect(y.pointer[i] == opsBroadcastValue(x, opsIndex(i, y.shape)))
            }
            #expect(gradientError([x.copy()]) { $0[0].broadcast(to: [4, 2, 5, 3]) } < 1e-2)
            #expect(gradientError([opsUniform([3], seed: 9)]) { $0[0].expand([2, 3]) } < 1e-2)
        }
    }
}
