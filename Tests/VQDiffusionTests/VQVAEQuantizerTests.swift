import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite(.serialized) struct VQVAEQuantizerTests {
    /// A quantizer with the given codes (rows of `codebook`) and cluster sizes, m = N·e.
    func quantizer(_ codebook: [[Float]], sizes: [Float], threshold: Float = 0) -> VectorQuantizer {
        var rng = RandomGenerator(seed: 1)
        let q = VectorQuantizer(codes: codebook.count, dimension: codebook[0].count, decay: 0.99,
                                restartThreshold: threshold, using: &rng)
        let d = codebook[0].count
        for (k, code) in codebook.enumerated() {
            q.clusterSize.pointer[k] = sizes[k]
            for c in 0..<d {
                q.codebook.pointer[k * d + c] = code[c]
                q.embedSum.pointer[k * d + c] = code[c] * sizes[k]
            }
        }
        return q
    }

    @Test func nearestPicksTheClosestCode() {
        let q = quantizer([[0, 0], [10, 10], [-4, 3]], sizes: [1, 1, 1])
        let rows: [Float] = [1, 1, 9, 8, -3, 2, 6, 6]
        let indices = rows.withUnsafeBufferPointer { q.nearest($0.baseAddress!, count: 4) }
        #expect(indices == [0, 1, 2, 1])
    }

    @Test func emaUpdateMovesCodesTowardsAssignedOutputs() {
        let q = quantizer([[0, 0], [10, 10]], sizes: [5, 5])
        let rows: [Float] = [1, 1, 2, 0, 0, 2]             // three outputs near code 0, mean (1, 1)
        var rng = RandomGenerator(seed: 2)
        let before = hypot(q.codebook.pointer[0] - 1, q.codebook.pointer[1] - 1)
        let report = q.update(rows: rows, indices: [0, 0, 0], using: &rng)
        #expect(report.restarted == 0)
        let after = hypot(q.codebook.pointer[0] - 1, q.codebook.pointer[1] - 1)
        #expect(after < before)
        // N0 = 0.99·5 + 0.01·3, m0 = 0.99·0 + 0.01·(3, 3); N1 = 0.99·5, m1 = 0.99·(50, 50);
        // e_k = m_k / Ñ_k with Ñ_k = (N_k + ε)/(ΣN + 2ε)·ΣN.
        let (n0, n1) = (0.99 * 5 + 0.03, 0.99 * 5.0)
        let total = n0 + n1, eps = 1e-5
        let smoothed0 = (n0 + eps) / (total + 2 * eps) * total
        let smoothed1 = (n1 + eps) / (total + 2 * eps) * total
        #expect(abs(Double(q.codebook.pointer[0]) - 0.03 / smoothed0) < 1e-6)
        #expect(abs(Double(q.codebook.pointer[2]) - 49.5 / smoothed1) < 1e-4)   // unused code stays put (≈ 10)
        #expect(abs(Double(q.clusterSize.pointer[0]) - n0) < 1e-6)
        // Repeated updates with the same batch bring code 0 to the batch mean.
        for _ in 0..<2000 { q.update(rows: rows, indices: [0, 0, 0], using: &rng) }
        #expect(abs(q.codebook.pointer[0] - 1) < 1e-3 && abs(q.codebook.pointer[1] - 1) < 1e-3)
    }

    @Test func deadCodesAreRestartedOnEncoderOutputs() {
        let q = quantizer([[0, 0], [10, 10], [50, 50], [90, 90]], sizes: [5, 5, 0, 0.2], threshold: 1)
        let rows: [Float] = [1, 1, 9, 9, 2, 2]
        var rng = RandomGenerator(seed: 3)
        let report = q.update(rows: rows, indices: [0, 1, 0], using: &rng)
        #expect(report.restarted == 2)
        let batch = [[Float(1), 1], [9, 9], [2, 2]]
        let code2 = [q.codebook.pointer[4], q.codebook.pointer[5]]
        let code3 = [q.codebook.pointer[6], q.codebook.pointer[7]]
        #expect(batch.contains(code2) && batch.contains(code3))
        #expect(code2 != code3)                                   // distinct rows while the batch has enough
        // Live codes are not restarted; the statistics of a restarted code stay consistent (m = N·e).
        #expect(!batch.contains([q.codebook.pointer[0], q.codebook.pointer[1]]))
        #expect(abs(q.embedSum.pointer[6] - q.clusterSize.pointer[3] * code3[0]) < 1e-6)
        // A restart draws from the generator: the same state gives the same restarts.
        let again = quantizer([[0, 0], [10, 10], [50, 50], [90, 90]], sizes: [5, 5, 0, 0.2], threshold: 1)
        var rng2 = RandomGenerator(seed: 3)
        again.update(rows: rows, indices: [0, 1, 0], using: &rng2)
        #expect(again.codebook.values == q.codebook.values)
    }

    @Test func straightThroughPassesTheGradientUnchanged() {
        var rng = RandomGenerator(seed: 4)
        let ze = Tensor.randn([2, 3, 2, 2], requiresGrad: true, using: &rng)
        let zq = Tensor.randn([2, 3, 2, 2], using: &rng)
        let weights = Tensor.randn([2, 3, 2, 2], using: &rng)
        let out = straightThrough(ze, quantized: zq)
        #expect(out.values == zq.values)                         // forward: exactly z_q
        (out * weights).sum().backward()
        #expect(ze.grad!.values == weights.values)               // backward: identity onto z_e
    }

    @Test func commitmentGradientMatchesFiniteDifferences() throws {
        // Around a point where no assignment changes, the reconstruction term is locally constant in
        // the encoder (z_q does not move), so the loss's finite differences are the commitment
        // term's gradient alone; its analytic gradient must match them.
        var rng = RandomGenerator(seed: 5)
        var configuration = VQVAEConfiguration.tiny
        configuration.codes = 8
        let model = try VQVAE(configuration, using: &rng)
        let images = Tensor.uniform([2, 3, 8, 8], low: -1, high: 1, using: &rng)
        // Codes far apart compared with the perturbation, so that no assignment flips.
        let spread = Tensor.randn(model.quantizer.codebook.shape, using: &rng)
        model.quantizer.codebook.pointer.update(from: spread.pointer, count: spread.count)
        let bias = model.encoder.output.bias!
        let out = model(images)
        model.zeroGrad()
        (out.commitmentLoss * configuration.commitment).backward()
        let analytic = bias.grad!.values
        let eps: Float = 1e-3
        for i in 0..<bias.count {
            let saved = bias.pointer[i]
            bias.pointer[i] = saved + eps
            let plus = Autograd.withoutGrad { model(images) }
            bias.pointer[i] = saved - eps
            let minus = Autograd.withoutGrad { model(images) }
            bias.pointer[i] = saved
            #expect(plus.indices == out.indices && minus.indices == out.indices, "assignments moved; pick another point")
            let numeric = (plus.loss.item - minus.loss.item) / (2 * eps)
            #expect(abs(numeric - analytic[i]) <= 2e-3 + 2e-2 * abs(analytic[i]), "bias \(i): numeric \(numeric), analytic \(analytic[i])")
        }
        // The full backward adds the decoder's gradient, copied straight through, on top.
        model.zeroGrad()
        model(images).loss.backward()
        #expect(bias.grad!.values != analytic)
    }
}
