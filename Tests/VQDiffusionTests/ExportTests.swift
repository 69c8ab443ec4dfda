import Foundation
import Testing
@testable import VQDiffusion

@Suite struct ExportTests {
    func jsonLines(_ url: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: url.appendingPathComponent(FolderDataset.captionsFileName), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func shapesExportReadsBackAsAFolderWithAttributes() throws {
        let shapes = try ShapesDataset(ShapesConfiguration(imageSize: 16, seed: 5, split: .val, count: 12))
        let folder = TemporaryFolder()
        let out = folder.file("export")
        let names = try DatasetExport.export(shapes, count: 12, to: out)
        #expect(names.first == "00000.png" && names.last == "00011.png")

        let back = try FolderDataset(directory: out)
        #expect(back.count == 12 && back.imageSize == 16 && back.channels == 3)
        let lines = try jsonLines(out)
        for i in 0..<12 {
            let original = shapes.shapesSample(at: i)
            #expect(back.sample(at: i).image == original.image)
            #expect(back.sample(at: i).caption == original.caption)
            let line = lines[i]
            #expect(line["file"] as? String == names[i] && line["index"] as? Int == i)
            let attributes = try #require(line["attributes"] as? [String: Any])
            let objects = try #require(attributes["objects"] as? [[String: Any]])
            #expect(objects.count == original.objects.count)
            for (o, scene) in zip(objects, original.objects) {
                #expect(o["shape"] as? String == scene.shape.name)
                #expect(o["color"] as? String == scene.color.name)
                #expect(o["size"] as? String == scene.size.name)
                let center = try #require(o["center"] as? [Double])
                #expect(Float(center[0]) == scene.centerX && Float(center[1]) == scene.centerY)
                #expect(Float(try #require(o["extent"] as? Double)) == scene.extent)
            }
            #expect((attributes["position"] as? String) == original.position?.name)
            #expect((attributes["relation"] as? String) == original.relation?.phrase)
            #expect(attributes["template"] as? String == original.template.description)
        }
    }

    @Test func classLabelsAndEscapesAreWritten() throws {
        let image = DatasetImage(width: 2, height: 2, channels: 1, pixels: [0, 64, 128, 255])
        let line = DatasetExport.jsonLine(file: "00007.png", index: 7,
                                          sample: DatasetSample(image: image, caption: "a \"quoted\" \\ caption", attributes: .classLabel(7)))
        #expect(line == #"{"file":"00007.png","caption":"a \"quoted\" \\ caption","index":7,"attributes":{"label":7,"class":"Sneaker"}}"#)

        // A caption with quotes, a backslash and non-ASCII text survives export and reading back.
        let source = InMemoryCaptionedDataset(size: 4, channels: 1, count: 2)
        var samples = source.samples
        samples[1].caption = "naïve \"café\" \\ ünïcode"
        struct Fixed: CaptionedDataset {
            let samples: [DatasetSample]
            var count: Int { samples.count }
            var channels: Int { 1 }
            var imageSize: Int { 4 }
            func sample(at index: Int) -> DatasetSample { samples[index] }
        }
        let folder = TemporaryFolder()
        try DatasetExport.export(Fixed(samples: samples), count: 2, to: folder.file("out"))
        let back = try FolderDataset(directory: folder.file("out"))
        #expect(back.channels == 1)
        #expect(back.sample(at: 1).caption == samples[1].caption)
        #expect(back.sample(at: 0).image == samples[0].image)
        #expect(try jsonLines(folder.file("out"))[0]["attributes"] == nil)
    }

    @Test func fileNamesAreZeroPadded() {
        #expect(DatasetExport.fileName(index: 3, count: 10) == "00003.png")
        #expect(DatasetExport.fileName(index: 0, count: 1) == "00000.png")
        #expect(DatasetExport.fileName(index: 5, count: 123_456) == "000005.png")
        #expect(DatasetExport.fileName(index: 99_999, count: 100_000) == "99999.png")
    }

    @Test func nonEmptyFolderIsRefusedUnlessForced() throws {
        let shapes = try ShapesDataset(ShapesConfiguration(imageSize: 16, count: 3))
        let folder = TemporaryFolder()
        try Data("keep".utf8).write(to: folder.file("notes.txt"))
        let message = thrownMessage { try DatasetExport.export(shapes, count: 2, to: folder.url) }
        #expect(message?.contains("not empty") == true && message?.contains("--force") == true)
        #expect(!FileManager.default.fileExists(atPath: folder.file("00000.png").path))
        try DatasetExport.export(shapes, count: 2, to: folder.url, force: true)
        #expect(try FolderDataset(directory: folder.url).count == 2)
        #expect(FileManager.default.fileExists(atPath: folder.file("notes.txt").path))
        #expect(thrownMessage { try DatasetExport.export(shapes, count: 4, to: folder.file("x")) }?.contains("has 3") == true)
    }
}
