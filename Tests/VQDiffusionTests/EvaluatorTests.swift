import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// A Shapes split at S = 16 for the evaluation tests.
func evaluationTestShapes(_ split: DatasetSplit, count: Int) -> ShapesDataset {
    try! ShapesDataset(ShapesConfiguration(imageSize: 16, seed: 7, split: split, count: count))
}

/// A tiny Shapes evaluator at S = 16 trained for `steps` steps of 32 (a few seconds in release).
func evaluationTestTrainedEvaluator(steps: Int) throws -> Evaluator {
    let training = TrainingRunSettings.evaluator.with(steps: steps, batchSize: 32, learningRate: 3e-3, warmupSteps: 20, seed: 1)
    let trainer = try EvaluatorTrainer(.tiny(.shapes), training: training,
                                       dataset: evaluationTestShapes(.train, count: steps * 32))
    for _ in 0..<steps { try trainer.trainStep() }
    return trainer.evaluator
}

@Suite struct EvaluatorTests {
    func scene(_ relation: Relation) -> ShapesScene {
        let a = SceneObject(shape: .circle, color: .red, size: .small, centerX: 4, centerY: 8, extent: 4, red: 220, green: 40, blue: 40)
        let b = SceneObject(shape: .square, color: .blue, size: .large, centerX: 12, centerY: 8, extent: 7, red: 50, green: 90, blue: 230)
        let objects = relation == .leftOf || relation == .above ? [a, b] : [b, a]
        let caption = ShapesCaption.make(objects: objects, position: nil, relation: relation, template: .sizedPair)
        return ShapesScene(objects: objects, position: nil, relation: relation, template: .sizedPair, caption: caption)
    }

