import Engine
import Foundation

/// One file holding everything a training run needs to continue exactly where it stopped, or a
/// sampler needs to run: the model's parameters, the optimizer's moments, the EMA weights, the
/// generator state, the step, and the model's configuration (as JSON metadata).
///
/// It is a plain safetensors file (Python's `safetensors` reads it), with tensors under the
/// prefixes `model.`, `ema.`, `optimizer.`, and `state.step` (I64 [1]) and `state.generator`
/// (I64 [4], the generator's 64-bit words). Metadata: `kind` (e.g. "vqvae", "diffusion", "ar"),
/// `configuration` (JSON), `format_version`, and any extra strings. Writes are atomic.
public enum TrainingCheckpoint {
    public static let kindKey = "kind"

    /// What a training loop saves.
    public struct Contents {
        public var kind: String
        public var configurationJSON: String
        public var model: [(name: String, tensor: Tensor)]
        public var optimizer: AdamW?
        public var ema: EMA?
        public var generator: RandomGenerator
        public var step: Int
        public var extra: [String: String]

        public init(kind: String, configuration: some Encodable, model: [(name: String, tensor: Tensor)],
                    optimizer: AdamW? = nil, ema: EMA? = nil, generator: RandomGenerator, step: Int,
                    extra: [String: String] = [:]) throws {
            self.kind = kind
            // A configuration that grows leaves later fields at their defaults out (SchemaJSON).
            configurationJSON = try (configuration as? any VersionedSchema).map { try SchemaJSON.encode($0) }
                ?? sortedJSON(configuration)
            self.model = model
            self.optimizer = optimizer
            self.ema = ema
            self.generator = generator
            self.step = step
            self.extra = extra
        }
    }

    /// Writes `contents` to `url` atomically (temporary file in the same folder, fsync, rename).
    public static func save(_ contents: Contents, to url: URL) throws {
        try AtomicFile.write(encode(contents), to: url)
    }

    /// The bytes of the file `save` writes.
    public static func encode(_ contents: Contents) -> Data {
        var tensors: [(name: String, data: TensorData)] = []
        for (name, t) in contents.model { tensors.append((name: "model." + name, data: TensorData(t))) }
        if let ema = contents.ema {
            for (name, t) in ema.stateTensors() { tensors.append((name: "ema." + name, data: TensorData(t))) }
        }
        if let optimizer = contents.optimizer {
            for (name, t) in optimizer.stateTensors() { tensors.append((name: "optimizer." + name, data: TensorData(t))) }
        }
        tensors.append((name: "state.step", data: TensorData(shape: [1], .i64([Int64(contents.step)]))))
        let words = contents.generator.stateWords.map { Int64(bitPattern: $0) }
        tensors.append((name: "state.generator", data: TensorData(shape: [4], .i64(words))))
        var metadata = contents.extra
        metadata[kindKey] = contents.kind
        metadata[Safetensors.configurationKey] = contents.configurationJSON
        return Safetensors.encode(tensors, metadata: metadata)
    }

    /// A 64-bit hash (FNV-1a) of a checkpoint's bytes: two processes holding the same training
    /// state, bit for bit, have the same fingerprint.
    public static func fingerprint(_ bytes: Data) -> UInt64 {
        bytes.withUnsafeBytes { TokenCache.fnv1a($0) }
    }

    /// A checkpoint read into memory, to be applied to freshly built objects.
    public struct Loaded {
        public let path: String
        public let file: SafetensorsFile
        public var kind: String { file.metadata[TrainingCheckpoint.kindKey] ?? "" }
        public var metadata: [String: String] { file.metadata }

        /// The model configuration stored at save time.
        public func configuration<C: Decodable>(as type: C.Type) throws -> C {
            try file.configuration(as: type, path: path)
        }

        public var step: Int {
            get throws { Int(try scalarI64("state.step", count: 1)[0]) }
        }

