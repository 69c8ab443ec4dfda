import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct VQVAEModelTests {
    @Test(arguments: [2, 4, 8], [1, 3])
    func encodeDecodeShapes(downsampling: Int, channels: Int) throws {
        var rng = RandomGenerator(seed: UInt64(downsampling * 10 + channels))
        let widths = [Int](repeating: 4, count: downsampling.trailingZeroBitCount + 1)
        let model = try VQVAE(VQVAEConfiguration(channels: channels, downsampling: downsampling, widths: widths,
                                                 residualBlocks: 1, codes: 16, codeDimension: 4), using: &rng)
        let images = Tensor.uniform([3, channels, 16, 24], low: -1, high: 1, using: &rng)
        let (tokens, h, w) = try model.encode(images)
        #expect(h == 16 / downsampling && w == 24 / downsampling)
        #expect(tokens.count == 3 * h * w)
        #expect(tokens.allSatisfy { $0 >= 0 && $0 < 16 })
        let decoded = try model.decode(tokens, count: 3, height: h, width: w)
        #expect(decoded.shape == [3, channels, 16, 24])
        let output = model(images)
        #expect(output.reconstruction.shape == images.shape)
        #expect(output.indices == tokens)                         // training forward assigns the same codes
    }

    @Test func badInputsAreRefusedWithAMessage() throws {
        var rng = RandomGenerator(seed: 1)
        let model = try VQVAE(.tiny, using: &rng)
        let grey = Tensor(zeros: [1, 1, 16, 16])
        #expect(thrownMessage { _ = try model.encode(grey) }?.contains("(B, 3, H, W)") == true)
        let odd = Tensor(zeros: [1, 3, 18, 16])
        #expect(thrownMessage { _ = try model.encode(odd) }?.contains("multiples of 4") == true)
        #expect(thrownMessage { _ = try model.decode([0, 1, 99, 2], count: 1, height: 2, width: 2) }?.contains("outside") == true)
        var bad = VQVAEConfiguration.tiny
        bad.downsampling = 3
        #expect(thrownMessage { try bad.validate() }?.contains("2, 4 or 8") == true)
    }

    @Test func saveAndLoadRoundTrip() throws {
        let folder = TemporaryFolder()
        var rng = RandomGenerator(seed: 2)
        let model = try VQVAE(.tiny, using: &rng)
        model.quantizer.clusterSize.pointer[3] = 2.5
        let url = folder.file("m.safetensors")
        try model.save(to: url)
        let loaded = try VQVAE.load(url)
        #expect(loaded.configuration == model.configuration)
        for (a, b) in zip(model.stateTensors, loaded.stateTensors) {
            #expect(a.name == b.name && a.tensor.values == b.tensor.values)
        }
    }

    @Test func metricsFollowTheirDefinitions() {
        var acc = VQVAEMetrics.Accumulator(codes: 4)
        let x = Tensor(shape: [1, 1, 1, 2], values: [-1, 1])       // pixels 0 and 255
        let y = Tensor(shape: [1, 1, 1, 2], values: [-1 + 10 / 127.5, 1])   // first off by 10
        acc.add(original: x, reconstruction: y, tokens: [0, 0, 1, 1])
        let m = acc.result
        #expect(abs(m.meanSquaredError - 50) < 1e-6)
        #expect(abs(m.psnr - 10 * log10(255.0 * 255 / 50)) < 1e-9)
        #expect(m.codebookUsage == 0.5)
        #expect(abs(m.perplexity - 2) < 1e-12)
        #expect(VQVAEMetrics.psnr(meanSquaredError: 0) == 100)
    }
}
