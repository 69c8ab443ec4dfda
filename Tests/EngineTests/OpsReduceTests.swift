import Testing
import Foundation
import Engine

extension OpsTests {
    @Suite struct OpsReduceTests {
        /// Naive reduction along `axis` of x with `combine` over the values of each fibre.
        func reduceNaive(_ x: Tensor, axis: Int, _ combine: ([Float]) -> Float) -> [Float] {
            let outer = x.shape[..<axis].reduce(1, *), n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
            var out: [Float] = []
            for o in 0..<outer {
                for k in 0..<inner {
                    out.append(combine((0..<n).map { x.pointer[(o * n + $0) * inner + k] }))
                }
            }
            return out
        }

        @Test func sumAndMeanValues() {
            let x = opsUniform([2, 3, 4], seed: 1)
            #expect(x.sum().shape == [])
            #expect(abs(x.sum().item - x.values.reduce(0, +)) < 1e-5)
            #expect(abs(x.mean().item - x.values.reduce(0, +) / 24) < 1e-6)
            for axis in 0..<3 {
                let ref = reduceNaive(x, axis: axis) { $0.reduce(0, +) }
                #expect(opsMaxDiff(x.sum(axis: axis).values, ref) < 1e-5)
                #expect(opsMaxDiff(x.mean(axis: axis).values, ref.map { $0 / Float(x.shape[axis]) }) < 1e-6)
                var kept = x.shape; kept[axis] = 1
                var dropped = x.shape; dropped.remove(at: axis)
                #expect(x.sum(axis: axis, keepDims: true).shape == kept)
                #expect(x.sum(axis: axis).shape == dropped)
            }
            #expect(x.sum(axis: -1).values == x.sum(axis: 2).values)
            // Across several 4096-element blocks and a ragged tail.
            let ones = Tensor(shape: [3, 4099], repeating: 1)
            #expect(ones.sum().item == 12_297)
            #expect(ones.sum(axis: 1).values == [4099, 4099, 4099])
        }

        @Test func maxValuesAndTiesGoToFirst() {
            let x = opsUniform([3, 4, 5], seed: 2)
            for axis in 0..<3 {
                #expect(x.max(axis: axis).values == reduceNaive(x, axis: axis) { $0.max()! })
            }
            let t = Tensor(shape: [2, 3], values: [1, 5, 5, 7, 2, 7], requiresGrad: true)
            let m = t.max(axis: 1)
            #expect(m.values == [5, 7])
            m.sum().backward()
            #expect(t.grad!.values == [0, 1, 0, 1, 0, 0])
        }

        @Test func logSumExpMatchesNaiveAndIsStable() {
            let x = opsUniform([3, 4, 5], -3, 3, seed: 3)
            for axis in 0..<3 {
                let ref = reduceNaive(x, axis: axis) { v in Foundation.log(v.map { Foundation.exp($0) }.reduce(0, +)) }
                #expect(opsMaxDiff(x.logSumExp(axis: axis).values, ref) < 1e-5)
            }
            let big = Tensor(shape: [2, 3], values: [1000, 1000, 999, -1000, -1000, -1001])
            let lse = big.logSumExp(axis: 1).values
            let c = Foundation.log(2 + Foundation.exp(Float(-1)))
            #expect(abs(lse[0] - (1000 + c)) < 1e-3)
            #expect(abs(lse[1] - (-1000 + c)) < 1e-3)
            let col = big.logSumExp(axis: 0, keepDims: true)
            #expect(col.shape == [1, 3])
            #expect(col.values.allSatisfy { $0.isFinite })
            // An all −∞ row gives −∞ and no NaN gradient.
            let ninf = Tensor(shape: [2, 2], values: [-.infinity, -.infinity, 0, 1], requiresGrad: true)
            let y = ninf.logSumExp(axis: 1)
            #expect(y.values[0] == -.infinity)
            y.backward(seed: Tensor(shape: [2], values: [1, 1]))
            #expect(ninf.grad!.values.allSatisfy { !$0.isNaN })
        }

        @Test func gradientsMatchFiniteDifferences() {
            // Distinct values, well separated, so max has no near-ties.
            var rng = RandomGenerator(seed: 4)
            let perm = rng.permutation(24).map { Float($0) * 0.25 - 3 }
            let distinct = Tensor(shape: [2, 3, 4], values: perm)
            let x = opsUniform([2, 3, 4], seed: 5)
            var cases: [(String, Tensor, (Tensor) -> Tensor)] = [
                ("sum", x, { $0.sum() }),
                ("mean", x, { $0.mean() }),
            ]
            for axis in [0, 1, 2, -1] {
                for keep in [false, true] {
                    cases.append(("sum \(axis) \(keep)", x, { $0.sum(axis: axis, keepDims: keep) }))
                    cases.append(("mean \(axis) \(keep)", x, { $0.mean(axis: axis, keepDims: keep) }))
                    cases.append(("max \(axis) \(keep)", distinct, { $0.max(axis: axis, keepDims: keep) }))
                    cases.append(("logSumExp \(axis) \(keep)", x, { $0.logSumExp(axis: axis, keepDims: keep) }))
                }
            }
            for (name, input, f) in cases {
                let err = gradientError([input.copy()]) { f($0[0]) }
                #expect(err < 1e-2, "\(name): error \(err)")
            }
        }
    }
}
