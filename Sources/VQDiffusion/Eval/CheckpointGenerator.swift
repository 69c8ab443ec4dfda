import Engine
import Foundation

/// How a trained generator draws its samples.
public struct GeneratorSamplingOptions: Sendable {
    /// Diffusion: network evaluations (T/Δt).
    public var steps: Int = 25
    /// Truncation rate r (nil keeps every code); the paper's best on CUB is 0.86.
    public var truncation: Double? = 0.86
    /// Diffusion: exact multi-step posterior or the reference code's shortcut.
    public var skipping: StepSkipping = .exact
    /// Diffusion: start from a draw of q(x_T) instead of all [MASK] (see DiffusionSamplingOptions).
    public var startFromPrior: Bool = false
    /// Classifier-free guidance scale (1 = none; for models trained with caption dropout).
    public var guidance: Double = 1
    /// Diffusion: which [MASK] tokens each step fills in (the posterior's random ones, or the purest).
    public var order: SamplingOrder = .posterior
    /// AR: temperature (0 = greedy), top-k, and the key/value cache.
    public var temperature: Float = 1
    public var topK: Int? = nil
    public var useCache: Bool = true
    /// Sample with the EMA weights (the default) or the raw ones.
    public var useEMA: Bool = true
    /// Padded caption length (as in training).
    public var textLength: Int = 32

    public init(steps: Int = 25, truncation: Double? = 0.86, skipping: StepSkipping = .exact, temperature: Float = 1,
                topK: Int? = nil, useCache: Bool = true, useEMA: Bool = true, textLength: Int = 32) {
        self.steps = steps
        self.truncation = truncation
        self.skipping = skipping
        self.temperature = temperature
        self.topK = topK
        self.useCache = useCache
        self.useEMA = useEMA
        self.textLength = textLength
    }
}

/// A trained generator checkpoint — VQ-Diffusion or VQ-AR, recognised from the file — with the
/// text encoder it was trained with and the VQ-VAE decoder of its tokens: captions in, images out.
public final class CheckpointGenerator: ImageGenerator {
    public let name: String
    public let kind: String
    /// Token grid of one image.
    public let gridHeight: Int, gridWidth: Int
    /// Parameters of the generator network (text encoder excluded).
    public let parameterCount: Int
    /// The VQ-VAE that turns the tokens into images.
    public let decoderFile: URL
    private var decoderModel: VQVAE?
    let sampleTokens: ([String], inout RandomGenerator) throws -> [Int32]
    /// Redraws the unkept tokens of given grids for the captions (diffusion: kept tokens held
    /// through the walk; VQ-AR: each grid's kept prefix before its first redrawn token, the rest drawn).
    let editTokens: ([String], TokenEdit, inout RandomGenerator) throws -> [Int32]

