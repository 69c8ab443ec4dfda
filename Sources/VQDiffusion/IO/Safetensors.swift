import Engine
import Foundation

/// The contents of a safetensors file: named typed arrays in file order, and string metadata.
public struct SafetensorsFile {
    /// Arrays in the order of their data in the file.
    public var tensors: [(name: String, data: TensorData)]
    /// The `__metadata__` map (string to string), empty when the file has none.
    public var metadata: [String: String]

    public init(tensors: [(name: String, data: TensorData)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public var names: [String] { tensors.map(\.name) }

    public subscript(name: String) -> TensorData? { tensors.first { $0.name == name }?.data }

    /// The configuration stored by `Safetensors.save(parameters:configuration:…)`, decoded.
    public func configuration<T: Decodable>(as type: T.Type, path: String = "") throws -> T {
        guard let json = metadata[Safetensors.configurationKey] else {
            throw FileError(path, "has no stored configuration (metadata key \"\(Safetensors.configurationKey)\")")
        }
        do {
            // A configuration that grows reads absent later fields as their defaults (SchemaJSON).
            if let versioned = T.self as? any VersionedSchema.Type { return try SchemaJSON.decode(versioned, from: json) as! T }
            return try JSONDecoder().decode(T.self, from: Data(json.utf8))
        } catch {
            throw FileError(path, "stored configuration does not decode as \(T.self): \(error)")
        }
    }
}

/// safetensors: an 8-byte little-endian header length N, N bytes of JSON header
/// (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …, "__metadata__": {…}}`)
/// padded with spaces so the data starts at a multiple of 8, then the raw little-endian data. Offsets
/// are relative to the start of the data and must cover it exactly: in order, no holes, no overlaps.
public enum Safetensors {
    /// Version of this project's use of the format (metadata key `format_version`).
    public static let formatVersion = "1"
    public static let formatVersionKey = "format_version"
    /// Metadata key of the model configuration, stored as a JSON string.
    public static let configurationKey = "configuration"
    /// Headers larger than this are refused as corrupt (the reference implementation's limit).
    public static let maximumHeaderBytes = 100_000_000

    // MARK: Writing

    /// Writes `tensors` (data laid out in the given order) and `metadata`, atomically.
    public static func save(_ tensors: [(name: String, data: TensorData)], metadata: [String: String] = [:],
                            to url: URL) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: url)
    }

    /// Writes a model's named parameters (F32) with its configuration (as JSON) and the format
    /// version in the metadata, atomically.
    public static func save(parameters named: [(name: String, tensor: Tensor)], configuration: (any Encodable)? = nil,
                            metadata: [String: String] = [:], to url: URL) throws {
        var meta = metadata
        meta[formatVersionKey] = formatVersion
        if let configuration {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            meta[configurationKey] = String(decoding: try encoder.encode(configuration), as: UTF8.self)
        }
        try save(named.map { (name: $0.name, data: TensorData($0.tensor)) }, metadata: meta, to: url)
    }

