import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct DiffusionTrainingTests {
    /// Four distinct captioned 4×4 grids over K = 16 codes.
    static func dataset() -> TokenizedDataset {
        var rng = RandomGenerator(seed: 77)
        let tokens: [Int32] = (0..<(4 * 16)).map { _ in Int32(rng.int(below: 16)) }
        return TokenizedDataset(tokens: tokens, count: 4, height: 4, width: 4, codes: 16,
                                captions: ["a red circle", "a blue square", "two green crosses", "a small white diamond"])
    }

    static func configuration(_ parameterization: DiffusionParameterization = .reparameterized, steps: Int = 300,
                              timeSampling: TimeSampling = .importance) -> DiffusionRunConfiguration {
        var model = DiffusionModelConfiguration.tiny(classes: 16, gridHeight: 4, gridWidth: 4, steps: 20, textWidth: 8)
        model.parameterization = parameterization
        let training = DiffusionTrainingConfiguration(
            GeneratorTrainingConfiguration(batchSize: 4, totalSteps: steps, learningRate: 3e-3, warmupSteps: 20,
                                           minimumLearningRate: 1e-4, weightDecay: 0, emaDecay: 0.99, seed: 4),
            timeSampling: timeSampling, loss: DiffusionLossConfiguration(auxiliaryWeight: 0.05))
        return DiffusionRunConfiguration(model: model, diffusion: .paper(classes: 16, steps: 20), training: training,
                                         textEncoder: "test-words")
    }

    /// Checkpoints hold the training settings as one flat object (the generator's fields beside
    /// timeSampling and loss), so files written before the shared part was split out still load.
    @Test func trainingConfigurationIsOneFlatObject() throws {
        let c = DiffusionTrainingConfiguration(GeneratorTrainingConfiguration(batchSize: 8, seed: 3), timeSampling: .uniform)
        let data = try JSONEncoder().encode(c)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["batchSize"] as? Int == 8)
        #expect(object["seed"] as? Int == 3)
        #expect(object["timeSampling"] as? String == "uniform")
        #expect(object["loss"] is [String: Any])
        #expect(object["generator"] == nil)
        #expect(try JSONDecoder().decode(DiffusionTrainingConfiguration.self, from: data) == c)
        #expect(c.batchSize == 8 && c.optimization.totalSteps == c.totalSteps)
    }

    @Test func tinyModelOverfitsOneBatchAndSamplesIt() throws {
        let data = DiffusionTrainingTests.dataset()
        let trainer = try DiffusionTrainer(configuration: DiffusionTrainingTests.configuration(), dataset: data,
                                           textEncoder: WordVectorTextEncoder())
        var accuracies: [Double] = []
        var first = 0.0, last = 0.0
        for s in 0..<300 {
            let m = try trainer.trainStep()
            if s == 0 { first = m.loss }
            if s >= 280 { accuracies.append(m.accuracy); last = m.loss }
        }
        let accuracy = accuracies.filter(\.isFinite).reduce(0, +) / Double(accuracies.filter(\.isFinite).count)
        #expect(accuracy > 0.95, "x0 accuracy on masked positions \(accuracy)")
        #expect(last < 0.2 * first, "loss \(first) → \(last)")
        #expect(trainer.timeSampler.isWarm)
        let sampler = DiffusionSampler(model: trainer.model, schedule: trainer.schedule, textEncoder: trainer.textEncoder)
        var rng = RandomGenerator(seed: 9)
        let samples = try sampler.sample(captions: data.captions, steps: 20, truncation: 0.86, using: &rng)
        let exact = zip(samples, data.tokens).filter { $0 == $1 }.count
        #expect(Double(exact) / Double(data.tokens.count) > 0.9, "\(exact) of \(data.tokens.count) tokens reproduced")
    }

    @Test func directParameterizationTrains() throws {
        let trainer = try DiffusionTrainer(configuration: DiffusionTrainingTests.configuration(.direct, timeSampling: .uniform),
                                           dataset: DiffusionTrainingTests.dataset(), textEncoder: WordVectorTextEncoder())
        var early = 0.0, late = 0.0
        for s in 0..<150 {
            let m = try trainer.trainStep()
            #expect(m.auxiliary == 0)
            if s < 10 { early += m.bound / 10 }
            if s >= 140 { late += m.bound / 10 }
        }
        #expect(late < 0.5 * early, "direct bound \(early) → \(late)")
        let sampler = DiffusionSampler(model: trainer.model, schedule: trainer.schedule, textEncoder: trainer.textEncoder)
        var rng = RandomGenerator(seed: 1)
        let out = try sampler.sample(captions: ["a red circle"], steps: 5, using: &rng)
        #expect(out.count == 16 && out.allSatisfy { $0 >= 0 && $0 < 16 })
    }

    /// In fp32 and in bf16 (on oneDNN, and as rounded operands on the fp32 kernels) a resumed run
    /// equals an uninterrupted one bitwise.
    @Test(arguments: ComputeMode.allCases)
    func resumeEqualsUninterruptedTraining(mode: ComputeMode) throws {
        try mode.run { try resumeEqualsUninterrupted() }
    }

    /// bf16 operands move a training step's loss by little, in both bf16 paths, but they do move it.
    @Test func bf16StepsStayCloseToFP32() throws {
        let config = DiffusionTrainingTests.configuration(steps: 100)
        let data = DiffusionTrainingTests.dataset()
        func losses(_ mode: ComputeMode) throws -> [Double] {
            try mode.run {
                let trainer = try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
                return try (0..<10).map { _ in try trainer.trainStep().loss }
            }
        }
        let full = try losses(.fp32)
        for mode in [ComputeMode.bf16OneDNN, .bf16Rounded] {
            let half = try losses(mode)
            #expect(half != full, "\(mode): bf16 changed nothing")
            let worst = zip(full, half).map { abs($0 - $1) / abs($0) }.max()!
            #expect(worst < 2e-2, "\(mode): loss moved by \(worst) relative")
        }
    }

    func resumeEqualsUninterrupted() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("diffusion-resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        let config = DiffusionTrainingTests.configuration(steps: 100)
        let data = DiffusionTrainingTests.dataset()
        // Importance sampling starts after 10 sightings of each of T = 20 times (about 50 steps of
        // batch 4, more with uneven draws), so the resumed part uses both samplings.
        let whole = try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
        var losses: [Double] = []
        for _ in 0..<100 { losses.append(try whole.trainStep().loss) }
        let first = try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
        for _ in 0..<40 { _ = try first.trainStep() }
        try first.saveCheckpoint(to: url)
        let resumed = try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
        try resumed.resume(from: url)
        #expect(resumed.step == 40 && resumed.timeSampler == first.timeSampler && resumed.generator == first.generator)
        var resumedLosses: [Double] = []
        for _ in 40..<100 { resumedLosses.append(try resumed.trainStep().loss) }
        #expect(resumedLosses == Array(losses[40...]))
        #expect(resumed.timeSampler.isWarm)
        for (a, b) in zip(whole.trainedParameters, resumed.trainedParameters) { #expect(a.tensor.values == b.tensor.values, "\(a.name)") }
        // The checkpoint also serves sampling, with its EMA weights.
        let file = try DiffusionModelFile(url)
        #expect(file.configuration == config)
        #expect(file.model.namedParameters.map(\.name) == whole.model.namedParameters.map(\.name))
    }

    /// Cutting the batch into data-parallel shards changes how the work is split, not the step:
    /// the same losses, metrics and weights as one batch, up to float rounding (the time
    /// sampler and the data order see the same per-element losses, in batch order).
    @Test(arguments: [2, 3])
    func dataParallelShardsTrainLikeOneBatch(shards: Int) throws {
        var config = DiffusionTrainingTests.configuration(steps: 100)
        config.training.captionDropout = 0.25
        let data = DiffusionTrainingTests.dataset()
        let one = try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder(), shards: 1)
        let cut = try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder(), shards: shards)
        #expect(one.dataParallel == nil && cut.dataParallel?.shardCount == shards)
        for _ in 0..<5 {
            let (a, b) = (try one.trainStep(), try cut.trainStep())
            #expect(abs(a.loss - b.loss) <= 1e-4 * abs(a.loss), "loss \(a.loss) vs \(b.loss)")
            #expect(abs(a.auxiliary - b.auxiliary) <= 1e-4 * max(abs(a.auxiliary), 1e-6))
            #expect(a.accuracy == b.accuracy || (a.accuracy.isNaN && b.accuracy.isNaN))
            #expect(abs(a.gradientNorm - b.gradientNorm) <= 1e-3 * a.gradientNorm)
        }
        for (a, b) in zip(one.trainedParameters, cut.trainedParameters) {
            let error = zip(a.tensor.values, b.tensor.values).map { abs($0 - $1) }.max()!
            #expect(error < 1e-4, "\(a.name) differs by \(error)")
        }
        #expect(one.generator == cut.generator)
        #expect(throws: DiffusionTrainingError.self) {
            try DiffusionTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder(), shards: 5)
        }
    }
}

/// The ways the engine can run a model's products, for tests that must hold in each.
enum ComputeMode: String, CaseIterable, CustomTestStringConvertible {
    case fp32
    /// bf16 operands on oneDNN (native or, on CPUs without AVX512_BF16, oneDNN's own emulation).
    case bf16OneDNN
    /// bf16 numerics as rounded operands on the fp32 kernels.
    case bf16Rounded

    var testDescription: String { rawValue }

    /// Runs `body` in this mode, then restores fp32 on OpenBLAS.
    func run<R>(_ body: () throws -> R) rethrows -> R {
        let saved = BLAS.roundsBF16OnFP32Kernels
        defer { BLAS.roundsBF16OnFP32Kernels = saved; BLAS.precision = .fp32 }
        switch self {
        case .fp32: BLAS.precision = .fp32
        case .bf16OneDNN: (BLAS.roundsBF16OnFP32Kernels, BLAS.precision) = (false, .bf16)
        case .bf16Rounded: (BLAS.roundsBF16OnFP32Kernels, BLAS.precision) = (true, .bf16)
        }
        return try body()
    }
}
