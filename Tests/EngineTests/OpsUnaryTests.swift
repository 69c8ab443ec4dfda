import Testing
import Foundation
import Engine

extension OpsTests {
    @Suite struct OpsUnaryTests {
        @Test func valuesMatchScalarFormulas() {
            let x = Tensor(shape: [6], values: [-3, -1, -0.25, 0.5, 1, 2.5])
            let v = x.values
            func check(_ t: Tensor, _ f: (Float) -> Float, _ name: String, tol: Float = 1e-6) {
                #expect(opsMaxDiff(t.values, v.map(f)) < tol, "\(name)")
            }
            check(x.exp(), { Foundation.exp($0) }, "exp", tol: 1e-5)
            check(x.tanh(), { Foundation.tanh($0) }, "tanh")
            check(x.sigmoid(), { 1 / (1 + Foundation.exp(-$0)) }, "sigmoid")
            check(x.relu(), { max($0, 0) }, "relu")
            check(x.silu(), { $0 / (1 + Foundation.exp(-$0)) }, "silu")
            check(x.square(), { $0 * $0 }, "square")
            check(x.abs(), { abs($0) }, "abs")
            check(x.clamp(min: -0.5, max: 1), { min(max($0, -0.5), 1) }, "clamp")
            check(x.clamp(min: 0), { max($0, 0) }, "clamp min only")
            let p = x.abs() + 0.1
            #expect(opsMaxDiff(p.log().values, p.values.map { Foundation.log($0) }) < 1e-6)
            #expect(opsMaxDiff(p.sqrt().values, p.values.map { $0.squareRoot() }) < 1e-6)
            #expect(opsMaxDiff(p.pow(1.5).values, p.values.map { Foundation.pow($0, 1.5) }) < 1e-5)
            // Reference values: GELU(1) = 0.8413447 exact, 0.8411920 with the tanh approximation.
            let one = Tensor(shape: [1], values: [1])
            #expect(abs(one.geluErf().item - 0.841_344_7) < 1e-6)
            #expect(abs(one.gelu().item - 0.841_192_0) < 1e-6)
        }

        @Test func expIsAccurateOverTheFloatRange() {
            // exp (and softmax, logsumexp, sigmoid, gelu through it) uses a vectorizable polynomial.
            let n = 20_001
            let x = Tensor(shape: [n], values: (0..<n).map { -87 + 175 * Float($0) / Float(n - 1) })
            let y = x.exp()
            var worst = 0.0
            for i in 0..<n {
                let exact = Foundation.exp(Double(x.pointer[i]))
                worst = max(worst, abs(Double(y.pointer[i]) - exact) / exact)
            }
            #expect(worst < 5e-7, "largest relative error \(worst)")
            let edges = Tensor(shape: [5], values: [-.infinity, -1000, 0, 1000, .infinity]).exp().values
            #expect(edges == [0, 0, 1, .infinity, .infinity])
            #expect(Tensor(shape: [1], values: [.nan]).exp().item.isNaN)
        }

        @Test func sigmoidIsStableForLargeInputs() {
            let x = Tensor(shape: [4], values: [-1000, -100, 100, 1000])
            let y = x.sigmoid().values
            #expect(y.allSatisfy { $0.isFinite })
            #expect(y[0] == 0 && y[3] == 1)
            #expect(x.silu().values.allSatisfy { $0.isFinite })
        }

        @Test func gradientsMatchFiniteDifferences() {
            // Inputs away from kinks (relu, abs, clamp at 0 / ±0.5) and positive where required.
            let general = Tensor(shape: [2, 4], values: [-2.1, -1.3, -0.7, -0.2, 0.3, 0.8, 1.4, 2.2])
            let positive = Tensor(shape: [2, 4], values: [0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4])
            let cases: [(String, Tensor, (Tensor) -> Tensor)] = [
                ("exp", general, { $0.exp() }),
                ("log", positive, { $0.log() }),
                ("sqrt", positive, { $0.sqrt() }),
                ("tanh", general, { $0.tanh() }),
                ("sigmoid", general, { $0.sigmoid() }),
                ("relu", general, { $0.relu() }),
                ("gelu", general, { $0.gelu() }),
                ("geluErf", general, { $0.geluErf() }),
                ("silu", general, { $0.silu() }),
                ("square", general, { $0.square() }),
                ("pow 3", general, { $0.pow(3) }),
                ("pow 0.5", positive, { $0.pow(0.5) }),
                ("pow -1.5", positive, { $0.pow(-1.5) }),
                ("abs", general, { $0.abs() }),
                ("clamp", general, { $0.clamp(min: -0.5, max: 1) }),
            ]
            for (name, x, f) in cases {
                let err = gradientError([x.copy()]) { f($0[0]) }
                #expect(err < 1e-2, "\(name): error \(err)")
            }
        }

        @Test func clampAndReluGradientsAreMasks() {
            let x = Tensor(shape: [4], values: [-2, -0.2, 0.3, 3], requiresGrad: true)
            x.clamp(min: -1, max: 1).sum().backward()
            #expect(x.grad!.values == [0, 1, 1, 0])
            x.zeroGrad()
            x.relu().sum().backward()
            #expect(x.grad!.values == [0, 0, 1, 1])
        }
    }
}
