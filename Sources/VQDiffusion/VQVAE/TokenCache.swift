import Engine
import Foundation

/// Token grids of whole dataset splits, encoded once by a VQ-VAE and kept on disk for the
/// generators to train on.
///
/// A cache entry is a folder `<directory>/<key>/` holding `tokens.npy` (int32 [N, h, w]),
/// `captions.json` (N strings) and `info.json` (written last: its presence marks a complete
/// entry). The key names everything the tokens depend on: the VQ-VAE file's content hash, the
/// dataset source, split, image size, seed and count, e.g.
/// `vqvae-3f2a…-shapes-train-32px-seed0-n50000`. A retrained model has a new hash and so a new entry.
public enum TokenCache {
    /// Where entries go unless told otherwise (relative to the working directory).
    public static var defaultDirectory: URL { URL(fileURLWithPath: ProjectRoot.path("cache/tokens")) }

    /// What `info.json` records.
    public struct Info: Codable, Equatable {
        public var modelHash: String
        public var data: DatasetSelection
        public var count: Int
        public var height: Int
        public var width: Int
        public var codes: Int
    }

    /// The tokens of a dataset split under the VQ-VAE in `vqvae`, from the cache when present,
    /// otherwise encoded now and stored.
    public static func tokens(vqvae: URL, dataset source: DatasetSelection.Source, split: DatasetSplit,
                              size: Int = 32, seed: UInt64 = 0, count: Int? = nil, folder: String? = nil,
                              directory: URL = TokenCache.defaultDirectory,
                              progress: ((Int, Int) -> Void)? = nil) throws -> TokenizedDataset {
        try tokens(vqvae: vqvae, data: DatasetSelection(source: source, split: split, imageSize: size, seed: seed,
                                                         count: count, folder: folder),
                   directory: directory, progress: progress)
    }

    /// As above with the data given as a `DatasetSelection`.
    public static func tokens(vqvae: URL, data: DatasetSelection, directory: URL = TokenCache.defaultDirectory,
                              progress: ((Int, Int) -> Void)? = nil) throws -> TokenizedDataset {
        let hash = try contentHash(of: vqvae)
        let entry = directory.appendingPathComponent(key(modelHash: hash, data: data))
        if let cached = try load(entry) { return cached }
        let model = try VQVAE.load(vqvae)
        let dataset = try data.open()
        let tokens = try encode(dataset, with: model, progress: progress)
        try save(tokens, info: Info(modelHash: hash, data: data, count: tokens.count, height: tokens.height,
                                    width: tokens.width, codes: tokens.codes), to: entry)
        return tokens
    }

    /// The folder name of an entry.
    public static func key(modelHash: String, data: DatasetSelection) -> String {
        var key = "vqvae-\(modelHash)-\(data.source.rawValue)-\(data.split)-\(data.imageSize)px-seed\(data.seed)"
        key += data.count.map { "-n\($0)" } ?? "-all"
        if let folder = data.folder {
            key += "-" + String(fnv1a(Array(URL(fileURLWithPath: folder).standardized.path.utf8)), radix: 16)
        }
        return key
    }

    /// Every image of `dataset` encoded by `model`, with its caption, in dataset order.
    public static func encode(_ dataset: any CaptionedDataset, with model: VQVAE, batchSize: Int = 128,
                              progress: ((Int, Int) -> Void)? = nil) throws -> TokenizedDataset {
        guard dataset.channels == model.configuration.channels else {
            throw VQVAEError("the dataset has \(dataset.channels)-channel images but the VQ-VAE takes \(model.configuration.channels)-channel ones.")
        }
        let loader = BatchLoader(dataset: dataset, batchSize: batchSize, shuffle: false, generator: RandomGenerator(seed: 0))
        var tokens: [Int32] = []
        var captions: [String] = []
        tokens.reserveCapacity(dataset.count * 64)
        var grid = model.configuration.tokenGrid(height: dataset.imageSize, width: dataset.imageSize)
        for batch in loader.batches(epoch: 0) {
            let (t, h, w) = try model.encode(batch.images)
            tokens += t
            captions += batch.captions
            grid = (h, w)
            progress?(captions.count, dataset.count)
        }
        return TokenizedDataset(tokens: tokens, count: captions.count, height: grid.height, width: grid.width,
                                codes: model.codes, captions: captions)
    }

    /// Writes an entry: tokens and captions first, `info.json` last, each atomically.
    public static func save(_ tokens: TokenizedDataset, info: Info, to entry: URL) throws {
        try FileManager.default.createDirectory(at: entry, withIntermediateDirectories: true)
        try Npy.save(TensorData(shape: [tokens.count, tokens.height, tokens.width], .i32(tokens.tokens)),
                     to: entry.appendingPathComponent("tokens.npy"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(try encoder.encode(tokens.captions), to: entry.appendingPathComponent("captions.json"))
        try AtomicFile.write(try encoder.encode(info), to: entry.appendingPathComponent("info.json"))
    }

    /// Reads a complete entry, or nil when there is none (no `info.json`).
    public static func load(_ entry: URL) throws -> TokenizedDataset? {
        let infoURL = entry.appendingPathComponent("info.json")
        guard FileManager.default.fileExists(atPath: infoURL.path) else { return nil }
        let hint = "delete the folder \(entry.path) to rebuild it"
        let info: Info
        let captions: [String]
        do {
            info = try JSONDecoder().decode(Info.self, from: Data(contentsOf: infoURL))
            captions = try JSONDecoder().decode([String].self, from: Data(contentsOf: entry.appendingPathComponent("captions.json")))
        } catch {
            throw FileError(entry.path, "is a damaged token cache entry (\(error)); \(hint)")
        }
        let array = try Npy.read(entry.appendingPathComponent("tokens.npy"))
        guard let values = array.int32s, array.shape == [info.count, info.height, info.width], captions.count == info.count else {
            throw FileError(entry.path, "holds tokens \(array.dtype.rawValue) \(array.shape) and \(captions.count) captions, but info.json says \(info.count) grids of \(info.height)×\(info.width); \(hint)")
        }
        guard values.allSatisfy({ $0 >= 0 && Int($0) < info.codes }) else {
            throw FileError(entry.path, "holds a token outside 0..<\(info.codes); \(hint)")
        }
        return TokenizedDataset(tokens: values, count: info.count, height: info.height, width: info.width,
                                codes: info.codes, captions: captions)
    }

    /// 16 hex digits: the 64-bit FNV-1a hash of the file's bytes (a cache key, not a security check).
    public static func contentHash(of url: URL) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FileError(url, "cannot be read (\(error.localizedDescription)); check the VQ-VAE path")
        }
        let hash = data.withUnsafeBytes { raw in fnv1a(raw.bindMemory(to: UInt8.self)) }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public static func fnv1a<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}
