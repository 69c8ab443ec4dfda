import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct FIDCommandTests {
    /// (n, d) features with a per-feature scale, seeded.
    func features(_ n: Int, _ d: Int, seed: UInt64) -> [Double] {
        var rng = RandomGenerator(seed: seed)
        return (0..<(n * d)).map { Double(rng.normal()) * Double(1 + $0 % d) }
    }

    @Test func fidOfFilesMatchesTheLibraryAndAShiftGivesItsSquaredNorm() throws {
        let folder = TemporaryFolder()
        let x = features(60, 4, seed: 1)
        let shift = [1.0, -2.0, 0.5, 3.0]
        let y = x.enumerated().map { $0.element + shift[$0.offset % 4] }
        try Npy.save(TensorData(shape: [60, 4], .f64(x)), to: folder.file("real.npy"))
        try Npy.save(TensorData(shape: [60, 4], .f64(y)), to: folder.file("shifted.npy"))
        let shifted = try FeatureFileComparison(real: folder.file("real.npy"), fake: folder.file("shifted.npy"))
        // Equal covariances: FID = ‖shift‖² = 1 + 4 + 0.25 + 9.
        #expect(abs(shifted.fid.fid - 14.25) < 1e-9)
        #expect(shifted.kid == nil && shifted.report.contains("FID 14.25") && !shifted.report.contains("KID"))

        // float32 against float64 of another size, against FID.compute directly.
        let z = features(45, 4, seed: 2).map { Float($0) }
        try Npy.save(TensorData(shape: [45, 4], .f32(z)), to: folder.file("fake.npy"))
        let mixed = try FeatureFileComparison(real: folder.file("real.npy"), fake: folder.file("fake.npy"),
                                              kid: .init(subsets: 10, subsetSize: 20, seed: 3))
        let direct = try FID.compute(x, shape: [60, 4], z.map(Double.init), shape: [45, 4])
        #expect(mixed.fid == direct)
        var rng = RandomGenerator(seed: 3)
        let kid = try KID.compute(x, shape: [60, 4], z.map(Double.init), shape: [45, 4], subsets: 10, subsetSize: 20, using: &rng)
        #expect(mixed.kid == kid)
        #expect(mixed.realShape == [60, 4] && mixed.fakeShape == [45, 4])
        #expect(mixed.report.contains("KID") && mixed.report.contains("±") && mixed.report.contains("10 subsets of 20"))

        let same = try FeatureFileComparison(real: folder.file("real.npy"), fake: folder.file("real.npy"))
        #expect(abs(same.fid.fid) < 1e-9)
    }

    @Test func badInputsAreClearErrors() throws {
        let folder = TemporaryFolder()
        func save(_ name: String, _ data: TensorData) throws -> URL {
            try Npy.save(data, to: folder.file(name))
            return folder.file(name)
        }
        let good = try save("good.npy", TensorData(shape: [10, 3], .f32(features(10, 3, seed: 4).map { Float($0) })))
        let wide = try save("wide.npy", TensorData(shape: [10, 5], .f32(features(10, 5, seed: 5).map { Float($0) })))
        let one = try save("one.npy", TensorData(shape: [1, 3], .f32([1, 2, 3])))
        let rank3 = try save("rank3.npy", TensorData(shape: [2, 3, 2], .f32([Float](repeating: 1, count: 12))))
        let ints = try save("ints.npy", TensorData(shape: [4, 3], .i32([Int32](repeating: 1, count: 12))))
        let nan = try save("nan.npy", TensorData(shape: [3, 2], .f64([0, 1, 2, .nan, 4, 5])))
        func message(_ a: URL, _ b: URL, kid: FeatureFileComparison.KIDOptions? = nil) -> String {
            thrownMessage { _ = try FeatureFileComparison(real: a, fake: b, kid: kid) } ?? "no error"
        }
        let dims = message(good, wide)
        #expect(dims.contains("good.npy has 3 features") && dims.contains("wide.npy has 5"))
        #expect(message(good, one).contains("one.npy: holds 1 sample(s)"))
        #expect(message(rank3, good).contains("rank3.npy: holds an array of shape [2, 3, 2]"))
        #expect(message(good, ints).contains("ints.npy: has dtype <i4"))
        #expect(message(good, nan).contains("nan.npy: holds a non-finite value (nan) at row 1, column 1"))
        #expect(message(good, folder.file("absent.npy")).contains("absent.npy: no such file"))
        #expect(message(good, good, kid: .init(subsets: 5, subsetSize: 50)).contains("subset size 50"))
    }
}
