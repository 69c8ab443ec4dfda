import Testing
@testable import Engine

@Suite struct LayerTests {
    final class TwoLayer: Module {
        let first: Linear, norm: LayerNorm, second: Linear
        init(using rng: inout RandomGenerator) {
            first = Linear(4, 8, activation: .gelu, using: &rng)
            norm = LayerNorm(8)
            second = Linear(8, 2, bias: false, using: &rng)
        }
        func callAsFunction(_ x: Tensor) -> Tensor { second(norm(first(x))) }
        func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
            first.visitParameters(prefix: childPrefix(prefix, "first"), visit)
            norm.visitParameters(prefix: childPrefix(prefix, "norm"), visit)
            second.visitParameters(prefix: childPrefix(prefix, "second"), visit)
        }
    }

    @Test func namesCountsAndGradients() {
        var rng = RandomGenerator(seed: 1)
        let model = TwoLayer(using: &rng)
        #expect(model.namedParameters.map(\.name) ==
                ["first.weight", "first.bias", "norm.weight", "norm.bias", "second.weight"])
        #expect(model.parameterCount == 4 * 8 + 8 + 8 + 8 + 8 * 2)
        let x = Tensor.randn([3, 4], using: &rng)
        model(x).square().sum().backward()
        for (name, p) in model.namedParameters { #expect(p.grad != nil, "no gradient for \(name)") }
        model.zeroGrad()
        #expect(model.parameters.allSatisfy { $0.grad == nil })
    }

    @Test func embeddingAndConvShapes() {
        var rng = RandomGenerator(seed: 2)
        let table = Embedding(10, 6, using: &rng)
        #expect(table([1, 2, 3, 4, 5, 9], shape: [2, 3]).shape == [2, 3, 6])
        let conv = Conv2d(3, 5, kernel: 3, stride: 2, padding: 1, using: &rng)
        #expect(conv(Tensor(zeros: [2, 3, 8, 8])).shape == [2, 5, 4, 4])
    }
}
