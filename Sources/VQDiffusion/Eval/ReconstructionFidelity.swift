import Engine
import Foundation

/// How much of an image a tokenizer keeps: pixel error (PSNR) and how much meaning survives
/// (the evaluator's accuracy on reconstructions next to its accuracy on the originals).
public struct FidelityResult: Sendable {
    /// Images compared.
    public let count: Int
    /// Mean squared error over every value, images in [-1, 1].
    public let meanSquaredError: Double
    /// PSNR in dB of the whole set's mean squared error, with peak-to-peak range 2 ([-1, 1]):
    /// 10·log10(4 / MSE), capped at `ReconstructionFidelity.maximumPSNR` (exact reconstructions).
    public let psnr: Double
    /// Mean over images of each image's PSNR (each capped the same way).
    public let meanImagePSNR: Double
    /// The evaluator's per-attribute accuracy on the originals.
    public let originalAccuracy: AttributeScores
    /// The same on the reconstructions, against the originals' attributes.
    public let reconstructionAccuracy: AttributeScores
}

public enum ReconstructionFidelity {
    /// The PSNR reported for a (numerically) exact reconstruction, in dB: MSE ≤ 4·10⁻¹⁰ counts as
    /// exact, so results stay finite and comparable in tables and the results database.
    public static let maximumPSNR = 100.0

    /// PSNR in dB of a mean squared error for images in [-1, 1] (peak-to-peak 2), capped.
    public static func psnr(meanSquaredError mse: Double) -> Double {
        precondition(mse >= 0 && !mse.isNaN, "psnr: mean squared error must be ≥ 0, got \(mse)")
        guard mse > 0 else { return maximumPSNR }
        return min(maximumPSNR, 10 * Foundation.log10(4 / mse))
    }

    /// Reconstructs `images` (N, C, S, S) in [-1, 1] `batchSize` at a time with `reconstruct`
    /// (which must return the batch's shape), and compares: PSNR, and the evaluator's accuracy
    /// against `attributes` (one per image) on originals and on reconstructions.
    public static func measure(evaluator: Evaluator, images: Tensor, attributes: [SampleAttributes],
                               batchSize: Int = 64, reconstruct: (Tensor) throws -> Tensor) throws -> FidelityResult {
        precondition(images.rank == 4, "ReconstructionFidelity: expected (N, C, S, S) images, got shape \(images.shape)")
        let N = images.shape[0]
        precondition(attributes.count == N, "ReconstructionFidelity: \(attributes.count) attribute sets for \(N) images")
        precondition(batchSize >= 1, "ReconstructionFidelity: batch size must be ≥ 1, got \(batchSize)")
        guard N >= 1 else { throw MetricError("reconstruction fidelity needs at least one image") }
        let task = evaluator.configuration.task
        let per = images.count / N
        var squaredError = 0.0, psnrSum = 0.0
        var original = AttributeScores(), reconstructed = AttributeScores()
        var start = 0
        while start < N {
            let n = min(batchSize, N - start)
            let batch = Tensor(uninitializedShape: [n] + Array(images.shape.dropFirst()))   // (n, C, S, S)
            batch.pointer.update(from: images.pointer + start * per, count: n * per)
            let output = try Autograd.withoutGrad { try reconstruct(batch) }
            guard output.shape == batch.shape else {
                throw MetricError("the reconstruction of a batch of shape \(batch.shape) has shape \(output.shape); "
                    + "the tokenizer must return images of the input's shape")
            }
            let (a, b) = (batch.pointer, output.pointer)
            for i in 0..<n {
                var e = 0.0
                for j in (i * per)..<((i + 1) * per) {
                    let d = Double(a[j]) - Double(b[j])
                    e += d * d
                }
                guard e.isFinite else {
                    throw MetricError("the reconstruction of image \(start + i) contains non-finite values; check the tokenizer")
                }
                squaredError += e
                psnrSum += psnr(meanSquaredError: e / Double(per))
            }
            let batchAttributes = Array(attributes[start..<(start + n)])
            let (_, originalClasses) = evaluator.evaluate(batch)
            let (_, reconstructedClasses) = evaluator.evaluate(output)
            original.merge(try EvaluatorAccuracy.score(headClasses: originalClasses, attributes: batchAttributes, task: task))
            reconstructed.merge(try EvaluatorAccuracy.score(headClasses: reconstructedClasses, attributes: batchAttributes, task: task))
            start += n
        }
        let mse = squaredError / Double(images.count)
        return FidelityResult(count: N, meanSquaredError: mse, psnr: psnr(meanSquaredError: mse),
                              meanImagePSNR: psnrSum / Double(N), originalAccuracy: original,
                              reconstructionAccuracy: reconstructed)
    }
}
