import Foundation
import Testing
@testable import VQDiffusion

@Suite struct NpyTests {
    static let arrays: [TensorData] = [
        TensorData(shape: [2, 3], .f32([1, 2, 3, -4, 5.5, .infinity])),
        TensorData(shape: [4], .f64([0.1, -0.2, 1e300, -0])),
        TensorData(shape: [2, 1, 2], .i32([1, -1, Int32.max, Int32.min])),
        TensorData(shape: [], .i64([-42])),
        TensorData(shape: [3, 2], .u8([0, 1, 127, 128, 254, 255])),
        TensorData(shape: [0], .f32([])),
    ]

    @Test func roundTripsVersions1And2() throws {
        for array in Self.arrays {
            for version in [1, 2] {
                let bytes = Npy.encode(array, version: version)
                #expect(bytes[6] == UInt8(version))
                let headerEnd = version == 1 ? 10 : 12
                let headerLength = version == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8 : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16
                #expect((headerEnd + headerLength) % 64 == 0)
                #expect(bytes[headerEnd + headerLength - 1] == 0x0A)
                #expect(try Npy.decode(bytes, path: "a.npy") == array)
            }
        }
        let folder = TemporaryFolder()
        try Npy.save(Self.arrays[0], to: folder.file("a.npy"))
        #expect(try Npy.read(folder.file("a.npy")) == Self.arrays[0])
    }

    /// The header NumPy 1.x writes for np.arange(6, dtype='<f4').reshape(2, 3), byte for byte.
    @Test func readsNumpysOwnHeader() throws {
        var bytes = [UInt8]([0x93]) + Array("NUMPY".utf8) + [1, 0, 118, 0]
        var dict = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".utf8)
        while dict.count < 117 { dict.append(0x20) }
        bytes += dict + [0x0A]
        for v: Float in [0, 1, 2, 3, 4, 5] { bytes += withUnsafeBytes(of: v) { Array($0) } }
        let array = try Npy.decode(Data(bytes), path: "np.npy")
        #expect(array == TensorData(shape: [2, 3], .f32([0, 1, 2, 3, 4, 5])))
        #expect(Npy.encode(array) == Data(bytes))
    }

    func crafted(_ dict: String, dataSize: Int) -> Data {
        var h = Array(dict.utf8)
        while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
        h.append(0x0A)
        return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + [UInt8](repeating: 0, count: dataSize))
    }

    @Test func rejectsWhatItCannotRead() {
        func error(_ data: Data) -> String? { thrownMessage { _ = try Npy.decode(data, path: "bad.npy") } }
        #expect(error(crafted("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", dataSize: 24))?.contains("Fortran") == true)
        #expect(error(crafted("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", dataSize: 8))?.contains("big-endian") == true)
        #expect(error(crafted("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", dataSize: 16))?.contains("unsupported dtype") == true)
        #expect(error(crafted("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", dataSize: 8)) != nil)
        #expect(error(crafted("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", dataSize: 20))?.contains("truncated") == true)
        #expect(error(crafted("{'descr': '<f4', 'fortran_order': False", dataSize: 0)) != nil)
        #expect(error(Data("PK not numpy".utf8))?.contains("magic") == true)
        #expect(error(Data([0x93] + Array("NUMPY".utf8) + [9, 0, 0, 0])) != nil)
        #expect(error(Npy.encode(Self.arrays[0]).prefix(30)) != nil)
    }
}
