import Engine

// One transformer block of the generators (docs/design.md §2), pre-norm with residual connections:
//
//   x ← x + SelfAttention(Norm₁(x, t))                 full (diffusion) or causal (AR baseline)
//   x ← x + CrossAttention(Norm₂(x, t), text)          optional
//   x ← x + MLP(LayerNorm(x))                          Linear(C, 4C) → GELU → Linear(4C, C)
//
// With a token grid the MLP also mixes neighbours (a convolutional feed-forward):
// Linear(C, 4C) → depthwise 3×3 convolution over the grid → GELU → Linear(4C, C).
//
// Norm is AdaLN(t) when the block is time-conditioned, an ordinary LayerNorm otherwise.

/// The shape of a block.
public struct TransformerBlockConfiguration: Equatable, Codable, Sendable {
    /// Model width C.
    public var width: Int
    /// Attention heads (C must be divisible by it).
    public var heads: Int
    /// Hidden width of the MLP as a multiple of C.
    public var mlpRatio: Int = 4
    /// Causal self-attention (autoregressive decoding) instead of full attention.
    public var causal: Bool = false
    /// AdaLN conditioned on the diffusion time before both attentions; plain LayerNorm when false.
    public var timeConditioned: Bool = true
    /// Width of the context the cross-attention reads; nil for no cross-attention.
    public var contextWidth: Int?
    /// The token grid the sequence is laid out on, for a depthwise 3×3 convolution inside the
    /// MLP; nil for the plain MLP.
    public var mlpGrid: TokenGrid? = nil

    /// A sequence's h×w grid in raster order.
    public struct TokenGrid: Equatable, Codable, Sendable {
        public var height: Int
        public var width: Int

        public init(height: Int, width: Int) { (self.height, self.width) = (height, width) }
    }

    /// Multiply-adds ×2 of one forward pass over B sequences of length L with a context of length
    /// Lc (projections, attention scores and mixing, MLP); norms and elementwise work excluded.
    public func forwardFLOPs(batch B: Int, length L: Int, contextLength Lc: Int) -> Double {
        let (C, r) = (Double(width), Double(mlpRatio))
        let (b, l, lc) = (Double(B), Double(L), Double(Lc))
        var f = 2 * b * l * 4 * C * C + 2 * 2 * b * l * l * C          // self-attention
        if let cw = contextWidth {
            f += 2 * b * l * 2 * C * C + 2 * b * lc * 2 * Double(cw) * C + 2 * 2 * b * l * lc * C
        }
        f += 2 * b * l * 2 * r * C * C                                   // MLP
        if mlpGrid != nil { f += 2 * b * l * 9 * r * C }                 // its grid convolution
        return f
    }
}

public final class TransformerBlock: CompositeModule {
    public let configuration: TransformerBlockConfiguration
    public let selfAttentionNorm: BlockNorm
    public let selfAttention: SelfAttention
    public let crossAttentionNorm: BlockNorm?
    public let crossAttention: CrossAttention?
    public let mlpNorm: LayerNorm
    public let mlpHidden: Linear   // (rC, C), GELU fused unless the grid convolution follows
    public let mlpConvolution: GridConv?   // (9, rC) over the token grid
    public let mlpOutput: Linear   // (C, rC)

    public init(_ c: TransformerBlockConfiguration, using rng: inout RandomGenerator) {
        configuration = c
        selfAttentionNorm = BlockNorm(width: c.width, timeConditioned: c.timeConditioned, using: &rng)
        selfAttention = SelfAttention(width: c.width, heads: c.heads, causal: c.causal, using: &rng)
        if let contextWidth = c.contextWidth {
            crossAttentionNorm = BlockNorm(width: c.width, timeConditioned: c.timeConditioned, using: &rng)
            crossAttention = CrossAttention(width: c.width, contextWidth: contextWidth, heads: c.heads, using: &rng)
        } else {
            crossAttentionNorm = nil
            crossAttention = nil
        }
        mlpNorm = LayerNorm(c.width)
        mlpHidden = Linear(c.width, c.mlpRatio * c.width, activation: c.mlpGrid == nil ? .gelu : .none, using: &rng)
        // A causal block's convolution reads only the row above and the left neighbour.
        mlpConvolution = c.mlpGrid.map {
            GridConv(channels: c.mlpRatio * c.width, height: $0.height, width: $0.width, causal: c.causal, using: &rng)
        }
        mlpOutput = Linear(c.mlpRatio * c.width, c.width, using: &rng)
    }

    /// x (B, L, C); time (B, C) = SiLU(emb(t)) for time-conditioned blocks; context (B, Lc, Cc)
    /// with its key-padding mask (B·Lc) for blocks with cross-attention. Returns (B, L, C).
    public func callAsFunction(_ x: Tensor, time: Tensor?, context: Tensor?, contextMask: [Bool]?) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == configuration.width,
                     "TransformerBlock: input \(x.shape) must be [B, L, \(configuration.width)]")
        var h = x + selfAttention(selfAttentionNorm(x, time: time))                    // (B, L, C)
        if let crossAttention, let crossAttentionNorm {
            guard let context else { preconditionFailure("TransformerBlock: cross-attention needs a context") }
            h = h + crossAttention(crossAttentionNorm(h, time: time), context: context, contextMask: contextMask)
        }
        var hidden = mlpHidden(mlpNorm(h))                                               // (B, L, rC)
        if let mlpConvolution { hidden = mlpConvolution(hidden).gelu() }
        return h + mlpOutput(hidden)                                                     // (B, L, C)
    }

    public var children: [ModuleChild] {
        [.one("selfAttentionNorm", selfAttentionNorm), .one("selfAttention", selfAttention),
         .one("crossAttentionNorm", crossAttentionNorm), .one("crossAttention", crossAttention),
         .one("mlpNorm", mlpNorm), .one("mlpHidden", mlpHidden), .one("mlpConvolution", mlpConvolution),
         .one("mlpOutput", mlpOutput)]
    }
}
