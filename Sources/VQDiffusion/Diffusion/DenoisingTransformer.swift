import Engine

// The denoising network of VQ-Diffusion (docs/design.md §2): x_t (B, N) tokens in 0…K, the time t and
// the text features in; logits out.
//
//   x = TokenEmbedding(x_t) + RowEmbedding(i) + ColumnEmbedding(j)            (B, N, C)
//   context = Linear(text features)                                           (B, L, C)
//   x = Block_1…Block_depth(x, SiLU(emb(t)), context)                         (B, N, C)
//   logits = Linear(LayerNorm(x))                                             (B, N, K) or (B, N, K+1)
//
// With the x0 reparameterization the K logits give log p_θ(x0 | x_t) by log-softmax (no [MASK]
// output); with the direct parameterization K+1 logits give log p_θ(x_{t−1} | x_t) itself.

/// What the network's output means.
public enum DiffusionParameterization: String, Codable, Sendable, CaseIterable {
    /// K logits: log p_θ(x0 | x_t); p_θ(x_{t−1} | x_t) comes from the posterior (Eq. 11).
    case reparameterized
    /// K+1 logits: log p_θ(x_{t−1} | x_t) directly; no auxiliary loss, no exact step skipping.
    case direct
}

/// The shape of the denoising transformer.
public struct DiffusionModelConfiguration: Equatable, Codable, Sendable {
    /// K real codes; the input vocabulary is K+1 with [MASK] = K.
    public var classes: Int
    /// Token grid h×w (N = h·w).
    public var gridHeight: Int
    public var gridWidth: Int
    /// T, the number of diffusion steps (rows of the time-embedding table).
    public var steps: Int
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
    /// Output meaning (the reparameterization study).
    public var parameterization: DiffusionParameterization = .reparameterized
    /// Factor applied to the text features before the model's projection. Unit-norm
    /// features (MiniLM's, L2-normalised per token) are read at √D, so that their elements have
    /// unit scale like the token embeddings: the cross-attention keys then start large enough for
    /// attention to single out words rather than average the caption.
    public var textScale: Float = 1
    /// Standard deviation of the token and position embedding tables at initialisation (0.02,
    /// the usual transformer setting). 1 starts them at the scale of a LayerNorm's output,
    /// so that what a token is and where it sits are not drowned in the residual stream by the
    /// first blocks' outputs.
    public var embeddingStd: Float = Embedding.defaultStd
    /// How the row and column position tables start (random, the reference's, or sinusoidal).
    public var positionInitialisation: PositionInitialisation = .random
    /// A depthwise 3×3 convolution over the token grid inside every block's MLP (off: the paper's
    /// plain MLP): each token's features mix with its 8 neighbours', a local bias for the
    /// outlines the codes draw together.
    public var gridConvolution: Bool = false

    public init(classes: Int, gridHeight: Int, gridWidth: Int, steps: Int, textWidth: Int, width: Int, depth: Int,
                heads: Int, mlpRatio: Int = 4, parameterization: DiffusionParameterization = .reparameterized) {
        self.classes = classes
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
        self.steps = steps
        self.textWidth = textWidth
        self.width = width
        self.depth = depth
        self.heads = heads
        self.mlpRatio = mlpRatio
        self.parameterization = parameterization
    }

    /// For tests: width 32, 2 blocks, 4 heads.
    public static func tiny(classes: Int, gridHeight: Int, gridWidth: Int, steps: Int, textWidth: Int) -> Self {
        Self(classes: classes, gridHeight: gridHeight, gridWidth: gridWidth, steps: steps, textWidth: textWidth,
             width: 32, depth: 2, heads: 4)
    }

    /// For the studies on 2 cores: width 256, 4 blocks, 8 heads (about 4.8 M parameters with
    /// K = 512, 8×8 tokens and 384-wide text features).
    public static func small(classes: Int, gridHeight: Int, gridWidth: Int, steps: Int, textWidth: Int) -> Self {
        Self(classes: classes, gridHeight: gridHeight, gridWidth: gridWidth, steps: steps, textWidth: textWidth,
             width: 256, depth: 4, heads: 8)
    }

    /// A named preset ("tiny" or "small"), or nil.
    public static func preset(_ name: String, classes: Int, gridHeight: Int, gridWidth: Int, steps: Int,
                              textWidth: Int) -> Self? {
        switch name {
        case "tiny": tiny(classes: classes, gridHeight: gridHeight, gridWidth: gridWidth, steps: steps, textWidth: textWidth)
        case "small": small(classes: classes, gridHeight: gridHeight, gridWidth: gridWidth, steps: steps, textWidth: textWidth)
        default: nil
        }
    }

    public var tokens: Int { gridHeight * gridWidth }
    /// Width of the output: K (reparameterized) or K+1 (direct).
    public var outputClasses: Int { parameterization == .direct ? classes + 1 : classes }

    public var block: TransformerBlockConfiguration {
        var c = TransformerBlockConfiguration(width: width, heads: heads, mlpRatio: mlpRatio, causal: false,
                                              timeConditioned: true, contextWidth: width)
        if gridConvolution { c.mlpGrid = .init(height: gridHeight, width: gridWidth) }
        return c
    }

