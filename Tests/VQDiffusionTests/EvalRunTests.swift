import Engine
import Foundation
import Testing
@testable import Experiments
@testable import VQDiffusion

/// Returns the real image of each caption (looked up among a dataset's samples).
struct EvalTestRealGenerator: ImageGenerator {
    let name = "real-lookup"
    let kind = "real"
    let images: [String: [Float]]
    let shape: [Int]

    init(_ data: any CaptionedDataset, count: Int) {
        let batch = BatchLoader(dataset: data, batchSize: count, shuffle: false, generator: RandomGenerator(seed: 0))
            .batch(indices: Array(0..<count))
        let per = batch.images.count / count
        var images: [String: [Float]] = [:]
        for i in 0..<count where images[batch.captions[i]] == nil {
            images[batch.captions[i]] = Array(batch.images.values[(i * per)..<((i + 1) * per)])
        }
        self.images = images
        shape = Array(batch.images.shape.dropFirst())
    }

    func generate(captions: [String], using rng: inout RandomGenerator) throws -> Tensor {
        Tensor(shape: [captions.count] + shape, values: captions.flatMap { images[$0]! })
    }
}

/// Uniform noise in [-1, 1].
struct EvalTestNoiseGenerator: ImageGenerator {
    let name = "noise"
    let kind = "noise"
    let shape: [Int]
    func generate(captions: [String], using rng: inout RandomGenerator) throws -> Tensor {
        Tensor.uniform([captions.count] + shape, low: -1, high: 1, using: &rng)
    }
}

@Suite struct EvalRunTests {
    func quickConfiguration(_ n: Int) -> EvalConfiguration {
        var c = EvalConfiguration(count: n, batchSize: 16, seed: 1,
                                  throughput: ThroughputMeter(batchSizes: [1, 16], warmupRuns: 1, minimumRuns: 1, minimumSeconds: 0))
        c.kidSubsets = 10
        return c
    }

    @Test func writesEveryMetricToTheDatabase() throws {
        let folder = TemporaryFolder()
        let db = try ResultsDatabase(path: folder.file("results.sqlite").path)
        var rng = RandomGenerator(seed: 2)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let data = evaluationTestShapes(.test, count: 200)
        let report = try EvalRunner.run(generator: EvalTestNoiseGenerator(shape: [3, 16, 16]), evaluator: evaluator,
                                        dataset: data, configuration: quickConfiguration(100), database: db,
                                        params: ["dataset": "shapes", "split": "test"])
        let id = try #require(report.runID)
        let run = try db.run(id)
        #expect(run.experiment == "eval" && run.name == "noise" && run.status == .finished)
        let metrics = Dictionary(uniqueKeysWithValues: try db.finalMetrics(runID: id).map { ($0.key, $0.point.value) })
        for key in ["fid", "kid", "kid/std", "floor/fid", "floor/kid", "alignment/caption", "alignment/colour_and_shape",
                    "alignment/objects", "floor/alignment/caption", "throughput/batch_1/images_per_second",
                    "throughput/batch_16/images_per_second", "throughput/batch_1/threads"] {
            #expect(metrics[key] != nil, "missing \(key)")
        }
        #expect(metrics["fid"]! == report.generated!.fid.fid)
        let params = Dictionary(uniqueKeysWithValues: try db.params(runID: id).map { ($0.key, $0.value) })
        #expect(params["generator"] == "noise" && params["count"] == "100" && params["split"] == "test")
        #expect(params["fid_features"]?.hasPrefix("FID (evaluator features)") == true)
    }

    @Test func realFloorIsSmallNextToNoise() throws {
        let evaluator = try evaluationTestTrainedEvaluator(steps: 150)
        let data = evaluationTestShapes(.test, count: 400)
        var c = quickConfiguration(200)
        c.throughput = nil
        let noise = try EvalRunner.run(generator: EvalTestNoiseGenerator(shape: [3, 16, 16]), evaluator: evaluator,
                                       dataset: data, configuration: c)
        let real = try EvalRunner.run(generator: EvalTestRealGenerator(data, count: 200), evaluator: evaluator,
                                      dataset: data, configuration: c)
        let floor = try #require(noise.floor)
        let noiseFID = noise.generated!.fid.fid
        #expect(floor.fid.fid < 0.1 * noiseFID, "floor \(floor.fid.fid) vs noise \(noiseFID)")
        #expect(floor.kid.mean < 0.1 * noise.generated!.kid.mean)
        // The reference images themselves: FID 0 up to rounding, alignment that of real images.
        #expect(abs(real.generated!.fid.fid) < 1e-6 * noiseFID)
        // Alignment of the real images reads what the (briefly trained) evaluator has learnt: the object count.
        #expect(real.generated!.alignment.fraction("objects") > 0.8)
        #expect(real.generated!.alignment.fraction("objects") > noise.generated!.alignment.fraction("objects"))
        #expect(abs(real.floor!.fid.fid - floor.fid.fid) < 1e-6 * floor.fid.fid)
    }

    @Test func realOnlyRunAndActionableErrors() throws {
        var rng = RandomGenerator(seed: 2)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let data = evaluationTestShapes(.test, count: 60)
        var c = quickConfiguration(20)
        c.throughput = nil
        let report = try EvalRunner.run(generator: nil, evaluator: evaluator, dataset: data, configuration: c)
        #expect(report.generated == nil && report.floor != nil && report.throughput.isEmpty)

        c.count = 40
        #expect(thrownMessage { _ = try EvalRunner.run(generator: nil, evaluator: evaluator, dataset: data, configuration: c) }?
            .contains("Lower the count to 30") == true)
        c.count = 20
        let wrong = EvalTestNoiseGenerator(shape: [3, 8, 8])
        #expect(thrownMessage { _ = try EvalRunner.run(generator: wrong, evaluator: evaluator, dataset: data, configuration: c) }?
            .contains("returned images of shape [16, 3, 8, 8]") == true)
    }
}
