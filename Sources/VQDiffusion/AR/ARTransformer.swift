import Engine

// The autoregressive baseline VQ-AR (Sec. 4 of the paper: "the same network with the diffusion
// decoder replaced by an autoregressive one"). The image tokens are read in raster order and each
// is predicted from the ones before it and the text:
//
//   input_n = TokenEmbedding(x_{n−1}) + RowEmbedding(i_n) + ColumnEmbedding(j_n),  x_{−1} = [START]
//   context = Linear(text features)                                             (B, L, C)
//   h = Block_1…Block_depth(input, context)   causal self-attention, no time    (B, N, C)
//   logits_n = Linear(LayerNorm(h_n))  →  p(x_n | x_<n, text)                   (B, N, K)
//
// Position n's input carries the embedding of the position it predicts, so the network knows
// where in the grid the next token lies. [START] = K, the index the diffusion model uses for
// [MASK], so both vocabularies are K+1 wide.
//
// The blocks are the diffusion model's (`TransformerBlock`) with `causal: true` and
// `timeConditioned: false`: plain LayerNorms replace AdaLN(t). AdaLN's projections are 4C² of
// each diffusion block's ≈ 20C² parameters; `matching` gives them back to the MLP (hidden width
// 6C instead of 4C), so both models have the same width, depth and, within a few per cent, the
// same parameter count.

/// The shape of the autoregressive transformer.
public struct ARModelConfiguration: Equatable, Codable, Sendable {
    /// K real codes; the input vocabulary is K+1 with [START] = K.
    public var classes: Int
    /// Token grid h×w (N = h·w), read in raster order.
    public var gridHeight: Int
    public var gridWidth: Int
    /// Width D of the text features the model reads.
    public var textWidth: Int
    /// Model width C.
    public var width: Int
    /// Number of transformer blocks.
    public var depth: Int
    /// Attention heads per block.
    public var heads: Int
    /// MLP hidden width as a multiple of C.
    public var mlpRatio: Int = 4
    /// Factor applied to the text features before the model's projection. Unit-norm
    /// features (MiniLM's, L2-normalised per token) are read at √D, so that their elements have
    /// unit scale like the token embeddings: the cross-attention keys then start large enough for
    /// attention to single out words rather than average the caption.
    public var textScale: Float = 1
    /// A causal depthwise 3×3 convolution over the token grid in every block's MLP, reading the
    /// row above and the left neighbour only (the counterpart of the diffusion model's
    /// `gridConvolution`; not in the paper). A later field: the schema rule leaves it out when off.
    public var gridConvolution: Bool = false

    /// The baseline for a diffusion model: the same codes, grid, text features, width, depth and
    /// heads, with the MLP ratio (1…4× the diffusion model's) whose parameter count is closest to
    /// the diffusion model's.
    public static func matching(_ d: DiffusionModelConfiguration) -> Self {
        var best = Self(classes: d.classes, gridHeight: d.gridHeight, gridWidth: d.gridWidth, textWidth: d.textWidth,
                        width: d.width, depth: d.depth, heads: d.heads, mlpRatio: d.mlpRatio,
                        gridConvolution: d.gridConvolution)
        let target = diffusionParameterCount(d)
        for ratio in 1...(4 * d.mlpRatio) {
            var candidate = best
            candidate.mlpRatio = ratio
            if abs(candidate.parameterCount - target) < abs(best.parameterCount - target) { best = candidate }
        }
        best.textScale = d.textScale
        return best
    }

    public var tokens: Int { gridHeight * gridWidth }
    /// The [START] token's index.
    public var startToken: Int32 { Int32(classes) }

    public var block: TransformerBlockConfiguration {
        TransformerBlockConfiguration(width: width, heads: heads, mlpRatio: mlpRatio, causal: true,
                                      timeConditioned: false, contextWidth: width,
                                      mlpGrid: gridConvolution ? .init(height: gridHeight, width: gridWidth) : nil)
    }

    /// Parameters of one block's grid convolution (9 taps and a bias per hidden channel), if any.
    static func gridConvolutionParameters(width C: Int, mlpRatio r: Int, _ on: Bool) -> Int {
        on ? (GridConvGeometry.taps + 1) * r * C : 0
    }

    /// Parameters of `ARTransformer(self)`, counted from the shapes.
    public var parameterCount: Int {
        let (C, K, r) = (width, classes, mlpRatio)
        let attention = 4 * (C * C + C)
        let block = 3 * 2 * C + 2 * attention + (r * C * C + r * C) + (r * C * C + C)
            + Self.gridConvolutionParameters(width: C, mlpRatio: r, gridConvolution)
        return (K + 1) * C + (gridHeight + gridWidth) * C + (textWidth * C + C) + depth * block + 2 * C + (C * K + K)
    }