    /// Loads `model`; `vqvae` overrides the VQ-VAE recorded at training time (a recorded relative
    /// path is found from the current folder or the project root). `cacheDirectory` holds frozen
    /// text features between runs.
    public init(model url: URL, vqvae: URL? = nil, options: GeneratorSamplingOptions = GeneratorSamplingOptions(),
                cacheDirectory: URL? = nil) throws {
        let kind = try TrainingCheckpoint.read(url).kind
        let recordedVQVAE: String?
        switch kind {
        case DiffusionTrainer.checkpointKind:
            let file = try DiffusionModelFile(url, useEMA: options.useEMA)
            let encoder = try TextEncoderCheckpoint.rebuild(
                choice: file.configuration.textEncoder, metadata: file.metadata, maxLength: options.textLength,
                cacheDirectory: cacheDirectory) { try file.loadTextEncoder($0) }
            let sampler = DiffusionSampler(model: file.model, schedule: file.schedule, textEncoder: encoder)
            func draw(_ captions: [String], _ keep: TokenEdit?, _ rng: inout RandomGenerator) throws -> [Int32] {
                try sampler.sample(captions: captions, steps: options.steps, truncation: options.truncation,
                                   skipping: options.skipping, startFromPrior: options.startFromPrior,
                                   guidance: options.guidance, order: options.order, keep: keep, using: &rng)
            }
            sampleTokens = { captions, rng in try draw(captions, nil, &rng) }
            editTokens = { captions, edit, rng in try draw(captions, edit, &rng) }
            (gridHeight, gridWidth) = (file.configuration.model.gridHeight, file.configuration.model.gridWidth)
            parameterCount = file.model.parameterCount
            recordedVQVAE = file.configuration.vqvae
            name = "diffusion-\(options.steps)steps" + (options.guidance != 1 ? "-guidance\(options.guidance)" : "")
                + (options.order != .posterior ? "-\(options.order.rawValue)" : "")
        case ARTrainer.checkpointKind:
            guard options.order == .posterior else {
                throw FileError(url.path, "is an autoregressive model: the sampling order applies to diffusion models only")
            }
            let file = try ARModelFile(url, useEMA: options.useEMA)
            let encoder = try TextEncoderCheckpoint.rebuild(
                choice: file.configuration.textEncoder, metadata: file.metadata, maxLength: options.textLength,
                cacheDirectory: cacheDirectory) { try file.loadTextEncoder($0) }
            let sampler = ARSampler(model: file.model, textEncoder: encoder)
            let ar = ARSamplingOptions(temperature: options.temperature, topK: options.topK,
                                       truncation: options.truncation, useCache: options.useCache, guidance: options.guidance)
            sampleTokens = { captions, rng in try sampler.sample(captions: captions, options: ar, using: &rng) }
            editTokens = { captions, edit, rng in
                let lengths = CheckpointGenerator.keptPrefixes(edit, tokensPerGrid: file.configuration.model.tokens)
                return try sampler.sample(captions: captions, options: ar, prefix: ARPrefix(tokens: edit.tokens, lengths: lengths),
                                          using: &rng)
            }
            (gridHeight, gridWidth) = (file.configuration.model.gridHeight, file.configuration.model.gridWidth)
            parameterCount = file.model.parameterCount
            recordedVQVAE = file.configuration.vqvae
            name = (options.useCache ? "ar-cached" : "ar-uncached") + (options.guidance != 1 ? "-guidance\(options.guidance)" : "")
        default:
            throw FileError(url.path, "holds a \"\(kind)\" checkpoint; a generator is written by vqd train (kind \"diffusion\" or \"ar\")")
        }
        self.kind = kind
        guard let decoderURL = vqvae ?? recordedVQVAE.map({ ProjectRoot.resolve($0) }) else {
            throw FileError(url.path, "does not record the VQ-VAE it was trained on: give the VQ-VAE checkpoint explicitly")
        }
        guard FileManager.default.fileExists(atPath: decoderURL.path) else {
            throw FileError(decoderURL.path, "does not exist: it is the VQ-VAE whose tokens \(url.lastPathComponent) was trained on")
        }
        decoderFile = decoderURL
    }

    /// The tokens raster-order decoding can keep in each grid of an edit: those before the grid's
    /// first redrawn token (the known tokens after it cannot be used).
    public static func keptPrefixes(_ edit: TokenEdit, tokensPerGrid N: Int) -> [Int] {
        stride(from: 0, to: edit.kept.count, by: N).map { start in
            (0..<N).first { !edit.kept[start + $0] } ?? N
        }
    }

    /// Whether this generator is VQ-AR, which can keep only a prefix in an edit.
    public var isAutoregressive: Bool { kind == ARTrainer.checkpointKind }

    /// The VQ-VAE of the tokens, loaded on first use.
    func vqvae() throws -> VQVAE {
        if let decoderModel { return decoderModel }
        let loaded = try VQVAE.load(decoderFile)
        decoderModel = loaded
        return loaded
    }

    /// Token grids of images (B, C, S, S) in [-1, 1] by the generator's VQ-VAE.
    public func encode(_ images: Tensor) throws -> [Int32] {
        let (tokens, h, w) = try vqvae().encode(images)
        guard (h, w) == (gridHeight, gridWidth) else {
            throw FileError(decoderFile.path, "encodes these images into \(h)×\(w) tokens; the generator draws \(gridHeight)×\(gridWidth)")
        }
        return tokens
    }

    /// The VQ-VAE's downsampling factor (pixels per token side).
    public func downsampling() throws -> Int { try vqvae().downsampling }

    /// One grid per caption with `edit`'s kept tokens (diffusion: all of them; VQ-AR: those before
    /// the grid's first redrawn one) and the others drawn for the caption.
    public func edit(captions: [String], _ edit: TokenEdit, using rng: inout RandomGenerator) throws -> [Int32] {
        try editTokens(captions, edit, &rng)
    }

    /// One token grid per caption, (B, h, w) flattened.
    public func tokens(captions: [String], using rng: inout RandomGenerator) throws -> [Int32] {
        try sampleTokens(captions, &rng)
    }

    /// Images (B, C, S, S) in [-1, 1] from `count` token grids.
    public func decode(_ tokens: [Int32], count: Int) throws -> Tensor {
        let vqvae = try vqvae()
        return try Autograd.withoutGrad { try vqvae.decode(tokens, count: count, height: gridHeight, width: gridWidth) }
    }

    /// One image per caption, (B, C, S, S) in [-1, 1].
    public func generate(captions: [String], using rng: inout RandomGenerator) throws -> Tensor {
        try decode(try tokens(captions: captions, using: &rng), count: captions.count)
    }
}
