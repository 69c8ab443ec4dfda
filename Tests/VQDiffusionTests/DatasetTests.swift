import Engine
import Testing
@testable import VQDiffusion

/// A caption-only source held in memory, standing in for a folder of PNG files.
struct InMemoryCaptionedDataset: CaptionedDataset {
    let imageSize: Int
    let channels: Int
    let samples: [DatasetSample]
    var count: Int { samples.count }

    init(size: Int, channels: Int, count: Int) {
        imageSize = size
        self.channels = channels
        samples = (0..<count).map { i in
            let pixels = (0..<(size * size * channels)).map { UInt8(truncatingIfNeeded: $0 * 7 + i * 31) }
            return DatasetSample(image: DatasetImage(width: size, height: size, channels: channels, pixels: pixels),
                                 caption: "image \(i)")
        }
    }

    func sample(at index: Int) -> DatasetSample { samples[index] }
}

@Suite struct DatasetTests {
    /// Checks what every source promises: images of the declared size and channels, a caption.
    func checkContract(_ data: any CaptionedDataset, samples: Int) {
        #expect(data.channels == 1 || data.channels == 3)
        for i in stride(from: 0, to: data.count, by: max(1, data.count / samples)) {
            let s = data.sample(at: i)
            #expect(s.image.width == data.imageSize && s.image.height == data.imageSize)
            #expect(s.image.channels == data.channels)
            #expect(s.image.pixels.count == data.imageSize * data.imageSize * data.channels)
            #expect(!s.caption.isEmpty)
        }
    }

    @Test func everySourceKeepsTheContract() throws {
        for split in DatasetSplit.allCases { checkContract(shapesSplit(split, size: 24, count: 200), samples: 20) }
        checkContract(InMemoryCaptionedDataset(size: 8, channels: 3, count: 5), samples: 5)
        if FashionTests.realFilesPresent { checkContract(try FashionMNIST(split: .val), samples: 20) }
    }

    @Test func shapesSamplesCarryTheirScene() {
        let data = shapesSplit(.novel, count: 20)
        for i in 0..<data.count {
            let s = data.sample(at: i)
            guard case .shapes(let scene)? = s.attributes else {
                Issue.record("sample \(i) has no Shapes attributes")
                continue
            }
            #expect(scene.caption == s.caption)
            #expect(scene == data.scene(at: i))
        }
    }

    @Test func defaultCountsAndSplitNames() throws {
        #expect(try ShapesDataset(ShapesConfiguration(split: .train)).count == 50_000)
        #expect(try ShapesDataset(ShapesConfiguration(split: .novel)).count == 5_000)
        #expect(try ShapesDataset(ShapesConfiguration(count: 0)).count == 0)
        #expect(throws: DatasetError.self) { try ShapesDataset(ShapesConfiguration(count: -1)) }
        #expect(DatasetSplit(rawValue: "val") == .val && DatasetSplit(rawValue: "validation") == nil)
    }
}