    /// FLOPs (2 per multiply-add) of one forward pass at batch B with text length L; a training
    /// step (forward + backward) costs about 3× this.
    public func forwardFLOPs(batch B: Int, textLength L: Int) -> Double {
        let (b, n, c) = (Double(B), Double(tokens), Double(width))
        let blocks = Double(depth) * block.forwardFLOPs(batch: B, length: tokens, contextLength: L)
        let text = 2 * b * Double(L) * Double(textWidth) * c
        let head = 2 * b * n * c * Double(outputClasses)
        return blocks + text + head
    }
}

public final class DenoisingTransformer: CompositeModule {
    public let configuration: DiffusionModelConfiguration
    public let tokenEmbedding: Embedding          // (K+1, C)
    public let positionEmbedding: PositionEmbedding2D
    public let timeEmbedding: TimestepEmbedding   // (T, C)
    public let textProjection: Linear             // (C, D)
    public let blocks: [TransformerBlock]
    public let headNorm: LayerNorm
    public let head: Linear                       // (K or K+1, C)

    public init(_ c: DiffusionModelConfiguration, using rng: inout RandomGenerator) {
        precondition(c.classes >= 1 && c.width >= 1 && c.depth >= 1 && c.steps >= 1 && c.textWidth >= 1,
                     "DenoisingTransformer: invalid configuration \(c)")
        configuration = c
        precondition(c.embeddingStd > 0 && c.embeddingStd.isFinite,
                     "DenoisingTransformer: embedding std \(c.embeddingStd) must be a positive number")
        let embeddingStd = c.embeddingStd
        tokenEmbedding = Embedding(c.classes + 1, c.width, std: embeddingStd, using: &rng)
        positionEmbedding = PositionEmbedding2D(height: c.gridHeight, width: c.gridWidth, dimension: c.width,
                                                std: embeddingStd,
                                                initialisation: c.positionInitialisation, using: &rng)
        timeEmbedding = TimestepEmbedding(steps: c.steps, width: c.width, using: &rng)
        textProjection = Linear(c.textWidth, c.width, using: &rng)
        blocks = (0..<c.depth).map { _ in TransformerBlock(c.block, using: &rng) }
        headNorm = LayerNorm(c.width)
        head = Linear(c.width, c.outputClasses, using: &rng)
    }

    /// Logits (B, N, K) — or (B, N, K+1) with the direct parameterization — for tokens x_t
    /// (B·N, values 0…K, raster order), one time t_b in 1…T per batch element, and text features
    /// (B, L, D) with their padding mask.
    public func logits(_ xt: [Int32], t: [Int], text: TextFeatures) -> Tensor {
        let c = configuration
        let (B, N) = (t.count, c.tokens)
        precondition(xt.count == B * N, "DenoisingTransformer: \(xt.count) tokens for \(B) grids of \(N)")
        precondition(text.batch == B && text.width == c.textWidth,
                     "DenoisingTransformer: text features \(text.features.shape) do not match batch \(B) and width \(c.textWidth)")
        var x = tokenEmbedding(xt, shape: [B, N]) + positionEmbedding()   // (B, N, C)
        let time = timeEmbedding(t)                                        // (B, C)
        let context = textProjection(text.scaled(by: c.textScale).features)  // (B, L, C)
        for block in blocks { x = block(x, time: time, context: context, contextMask: text.mask) }
        return head(headNorm(x))                                           // (B, N, K or K+1)
    }

    /// Log-probabilities: log p_θ(x0 | x_t) (B, N, K), or log p_θ(x_{t−1} | x_t) (B, N, K+1) with
    /// the direct parameterization.
    public func callAsFunction(_ xt: [Int32], t: [Int], text: TextFeatures) -> Tensor {
        logits(xt, t: t, text: text).logSoftmax()
    }

    /// `callAsFunction` for inference: no graph is recorded, and the batch is cut into one row
    /// shard per thread, each evaluated on its own thread with single-threaded kernels
    /// (`Parallel.shards`), the rows then put back in order. Sampling uses it: its batches are
    /// too small for splitting each kernel to keep two threads busy. A batch with fewer than
    /// `GeneratorShards.inferenceRows` rows per shard runs whole, on split kernels, which are then
    /// faster. `shards` overrides the count.
    public func predict(_ xt: [Int32], t: [Int], text: TextFeatures, shards: Int? = nil) -> Tensor {
        let (B, N) = (t.count, configuration.tokens)
        let shards = min(shards ?? Parallel.chunkCount(B, minimumPerChunk: GeneratorShards.inferenceRows), B)
        guard shards > 1 else { return Autograd.withoutGrad { self(xt, t: t, text: text) } }
        let parts = Parallel.shards(shards) { i in
            let rows = Parallel.chunkRange(B, chunks: shards, index: i)
            return Autograd.withoutGrad {
                self(Array(xt[(rows.lowerBound * N)..<(rows.upperBound * N)]), t: Array(t[rows]), text: text.rows(rows))
            }
        }
        return concat(parts, axis: 0)
    }

    public var children: [ModuleChild] {
        [.one("tokenEmbedding", tokenEmbedding), .one("positionEmbedding", positionEmbedding),
         .one("timeEmbedding", timeEmbedding), .one("textProjection", textProjection),
         .list("blocks", blocks), .one("headNorm", headNorm), .one("head", head)]
    }
}
