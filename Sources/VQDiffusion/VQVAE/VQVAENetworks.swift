import Engine

/// The convolutional encoder and decoder of the VQ-VAE.
///
/// Encoder, for widths w_0 … w_L (L = log2 f):
///   conv3×3 C → w_0, then per stage i: ReLU, conv4×4 stride 2 w_i → w_{i+1};
///   residual blocks at w_L; ReLU; conv1×1 w_L → d.
/// Decoder, the mirror image with nearest-neighbour upsampling instead of strided convolutions:
///   conv3×3 d → w_L; residual blocks; per stage i = L … 1: ReLU, upsample ×2, conv3×3 w_i → w_{i−1};
///   ReLU; conv3×3 w_0 → C.

/// x + conv1×1(ReLU(conv3×3(ReLU(x)))), with a bottleneck of half the width (as in the paper).
public final class ResidualBlock: CompositeModule {
    public let inner: Conv2d    // (w/2, w, 3, 3)
    public let outer: Conv2d    // (w, w/2, 1, 1)

    public init(width: Int, using rng: inout RandomGenerator) {
        let hidden = max(1, width / 2)
        inner = Conv2d(width, hidden, kernel: 3, padding: 1, using: &rng)
        outer = Conv2d(hidden, width, kernel: 1, using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {   // (B, w, h, w) → same
        x + outer(inner(x.relu()).relu())
    }

    public var children: [ModuleChild] { [.one("inner", inner), .one("outer", outer)] }
}

/// Image (B, C, H, W) in [-1, 1] → encoder outputs z_e (B, d, H/f, W/f).
public final class VQVAEEncoder: CompositeModule {
    public let input: Conv2d
    public let downsample: [Conv2d]
    public let blocks: [ResidualBlock]
    public let output: Conv2d

    public init(_ c: VQVAEConfiguration, using rng: inout RandomGenerator) {
        let w = c.resolvedWidths
        input = Conv2d(c.channels, w[0], kernel: 3, padding: 1, using: &rng)
        downsample = (0..<c.levels).map { i in Conv2d(w[i], w[i + 1], kernel: 4, stride: 2, padding: 1, using: &rng) }
        blocks = (0..<c.residualBlocks).map { _ in ResidualBlock(width: w[c.levels], using: &rng) }
        output = Conv2d(w[c.levels], c.codeDimension, kernel: 1, using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = input(x)                                        // (B, w0, H, W)
        for conv in downsample { h = conv(h.relu()) }           // (B, w_{i+1}, H/2^{i+1}, W/2^{i+1})
        for block in blocks { h = block(h) }                    // (B, wL, h, w)
        return output(h.relu())                                 // (B, d, h, w)
    }

    public var children: [ModuleChild] {
        [.one("input", input), .list("downsample", downsample), .list("blocks", blocks),
         .one("output", output)]
    }
}

/// Quantized grid (B, d, h, w) → image (B, C, h·f, w·f), unbounded (trained towards [-1, 1]).
public final class VQVAEDecoder: CompositeModule {
    public let input: Conv2d
    public let blocks: [ResidualBlock]
    /// upsample[j] runs after the j-th ×2 upsampling, from the coarsest stage to the finest.
    public let upsample: [Conv2d]
    public let output: Conv2d

    public init(_ c: VQVAEConfiguration, using rng: inout RandomGenerator) {
        let w = c.resolvedWidths
        let L = c.levels
        input = Conv2d(c.codeDimension, w[L], kernel: 3, padding: 1, using: &rng)
        blocks = (0..<c.residualBlocks).map { _ in ResidualBlock(width: w[L], using: &rng) }
        upsample = (0..<L).map { j in Conv2d(w[L - j], w[L - j - 1], kernel: 3, padding: 1, using: &rng) }
        output = Conv2d(w[0], c.channels, kernel: 3, padding: 1, using: &rng)
    }

    public func callAsFunction(_ z: Tensor) -> Tensor {
        var h = input(z)                                                  // (B, wL, h, w)
        for block in blocks { h = block(h) }
        for conv in upsample { h = conv(h.relu().upsampleNearest(factor: 2)) }  // ×2 per stage
        return output(h.relu())                                           // (B, C, H, W)
    }

    public var children: [ModuleChild] {
        [.one("input", input), .list("blocks", blocks),
         .list("upsample", upsample), .one("output", output)]
    }
}
