import Engine
import Foundation

/// Reconstruction quality and codebook use of a VQ-VAE on a set of images.
///
/// - PSNR = 10·log10(255² / MSE) with MSE the mean squared error over every pixel value of every
///   image, on the 0…255 scale, after the reconstruction is rounded to 8 bits as a PNG would hold it.
/// - Usage: the fraction of the K codes that occur at least once among the images' tokens.
/// - Perplexity: exp(H) of the empirical code distribution p_k = n_k / Σn (K when all codes are
///   equally used, 1 when one code takes everything).
public struct VQVAEMetrics: Equatable, Sendable {
    public var psnr: Double
    /// Mean squared error on the 0…255 scale.
    public var meanSquaredError: Double
    public var codebookUsage: Double
    public var perplexity: Double
    /// Images measured.
    public var count: Int

    /// Accumulates squared errors and code counts batch by batch.
    public struct Accumulator {
        public let codes: Int
        private(set) var squaredError: Double = 0
        private(set) var values: Int = 0
        private(set) var images: Int = 0
        private(set) var histogram: [Int]

        public init(codes: Int) {
            self.codes = codes
            histogram = [Int](repeating: 0, count: codes)
        }

        /// Adds a batch: originals and reconstructions (B, C, H, W) in [-1, 1], and its tokens.
        public mutating func add(original: Tensor, reconstruction: Tensor, tokens: [Int32]) {
            precondition(original.shape == reconstruction.shape,
                         "metrics: original \(original.shape) and reconstruction \(reconstruction.shape) differ")
            let (x, y) = (original.pointer, reconstruction.pointer)
            var sum = 0.0
            for i in 0..<original.count {
                let a = VQVAEMetrics.pixel(x[i]), b = VQVAEMetrics.pixel(y[i])
                sum += (a - b) * (a - b)
            }
            squaredError += sum
            values += original.count
            images += original.shape[0]
            for t in tokens { histogram[Int(t)] += 1 }
        }

        public var result: VQVAEMetrics {
            let mse = values > 0 ? squaredError / Double(values) : 0
            let total = Double(histogram.reduce(0, +))
            var entropy = 0.0
            for n in histogram where n > 0 {
                let p = Double(n) / total
                entropy -= p * Foundation.log(p)
            }
            return VQVAEMetrics(psnr: VQVAEMetrics.psnr(meanSquaredError: mse), meanSquaredError: mse,
                                codebookUsage: Double(histogram.filter { $0 > 0 }.count) / Double(codes),
                                perplexity: total > 0 ? Foundation.exp(entropy) : 0, count: images)
        }
    }

    /// A [-1, 1] value as the 8-bit pixel value an image would store (rounded, clamped).
    @inline(__always)
    static func pixel(_ v: Float) -> Double {
        let q = ((v + 1) * 127.5).rounded()
        return Double(q.isNaN ? 0 : min(max(q, 0), 255))
    }

    /// 10·log10(255² / mse); 100 dB for a perfect reconstruction.
    public static func psnr(meanSquaredError mse: Double) -> Double {
        mse > 0 ? 10 * Foundation.log10(255 * 255 / mse) : 100
    }

    /// Measures `model` on the first `count` samples of `dataset` (all when nil), in batches.
    public static func evaluate(_ model: VQVAE, on dataset: any CaptionedDataset, count: Int? = nil,
                                batchSize: Int = 64, progress: ((Int) -> Void)? = nil) throws -> VQVAEMetrics {
        let n = min(count ?? dataset.count, dataset.count)
        guard n > 0 else { throw VQVAEError("the evaluation set is empty: give a count of at least 1.") }
        let loader = BatchLoader(dataset: dataset, batchSize: batchSize, shuffle: false, generator: RandomGenerator(seed: 0))
        var accumulator = Accumulator(codes: model.codes)
        var start = 0
        while start < n {
            let batch = loader.batch(indices: Array(start..<min(n, start + batchSize)))
            let (tokens, h, w) = try model.encode(batch.images)
            let reconstruction = try model.decode(tokens, count: batch.count, height: h, width: w)
            accumulator.add(original: batch.images, reconstruction: reconstruction, tokens: tokens)
            start += batch.count
            progress?(start)
        }
        return accumulator.result
    }
}
