import Foundation
import Testing
@testable import Engine

private func withGrad(_ values: [Float]) -> Tensor {
    let t = Tensor(zeros: [values.count])
    t.accumulateGrad(Tensor(shape: [values.count], values: values))
    return t
}

private func gradNorm(_ ts: [Tensor]) -> Double {
    ts.compactMap(\.grad).flatMap(\.values).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
}

@Suite struct OptimClippingTests {
    @Test func scalesLargeGradientsToTheMaximumNorm() {
        let a = withGrad([3, 0]), b = withGrad([0, -4]), none = Tensor(zeros: [2])
        let before = clipGradientNorm([a, none, b], maxNorm: 1)
        #expect(before == 5)
        #expect(abs(gradNorm([a, b]) - 1) < 1e-6)
        #expect(abs(a.grad!.values[0] - 0.6) < 1e-6 && abs(b.grad!.values[1] + 0.8) < 1e-6)
        #expect(none.gradStorage == nil)
    }

    @Test func leavesSmallGradientsAlone() {
        let a = withGrad([0.3, -0.1]), b = withGrad([0.2])
        let norm = clipGradientNorm([a, b], maxNorm: 1)
        #expect(abs(Double(norm) - (0.14 as Double).squareRoot()) < 1e-6)
        #expect(a.grad!.values == [0.3, -0.1] && b.grad!.values == [0.2])
    }
}

@Suite struct OptimEMATests {
    @Test func convergesToConstantWeights() {
        let w = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        var ema = EMA(decay: 0.9)
        ema.update(from: [("w", w)])                 // first update copies the weights
        #expect(ema.shadow("w")!.values == [1, 2, 3, 4])
        w.buffer.update(repeating: -1)               // the weights jump and stay there
        for _ in 0..<200 { ema.update(from: [("w", w)]) }
        for x in ema.shadow("w")!.values { #expect(abs(x + 1) < 1e-5) }
        #expect(ema.updateCount == 201)
    }

    @Test func singleUpdateFollowsTheFormula() {
        let w = Tensor(shape: [2], values: [0, 10])
        var ema = EMA(decay: 0.75, parameters: [("w", w)])
        w.buffer.update(repeating: 4)
        ema.update(from: [("w", w)])
        #expect(ema.shadow("w")!.values == [1, 10 * 0.75 + 1])
    }

    @Test func warmupUsesASmallerDecayEarly() {
        var ema = EMA(decay: 0.999, warmup: true)
        #expect(abs(ema.currentDecay - 0.1) < 1e-7)
        ema.update(from: [("w", Tensor(zeros: [1]))])
        #expect(abs(ema.currentDecay - 2.0 / 11.0) < 1e-7)
    }

    @Test func swapAndCopy() {
        let w = Tensor(shape: [3], values: [1, 2, 3])
        var ema = EMA(decay: 0.5, parameters: [("w", w)])
        w.buffer.update(repeating: 5)
        ema.update(from: [("w", w)])                 // shadow = [3, 3.5, 4]
        ema.swap(with: [("w", w)])
        #expect(w.values == [3, 3.5, 4])
        ema.swap(with: [("w", w)])
        #expect(w.values == [5, 5, 5])
        ema.copy(into: [("w", w)])
        #expect(w.values == [3, 3.5, 4])
    }

    @Test func stateRoundTrip() throws {
        let named: [(name: String, tensor: Tensor)] = [("a", Tensor(shape: [2], values: [1, 2])),
                                                       ("b.weight", Tensor(shape: [1, 2], values: [3, 4]))]
        var ema = EMA(decay: 0.9, warmup: true, parameters: named)
        for p in named { p.tensor.buffer.update(repeating: 0) }
        for _ in 0..<3 { ema.update(from: named) }
        let state = Dictionary(uniqueKeysWithValues: ema.stateTensors().map { ($0.name, $0.tensor) })
        #expect(Set(state.keys) == ["updates", "shadow.a", "shadow.b.weight"])

        var restored = EMA(decay: 0.9, warmup: true, parameters: named)
        try restored.loadState(state)
        #expect(restored.updateCount == 3)
        ema.update(from: named)
        restored.update(from: named)
        #expect(ema.shadow("a")!.values == restored.shadow("a")!.values)
        #expect(ema.shadow("b.weight")!.values == restored.shadow("b.weight")!.values)

        var bad = state
        bad["shadow.b.weight"] = Tensor(zeros: [2])
        #expect(throws: OptimizerStateError.shapeMismatch(name: "shadow.b.weight", expected: [1, 2], found: [2])) {
            try restored.loadState(bad)
        }
        var empty = EMA(decay: 0.9)
        #expect(throws: OptimizerStateError.self) { try empty.loadState(state) }
    }

    @Test func valueSemantics() {
        let w = Tensor(shape: [1], values: [0])
        var a = EMA(decay: 0.5, parameters: [("w", w)])
        let b = a
        w.buffer.update(repeating: 2)
        a.update(from: [("w", w)])
        #expect(a.shadow("w")!.values == [1])
        #expect(b.shadow("w")!.values == [0])
    }
}
