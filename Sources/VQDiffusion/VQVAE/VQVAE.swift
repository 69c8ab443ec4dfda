import Engine
import Foundation

/// A VQ-VAE image tokenizer: encoder → nearest-code quantization → decoder.
///
/// Training minimises ‖x − D(z_q)‖² + β·‖z_e − sg(z_q)‖² (eq. 3 of van den Oord et al. 2017
/// without the codebook term, which the EMA update replaces), with the decoder's gradient copied
/// straight through the quantizer to the encoder. `encode` gives token grids (B, h, w) and
/// `decode` turns them back into images; both run without a graph.
public final class VQVAE: CompositeModule {
    public let configuration: VQVAEConfiguration
    public let encoder: VQVAEEncoder
    public let decoder: VQVAEDecoder
    public let quantizer: VectorQuantizer

    /// The kind stored in this model's files.
    public static let kind = "vqvae"

    public init(_ configuration: VQVAEConfiguration, using rng: inout RandomGenerator) throws {
        try configuration.validate()
        self.configuration = configuration
        var encoderRNG = rng.derived(1), decoderRNG = rng.derived(2), codebookRNG = rng.derived(3)
        encoder = VQVAEEncoder(configuration, using: &encoderRNG)
        decoder = VQVAEDecoder(configuration, using: &decoderRNG)
        quantizer = VectorQuantizer(codes: configuration.codes, dimension: configuration.codeDimension,
                                    decay: configuration.emaDecay, restartThreshold: configuration.restartThreshold,
                                    using: &codebookRNG)
        _ = rng.next()
    }

    /// The trainable parameters (encoder and decoder; the codebook follows its EMA).
    public var children: [ModuleChild] { [.one("encoder", encoder), .one("decoder", decoder)] }

    /// Everything saved: the parameters, then the codebook and its EMA statistics.
    public var stateTensors: [(name: String, tensor: Tensor)] {
        var out = namedParameters
        quantizer.visitState(prefix: "quantizer.") { out.append((name: $0, tensor: $1)) }
        return out
    }

    public var codes: Int { configuration.codes }
    public var downsampling: Int { configuration.downsampling }

    // MARK: Forward

    /// What one forward pass gives.
    public struct Output {
        /// (B, C, H, W) the decoder's output.
        public let reconstruction: Tensor
        /// (B, d, h, w) the encoder's output z_e.
        public let encoded: Tensor
        /// (B·h·w) code indices in raster order per image.
        public let indices: [Int32]
        /// z_e as rows (B·h·w, d), for the codebook update.
        public let rows: [Float]
        /// Mean squared error of the reconstruction (on the [-1, 1] scale).
        public let reconstructionLoss: Tensor
        /// Mean of ‖z_e − sg(z_q)‖² per element.
        public let commitmentLoss: Tensor
        /// reconstructionLoss + β·commitmentLoss.
        public let loss: Tensor
    }

    /// Encodes, quantizes and decodes `images` (B, C, H, W) in [-1, 1] (H and W multiples of f),
    /// recording a graph when grad mode is on.
    public func callAsFunction(_ images: Tensor) -> Output {
        if let problem = imageProblem(images.shape) { preconditionFailure(problem) }
        let ze = encoder(images)                                     // (B, d, h, w)
        let (B, h, w) = (ze.shape[0], ze.shape[2], ze.shape[3])
        let rows = VectorQuantizer.rows(ze)                          // (B·h·w, d)
        let indices = rows.withUnsafeBufferPointer { quantizer.nearest($0.baseAddress!, count: B * h * w) }
        let zq = quantizer.lookup(indices, batch: B, height: h, width: w)   // (B, d, h, w)
        let reconstruction = decoder(straightThrough(ze, quantized: zq))    // (B, C, H, W)
        let reconstructionLoss = (reconstruction - images.detached()).square().mean()
        let commitmentLoss = (ze - zq).square().mean()
        let loss = reconstructionLoss + commitmentLoss * configuration.commitment
        return Output(reconstruction: reconstruction, encoded: ze, indices: indices, rows: rows,
                      reconstructionLoss: reconstructionLoss, commitmentLoss: commitmentLoss, loss: loss)
    }

