import Testing
import Foundation
import Engine

extension OpsTests {
    @Suite struct OpsSoftmaxTests {
        func naiveSoftmax(_ row: [Float]) -> [Float] {
            let m = row.max()!
            let e = row.map { Foundation.exp(Double($0 - m)) }
            let s = e.reduce(0, +)
            return e.map { Float($0 / s) }
        }

        @Test func valuesMatchNaive() {
            let x = opsUniform([3, 4, 6], -3, 3, seed: 1)
            let y = x.softmax(), ly = x.logSoftmax()
            #expect(y.shape == x.shape && ly.shape == x.shape)
            for r in 0..<12 {
                let row = Array(x.values[(r * 6)..<(r * 6 + 6)])
                let ref = naiveSoftmax(row)
                #expect(opsMaxDiff(Array(y.values[(r * 6)..<(r * 6 + 6)]), ref) < 1e-6)
                #expect(opsMaxDiff(Array(ly.values[(r * 6)..<(r * 6 + 6)]), ref.map { Foundation.log($0) }) < 1e-5)
            }
        }

        @Test func stableForHugeInputs() {
            let x = Tensor(shape: [2, 3], values: [1000, 999, 1000, -1000, -1001, -1000])
            let y = x.softmax().values, ly = x.logSoftmax().values
            #expect(y.allSatisfy { $0.isFinite } && ly.allSatisfy { $0.isFinite })
            let ref = naiveSoftmax([0, -1, 0])
            #expect(opsMaxDiff(Array(y[0..<3]), ref) < 1e-6)
            #expect(opsMaxDiff(Array(y[3..<6]), ref) < 1e-6)
            #expect(opsMaxDiff(Array(ly[0..<3]), ref.map { Foundation.log($0) }) < 1e-5)
            // Masked rows (−∞ entries) stay finite where defined and give zero probability.
            let masked = Tensor(shape: [1, 3], values: [0, -.infinity, 1])
            #expect(masked.softmax().values[1] == 0)
            #expect(masked.logSoftmax().values[1] == -.infinity)
        }

        @Test func gradientsMatchFiniteDifferences() {
            let x = opsUniform([2, 3, 5], -2, 2, seed: 2)
            #expect(gradientError([x.copy()]) { $0[0].softmax() } < 1e-2)
            #expect(gradientError([x.copy()]) { $0[0].logSoftmax() } < 1e-2)
            // Agrees with the composition x − logsumexp(x).
            let a = x.logSoftmax(), b = x - x.logSumExp(axis: -1, keepDims: true)
            #expect(opsMaxDiff(a.values, b.values) < 1e-6)
        }
    }
}
