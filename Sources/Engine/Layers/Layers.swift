/// Parameterised layers: small `final class`es built from a configuration, called with
/// `callAsFunction`, listing their parameters for optimizers and checkpoints.
/// Initialisation follows common practice (PyTorch defaults for Linear and Conv2d, N(0, 0.02) for
/// embeddings) and draws only from the generator passed in.

/// y = activation(x·Wᵀ + b). Weight [out, in], bias [out].
public final class Linear: Module {
    public let weight: Tensor   // (out, in)
    public let bias: Tensor?    // (out)
    public let activation: Activation

    public init(_ inputs: Int, _ outputs: Int, bias: Bool = true, activation: Activation = .none,
                initStd: Float? = nil, using rng: inout RandomGenerator) {
        let bound = 1 / Float(inputs).squareRoot()
        if let std = initStd {
            weight = Tensor.randn([outputs, inputs], std: std, requiresGrad: true, using: &rng)
        } else {
            weight = Tensor.uniform([outputs, inputs], low: -bound, high: bound, requiresGrad: true, using: &rng)
        }
        self.bias = bias ? Tensor(zeros: [outputs], requiresGrad: true) : nil
        self.activation = activation
    }

    public var inputs: Int { weight.shape[1] }
    public var outputs: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight, bias, activation: activation) }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        visit(prefix + "weight", weight)
        if let bias { visit(prefix + "bias", bias) }
    }
}

/// Layer normalisation over the last axis, with optional affine parameters.
public final class LayerNorm: Module {
    public let weight: Tensor?  // (C)
    public let bias: Tensor?    // (C)
    public let eps: Float

    public init(_ channels: Int, affine: Bool = true, eps: Float = 1e-5) {
        weight = affine ? Tensor(shape: [channels], repeating: 1, requiresGrad: true) : nil
        bias = affine ? Tensor(zeros: [channels], requiresGrad: true) : nil
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        if let weight { visit(prefix + "weight", weight) }
        if let bias { visit(prefix + "bias", bias) }
    }
}

/// A table of `count` learned vectors of width `dimension`.
public final class Embedding: Module {
    public let weight: Tensor   // (count, dimension)
    /// The spread of a table at initialisation unless told otherwise: N(0, 0.02²).
    public static let defaultStd: Float = 0.02

    public init(_ count: Int, _ dimension: Int, std: Float = Embedding.defaultStd, using rng: inout RandomGenerator) {
        weight = Tensor.randn([count, dimension], std: std, requiresGrad: true, using: &rng)
    }

    public var count: Int { weight.shape[0] }
    public var dimension: Int { weight.shape[1] }

    /// Rows for `ids` laid out with `shape`; the result has shape `shape + [dimension]`.
    public func callAsFunction(_ ids: [Int32], shape: [Int]) -> Tensor { embedding(weight, ids, shape: shape) }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        visit(prefix + "weight", weight)
    }
}

/// 2-D convolution over [N, C, H, W] with a square kernel.
public final class Conv2d: Module {
    public let weight: Tensor   // (O, C, k, k)
    public let bias: Tensor?    // (O)
    public let stride: Int
    public let padding: Int

    public init(_ inputs: Int, _ outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, using rng: inout RandomGenerator) {
        let bound = 1 / Float(inputs * kernel * kernel).squareRoot()
        weight = Tensor.uniform([outputs, inputs, kernel, kernel], low: -bound, high: bound,
                                requiresGrad: true, using: &rng)
        self.bias = bias ? Tensor(zeros: [outputs], requiresGrad: true) : nil
        self.stride = stride
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        visit(prefix + "weight", weight)
        if let bias { visit(prefix + "bias", bias) }
    }
}

/// Depthwise 3×3 convolution over a token grid: a sequence (B, h·w, C) in raster order read as
/// B grids h×w, each channel mixed with its 8 neighbours (`gridConv`). Weight (9, C) starts as
/// PyTorch's depthwise Conv2d (uniform ±1/√9), bias at 0.
///
/// `causal` keeps only the taps at or before the centre in raster order (the row above and the
/// left neighbour, as PixelCNN's masks do), so position n reads no position after n: what an
/// autoregressive model needs. The other taps are multiplied by 0 in every forward pass, so they
/// get no gradient either.
public final class GridConv: Module {
    public let weight: Tensor   // (9, C)
    public let bias: Tensor     // (C)
    public let height: Int
    public let width: Int
    public let causal: Bool
    /// (9, C): 1 for the taps a causal convolution keeps, 0 for the rest.
    private let mask: Tensor?

    public init(channels: Int, height: Int, width: Int, causal: Bool = false, using rng: inout RandomGenerator) {
        let bound = 1 / Float(GridConvGeometry.taps).squareRoot()
        weight = Tensor.uniform([GridConvGeometry.taps, channels], low: -bound, high: bound, requiresGrad: true, using: &rng)
        bias = Tensor(zeros: [channels], requiresGrad: true)
        self.height = height
        self.width = width
        self.causal = causal
        mask = causal ? Tensor(shape: [GridConvGeometry.taps, channels],
                               values: (0..<GridConvGeometry.taps).flatMap { tap in
                                   [Float](repeating: tap <= GridConvGeometry.centreTap ? 1 : 0, count: channels)
                               }) : nil
    }

    /// The weight the convolution applies: `weight`, with the taps after the centre at 0 when causal.
    public var effectiveWeight: Tensor { mask.map { weight * $0 } ?? weight }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        gridConv(x, height: height, width: width, weight: effectiveWeight, bias: bias)
    }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        visit(prefix + "weight", weight)
        visit(prefix + "bias", bias)
    }
}
