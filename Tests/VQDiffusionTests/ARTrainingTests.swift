import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite(.serialized) struct ARTrainingTests {
    /// Four distinct captioned 4×4 grids over K = 16 codes.
    static func dataset() -> TokenizedDataset {
        var rng = RandomGenerator(seed: 77)
        let tokens: [Int32] = (0..<(4 * 16)).map { _ in Int32(rng.int(below: 16)) }
        return TokenizedDataset(tokens: tokens, count: 4, height: 4, width: 4, codes: 16,
                                captions: ["a red circle", "a blue square", "two green crosses", "a small white diamond"])
    }

    static func configuration(steps: Int = 200) -> ARRunConfiguration {
        let diffusion = DiffusionModelConfiguration.tiny(classes: 16, gridHeight: 4, gridWidth: 4, steps: 20, textWidth: 8)
        let training = GeneratorTrainingConfiguration(batchSize: 4, totalSteps: steps, learningRate: 3e-3, warmupSteps: 20,
                                                      minimumLearningRate: 1e-4, weightDecay: 0, emaDecay: 0.99, seed: 4)
        return ARRunConfiguration(model: .matching(diffusion), training: training, textEncoder: "test-words")
    }

    @Test func tinyModelOverfitsOneBatchAndDecodesItGreedily() throws {
        let data = ARTrainingTests.dataset()
        let trainer = try ARTrainer(configuration: ARTrainingTests.configuration(), dataset: data,
                                    textEncoder: WordVectorTextEncoder())
        var first = 0.0, last = GeneratorStepMetrics(step: 0, loss: 0, accuracy: 0, gradientNorm: 0, learningRate: 0, seconds: 0)
        for s in 0..<200 {
            last = try trainer.trainStep()
            if s == 0 { first = last.loss }
        }
        #expect(last.accuracy == 1, "token accuracy \(last.accuracy)")
        #expect(last.loss < 0.05 * first, "loss \(first) → \(last.loss)")
        let sampler = ARSampler(model: trainer.model, textEncoder: trainer.textEncoder)
        for options in [ARSamplingOptions(temperature: 0), ARSamplingOptions(topK: 1, useCache: false)] {
            var rng = RandomGenerator(seed: 9)
            let samples = try sampler.sample(captions: data.captions, options: options, using: &rng)
            #expect(samples == data.tokens, "\(options): \(zip(samples, data.tokens).filter { $0 == $1 }.count) of 64 tokens")
        }
        // The EMA weights have caught up too.
        var rng = RandomGenerator(seed: 9)
        let ema = try trainer.emaSampler().sample(captions: data.captions, options: ARSamplingOptions(temperature: 0), using: &rng)
        #expect(zip(ema, data.tokens).filter { $0 == $1 }.count >= 60)
    }

    @Test(arguments: ComputeMode.allCases)
    func resumeEqualsUninterruptedTraining(mode: ComputeMode) throws {
        try mode.run { try resumeEqualsUninterrupted() }
    }

    func resumeEqualsUninterrupted() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ar-resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        let config = ARTrainingTests.configuration(steps: 30)
        let data = ARTrainingTests.dataset()
        let whole = try ARTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
        var losses: [Double] = []
        for _ in 0..<30 { losses.append(try whole.trainStep().loss) }
        let first = try ARTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
        for _ in 0..<12 { _ = try first.trainStep() }
        try first.saveCheckpoint(to: url)
        let resumed = try ARTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder())
        try resumed.resume(from: url)
        #expect(resumed.step == 12 && resumed.state.generator == first.state.generator)
        var resumedLosses: [Double] = []
        for _ in 12..<30 { resumedLosses.append(try resumed.trainStep().loss) }
        #expect(resumedLosses == Array(losses[12...]))
        for (a, b) in zip(whole.trainedParameters, resumed.trainedParameters) { #expect(a.tensor.values == b.tensor.values, "\(a.name)") }
        // The checkpoint serves sampling with its EMA weights, and is refused as a diffusion model.
        let file = try ARModelFile(url)
        #expect(file.configuration == config)
        #expect(file.model.namedParameters.map(\.name) == whole.model.namedParameters.map(\.name))
        #expect(try TrainingCheckpoint.read(url).kind == "ar")
        #expect(throws: (any Error).self) { try DiffusionModelFile(url) }
        // A checkpoint of another model is refused.
        var other = config
        other.model.mlpRatio += 1
        let mismatched = try ARTrainer(configuration: other, dataset: data, textEncoder: WordVectorTextEncoder())
        #expect(throws: (any Error).self) { try mismatched.resume(from: url) }
    }

    /// Data-parallel shards train VQ-AR as one batch would, up to float rounding.
    @Test func dataParallelShardsTrainLikeOneBatch() throws {
        let (config, data) = (ARTrainingTests.configuration(), ARTrainingTests.dataset())
        let one = try ARTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder(), shards: 1)
        let cut = try ARTrainer(configuration: config, dataset: data, textEncoder: WordVectorTextEncoder(), shards: 2)
        #expect(one.dataParallel == nil && cut.dataParallel?.shardCount == 2)
        for _ in 0..<5 {
            let (a, b) = (try one.trainStep(), try cut.trainStep())
            #expect(abs(a.loss - b.loss) <= 1e-4 * a.loss, "loss \(a.loss) vs \(b.loss)")
            #expect(a.accuracy == b.accuracy)
        }
        for (a, b) in zip(one.trainedParameters, cut.trainedParameters) {
            let error = zip(a.tensor.values, b.tensor.values).map { abs($0 - $1) }.max()!
            #expect(error < 1e-4, "\(a.name) differs by \(error)")
        }
    }
}
