import Foundation

// One rule for configurations that grow: a field added after a type's first schema is written only
// when it differs from its default, and read as its default when it is absent. So adding an option
// never changes the JSON (nor a hash of it) of anything made before the option existed, and a type
// needs no hand-written coding for it: its fields are plain values with defaults, its Codable
// conformance the compiler's.
//
// The rule works on the JSON tree, at the points where such a value becomes JSON and back
// (`SchemaJSON.encode`, `SchemaJSON.decode`): the value is encoded in full, compared with the
// type's defaults, and pruned; on the way back the defaults fill in what the document leaves out.
// Fields of the first schema are always written, as they always were.

/// A configuration whose JSON follows the schema rule above.
public protocol VersionedSchema: Codable {
    /// The value whose fields are the defaults (written fields that equal it are left out).
    static var defaults: Self { get }
    /// A JSON document of the first schema: its keys, at every depth, are always written. Only
    /// the keys matter; the values may be anything.
    static var firstSchema: String { get }
}

public enum SchemaJSON {
    /// The JSON of `value` with sorted keys, later fields at their defaults left out.
    public static func encode<T: VersionedSchema>(_ value: T) throws -> String {
        let full = try JSONTree(encoding: value)
        let defaults = try JSONTree(encoding: T.defaults)
        let first = try JSONTree(parsing: T.firstSchema)
        return try pruned(full, defaults: defaults, keep: first).sortedJSON()
    }

    /// The JSON of `value` with every field written (what a user edits and a listing shows).
    public static func encodeFull<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// A value from `json`, absent fields taken from `T.defaults`.
    public static func decode<T: VersionedSchema>(_ type: T.Type, from json: String) throws -> T {
        try decode(type, from: try JSONTree(parsing: json))
    }

    /// A value from a parsed document, absent fields taken from `T.defaults`.
    public static func decode<T: VersionedSchema>(_ type: T.Type, from document: JSONTree) throws -> T {
        let merged = filled(document, defaults: try JSONTree(encoding: T.defaults))
        return try JSONDecoder().decode(T.self, from: Data(try merged.sortedJSON().utf8))
    }

    /// `full` without the fields that equal `defaults`, except those `keep` names.
    static func pruned(_ full: JSONTree, defaults: JSONTree?, keep: JSONTree?) -> JSONTree {
        guard case .object(let fields) = full else { return full }
        var out: [String: JSONTree] = [:]
        for (key, value) in fields {
            let inFirst = keep?[key] != nil
            let fallback = defaults?[key]
            if !inFirst && value == fallback { continue }
            if case .object = value {
                let child = pruned(value, defaults: fallback, keep: keep?[key])
                // A later object field reduced to nothing equals its default: leave it out.
                if !inFirst, case .object(let f) = child, f.isEmpty, fallback != nil { continue }
                out[key] = child
            } else {
                out[key] = value
            }
        }
        return .object(out)
    }

    /// `document` with the fields it lacks taken from `defaults`, at every depth.
    static func filled(_ document: JSONTree, defaults: JSONTree) -> JSONTree {
        guard case .object(var fields) = document, case .object(let fallback) = defaults else { return document }
        for (key, value) in fallback {
            if let given = fields[key] { fields[key] = filled(given, defaults: value) } else { fields[key] = value }
        }
        return .object(fields)
    }
}

/// Canonical JSON (sorted keys) of a value, as logged with a run.
public func sortedJSON(_ value: some Encodable) throws -> String {
    try SchemaJSON.encodeFull(value)
}

/// A JSON document as a tree: what the schema rule compares, prunes and fills. Integers keep
/// their exact value (seeds are 64-bit); other numbers are doubles, which print back as the
/// shortest decimal that reads them, as the encoder printed them.
public indirect enum JSONTree: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let v = try? c.decode(Bool.self) { self = .bool(v); return }
        if let v = try? c.decode(Int64.self) { self = .integer(v); return }
        if let v = try? c.decode(UInt64.self) { self = .unsigned(v); return }
        if let v = try? c.decode(Double.self) { self = .number(v); return }
        if let v = try? c.decode(String.self) { self = .string(v); return }
        if let v = try? c.decode([JSONTree].self) { self = .array(v); return }
        self = .object(try c.decode([String: JSONTree].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .integer(let v): try c.encode(v)
        case .unsigned(let v): try c.encode(v)
        case .number(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    /// The tree of `value`'s JSON form.
    public init(encoding value: some Encodable) throws {
        self = try JSONDecoder().decode(JSONTree.self, from: JSONEncoder().encode(value))
    }

    /// The tree of a JSON text; a message naming the problem when it is not JSON.
    public init(parsing text: String) throws {
        do { self = try JSONDecoder().decode(JSONTree.self, from: Data(text.utf8)) } catch {
            throw ConfigurationError("not valid JSON: \(error)")
        }
    }

    /// The field `key` of an object (nil for anything else or a missing field).
    public subscript(key: String) -> JSONTree? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    /// Compact JSON with sorted keys.
    public func sortedJSON() throws -> String { try SchemaJSON.encodeFull(self) }
}
