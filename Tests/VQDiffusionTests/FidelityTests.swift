import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct FidelityTests {
    func originals(_ n: Int) -> (Tensor, [SampleAttributes]) {
        let data = evaluationTestShapes(.val, count: n)
        let batch = BatchLoader(dataset: data, batchSize: n, shuffle: false, generator: RandomGenerator(seed: 0))
            .batch(indices: Array(0..<n))
        return (batch.images, batch.attributes.map { $0! })
    }

    @Test func identityReconstructionKeepsEverything() throws {
        var rng = RandomGenerator(seed: 5)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let (images, attributes) = originals(40)
        let r = try ReconstructionFidelity.measure(evaluator: evaluator, images: images, attributes: attributes,
                                                   batchSize: 16) { $0.copy() }
        #expect(r.count == 40 && r.meanSquaredError == 0)
        #expect(r.psnr == ReconstructionFidelity.maximumPSNR && r.meanImagePSNR == ReconstructionFidelity.maximumPSNR)
        #expect(r.psnr.isFinite)
        #expect(r.reconstructionAccuracy == r.originalAccuracy)
        let direct = try EvaluatorAccuracy.score(headClasses: evaluator.evaluate(images).classes, attributes: attributes, task: .shapes)
        #expect(r.originalAccuracy == direct)
    }

    @Test func psnrOfAKnownError() throws {
        // A constant offset of 0.1 on [-1, 1] images: MSE 0.01, PSNR 10·log10(4 / 0.01) ≈ 26.02 dB.
        #expect(abs(ReconstructionFidelity.psnr(meanSquaredError: 0.01) - 26.0206) < 1e-3)
        #expect(ReconstructionFidelity.psnr(meanSquaredError: 1e-30) == ReconstructionFidelity.maximumPSNR)
        var rng = RandomGenerator(seed: 5)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let (images, attributes) = originals(8)
        let r = try ReconstructionFidelity.measure(evaluator: evaluator, images: images, attributes: attributes) { $0 + 0.1 }
        #expect(abs(r.meanSquaredError - 0.01) < 1e-6)
        #expect(abs(r.psnr - 26.0206) < 1e-3 && abs(r.meanImagePSNR - 26.0206) < 1e-3)
    }

    @Test func aReconstructionOfTheWrongShapeIsAnError() throws {
        var rng = RandomGenerator(seed: 5)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let (images, attributes) = originals(4)
        let message = thrownMessage {
            _ = try ReconstructionFidelity.measure(evaluator: evaluator, images: images, attributes: attributes) {
                $0.slice(axis: 1, start: 0, end: 1)
            }
        }
        #expect(message?.contains("must return images of the input's shape") == true)
    }
}
