import Engine
import Foundation

// How much of a real image a trained VQ-Diffusion model restores. Real token grids are noised to
// x_t ~ q(x_t | x0) and the sampler walks from t down to 0 with their captions; the evaluator then
// reads the restored images against the captions. Starting low (t = 10: about a tenth of the
// tokens masked or replaced) asks for local completion with almost the whole object in view;
// starting at T is ordinary generation. Where an attribute is lost along t tells which part of the
// image the model has not learned to draw.

/// The restoration of real grids from one start time.
public struct DenoisingProbeResult: Equatable, Sendable {
    /// The start time t.
    public var time: Int
    /// Fraction of x_t's tokens that were [MASK], and that were a code other than the real one.
    public var maskedFraction: Double
    public var replacedFraction: Double
    /// Fraction of restored tokens equal to the real ones.
    public var tokenAgreement: Double
    /// The evaluator's reading of the restored images against their captions.
    public var alignment: AttributeScores
    /// Shapes: the shape read for each stated object of the restored images (nil for Fashion-MNIST).
    public var shapeReadings: ShapeReadings?
}

public enum DenoisingProbe {
    /// Restores `data`'s grids from each time in `times` (1…T) with `steps` sampling steps (nil:
    /// every step from t, capped at t) and truncation r; scores the restored images, and the real
    /// grids decoded as they are (the tokenizer's own ceiling), with `evaluator`; on Shapes each
    /// also with its shape readings.
    public static func run(model: DenoisingTransformer, schedule: DiffusionSchedule, textEncoder: TextEncoder,
                           vqvae: VQVAE, evaluator: Evaluator, data: TokenizedDataset, times: [Int],
                           steps: Int? = nil, truncation: Double? = 0.86, batchSize: Int = 100,
                           using rng: inout RandomGenerator,
                           progress: ((Int, Int) -> Void)? = nil) throws -> (reconstruction: AlignmentReading, results: [DenoisingProbeResult]) {
        let (K, N) = (schedule.classes, data.height * data.width)
        guard N == model.configuration.tokens else {
            throw DiffusionSamplingError("the data's \(data.height)×\(data.width) grids do not match the model's \(model.configuration.gridHeight)×\(model.configuration.gridWidth)")
        }
        guard data.codes == K else {
            throw DiffusionSamplingError("the data's tokens use \(data.codes) codes but the model was trained on \(K)")
        }
        for t in times where t < 1 || t > schedule.steps {
            throw DiffusionSamplingError("start time \(t) lies outside 1…\(schedule.steps)")
        }
        func score(_ tokens: [Int32]) throws -> AlignmentReading {
            let images = try Autograd.withoutGrad { try vqvae.decode(tokens, count: data.count, height: data.height, width: data.width) }
            let classes = evaluator.evaluate(images).classes
            return alignment(task: evaluator.configuration.task, headClasses: classes, captions: data.captions)
        }
        let reconstruction = try score(data.tokens)
        var results: [DenoisingProbeResult] = []
        let chunks = stride(from: 0, to: data.count, by: max(1, batchSize)).map { $0..<min($0 + max(1, batchSize), data.count) }
        let texts = try Autograd.withoutGrad { try chunks.map { try textEncoder.encode(Array(data.captions[$0])) } }
        for (i, t) in times.enumerated() {
            var restored: [Int32] = []
            restored.reserveCapacity(data.tokens.count)
            var (masked, replaced) = (0, 0)
            for (range, text) in zip(chunks, texts) {
                let b = range.count
                let x0 = Array(data.tokens[(range.lowerBound * N)..<(range.upperBound * N)])
                let xt = schedule.noised(x0, t: [Int](repeating: t, count: b), using: &rng)
                for (a, r) in zip(xt, x0) {
                    if a == Int32(K) { masked += 1 } else if a != r { replaced += 1 }
                }
                let options = DiffusionSamplingOptions(steps: steps.map { min($0, t) } ?? t, truncation: truncation)
                restored += DiffusionSampling.run(batch: b, tokens: N, schedule: schedule,
                                                  parameterization: model.configuration.parameterization,
                                                  options: options, start: (xt, t), using: &rng) { x, time in
                    model.predict(x, t: [Int](repeating: time, count: b), text: text)
                }
            }
            let agreeing = zip(restored, data.tokens).filter { $0 == $1 }.count
            let total = Double(data.tokens.count)
            let read = try score(restored)
            results.append(DenoisingProbeResult(time: t, maskedFraction: Double(masked) / total,
                                                replacedFraction: Double(replaced) / total,
                                                tokenAgreement: Double(agreeing) / total,
                                                alignment: read.scores, shapeReadings: read.shapeReadings))
            progress?(i + 1, times.count)
        }
        return (reconstruction, results)
    }
}
