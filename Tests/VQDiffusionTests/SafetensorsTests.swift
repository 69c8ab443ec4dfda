import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct SafetensorsTests {
    static let sample: [(name: String, data: TensorData)] = [
        ("weight", TensorData(shape: [2, 3], .f32([1, -2, 3.5, .pi, -0, 1e-30]))),
        ("steps", TensorData(shape: [3], .i64([0, Int64.max, Int64.min]))),
        ("odd", TensorData(shape: [1, 1, 3], .i32([7, -7, Int32.max]))),
        ("ema", TensorData(shape: [], .f64([0.999]))),
        ("pixels", TensorData(shape: [5], .u8([0, 1, 2, 254, 255]))),
        ("empty", TensorData(shape: [0, 4], .f32([]))),
    ]

    @Test func roundTripsEveryDType() throws {
        let folder = TemporaryFolder()
        let url = folder.file("a.safetensors")
        try Safetensors.save(Self.sample, metadata: ["note": "a \"quoted\"\nline"], to: url)
        let file = try Safetensors.read(url)
        #expect(file.names == Self.sample.map(\.name))
        for (name, data) in Self.sample { #expect(file[name] == data) }
        #expect(file.metadata == ["note": "a \"quoted\"\nline"])
    }

    /// The published rules: 8-byte little-endian length, JSON object header padded with spaces so
    /// the data starts at a multiple of 8, offsets in order, contiguous, covering the data.
    @Test func writtenFilesFollowTheFormatRules() throws {
        let bytes = [UInt8](Safetensors.encode(Self.sample, metadata: ["k": "v"]))
        var n = 0
        for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
        #expect((8 + n) % 8 == 0)
        let header = Data(bytes[8..<(8 + n)])
        #expect(header.first == UInt8(ascii: "{"))
        let text = String(decoding: header, as: UTF8.self)
        #expect(text.hasSuffix("}") || text.trimmingCharacters(in: .init(charactersIn: " ")).hasSuffix("}"))
        #expect(!text.contains("\n"))
        let json = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        #expect(json["__metadata__"] as? [String: String] == ["k": "v"])
        var ranges: [(Int, Int)] = []
        for (name, data) in Self.sample {
            let entry = try #require(json[name] as? [String: Any])
            #expect(Set(entry.keys) == ["dtype", "shape", "data_offsets"])
            #expect(entry["dtype"] as? String == data.dtype.rawValue)
            #expect((entry["shape"] as? [Int]) == data.shape)
            let offsets = try #require(entry["data_offsets"] as? [Int])
            #expect(offsets[1] - offsets[0] == data.byteCount)
            ranges.append((offsets[0], offsets[1]))
        }
        // In order and contiguous from 0 to the end of the file.
        var expected = 0
        for (begin, end) in ranges { #expect(begin == expected); expected = end }
        #expect(8 + n + expected == bytes.count)
        // The F32 values are raw little-endian.
        let first = bytes[(8 + n)..<(8 + n + 4)]
        #expect(Array(first) == [0x00, 0x00, 0x80, 0x3F])
    }

    /// Bytes with the given JSON header and `dataSize` bytes of data.
    func crafted(_ header: String, dataSize: Int, length: UInt64? = nil) -> Data {
        var h = Array(header.utf8)
        while (8 + h.count) % 8 != 0 { h.append(0x20) }
        var out = Data()
        let n = length ?? UInt64(h.count)
        for i in 0..<8 { out.append(UInt8((n >> (8 * UInt64(i))) & 0xFF)) }
        out.append(contentsOf: h)
        out.append(Data(count: dataSize))
        return out
    }

    @Test func malformedFilesAreRejected() throws {
        let good = Safetensors.encode(Self.sample)
        func error(_ data: Data) -> String? { thrownMessage { _ = try Safetensors.decode(data, path: "x.safetensors") } }
        #expect(error(Data([1, 2, 3]))?.contains("truncated") == true)
        #expect(error(good.prefix(good.count - 1)) != nil)
        #expect(error(good.prefix(20))?.contains("truncated") == true)
        #expect(error(crafted("{}", dataSize: 0, length: 1 << 40))?.contains("larger than") == true)
        #expect(error(Data("PK\u{3}\u{4}not a safetensors file at all".utf8)) != nil)
        #expect(error(crafted("{\"a\": [1,", dataSize: 0))?.contains("not a JSON object") == true)
        #expect(error(crafted("[1, 2]", dataSize: 0))?.contains("not a JSON object") == true)
        let a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
        #expect(error(crafted("{\(a)}", dataSize: 8)) == nil)
        // Offsets past the end of the data.
        #expect(error(crafted("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", dataSize: 8))?.contains("\"a\"") == true)
        // Overlapping offsets.
        let b = "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}"
        #expect(error(crafted("{\(a),\(b)}", dataSize: 12))?.contains("overlap") == true)
        // A hole, and trailing bytes.
        let c = "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}"
        #expect(error(crafted("{\(a),\(c)}", dataSize: 16))?.contains("hole") == true)
        #expect(error(crafted("{\(a)}", dataSize: 12)) != nil)
        // Size not matching shape × dtype, unknown dtype, bad metadata.
        #expect(error(crafted("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", dataSize: 8)) != nil)
        #expect(error(crafted("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", dataSize: 8))?.contains("unsupported dtype") == true)
        #expect(error(crafted("{\"__metadata__\":{\"k\":1},\(a)}", dataSize: 8)) != nil)
        #expect(error(crafted("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", dataSize: 8)) != nil)
    }

    final class TwoLayers: Module {
        let w = Tensor(shape: [2, 3], repeating: 0.5)
        let b = Tensor(shape: [3], repeating: -1)
        func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
            visit(prefix + "layer.weight", w)
            visit(prefix + "layer.bias", b)
        }
    }

    struct Config: Codable, Equatable { var width = 3; var name = "tiny" }

    @Test func modelRoundTripsWithConfiguration() throws {
        let folder = TemporaryFolder()
        let url = folder.file("model.safetensors")
        let source = TwoLayers()
        for i in 0..<6 { source.w.pointer[i] = Float(i) * 0.25 }
        try Safetensors.save(parameters: source.namedParameters, configuration: Config(width: 7), to: url)
        let target = TwoLayers()
        let metadata = try Safetensors.load(into: target.namedParameters, from: url)
        #expect(target.w.values == source.w.values)
        #expect(target.b.values == source.b.values)
        #expect(metadata[Safetensors.formatVersionKey] == Safetensors.formatVersion)
        #expect(try Safetensors.read(url).configuration(as: Config.self) == Config(width: 7))
    }

    @Test func strictLoadRejectsMismatchesAndChangesNothing() throws {
        let folder = TemporaryFolder()
        let w = TensorData(shape: [2, 3], .f32([1, 2, 3, 4, 5, 6]))
        let b = TensorData(shape: [3], .f32([7, 8, 9]))
        let cases: [(String, [(name: String, data: TensorData)], String)] = [
            ("missing", [("layer.weight", w)], "layer.bias"),
            ("unexpected", [("layer.weight", w), ("layer.bias", b), ("extra.scale", b)], "extra.scale"),
            ("shape", [("layer.weight", TensorData(shape: [3, 2], .f32([1, 2, 3, 4, 5, 6]))), ("layer.bias", b)], "layer.weight"),
            ("dtype", [("layer.weight", w), ("layer.bias", TensorData(shape: [3], .f64([7, 8, 9])))], "layer.bias"),
        ]
        for (label, tensors, culprit) in cases {
            let url = folder.file("\(label).safetensors")
            try Safetensors.save(tensors, to: url)
            let model = TwoLayers()
            let message = thrownMessage { try Safetensors.load(into: model.namedParameters, from: url) }
            #expect(message?.contains(culprit) == true, "\(label): \(message ?? "no error")")
            #expect(message?.contains(url.path) == true)
            #expect(model.w.values == [Float](repeating: 0.5, count: 6), "\(label) changed the model")
            #expect(model.b.values == [-1, -1, -1])
        }
        // Truncated file: an error naming the file, model unchanged.
        let good = folder.file("good.safetensors")
        try Safetensors.save([("layer.weight", w), ("layer.bias", b)], to: good)
        let bytes = try Data(contentsOf: good)
        let cut = folder.file("cut.safetensors")
        try bytes.prefix(bytes.count - 4).write(to: cut)
        let model = TwoLayers()
        #expect(thrownMessage { try Safetensors.load(into: model.namedParameters, from: cut) }?.contains(cut.path) == true)
        #expect(model.b.values == [-1, -1, -1])
        #expect(thrownMessage { try Safetensors.load(into: model.namedParameters, from: folder.file("none")) }?.contains("no such file") == true)
    }

    @Test func atomicWriteReplacesAndLeavesNoTemporaryFiles() throws {
        let folder = TemporaryFolder()
        let url = folder.file("x.safetensors")
        try Safetensors.save(Self.sample, to: url)
        try Safetensors.save([("only", TensorData(shape: [1], .f32([2])))], to: url)
        #expect(try Safetensors.read(url).names == ["only"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path) == ["x.safetensors"])
    }
}
