import Engine
import Foundation
import Testing
@testable import VQDiffusion

struct DenoisingProbeTests {
    /// Untrained tiny parts end to end: one result per start time, noise fractions that follow the
    /// schedule's cumulative rates, and every caption scored as the real grids are.
    @Test func restoresEveryStartTimeAndScoresLikeTheRealGrids() throws {
        var rng = RandomGenerator(seed: 3)
        let vqvae = try VQVAE(.tiny, using: &rng)
        let images = try ShapesDataset(ShapesConfiguration(imageSize: 16, seed: 0, split: .test, count: 24))
        let data = try TokenCache.encode(images, with: vqvae)
        let schedule = try DiffusionSchedule(.paper(classes: vqvae.codes, steps: 20))
        let encoder = RandomTextEncoder(width: 16, maxLength: 8)
        let model = DenoisingTransformer(.tiny(classes: vqvae.codes, gridHeight: data.height, gridWidth: data.width,
                                              steps: 20, textWidth: 16), using: &rng)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let times = [1, 10, 20]
        var probeRNG = RandomGenerator(seed: 4)
        let (ceiling, results) = try DenoisingProbe.run(model: model, schedule: schedule, textEncoder: encoder,
                                                        vqvae: vqvae, evaluator: evaluator, data: data, times: times,
                                                        batchSize: 10, using: &probeRNG)
        #expect(results.map(\.time) == times)
        for r in results {
            let q = schedule.cumulative(r.time)
            #expect(abs(r.maskedFraction - q.mask) < 0.12, "t = \(r.time): masked \(r.maskedFraction), γ̄_t \(q.mask)")
            #expect(r.replacedFraction >= 0 && r.replacedFraction <= 1 - r.maskedFraction + 1e-9)
            #expect(r.tokenAgreement >= 0 && r.tokenAgreement <= 1)
            #expect(r.alignment.scores.map(\.total) == ceiling.scores.scores.map(\.total))
            // The readings count the same stated objects the shape score does, and agree with it.
            let readings = try #require(r.shapeReadings)
            let shape = try #require(r.alignment["shape"])
            let byShape = readings.byShape.scores
            #expect(byShape.map(\.total).reduce(0, +) == shape.total)
            #expect(byShape.map(\.correct).reduce(0, +) == shape.correct)
        }
        let realReadings = try #require(ceiling.shapeReadings)
        let realShape = try #require(ceiling.scores["shape"])
        #expect(realReadings.byShape.scores.map(\.correct).reduce(0, +) == realShape.correct)
        #expect(results[2].maskedFraction > 0.8)
    }
}
