import Foundation
import VQDiffusion

// `--key value` overrides of any field of a study's configuration. The configuration is a Codable
// value; its JSON form is flattened to dotted keys ("generator.steps", "eval.count"), the named
// fields are replaced, and the result is decoded again, so every field is reachable without a
// hand-written option for it.

public enum ConfigurationOverrides {
    /// Pairs from command-line words: `--key value` or `--key=value`.
    public static func pairs(_ words: [String]) throws -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        var i = 0
        while i < words.count {
            let word = words[i]
            guard word.hasPrefix("--"), word.count > 2 else {
                throw ConfigurationError("unexpected argument '\(word)': overrides are written --key value (see --show-config for the keys)")
            }
            let body = String(word.dropFirst(2))
            if let equals = body.firstIndex(of: "=") {
                result.append((String(body[..<equals]), String(body[body.index(after: equals)...])))
                i += 1
            } else {
                guard i + 1 < words.count else { throw ConfigurationError("--\(body) needs a value") }
                result.append((body, words[i + 1]))
                i += 2
            }
        }
        return result
    }

    /// `base` with each key set to its value. Numbers, booleans, strings and comma-separated
    /// lists are parsed after the type the field already has; an unknown key or a value of the
    /// wrong type throws, naming the accepted keys or the expected type.
    public static func apply<C: Codable>(_ overrides: [(key: String, value: String)], to base: C) throws -> C {
        guard !overrides.isEmpty else { return base }
        guard var root = try JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as? [String: Any] else {
            throw ConfigurationError("the configuration is not a JSON object")
        }
        let known = flatten(root).map(\.key)
        func unknown(_ key: String) -> ConfigurationError {
            let last = key.split(separator: ".").last.map(String.init) ?? key
            let close = known.filter { $0.hasSuffix("." + last) || $0 == last }
            let hint = close.isEmpty ? "keys: \(known.joined(separator: ", "))" : "did you mean \(close.joined(separator: " or "))?"
            return ConfigurationError("unknown configuration key '\(key)'; \(hint)")
        }
        for (key, text) in overrides {
            let path = key.split(separator: ".").map(String.init)
            // An optional field left unset is absent from the JSON: accept any value there, and
            // check below that decoding kept it.
            let current = value(at: path, in: root) ?? NSNull()
            guard path.count == 1 || value(parentOf: path, in: root) else { throw unknown(key) }
            root = setting(try parse(text, like: current, key: key), at: path, in: root)
        }
        let decoded: C
        do {
            decoded = try JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: root))
        } catch {
            throw ConfigurationError("the overridden configuration is not valid: \(error)")
        }
        // A key the type does not have is dropped by decoding: it was a typo.
        let kept = Set(try listing(decoded).map(\.key))
        for (key, _) in overrides where !kept.contains(key) { throw unknown(key) }
        return decoded
    }

    /// Whether the object holding the last component of `path` exists.
    static func value(parentOf path: [String], in object: [String: Any]) -> Bool {
        var node: Any = object
        for component in path.dropLast() {
            guard let dict = node as? [String: Any], let next = dict[component] as? [String: Any] else { return false }
            node = next
        }
        return true
    }

    /// Every leaf of the configuration as (dotted key, JSON text), sorted by key.
    public static func listing<C: Encodable>(_ configuration: C) throws -> [(key: String, value: String)] {
        guard let root = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as? [String: Any] else {
            return []
        }
        return flatten(root).map { ($0.key, render($0.value)) }
    }

    /// The leaves of `configuration` that differ from `base`, as "key = value" sorted by key (a
    /// leaf only `base` has reads "key = null").
    public static func changes<C: Encodable>(_ configuration: C, from base: C) throws -> [String] {
        let now = Dictionary(try listing(configuration).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        let before = Dictionary(try listing(base).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        return Set(now.keys).union(before.keys).sorted().compactMap { key in
            now[key] == before[key] ? nil : "\(key) = \(now[key] ?? "null")"
        }
    }

    // MARK: JSON helpers

    static func flatten(_ object: [String: Any], prefix: String = "") -> [(key: String, value: Any)] {
        var out: [(key: String, value: Any)] = []
        for key in object.keys.sorted() {
            let path = prefix.isEmpty ? key : prefix + "." + key
            if let child = object[key] as? [String: Any] {
                out += flatten(child, prefix: path)
            } else {
                out.append((path, object[key]!))
            }
        }
        return out
    }

    static func value(at path: [String], in object: [String: Any]) -> Any? {
        guard let first = path.first, let child = object[first] else { return nil }
        if path.count == 1 { return child is [String: Any] ? nil : child }
        guard let nested = child as? [String: Any] else { return nil }
        return value(at: Array(path.dropFirst()), in: nested)
    }

    static func setting(_ newValue: Any, at path: [String], in object: [String: Any]) -> [String: Any] {
        var copy = object
        if path.count == 1 {
            copy[path[0]] = newValue
        } else if let nested = object[path[0]] as? [String: Any] {
            copy[path[0]] = setting(newValue, at: Array(path.dropFirst()), in: nested)
        }
        return copy
    }

    static func parse(_ text: String, like current: Any, key: String) throws -> Any {
        if let list = current as? [Any] {
            let element: Any = list.first ?? ""
            return try text.split(separator: ",").map { try parse($0.trimmingCharacters(in: .whitespaces), like: element, key: key) }
        }
        if current is NSNull {
            if text == "null" { return NSNull() }
            return Int(text).map { $0 as Any } ?? Double(text).map { $0 as Any } ?? text
        }
        if let number = current as? NSNumber {
            if isBoolean(number) {
                switch text.lowercased() {
                case "true", "yes", "1", "on": return true
                case "false", "no", "0", "off": return false
                default: throw ConfigurationError("--\(key) takes true or false, got '\(text)'")
                }
            }
            if let integer = Int(text) { return integer }
            guard let value = Double(text), value.isFinite else {
                throw ConfigurationError("--\(key) takes a number, got '\(text)'")
            }
            return value
        }
        return text
    }

    /// JSON booleans decode as NSNumbers of type char ("c"); integers and reals do not.
    static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    static func render(_ value: Any) -> String {
        if let list = value as? [Any] { return list.map(render).joined(separator: ",") }
        // An object inside a list: its JSON with sorted keys, the same text on every run.
        if let object = value as? [String: Any], let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        if value is NSNull { return "null" }
        if let number = value as? NSNumber {
            if isBoolean(number) { return number.boolValue ? "true" : "false" }
            return number.stringValue
        }
        return "\(value)"
    }
}