    @Test func pairsAreReadInSpatialOrder() {
        // "blue square right of red circle" shows the circle on the left: slot 0 is the circle.
        let t = ShapesTargets.targets(scene(.rightOf))
        #expect(t == [1, -1, 0, Int32(ShapeKind.circle.rawValue), Int32(ShapeColor.red.rawValue), 0,
                      Int32(ShapeKind.square.rawValue), Int32(ShapeColor.blue.rawValue), 1])
        #expect(ShapesTargets.targets(scene(.leftOf)) == t)
        let below = ShapesTargets.targets(scene(.below))
        #expect(below[2] == 1 && below[3] == Int32(ShapeKind.circle.rawValue))
        let p = ShapesPrediction(scene: scene(.below))
        #expect(p.relation == .above && p.objects[0].shape == .circle)
        #expect(ShapesTargets.prediction(fromClasses: t.map { max(0, Int($0)) }) == ShapesPrediction(scene: scene(.rightOf)))
    }

    @Test func singleObjectTargetsIgnoreTheSecondSlot() {
        let scene = evaluationTestShapes(.test, count: 50).scene(at: (0..<50).first {
            evaluationTestShapes(.test, count: 50).scene(at: $0).objects.count == 1 }!)
        let t = ShapesTargets.targets(scene)
        #expect(t[0] == 0 && t[1] == Int32(scene.position!.rawValue) && t[2] == -1)
        #expect(Array(t[6...]) == [-1, -1, -1])
    }

    @Test func shapesTrainingBeatsChanceByAWideMargin() throws {
        let evaluator = try evaluationTestTrainedEvaluator(steps: 300)
        let scores = try EvaluatorAccuracy.measure(evaluator, on: evaluationTestShapes(.val, count: 400))
        // Chance: objects 1/2, size 1/2, position 1/9, relation 1/2. (Colour and shape need a few
        // thousand steps of the full network: the flatten layer learns them location by location.)
        #expect(scores.fraction("objects") > 0.85)
        #expect(scores.fraction("size") > 0.8)
        #expect(scores.fraction("position") > 0.7)
        #expect(scores.fraction("relation") > 0.9)
    }

    @Test func featuresHaveTheConfiguredWidthAndSaveLoadRoundTrips() throws {
        var rng = RandomGenerator(seed: 3)
        let evaluator = try Evaluator(.tiny(.fashion), using: &rng)
        let images = Tensor.uniform([5, 1, 16, 16], low: -1, high: 1, using: &rng)
        let (features, classes) = evaluator.evaluate(images, batchSize: 2)
        #expect(features.shape == [5, 64])
        #expect(classes.count == 1 && classes[0].count == 5 && classes[0].allSatisfy { (0..<10).contains($0) })

        // Calibration: the features of the calibration images get mean per-dimension variance 1.
        let calibration = Tensor.uniform([40, 1, 16, 16], low: -1, high: 1, using: &rng)
        let scale = try evaluator.calibrateFeatureScale(images: calibration)
        let scaled = evaluator.evaluate(calibration).features
        var variance = 0.0
        for j in 0..<64 {
            let column = (0..<40).map { Double(scaled.values[$0 * 64 + j]) }
            let mean = column.reduce(0, +) / 40
            variance += column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 39
        }
        #expect(abs(variance / 64 - 1) < 1e-3)
        let (rescaled, _) = evaluator.evaluate(images, batchSize: 2)
        // (Equal up to rounding: BLAS blocking may differ between calls when other work runs at once.)
        #expect(zip(rescaled.values, features.values).allSatisfy { abs($0 - $1 * scale) <= 1e-4 * max(1, abs($0)) })

        let folder = TemporaryFolder()
        let url = folder.file("models/evaluator.safetensors")
        try evaluator.save(to: url, generator: rng, step: 7)
        let loaded = try Evaluator.load(url)
        #expect(loaded.configuration == evaluator.configuration)
        #expect(loaded.configuration.featureScale == scale)
        #expect(zip(loaded.evaluate(images, batchSize: 2).features.values, rescaled.values).allSatisfy {
            abs($0 - $1) <= 1e-4 * max(1, abs($0))
        })

        try TrainingCheckpoint.save(.init(kind: "vqvae", configuration: evaluator.configuration,
                                          model: evaluator.namedParameters, generator: rng, step: 0), to: folder.file("other.safetensors"))
        let message = thrownMessage { _ = try Evaluator.load(folder.file("other.safetensors")) }
        #expect(message?.contains("expected a \"evaluator\" checkpoint") == true)
    }

    /// The evaluator measures in fp32 whatever the process's precision: its features and classes
    /// under a bf16 scope equal the fp32 ones exactly, while its network run directly in bf16
    /// does give other features.
    @Test func evaluationRunsInFP32UnderABF16Scope() throws {
        var rng = RandomGenerator(seed: 8)
        let evaluator = try Evaluator(.tiny(.shapes), using: &rng)
        let images = Tensor.uniform([6, 3, 16, 16], low: -1, high: 1, using: &rng)
        let (features, classes) = evaluator.evaluate(images, batchSize: 3)
        let (scoped, scopedClasses) = BLAS.withPrecision(.bf16) { evaluator.evaluate(images, batchSize: 3) }
        #expect(scoped.values == features.values)
        #expect(scopedClasses == classes)
        let direct = Autograd.withoutGrad { BLAS.withPrecision(.bf16) { evaluator(images).features.values } }
        let plain = Autograd.withoutGrad { evaluator(images).features.values }
        #expect(direct != plain)
    }

    @Test func trainingRejectsDataOfTheOtherTask() throws {
        let trainer = try EvaluatorTrainer(.tiny(.fashion).withChannels(3), training: TrainingRunSettings.evaluator.with(steps: 1, batchSize: 4),
                                           dataset: evaluationTestShapes(.train, count: 8))
        #expect(thrownMessage { try trainer.trainStep() }?.contains("fashion evaluator") == true)
    }
}

extension EvaluatorConfiguration {
    func withChannels(_ c: Int) -> EvaluatorConfiguration {
        var copy = self
        copy.channels = c
        return copy
    }
}
