import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite(.serialized) struct VQVAETrainingTests {
    /// A tiny model for 16×16 Shapes: f = 4 (4×4 tokens), 16 codes, restarts for small batches.
    static let configuration = VQVAEConfiguration(channels: 3, downsampling: 4, widths: [8, 16, 16], residualBlocks: 1,
                                                  codes: 16, codeDimension: 8, restartThreshold: 0.05)

    static func data(count: Int) -> DatasetSelection {
        DatasetSelection(source: .shapes, split: .train, imageSize: 16, seed: 7, count: count)
    }

    static func trainer(count: Int, options: TrainingRunSettings) throws -> VQVAETrainer {
        let data = data(count: count)
        return try VQVAETrainer(configuration: configuration, options: options, data: data, dataset: try data.open())
    }

    @Test func tinyModelOverfitsAFewImages() throws {
        let options = TrainingRunSettings.vqvae.with(steps: 400, batchSize: 4, learningRate: 3e-3, warmupSteps: 5, seed: 1)
        let trainer = try Self.trainer(count: 4, options: options)
        let dataset = try Self.data(count: 4).open()
        let before = try VQVAEMetrics.evaluate(trainer.model, on: dataset)
        while !trainer.isFinished { trainer.trainStep() }
        let after = try VQVAEMetrics.evaluate(trainer.model, on: dataset)
        #expect(after.psnr > before.psnr + 8, "PSNR \(before.psnr) → \(after.psnr)")
        #expect(after.codebookUsage > 0.25)
    }

    /// Bitwise equality holds for a given thread count within one process doing one computation
    /// at a time (`make test` runs the suite serially; see Parallel.swift).
    @Test func resumeEqualsUninterruptedTraining() throws { try resumeEqualsUninterrupted() }

    func resumeEqualsUninterrupted() throws {
        // 10 images in batches of 4 (2 batches per epoch, the last 2 images dropped): 7 steps cross
        // three epochs, and the interruption after step 3 falls inside an epoch.
        let options = TrainingRunSettings.vqvae.with(steps: 7, batchSize: 4, learningRate: 2e-3, warmupSteps: 2, seed: 3)
        let whole = try Self.trainer(count: 10, options: options)
        while !whole.isFinished { whole.trainStep() }

        let folder = TemporaryFolder()
        let checkpoint = folder.file("run.ckpt.safetensors")
        let first = try Self.trainer(count: 10, options: options)
        for _ in 0..<3 { first.trainStep() }
        try first.saveCheckpoint(to: checkpoint)
        let data = Self.data(count: 10)
        let resumed = try VQVAETrainer(resuming: checkpoint, configuration: Self.configuration, options: options,
                                       data: data, dataset: try data.open())
        #expect(resumed.step == 3)
        while !resumed.isFinished { resumed.trainStep() }
        for (a, b) in zip(whole.model.stateTensors, resumed.model.stateTensors) {
            #expect(a.name == b.name)
            #expect(a.tensor.values == b.tensor.values, "\(a.name) differs after resuming")
        }
        #expect(whole.generator == resumed.generator)
    }

    @Test func aCheckpointOfAnotherConfigurationIsRefused() throws {
        let options = TrainingRunSettings.vqvae.with(steps: 2, batchSize: 4, seed: 3)
        let trainer = try Self.trainer(count: 8, options: options)
        trainer.trainStep()
        let folder = TemporaryFolder()
        let checkpoint = folder.file("run.ckpt.safetensors")
        try trainer.saveCheckpoint(to: checkpoint)
        var other = Self.configuration
        other.codes = 32
        let data = Self.data(count: 8)
        let message = thrownMessage {
            _ = try VQVAETrainer(resuming: checkpoint, configuration: other, options: options, data: data, dataset: try data.open())
        }
        #expect(message?.contains("model configuration") == true && message?.contains("K=16") == true, "\(message ?? "no error")")
        var otherOptions = options
        otherOptions.batchSize = 2
        #expect(thrownMessage {
            _ = try VQVAETrainer(resuming: checkpoint, configuration: Self.configuration, options: otherOptions,
                                 data: data, dataset: try data.open())
        }?.contains("training options") == true)
        // Loading the weights into a model built differently fails, naming the mismatch.
        var rng = RandomGenerator(seed: 0)
        let model = try VQVAE(other, using: &rng)
        let loaded = try TrainingCheckpoint.read(checkpoint, expectingKind: VQVAE.kind)
        #expect(thrownMessage { try loaded.loadModel(into: model.stateTensors) }?.contains("quantizer.codebook") == true)
        // VQVAE.load builds the model from the stored configuration, so the file always fits.
        #expect(try VQVAE.load(checkpoint).codes == 16)
    }

    @Test func tokenCacheEncodesOnceAndReloads() throws {
        let folder = TemporaryFolder()
        var rng = RandomGenerator(seed: 4)
        let model = try VQVAE(Self.configuration, using: &rng)
        let modelURL = folder.file("vqvae.safetensors")
        try model.save(to: modelURL)
        let cache = folder.file("cache")
        var encoded = 0
        let first = try TokenCache.tokens(vqvae: modelURL, dataset: .shapes, split: .val, size: 16, seed: 7, count: 6,
                                          directory: cache) { done, _ in encoded = done }
        #expect(encoded == 6)
        #expect(first.count == 6 && first.height == 4 && first.width == 4 && first.codes == 16)
        let shapes = try ShapesDataset(ShapesConfiguration(imageSize: 16, seed: 7, split: .val, count: 6))
        #expect(first.captions == (0..<6).map { shapes.sample(at: $0).caption })
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        let hash = try TokenCache.contentHash(of: modelURL)
        #expect(entries == ["vqvae-\(hash)-shapes-val-16px-seed7-n6"])
        encoded = 0
        let second = try TokenCache.tokens(vqvae: modelURL, dataset: .shapes, split: .val, size: 16, seed: 7, count: 6,
                                           directory: cache) { done, _ in encoded = done }
        #expect(encoded == 0)                                     // read from the cache, not re-encoded
        #expect(second.tokens == first.tokens && second.captions == first.captions)
        // The tokens are the model's encoding of the split.
        let loader = BatchLoader(dataset: shapes, batchSize: 6, shuffle: false, generator: RandomGenerator(seed: 0))
        #expect(try model.encode(loader.batch(indices: Array(0..<6)).images).tokens == first.tokens)
    }
}
