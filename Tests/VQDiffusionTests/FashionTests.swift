import CLibs
import Engine
import Foundation
import Testing
@testable import VQDiffusion

/// A fresh temporary directory for one test.
func datasetTestDirectory(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("vqd-\(name)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Writes `bytes` gzip-compressed through zlib.
func writeGzipForTest(_ bytes: [UInt8], to path: String) {
    let file = gzopen(path, "wb")!
    let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    precondition(written == bytes.count, "gzwrite wrote \(written) of \(bytes.count) bytes")
    precondition(gzclose(file) == Z_OK)
}

/// An IDX header of unsigned bytes with the given dimensions.
func idxTestHeader(_ dims: [Int]) -> [UInt8] {
    var h: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
    for d in dims { h += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return h
}

@Suite struct FashionTests {
    @Test func idxFilesParseThroughZlib() throws {
        let dir = datasetTestDirectory("idx")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("small-idx3-ubyte.gz").path
        let values = (0..<12).map { UInt8($0 * 20) }
        writeGzipForTest(idxTestHeader([3, 2, 2]) + values, to: path)
        let idx = try IDXFile.read(gzipPath: path)
        #expect(idx.dimensions == [3, 2, 2])
        #expect(idx.values == values)
    }

    @Test func truncatedAndMalformedIDXFilesGiveClearErrors() throws {
        let dir = datasetTestDirectory("idx-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        func message(_ bytes: [UInt8]) -> String {
            let path = dir.appendingPathComponent("bad.gz").path
            writeGzipForTest(bytes, to: path)
            do {
                _ = try IDXFile.read(gzipPath: path, hint: "HINT")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let short = message(idxTestHeader([3, 2, 2]) + [1, 2, 3, 4, 5])
        #expect(short.contains("truncated") && short.contains("3×2×2") && short.contains("HINT"), "\(short)")
        #expect(message(idxTestHeader([2, 2]) + [1, 2, 3, 4, 5]).contains("4 values but 5 follow"))
        #expect(message([0, 0, 8]).contains("fewer than the 4-byte header"))
        #expect(message([0, 0, 8, 3, 0, 0]).contains("declares 3 dimensions"))
        #expect(message([0x12, 0x34, 8, 1]).contains("magic number"))
        #expect(message([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).contains("element type 0xd"))

        // A gzip file cut in the middle of its compressed stream.
        var rng = RandomGenerator(seed: 1)
        let payload = (0..<40_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let full = dir.appendingPathComponent("full.gz").path
        writeGzipForTest(idxTestHeader([40_000]) + payload, to: full)
        let compressed = try Data(contentsOf: URL(fileURLWithPath: full))
        let cut = dir.appendingPathComponent("cut.gz").path
        try compressed.prefix(compressed.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(throws: DatasetError.self) { try IDXFile.read(gzipPath: cut) }
        #expect(throws: DatasetError.self) { try IDXFile.read(gzipPath: dir.appendingPathComponent("absent.gz").path) }
    }

    @Test func missingFilesSayHowToInstallThePackage() {
        let dir = datasetTestDirectory("fashion-empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try FashionMNIST(split: .train, directory: dir.path)
            Issue.record("opening an empty directory should fail")
        } catch {
            let m = "\(error)"
            #expect(m.contains("does not exist") && m.contains("make deps") && m.contains("apt-get install dataset-fashion-mnist"), "\(m)")
        }
        #expect(throws: DatasetError.self) { try FashionMNIST(split: .novel, directory: dir.path) }
    }

    @Test func craftedFilesSplitPadAndCaption() throws {
        let dir = datasetTestDirectory("fashion-crafted")
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 5_003
        var images = [UInt8](repeating: 0, count: n * 784)
        for i in 0..<n { for p in 0..<784 { images[i * 784 + p] = UInt8(truncatingIfNeeded: i &+ p) | 1 } }
        writeGzipForTest(idxTestHeader([n, 28, 28]) + images, to: dir.appendingPathComponent("train-images-idx3-ubyte.gz").path)
        writeGzipForTest(idxTestHeader([n]) + (0..<n).map { UInt8($0 % 10) }, to: dir.appendingPathComponent("train-labels-idx1-ubyte.gz").path)
        writeGzipForTest(idxTestHeader([2, 28, 28]) + [UInt8](repeating: 9, count: 2 * 784), to: dir.appendingPathComponent("t10k-images-idx3-ubyte.gz").path)
        writeGzipForTest(idxTestHeader([2]) + [7, 9], to: dir.appendingPathComponent("t10k-labels-idx1-ubyte.gz").path)

        let train = try FashionMNIST(split: .train, directory: dir.path)
        let val = try FashionMNIST(split: .val, directory: dir.path)
        let test = try FashionMNIST(split: .test, directory: dir.path)
        #expect(train.count == 3 && val.count == 5_000 && test.count == 2)
        #expect(train.imageSize == 32 && train.channels == 1)
        #expect(val.label(at: 0) == 3 && test.label(at: 1) == 9)

        let s = val.sample(at: 4)  // file image 7
        #expect(s.attributes == .classLabel(7))
        #expect(s.image.width == 32 && s.image.height == 32 && s.image.channels == 1)
        for y in 0..<32 {
            for x in 0..<32 {
                let inside = (2..<30).contains(x) && (2..<30).contains(y)
                let expected: UInt8 = inside ? UInt8(truncatingIfNeeded: 7 &+ (y - 2) * 28 + (x - 2)) | 1 : 0
                #expect(s.image[x: x, y: y, channel: 0] == expected)
            }
        }
        #expect(FashionMNIST.classLabel(inCaption: s.caption) == 7, "\(s.caption)")
        #expect(test.sample(at: 0).caption.hasSuffix("a sneaker") && test.sample(at: 1).caption.hasSuffix("an ankle boot"))

        // Labels out of range are rejected.
        writeGzipForTest(idxTestHeader([2]) + [7, 10], to: dir.appendingPathComponent("t10k-labels-idx1-ubyte.gz").path)
        #expect(throws: DatasetError.self) { try FashionMNIST(split: .test, directory: dir.path) }
    }

    @Test func captionsComeFromSeveralTemplatesDeterministically() throws {
        for label in 0..<10 {
            for t in FashionMNIST.templates.indices {
                #expect(FashionMNIST.classLabel(inCaption: FashionMNIST.caption(label: label, template: t)) == label)
            }
        }
        #expect(FashionMNIST.caption(label: 7, template: 0) == "a photo of a sneaker")
        #expect(FashionMNIST.caption(label: 9, template: 1) == "an ankle boot")
        #expect(FashionMNIST.caption(label: 1, template: 1) == "a pair of trousers")
        #expect(FashionMNIST.classLabel(inCaption: "a shirt next to a bag") == nil)
    }

    static let realFilesPresent = FileManager.default.fileExists(
        atPath: FashionMNIST.defaultDirectory + "/train-images-idx3-ubyte.gz")

    @Test(.enabled(if: realFilesPresent, "the dataset-fashion-mnist package is not installed"))
    func realFilesLoadWithTheRightCounts() throws {
        let train = try FashionMNIST(split: .train, seed: 1)
        let val = try FashionMNIST(split: .val, seed: 1)
        let test = try FashionMNIST(split: .test, seed: 1)
        #expect(train.count == 55_000 && val.count == 5_000 && test.count == 10_000)
        for data in [train, val, test] {
            var perClass = [Int](repeating: 0, count: 10), perTemplate = [Int](repeating: 0, count: FashionMNIST.templates.count)
            for i in 0..<data.count {
                perClass[data.label(at: i)] += 1
                perTemplate[data.templateIndex(at: i)] += 1
            }
            #expect(perClass.allSatisfy { $0 > data.count / 20 }, "\(data.split): \(perClass)")
            for t in perTemplate { expectDatasetFrequency(t, of: data.count, near: 1.0 / Double(perTemplate.count), "\(data.split) template") }
        }
        #expect(test.label(at: 0) == 9)  // the first t10k image is an ankle boot
        let s = train.sample(at: 123)
        #expect(s.caption == train.sample(at: 123).caption)
        #expect(FashionMNIST.classLabel(inCaption: s.caption) == train.label(at: 123))
        #expect(s.image.pixels.contains { $0 > 100 })
    }
}