        public var generator: RandomGenerator {
            get throws { RandomGenerator(stateWords: try scalarI64("state.generator", count: 4).map { UInt64(bitPattern: $0) }) }
        }

        public var hasEMA: Bool { file.names.contains { $0.hasPrefix("ema.") } }
        public var hasOptimizer: Bool { file.names.contains { $0.hasPrefix("optimizer.") } }

        /// Copies the parameters into `model`, strictly (every name present with the right shape
        /// and dtype, nothing unexpected), checking everything before copying anything.
        /// With `useEMA` the EMA weights replace the raw ones (what sampling wants).
        public func loadModel(into model: [(name: String, tensor: Tensor)], useEMA: Bool = false) throws {
            let prefix = useEMA ? "ema.shadow." : "model."
            if useEMA && !hasEMA {
                throw FileError(path, "holds no EMA weights; load the raw weights instead")
            }
            if !useEMA && !file.names.contains(where: { $0.hasPrefix("model.") }) && hasEMA {
                throw FileError(path, "holds only the EMA weights (a sampling file); load those, or use the training checkpoint for the raw weights")
            }
            let stored = tensors(prefix: prefix)
            let problems = Safetensors.mismatches(model: model, stored: stored.mapValues { ($0.dtype, $0.shape) },
                                                  dtypes: [.f32, .f16])
            if !problems.isEmpty {
                throw FileError(path, "does not match the model (kind \"\(kind)\"): " + problems.joined(separator: "; ")
                                + ". Build the model from the checkpoint's own configuration, or check the file.")
            }
            for (name, t) in model {
                let values = stored[name]!.floats!
                values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: t.count) }
            }
        }

        /// Restores the optimizer's moments and step.
        public func loadOptimizer(_ optimizer: AdamW) throws {
            do { try optimizer.loadState(try tensorMap(prefix: "optimizer.")) } catch let e as OptimizerStateError {
                throw FileError(path, "optimizer state: \(e)")
            }
        }

        /// Restores EMA weights tracked for the model's parameters.
        public func loadEMA(_ ema: inout EMA) throws {
            do { try ema.loadState(try tensorMap(prefix: "ema.")) } catch let e as OptimizerStateError {
                throw FileError(path, "EMA state: \(e)")
            }
        }

        func tensors(prefix: String) -> [String: TensorData] {
            var out: [String: TensorData] = [:]
            for (name, data) in file.tensors where name.hasPrefix(prefix) { out[String(name.dropFirst(prefix.count))] = data }
            return out
        }

        func tensorMap(prefix: String) throws -> [String: Tensor] {
            var out: [String: Tensor] = [:]
            for (name, data) in tensors(prefix: prefix) {
                guard let t = data.tensor() else {
                    throw FileError(path, "tensor \"\(prefix + name)\" has dtype \(data.dtype.rawValue), expected F32")
                }
                out[name] = t
            }
            return out
        }

        func scalarI64(_ name: String, count: Int) throws -> [Int64] {
            guard let d = file[name] else { throw FileError(path, "is not a training checkpoint: no \"\(name)\" tensor") }
            guard let v = d.int64s, v.count == count else {
                throw FileError(path, "tensor \"\(name)\" must be I64 with \(count) value(s), found \(d.dtype.rawValue) \(d.shape)")
            }
            return v
        }
    }

    /// Reads a checkpoint, checking that it holds the expected kind of model.
    public static func read(_ url: URL, expectingKind kind: String? = nil) throws -> Loaded {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FileError(url.path, "does not exist; check the path (checkpoints are written by the train commands)")
        }
        let loaded = Loaded(path: url.path, file: try Safetensors.read(url))
        if let kind, loaded.kind != kind {
            let found = loaded.kind.isEmpty ? "no kind" : "kind \"\(loaded.kind)\""
            throw FileError(url.path, "holds \(found), expected a \"\(kind)\" checkpoint")
        }
        return loaded
    }
}
