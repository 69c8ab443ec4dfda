import CLibs
import Foundation

/// An IDX array of unsigned bytes (the MNIST file format), read from a gzip-compressed file.
///
/// Layout: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions d,
/// then d big-endian 32-bit sizes, then the values in row-major order.
public struct IDXFile: Equatable, Sendable {
    /// The dimension sizes, e.g. [60000, 28, 28] for images or [60000] for labels.
    public let dimensions: [Int]
    /// The values, row-major.
    public let values: [UInt8]

    public init(dimensions: [Int], values: [UInt8]) {
        self.dimensions = dimensions
        self.values = values
    }

    /// Reads and decompresses `path` (gzip, or uncompressed: zlib reads both) and parses it.
    /// `hint` is appended to every error message (e.g. how to install the files).
    public static func read(gzipPath path: String, hint: String = "") throws -> IDXFile {
        let bytes = try readGzip(path, hint: hint)
        return try parse(bytes, source: path, hint: hint)
    }

    /// Parses the decompressed bytes of an IDX file of unsigned bytes.
    public static func parse(_ bytes: [UInt8], source: String, hint: String = "") throws -> IDXFile {
        func fail(_ what: String) -> DatasetError {
            DatasetError("\(source) is not a valid IDX file: \(what).\(hint.isEmpty ? "" : " " + hint)")
        }
        guard bytes.count >= 4 else { throw fail("it has \(bytes.count) bytes, fewer than the 4-byte header") }
        guard bytes[0] == 0 && bytes[1] == 0 else { throw fail("the magic number does not start with two zero bytes") }
        guard bytes[2] == 0x08 else {
            throw fail("element type 0x\(String(bytes[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let d = Int(bytes[3])
        guard d >= 1 else { throw fail("it declares no dimensions") }
        let headerSize = 4 + 4 * d
        guard bytes.count >= headerSize else {
            throw fail("the header declares \(d) dimensions but the file ends after \(bytes.count) bytes")
        }
        var dims: [Int] = []
        var total = 1
        for k in 0..<d {
            let o = 4 + 4 * k
            let n = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            dims.append(n)
            total *= n
        }
        let available = bytes.count - headerSize
        guard available == total else {
            let shape = dims.map(String.init).joined(separator: "×")
            throw fail(available < total
                ? "it is truncated: the header declares \(shape) = \(total) values but only \(available) follow"
                : "the header declares \(shape) = \(total) values but \(available) follow")
        }
        return IDXFile(dimensions: dims, values: Array(bytes[headerSize...]))
    }

    /// The decompressed contents of a gzip file.
    static func readGzip(_ path: String, hint: String) throws -> [UInt8] {
        let suffix = hint.isEmpty ? "" : " " + hint
        guard FileManager.default.fileExists(atPath: path) else {
            throw DatasetError("\(path) does not exist.\(suffix)")
        }
        guard let file = gzopen(path, "rb") else {
            throw DatasetError("\(path) cannot be opened for reading.\(suffix)")
        }
        defer { gzclose(file) }
        var out: [UInt8] = []
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunk)) }
            if n < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
                throw DatasetError("\(path) is not a readable gzip file (\(message)).\(suffix)")
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<Int(n)])
        }
        // gzread reports a stream cut short only through gzerror once it reaches the end.
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw DatasetError("\(path) is a damaged or truncated gzip file (\(message)).\(suffix)")
        }
        return out
    }
}