    /// The bytes of a safetensors file holding `tensors` and `metadata`.
    public static func encode(_ tensors: [(name: String, data: TensorData)], metadata: [String: String] = [:]) -> Data {
        requireLittleEndianHost()
        precondition(Set(tensors.map(\.name)).count == tensors.count, "duplicate tensor names in \(tensors.map(\.name))")
        precondition(!tensors.contains { $0.name == "__metadata__" }, "\"__metadata__\" is reserved and cannot name a tensor")
        var header = "{"
        var offset = 0
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        for (name, data) in tensors {
            let end = offset + data.byteCount
            let shape = data.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(name)):{\"dtype\":\"\(data.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        var out = Data(count: 8 + headerBytes.count + offset)
        out.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
            let base = raw.baseAddress!
            var n = UInt64(headerBytes.count).littleEndian
            withUnsafeBytes(of: &n) { base.copyMemory(from: $0.baseAddress!, byteCount: 8) }
            headerBytes.withUnsafeBytes { base.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var at = 8 + headerBytes.count
            for (_, data) in tensors {
                data.values.withUnsafeBytes { src in
                    if src.count > 0 { base.advanced(by: at).copyMemory(from: src.baseAddress!, byteCount: src.count) }
                }
                at += data.byteCount
            }
        }
        return out
    }

    // MARK: Reading

    /// Every tensor and the metadata of a safetensors file.
    public static func read(_ url: URL) throws -> SafetensorsFile {
        try decode(AtomicFile.read(url), path: url.path)
    }

    /// Parses and validates safetensors bytes; `path` names the source in error messages.
    public static func decode(_ data: Data, path: String) throws -> SafetensorsFile {
        requireLittleEndianHost()
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let (entries, metadata, dataStart) = try parseHeader(raw, path: path)
            var file = SafetensorsFile(metadata: metadata)
            for e in entries {
                let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.begin)..<(dataStart + e.end)])
                let count = e.shape.reduce(1, *)
                file.tensors.append((e.name, TensorData(shape: e.shape, TensorValues.decode(e.dtype, count: count, from: bytes))))
            }
            return file
        }
    }

    /// Loads a model's parameters from `url`, strictly: the file must hold exactly these names,
    /// each F32 with the parameter's shape. Everything is checked before anything is copied, so a
    /// failed load leaves every parameter unchanged. Returns the file's metadata.
    @discardableResult
    public static func load(into named: [(name: String, tensor: Tensor)], from url: URL) throws -> [String: String] {
        requireLittleEndianHost()
        precondition(Set(named.map(\.name)).count == named.count, "duplicate parameter names in \(named.map(\.name))")
        let data = try AtomicFile.read(url)
        let path = url.path
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let (entries, metadata, dataStart) = try parseHeader(raw, path: path)
            let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
            let problems = mismatches(model: named, stored: byName.mapValues { ($0.dtype, $0.shape) }, dtypes: [.f32])
            if !problems.isEmpty {
                throw FileError(path, "does not match the model: " + problems.joined(separator: "; ")
                                + ". Check that the checkpoint was saved from a model with the same configuration.")
            }
            for (name, tensor) in named {
                let e = byName[name]!
                if tensor.count > 0 {
                    UnsafeMutableRawPointer(tensor.pointer).copyMemory(from: raw.baseAddress! + dataStart + e.begin,
                                                                       byteCount: e.end - e.begin)
                }
            }
            return metadata
        }
    }

    // MARK: Header validation

    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    /// Validates the header against the published rules and the file size. Returns the entries in
    /// data order, the metadata and the byte offset where the data starts.
    static func parseHeader(_ raw: UnsafeRawBufferPointer, path: String) throws -> ([Entry], [String: String], Int) {
        guard raw.count >= 8 else {
            throw FileError(path, "truncated: \(raw.count) bytes, shorter than the 8-byte header length of a safetensors file")
        }
        let n = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(maximumHeaderBytes) else {
            throw FileError(path, "header length \(n) is larger than \(maximumHeaderBytes) bytes: not a safetensors file, or corrupt")
        }
        let headerLength = Int(n)
        guard 8 + headerLength <= raw.count else {
            throw FileError(path, "truncated: the header claims \(headerLength) bytes but the file has \(raw.count - 8) after the length")
        }
        let headerBytes = Data(raw[8..<(8 + headerLength)])
        guard headerBytes.first == UInt8(ascii: "{"),
              let object = try? JSONSerialization.jsonObject(with: headerBytes),
              let header = object as? [String: Any] else {
            throw FileError(path, "header is not a JSON object: not a safetensors file, or corrupt")
        }
        let dataStart = 8 + headerLength
        let dataSize = raw.count - dataStart

        var metadata: [String: String] = [:]
        if let meta = header["__metadata__"] {
            guard let m = meta as? [String: String] else {
                throw FileError(path, "__metadata__ must map strings to strings")
            }
            metadata = m
        }
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeList = info["shape"] as? [Any],
                  let offsetList = info["data_offsets"] as? [Any] else {
                throw FileError(path, "tensor \"\(name)\": header entry needs dtype, shape and data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw FileError(path, "tensor \"\(name)\": unsupported dtype \(dtypeName) (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let shape = shapeList.compactMap { ($0 as? NSNumber).flatMap { integer($0) } }
            guard shape.count == shapeList.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw FileError(path, "tensor \"\(name)\": shape \(shapeList) is not a list of non-negative integers")
            }
            let offsets = offsetList.compactMap { ($0 as? NSNumber).flatMap { integer($0) } }
            guard offsets.count == 2, offsetList.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw FileError(path, "tensor \"\(name)\": data_offsets \(offsetList) must be [begin, end] with 0 ≤ begin ≤ end")
            }
            guard offsets[1] <= dataSize else {
                throw FileError(path, "tensor \"\(name)\": data_offsets \(offsets) run past the end of the data (\(dataSize) bytes); the file is truncated or corrupt")
            }
            guard let count = elementCount(shape) else {
                throw FileError(path, "tensor \"\(name)\": shape \(shape) is too large")
            }
            guard offsets[1] - offsets[0] == count * dtype.byteSize else {
                throw FileError(path, "tensor \"\(name)\": \(offsets[1] - offsets[0]) bytes of data for shape \(shape) of \(dtype.rawValue) (needs \(count * dtype.byteSize))")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1]))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expected = 0
        for e in entries {
            if e.begin < expected {
                throw FileError(path, "tensor \"\(e.name)\": data_offsets [\(e.begin), \(e.end)] overlap the previous tensor's data")
            }
            if e.begin > expected {
                throw FileError(path, "tensor \"\(e.name)\": a hole in the data before offset \(e.begin) (previous data ends at \(expected))")
            }
            expected = e.end
        }
        guard expected == dataSize else {
            throw FileError(path, "\(dataSize - expected) bytes of data after the last tensor: corrupt file")
        }
        return (entries, metadata, dataStart)
    }

    private static func integer(_ n: NSNumber) -> Int? {
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9e15 else { return nil }
        return n.intValue
    }

    /// What keeps stored tensors (name → dtype and shape) from loading into a model's parameters:
    /// names missing or unexpected, a dtype not in `dtypes`, a shape that differs. Empty when they fit.
    static func mismatches(model: [(name: String, tensor: Tensor)], stored: [String: (dtype: DType, shape: [Int])],
                           dtypes: [DType]) -> [String] {
        var problems: [String] = []
        let wanted = Set(model.map(\.name))
        let missing = model.map(\.name).filter { stored[$0] == nil }
        if !missing.isEmpty { problems.append("missing tensor(s) \(list(missing))") }
        let unexpected = stored.keys.filter { !wanted.contains($0) }.sorted()
        if !unexpected.isEmpty { problems.append("unexpected tensor(s) \(list(unexpected))") }
        let needs = dtypes.map(\.rawValue).joined(separator: " or ")
        for (name, tensor) in model {
            guard let e = stored[name] else { continue }
            if !dtypes.contains(e.dtype) {
                problems.append("tensor \"\(name)\" has dtype \(e.dtype.rawValue), the model needs \(needs)")
            } else if e.shape != tensor.shape {
                problems.append("tensor \"\(name)\" has shape \(e.shape), the model needs \(tensor.shape)")
            }
        }
        return problems
    }

    private static func list(_ names: [String]) -> String {
        let shown = names.prefix(5).map { "\"\($0)\"" }.joined(separator: ", ")
        return names.count > 5 ? shown + " and \(names.count - 5) more" : shown
    }
}

/// A JSON string literal for `s`.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
