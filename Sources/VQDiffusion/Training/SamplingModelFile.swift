import Foundation

/// The part of a generator's training checkpoint that sampling needs: the EMA weights, the state
/// and the metadata (kind, configuration, text-encoder vocabulary), without the raw weights and
/// the optimizer's moments (a quarter of the checkpoint's size). `vqd sample`, `vqd eval` and the
/// studies read it like the checkpoint; training cannot resume from it.
public enum SamplingModelFile {
    public static let marker = "sampling_only"

    /// Writes the sampling part of `checkpoint` to `url` (atomically). With `vqvae`, the
    /// configuration records that path as the generator's VQ-VAE (e.g. a committed copy).
    /// With `half`, the weights are stored as F16 (half the size; read back as Float32).
    public static func export(checkpoint: URL, to url: URL, vqvae: String? = nil, half: Bool = false) throws {
        let file = try Safetensors.read(checkpoint)
        let kept = file.tensors.filter { $0.name.hasPrefix("ema.shadow.") || $0.name.hasPrefix("state.") }
            .map { half && $0.name.hasPrefix("ema.shadow.") ? (name: $0.name, data: $0.data.halved()) : $0 }
        guard kept.contains(where: { $0.name.hasPrefix("ema.shadow.") }) else {
            throw FileError(checkpoint.path, "holds no EMA weights to export")
        }
        var metadata = file.metadata
        metadata[marker] = "true"
        if let vqvae, let json = metadata[Safetensors.configurationKey],
           var object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] {
            guard object["vqvae"] != nil else { throw FileError(checkpoint.path, "records no VQ-VAE to replace") }
            object["vqvae"] = vqvae
            metadata[Safetensors.configurationKey] = String(decoding: try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
        }
        try Safetensors.save(kept, metadata: metadata, to: url)
    }
}
