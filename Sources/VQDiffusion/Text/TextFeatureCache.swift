import Engine
import Foundation

/// Per-token features of captions from a frozen encoder, computed once per distinct caption: kept
/// in memory and, when a file is given, saved to and loaded from disk, so training never runs the
/// encoder twice on a caption.
///
/// Only real tokens are stored (L_c rows of width D for a caption of L_c tokens, about 18 KB for a
/// 12-token caption at D = 384); padding is added when a batch is assembled.
///
/// The file is safetensors: `features` F32 (ΣL_c, D), the captions' rows one after another;
/// `lengths` I32 (N); metadata `captions` (a JSON array of the N captions, in order), `encoder`
/// (the encoder's fingerprint), `max_length` and `width`. It is written atomically. A file whose
/// metadata does not match the encoder is refused with a message saying to delete it.
public final class TextFeatureCache {
    /// Identifies the encoder that made the features (e.g. the weights' fingerprint).
    public let encoder: String
    public let maxLength: Int
    public let width: Int
    /// The cache file, or nil for memory only.
    public let file: URL?

    private var entries: [String: [Float]] = [:]   // caption → (L_c·D) features
    private var order: [String] = []                 // insertion order, for a stable file layout
    private var unsaved = 0

    /// Opens the cache; when `file` exists its features are loaded.
    public init(encoder: String, maxLength: Int, width: Int, file: URL?) throws {
        self.encoder = encoder
        self.maxLength = maxLength
        self.width = width
        self.file = file
        if let file, FileManager.default.fileExists(atPath: file.path) { try load(file) }
    }

    /// A file name unique to an encoder fingerprint and a length: `<prefix>-<encoder>-L<maxLength>.safetensors`.
    public static func fileName(prefix: String, encoder: String, maxLength: Int) -> String {
        "\(prefix)-\(encoder)-L\(maxLength).safetensors"
    }

    public var count: Int { entries.count }
    /// Entries added since the last save.
    public var unsavedCount: Int { unsaved }

    /// The stored (L_c·D) features of `caption`.
    public subscript(caption: String) -> [Float]? { entries[caption] }

    /// Stores the (L_c·D) features of `caption` (ignored if it is already there).
    public func insert(_ caption: String, features: [Float]) {
        precondition(features.count % width == 0 && features.count / width <= maxLength && !features.isEmpty,
                     "TextFeatureCache: \(features.count) values are not 1…\(maxLength) rows of width \(width)")
        guard entries[caption] == nil else { return }
        entries[caption] = features
        order.append(caption)
        unsaved += 1
    }

    /// Writes every entry to the file (atomically); does nothing without a file or new entries.
    public func save() throws {
        guard let file, unsaved > 0 else { return }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        var features: [Float] = []
        features.reserveCapacity(order.reduce(0) { $0 + entries[$1]!.count })
        var lengths: [Int32] = []
        for caption in order {
            let values = entries[caption]!
            features += values
            lengths.append(Int32(values.count / width))
        }
        let captions = String(decoding: try JSONEncoder().encode(order), as: UTF8.self)
        try Safetensors.save([
            (name: "features", data: TensorData(shape: [features.count / width, width], .f32(features))),
            (name: "lengths", data: TensorData(shape: [lengths.count], .i32(lengths))),
        ], metadata: ["captions": captions, "encoder": encoder, "max_length": String(maxLength), "width": String(width)],
           to: file)
        unsaved = 0
    }

    private func load(_ url: URL) throws {
        let stored = try Safetensors.read(url)
        func refuse(_ reason: String) -> FileError {
            FileError(url, "\(reason): it is not a feature cache of this encoder; delete it and the features will be computed again")
        }
        guard stored.metadata["encoder"] == encoder, stored.metadata["max_length"] == String(maxLength),
              stored.metadata["width"] == String(width) else {
            throw refuse("made by encoder \(stored.metadata["encoder"] ?? "?") with max_length \(stored.metadata["max_length"] ?? "?"), width \(stored.metadata["width"] ?? "?")")
        }
        guard let captionsJSON = stored.metadata["captions"],
              let captions = try? JSONDecoder().decode([String].self, from: Data(captionsJSON.utf8)),
              let features = stored["features"]?.floats, let lengths = stored["lengths"]?.int32s,
              lengths.count == captions.count,
              lengths.allSatisfy({ $0 >= 1 && Int($0) <= maxLength }),
              lengths.reduce(0, { $0 + Int($1) }) * width == features.count else {
            throw refuse("its captions, lengths and features do not agree")
        }
        var at = 0
        for (caption, length) in zip(captions, lengths) {
            let n = Int(length) * width
            if entries[caption] == nil {
                entries[caption] = Array(features[at..<(at + n)])
                order.append(caption)
            }
            at += n
        }
    }

    /// Features of `captions` padded to `maxLength`: (B, maxLength, D) with padding rows 0, and
    /// the mask (B·maxLength). Every caption must be stored.
    public func features(of captions: [String]) -> TextFeatures {
        let (B, L, D) = (captions.count, maxLength, width)
        let out = Tensor(zeros: [B, L, D])
        var mask = [Bool](repeating: false, count: B * L)
        let o = out.pointer
        for (b, caption) in captions.enumerated() {
            guard let values = entries[caption] else { preconditionFailure("TextFeatureCache: \"\(caption)\" was never computed") }
            values.withUnsafeBufferPointer { (o + b * L * D).update(from: $0.baseAddress!, count: values.count) }
            for i in 0..<(values.count / D) { mask[b * L + i] = true }
        }
        return TextFeatures(features: out, mask: mask)
    }
}
