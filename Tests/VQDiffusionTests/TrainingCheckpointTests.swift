import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct TrainingCheckpointTests {
    struct Config: Codable, Equatable { var width = 4; var name = "tiny" }

    final class Model: Module {
        let layer: Linear
        init(_ inputs: Int, using rng: inout RandomGenerator) { layer = Linear(inputs, 3, using: &rng) }
        func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
            layer.visitParameters(prefix: childPrefix(prefix, "layer"), visit)
        }
    }

    func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString).safetensors")
    }

    /// A few AdamW steps on a least-squares loss.
    func train(_ model: Model, _ optimizer: AdamW, _ ema: inout EMA, _ rng: inout RandomGenerator, steps: Int) {
        for _ in 0..<steps {
            let x = Tensor.randn([5, 4], using: &rng)
            optimizer.zeroGrad()
            model.layer(x).square().mean().backward()
            optimizer.step()
            ema.update(from: model.namedParameters)
        }
    }

    @Test func resumeEqualsUninterrupted() throws {
        var rngA = RandomGenerator(seed: 3)
        let a = Model(4, using: &rngA)
        let optA = AdamW(named: a.namedParameters)
        var emaA = EMA(decay: 0.9, parameters: a.namedParameters)
        train(a, optA, &emaA, &rngA, steps: 6)

        var rngB = RandomGenerator(seed: 3)
        let b = Model(4, using: &rngB)
        let optB = AdamW(named: b.namedParameters)
        var emaB = EMA(decay: 0.9, parameters: b.namedParameters)
        train(b, optB, &emaB, &rngB, steps: 2)
        let url = temporaryFile()
        defer { try? FileManager.default.removeItem(at: url) }
        try TrainingCheckpoint.save(.init(kind: "test", configuration: Config(), model: b.namedParameters,
                                          optimizer: optB, ema: emaB, generator: rngB, step: 2), to: url)

        var seed = RandomGenerator(seed: 99)
        let c = Model(4, using: &seed)
        let optC = AdamW(named: c.namedParameters)
        var emaC = EMA(decay: 0.9, parameters: c.namedParameters)
        let loaded = try TrainingCheckpoint.read(url, expectingKind: "test")
        try loaded.loadModel(into: c.namedParameters)
        try loaded.loadOptimizer(optC)
        try loaded.loadEMA(&emaC)
        var rngC = try loaded.generator
        #expect(try loaded.step == 2)
        #expect(try loaded.configuration(as: Config.self) == Config())
        train(c, optC, &emaC, &rngC, steps: 4)
        #expect(c.layer.weight.values == a.layer.weight.values)
        #expect(emaC.shadow("layer.weight")!.values == emaA.shadow("layer.weight")!.values)
    }

    @Test func mismatchedModelIsRejectedAndUntouched() throws {
        var rng = RandomGenerator(seed: 1)
        let small = Model(4, using: &rng)
        let url = temporaryFile()
        defer { try? FileManager.default.removeItem(at: url) }
        try TrainingCheckpoint.save(.init(kind: "test", configuration: Config(), model: small.namedParameters,
                                          generator: rng, step: 0), to: url)
        let other = Model(5, using: &rng)
        let before = other.layer.weight.values
        let loaded = try TrainingCheckpoint.read(url)
        #expect(throws: FileError.self) { try loaded.loadModel(into: other.namedParameters) }
        #expect(other.layer.weight.values == before)
        #expect(throws: FileError.self) { try TrainingCheckpoint.read(url, expectingKind: "vqvae") }
        #expect(throws: FileError.self) { try loaded.loadModel(into: small.namedParameters, useEMA: true) }
    }
}
