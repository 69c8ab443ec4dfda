import Foundation

/// NumPy `.npy` files: the magic `\x93NUMPY`, a version (1.0: 2-byte header length; 2.0 and
/// 3.0: 4-byte), an ASCII Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
/// padded with spaces and a newline to a multiple of 64 bytes, then the raw data.
/// Supported: little-endian float32, float64, int32, int64 and uint8, C order.
public enum Npy {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Writes `array` as version 1.0 (2.0 if the header does not fit), atomically.
    public static func save(_ array: TensorData, to url: URL) throws {
        try AtomicFile.write(encode(array), to: url)
    }

    public static func read(_ url: URL) throws -> TensorData {
        try decode(AtomicFile.read(url), path: url.path)
    }

    public static func descr(_ dtype: DType) -> String {
        switch dtype {
        case .f32: "<f4"
        case .f64: "<f8"
        case .i32: "<i4"
        case .i64: "<i8"
        case .u8: "|u1"
        case .f16: "<f2"
        }
    }

    /// The bytes of a .npy file; `version` 1 or 2 forces the header-length width (nil: smallest).
    public static func encode(_ array: TensorData, version: Int? = nil) -> Data {
        requireLittleEndianHost()
        precondition(version == nil || version == 1 || version == 2, "npy version must be 1 or 2, got \(version!)")
        let shape = array.shape.count == 1 ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        var dict = Array("{'descr': '\(descr(array.dtype))', 'fortran_order': False, 'shape': \(shape), }".utf8)
        let major = version ?? (dict.count + 1 + 10 > 65535 ? 2 : 1)
        let prefix = magic.count + 2 + (major == 1 ? 2 : 4)
        while (prefix + dict.count + 1) % 64 != 0 { dict.append(0x20) }
        dict.append(0x0A)
        precondition(major == 2 || dict.count <= 65535, "npy header of \(dict.count) bytes needs version 2")
        var out = Data(magic + [UInt8(major), 0])
        if major == 1 {
            out.append(contentsOf: [UInt8(dict.count & 0xFF), UInt8(dict.count >> 8)])
        } else {
            out.append(contentsOf: (0..<4).map { UInt8((dict.count >> (8 * $0)) & 0xFF) })
        }
        out.append(contentsOf: dict)
        array.values.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Parses .npy bytes; `path` names the source in error messages.
    public static func decode(_ data: Data, path: String) throws -> TensorData {
        requireLittleEndianHost()
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FileError(path, "not a NumPy .npy file (wrong magic bytes)")
        }
        let major = Int(bytes[6])
        let lengthBytes: Int
        switch major {
        case 1: lengthBytes = 2
        case 2, 3: lengthBytes = 4
        default: throw FileError(path, ".npy format version \(major).\(bytes[7]) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard bytes.count >= 8 + lengthBytes else { throw FileError(path, "truncated .npy header") }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        let headerStart = 8 + lengthBytes
        guard data.count >= headerStart + headerLength else {
            throw FileError(path, "truncated: the .npy header claims \(headerLength) bytes, the file is \(data.count) bytes")
        }
        let start = data.startIndex
        guard let header = String(data: data[(start + headerStart)..<(start + headerStart + headerLength)], encoding: .utf8) else {
            throw FileError(path, ".npy header is not text")
        }
        let fields = try parseDict(header, path: path)
        guard case .string(let descr)? = fields["descr"] else {
            throw FileError(path, ".npy header has no 'descr' string (object or structured arrays are not supported)")
        }
        guard case .bool(let fortran)? = fields["fortran_order"] else {
            throw FileError(path, ".npy header has no 'fortran_order'")
        }
        guard case .tuple(let shape)? = fields["shape"], shape.allSatisfy({ $0 >= 0 }) else {
            throw FileError(path, ".npy header has no valid 'shape'")
        }
        if fortran {
            throw FileError(path, "Fortran-order arrays are not supported; save a C-order array (numpy.ascontiguousarray)")
        }
        let dtype: DType
        switch descr {
        case "<f4": dtype = .f32
        case "<f8": dtype = .f64
        case "<i4": dtype = .i32
        case "<i8": dtype = .i64
        case "|u1", "<u1", "u1": dtype = .u8
        default:
            let hint = descr.hasPrefix(">") ? " (big-endian; convert with arr.astype(arr.dtype.newbyteorder('<')))" : ""
            throw FileError(path, "unsupported dtype '\(descr)'\(hint); supported: <f4, <f8, <i4, <i8, |u1")
        }
        guard let count = elementCount(shape) else { throw FileError(path, "shape \(shape) is too large") }
        let dataStart = headerStart + headerLength
        let available = data.count - dataStart
        guard available == count * dtype.byteSize else {
            throw FileError(path, "\(available) bytes of data for shape \(shape) of \(descr) (needs \(count * dtype.byteSize)); truncated or corrupt")
        }
        let values = data.withUnsafeBytes { raw in
            TensorValues.decode(dtype, count: count, from: UnsafeRawBufferPointer(rebasing: raw[dataStart...]))
        }
        return TensorData(shape: shape, values)
    }

    // MARK: The header dict (a tiny Python literal parser)

    enum Literal: Equatable { case string(String), bool(Bool), tuple([Int]), other }

    static func parseDict(_ text: String, path: String) throws -> [String: Literal] {
        var s = Substring(text)
        func fail(_ what: String) -> FileError { FileError(path, "malformed .npy header (\(what)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))") }
        func skipSpace() { while let c = s.first, c == " " || c == "\n" || c == "\t" { s.removeFirst() } }
        func expect(_ c: Character) throws {
            skipSpace()
            guard s.first == c else { throw fail("expected '\(c)'") }
            s.removeFirst()
        }
        func quoted() throws -> String {
            skipSpace()
            guard let q = s.first, q == "'" || q == "\"" else { throw fail("expected a string") }
            s.removeFirst()
            guard let end = s.firstIndex(of: q) else { throw fail("unterminated string") }
            let value = String(s[..<end])
            s = s[s.index(after: end)...]
            return value
        }
        func value() throws -> Literal {
            skipSpace()
            if s.first == "'" || s.first == "\"" { return .string(try quoted()) }
            if s.hasPrefix("True") { s.removeFirst(4); return .bool(true) }
            if s.hasPrefix("False") { s.removeFirst(5); return .bool(false) }
            if s.first == "(" {
                s.removeFirst()
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if s.first == ")" { s.removeFirst(); return .tuple(dims) }
                    let digits = s.prefix { $0.isNumber || $0 == "L" }
                    guard !digits.isEmpty, let d = Int(digits.filter { $0 != "L" }) else { throw fail("bad shape") }
                    dims.append(d)
                    s.removeFirst(digits.count)
                    skipSpace()
                    if s.first == "," { s.removeFirst() }
                }
            }
            // Anything else (a list descr of a structured array, …): skip to the next top-level comma.
            var depth = 0
            while let c = s.first {
                if depth == 0 && (c == "," || c == "}") { break }
                if c == "[" || c == "(" || c == "{" { depth += 1 }
                if c == "]" || c == ")" || c == "}" { depth -= 1 }
                s.removeFirst()
            }
            return .other
        }
        var out: [String: Literal] = [:]
        try expect("{")
        while true {
            skipSpace()
            if s.first == "}" { break }
            let key = try quoted()
            try expect(":")
            out[key] = try value()
            skipSpace()
            if s.first == "," { s.removeFirst() } else if s.first != "}" { throw fail("expected ',' or '}'") }
        }
        return out
    }
}