    /// Parameters of `DenoisingTransformer(d)`, counted from the shapes.
    public static func diffusionParameterCount(_ d: DiffusionModelConfiguration) -> Int {
        let (C, r, out) = (d.width, d.mlpRatio, d.outputClasses)
        let attention = 4 * (C * C + C)
        let adaLN = 2 * C * C + 2 * C
        let block = 2 * adaLN + 2 * C + 2 * attention + (r * C * C + r * C) + (r * C * C + C)
            + gridConvolutionParameters(width: C, mlpRatio: r, d.gridConvolution)
        return (d.classes + 1) * C + (d.gridHeight + d.gridWidth) * C + d.steps * C + (d.textWidth * C + C)
            + d.depth * block + 2 * C + (C * out + out)
    }

    /// FLOPs (2 per multiply-add) of one teacher-forced forward pass over B whole grids with text
    /// length L; a training step costs about 3× this.
    public func forwardFLOPs(batch B: Int, textLength L: Int) -> Double {
        let (b, n, c) = (Double(B), Double(tokens), Double(width))
        let blocks = Double(depth) * block.forwardFLOPs(batch: B, length: tokens, contextLength: L)
        return blocks + 2 * b * Double(L) * Double(textWidth) * c + 2 * b * n * c * Double(classes)
    }
}

public final class ARTransformer: CompositeModule {
    public let configuration: ARModelConfiguration
    public let tokenEmbedding: Embedding          // (K+1, C)
    public let positionEmbedding: PositionEmbedding2D
    public let textProjection: Linear             // (C, D)
    public let blocks: [TransformerBlock]
    public let headNorm: LayerNorm
    public let head: Linear                       // (K, C)

    public init(_ c: ARModelConfiguration, using rng: inout RandomGenerator) {
        precondition(c.classes >= 1 && c.width >= 1 && c.depth >= 1 && c.textWidth >= 1 && c.mlpRatio >= 1,
                     "ARTransformer: invalid configuration \(c)")
        configuration = c
        tokenEmbedding = Embedding(c.classes + 1, c.width, using: &rng)
        positionEmbedding = PositionEmbedding2D(height: c.gridHeight, width: c.gridWidth, dimension: c.width, using: &rng)
        textProjection = Linear(c.textWidth, c.width, using: &rng)
        blocks = (0..<c.depth).map { _ in TransformerBlock(c.block, using: &rng) }
        headNorm = LayerNorm(c.width)
        head = Linear(c.width, c.classes, using: &rng)
    }

    /// The teacher-forcing inputs of grids `x` (B·N): each grid shifted right by one behind [START].
    public func shiftedInputs(_ x: [Int32], batch B: Int) -> [Int32] {
        let N = configuration.tokens
        precondition(x.count == B * N, "ARTransformer: \(x.count) tokens for \(B) grids of \(N)")
        var inputs = [Int32](repeating: configuration.startToken, count: B * N)   // (B, N)
        for b in 0..<B where N > 1 {
            for n in 1..<N { inputs[b * N + n] = x[b * N + n - 1] }
        }
        return inputs
    }

    /// Teacher-forced logits (B, N, K): position n holds the prediction of x_n from x_<n and the
    /// text, for grids `x` (B·N, values 0…K−1, raster order) and text features (B, L, D).
    public func logits(_ x: [Int32], text: TextFeatures) -> Tensor {
        let c = configuration
        let (B, N) = (text.batch, c.tokens)
        precondition(text.width == c.textWidth,
                     "ARTransformer: text features \(text.features.shape) do not have width \(c.textWidth)")
        let inputs = shiftedInputs(x, batch: B)
        var h = tokenEmbedding(inputs, shape: [B, N]) + positionEmbedding()   // (B, N, C)
        let context = textProjection(text.scaled(by: c.textScale).features)  // (B, L, C)
        for block in blocks { h = block(h, time: nil, context: context, contextMask: text.mask) }
        return head(headNorm(h))                                              // (B, N, K)
    }

    /// Mean cross-entropy of the teacher-forced predictions against `x` (B·N), with the logits.
    public func loss(_ x: [Int32], text: TextFeatures) -> (loss: Tensor, logits: Tensor) {
        let logits = self.logits(x, text: text)                               // (B, N, K)
        let K = configuration.classes
        return (crossEntropy(logits: logits.reshape([x.count, K]), targets: x), logits)
    }

    public var children: [ModuleChild] {
        [.one("tokenEmbedding", tokenEmbedding), .one("positionEmbedding", positionEmbedding),
         .one("textProjection", textProjection), .list("blocks", blocks), .one("headNorm", headNorm),
         .one("head", head)]
    }
}