    /// Token grids of `images` (B, C, H, W) in [-1, 1]: (B·h·w) indices, and (h, w).
    public func encode(_ images: Tensor) throws -> (tokens: [Int32], height: Int, width: Int) {
        try checkImages(images.shape)
        return Autograd.withoutGrad {
            let ze = encoder(images)                                 // (B, d, h, w)
            let rows = VectorQuantizer.rows(ze)
            let n = ze.shape[0] * ze.shape[2] * ze.shape[3]
            let tokens = rows.withUnsafeBufferPointer { quantizer.nearest($0.baseAddress!, count: n) }
            return (tokens, ze.shape[2], ze.shape[3])
        }
    }

    /// Images (B, C, h·f, w·f) in [-1, 1] (not clamped) from token grids `tokens` (B·h·w).
    public func decode(_ tokens: [Int32], count B: Int, height h: Int, width w: Int) throws -> Tensor {
        guard tokens.count == B * h * w else {
            throw VQVAEError("\(tokens.count) tokens do not fill \(B) grids of \(h)×\(w).")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= codes }) {
            throw VQVAEError("token \(bad) is outside this VQ-VAE's codebook 0..<\(codes); were the tokens made by another model?")
        }
        return Autograd.withoutGrad { decoder(quantizer.lookup(tokens, batch: B, height: h, width: w)) }
    }

    /// Encode then decode, without a graph: (B, C, H, W) → (B, C, H, W).
    public func reconstruct(_ images: Tensor) throws -> Tensor {
        let (tokens, h, w) = try encode(images)
        return try decode(tokens, count: images.shape[0], height: h, width: w)
    }

    /// Throws unless `shape` is (B, C, H, W) with this model's channels and H, W multiples of f.
    public func checkImages(_ shape: [Int]) throws {
        if let problem = imageProblem(shape) { throw VQVAEError(problem) }
    }

    func imageProblem(_ shape: [Int]) -> String? {
        let (C, f) = (configuration.channels, configuration.downsampling)
        guard shape.count == 4, shape[1] == C else {
            return "images of shape \(shape) do not fit this VQ-VAE: it takes (B, \(C), H, W) (\(C == 1 ? "grey" : "RGB") images)."
        }
        guard shape[2] >= f, shape[3] >= f, shape[2] % f == 0, shape[3] % f == 0 else {
            return "images of \(shape[2])×\(shape[3]) pixels cannot be tokenized with downsampling \(f): use sides that are multiples of \(f)."
        }
        return nil
    }

    // MARK: Files

    /// Writes the model (state tensors and configuration, as a training checkpoint without
    /// optimizer state) atomically. `extra` metadata (e.g. the dataset it was trained on) is kept.
    public func save(to url: URL, step: Int = 0, generator: RandomGenerator = RandomGenerator(seed: 0),
                     extra: [String: String] = [:]) throws {
        let contents = try TrainingCheckpoint.Contents(kind: VQVAE.kind, configuration: configuration, model: stateTensors,
                                                       generator: generator, step: step, extra: extra)
        try TrainingCheckpoint.save(contents, to: url)
    }

    /// Reads a VQ-VAE (a model file or a training checkpoint), built from its stored configuration.
    public static func load(_ url: URL) throws -> VQVAE {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: VQVAE.kind)
        let configuration = try loaded.configuration(as: VQVAEConfiguration.self)
        var rng = RandomGenerator(seed: 0)
        let model = try VQVAE(configuration, using: &rng)
        try loaded.loadModel(into: model.stateTensors)
        return model
    }
}

extension VQVAE {
    /// A batch (N, C, H, W) in [-1, 1] from 8-bit images of one size, converted to this model's
    /// channel count (grey repeated into RGB, RGB averaged into grey).
    public func batch(_ images: [Image]) throws -> Tensor {
        guard let first = images.first else { throw VQVAEError("no images given.") }
        guard images.allSatisfy({ $0.width == first.width && $0.height == first.height }) else {
            throw VQVAEError("the images differ in size (\(Set(images.map { "\($0.width)×\($0.height)" }).sorted().joined(separator: ", "))): give images of one size.")
        }
        let C = configuration.channels
        let plane = C * first.width * first.height
        let out = Tensor(uninitializedShape: [images.count, C, first.height, first.width])
        for (i, image) in images.enumerated() {
            let t = image.converted(toChannels: C).tensor()       // (C, H, W)
            (out.pointer + i * plane).update(from: t.pointer, count: plane)
        }
        try checkImages(out.shape)
        return out
    }
}
