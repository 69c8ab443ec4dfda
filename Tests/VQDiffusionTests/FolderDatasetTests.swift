import Foundation
import Testing
@testable import VQDiffusion

/// Writes `images` as PNG files and `lines` as captions.jsonl into a fresh folder.
func makeImageFolder(_ images: [String: Image], lines: [String]) throws -> TemporaryFolder {
    let folder = TemporaryFolder()
    for (name, image) in images { try PNG.write(image, to: folder.file(name)) }
    try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: folder.file(FolderDataset.captionsFileName))
    return folder
}

/// A w×h image whose values depend on position, channel and `seed`.
func patternImage(width: Int, height: Int, channels: Int, seed: Int = 0) -> Image {
    Image(width: width, height: height, channels: channels,
          pixels: (0..<(width * height * channels)).map { UInt8(truncatingIfNeeded: $0 * 37 + seed * 11 + 5) })
}

func captionLine(_ file: String, _ caption: String) -> String { "{\"file\": \"\(file)\", \"caption\": \"\(caption)\"}" }

@Suite struct FolderDatasetTests {
    @Test func readsImagesAndCaptionsInOrderIgnoringExtraKeys() throws {
        let images = (0..<3).map { patternImage(width: 8, height: 8, channels: 3, seed: $0) }
        let folder = try makeImageFolder(["a.png": images[0], "b.png": images[1], "c.png": images[2]], lines: [
            "{\"file\": \"b.png\", \"caption\": \"second\", \"extra\": [1, 2]}",
            "",
            captionLine("a.png", "first"),
            captionLine("c.png", "third one"),
        ])
        let data = try FolderDataset(directory: folder.url)
        #expect(data.count == 3 && data.imageSize == 8 && data.channels == 3)
        #expect((0..<3).map { data.sample(at: $0).caption } == ["second", "first", "third one"])
        #expect(data.sample(at: 0).image.pixels == images[1].pixels)
        #expect(data.sample(at: 1).image.pixels == images[0].pixels)
        #expect(data.sample(at: 2).attributes == nil)
        let stats = FolderStatistics(data)
        #expect(stats.samples == 3 && stats.resized == 0 && stats.captionWords.max == 2 && stats.captionCharacters.min == 5)
        #expect(stats.report.contains("8×8 RGB: 3"))
    }

    @Test func missingCaptionsFileIsAnError() throws {
        let folder = TemporaryFolder()
        let message = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(message?.contains("captions.jsonl is missing") == true)
    }

    @Test func malformedLineNamesItsNumber() throws {
        let folder = try makeImageFolder(["a.png": patternImage(width: 4, height: 4, channels: 1)],
                                         lines: [captionLine("a.png", "ok"), "{\"file\": \"a.png\", \"caption\": ", captionLine("a.png", "x")])
        let message = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(message?.contains("line 2") == true)
        #expect(message?.contains("not a JSON object") == true)
        let noFile = try makeImageFolder([:], lines: ["{\"caption\": \"x\"}"])
        #expect(thrownMessage { _ = try FolderDataset(directory: noFile.url) }?.contains("line 1 has no \"file\"") == true)
    }

    @Test func missingFileIsNamed() throws {
        let folder = try makeImageFolder(["a.png": patternImage(width: 4, height: 4, channels: 1)],
                                         lines: [captionLine("a.png", "ok"), captionLine("gone.png", "missing")])
        let message = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(message?.contains("gone.png") == true && message?.contains("does not exist") == true)
        #expect(message?.contains("line 2") == true)
    }

    @Test func nonPNGAndCorruptFilesAreNamed() throws {
        let folder = try makeImageFolder(["a.png": patternImage(width: 4, height: 4, channels: 1)],
                                         lines: [captionLine("a.png", "ok"), captionLine("b.jpg", "not png")])
        try Data("JFIF not a png".utf8).write(to: folder.file("b.jpg"))
        let message = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(message?.contains("b.jpg") == true && message?.contains("not a readable PNG") == true)

        // A PNG cut in half.
        let bytes = try PNG.encode(patternImage(width: 16, height: 16, channels: 3))
        try bytes.prefix(bytes.count / 2).write(to: folder.file("b.jpg"))
        let corrupt = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(corrupt?.contains("b.jpg") == true && corrupt?.contains("not a readable PNG") == true)
    }

    @Test func emptyCaptionAndEmptyListAreErrors() throws {
        let folder = try makeImageFolder(["a.png": patternImage(width: 4, height: 4, channels: 1)],
                                         lines: [captionLine("a.png", "  ")])
        let message = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(message?.contains("a.png") == true && message?.contains("empty caption") == true)
        let empty = try makeImageFolder([:], lines: [""])
        #expect(thrownMessage { _ = try FolderDataset(directory: empty.url) }?.contains("lists no images") == true)
    }

    @Test func otherSizesAreRejectedUnlessResizing() throws {
        let pattern = patternImage(width: 8, height: 8, channels: 3)
        let small = Image(width: 8, height: 8, channels: 3, pixels: pattern.pixels.map { $0 % 250 })
        // 16×16 in 2×2 blocks: area resizing to 8×8 gives back each block's mean exactly.
        var big = Image(width: 16, height: 16, fill: [0, 0, 0])
        for y in 0..<16 { for x in 0..<16 { for c in 0..<3 {
            big[x: x, y: y, channel: c] = small[x: x / 2, y: y / 2, channel: c] + UInt8((x % 2 + y % 2) * 2)
        } } }
        let folder = try makeImageFolder(["s.png": small, "b.png": big], lines: [captionLine("s.png", "small"), captionLine("b.png", "big")])
        let message = thrownMessage { _ = try FolderDataset(directory: folder.url) }
        #expect(message?.contains("b.png") == true && message?.contains("16×16") == true && message?.contains("8×8") == true)
        #expect(message?.contains("--resize") == true)

        let data = try FolderDataset(directory: folder.url, resize: true)
        #expect(data.imageSize == 8)
        #expect(data.sample(at: 0).image.pixels == small.pixels)
        let expected = small.pixels.map { $0 + 2 }   // block offsets 0, 2, 2, 4 average to 2
        #expect(data.sample(at: 1).image.pixels == expected)
        #expect(data.entries[1].wasResized(to: 8) && FolderStatistics(data).resized == 1)

        // An explicit size: both resized; 8 → 16 by area averaging is pixel replication.
        let up = try FolderDataset(directory: folder.url, size: 16, resize: true)
        #expect(up.sample(at: 0).image.pixels == FolderDataset.resized(small, width: 16, height: 16).pixels)
        #expect(up.sample(at: 0).image[x: 5, y: 3, channel: 1] == small[x: 2, y: 1, channel: 1])
        #expect(up.sample(at: 1).image.pixels == big.pixels)
        // With --size but without --resize, the mismatch names both sizes.
        let rejected = thrownMessage { _ = try FolderDataset(directory: folder.url, size: 16) }
        #expect(rejected?.contains("s.png is 8×8") == true && rejected?.contains("16×16") == true)
    }

    @Test func areaWeightsSumToOne() {
        for (n, m) in [(7, 3), (3, 7), (10, 10), (32, 5)] {
            for taps in FolderDataset.areaWeights(from: n, to: m) {
                #expect(abs(taps.reduce(0) { $0 + $1.1 } - 1) < 1e-12)
            }
        }
    }

    @Test func channelsAreUnifiedAndAlphaDroppedOverBlack() throws {
        let grey = patternImage(width: 2, height: 2, channels: 1)
        let rgba = Image(width: 2, height: 2, channels: 4, pixels: [200, 100, 50, 128, 10, 20, 30, 255, 90, 90, 90, 0, 255, 255, 255, 255])
        let folder = try makeImageFolder(["g.png": grey, "c.png": rgba], lines: [captionLine("g.png", "grey"), captionLine("c.png", "colour")])
        let data = try FolderDataset(directory: folder.url)
        #expect(data.channels == 3)
        #expect(data.sample(at: 0).image.pixels == grey.pixels.flatMap { [$0, $0, $0] })
        #expect(data.sample(at: 1).image.pixels == [100, 50, 25, 10, 20, 30, 0, 0, 0, 255, 255, 255])

        let greyAlpha = Image(width: 1, height: 1, channels: 2, pixels: [200, 51])
        let onlyGrey = try makeImageFolder(["g.png": grey.converted(toChannels: 1), "a.png": greyAlpha.converted(toChannels: 2)],
                                           lines: [captionLine("g.png", "grey"), captionLine("a.png", "alpha")])
        let bad = thrownMessage { _ = try FolderDataset(directory: onlyGrey.url) }
        #expect(bad?.contains("a.png is 1×1") == true)   // sizes differ
        let greyData = try FolderDataset(directory: onlyGrey.url, size: 1, resize: true)
        #expect(greyData.channels == 1)
        #expect(greyData.sample(at: 1).image.pixels == [40])   // 200·51/255
    }

    @Test func nonSquareFirstImageNeedsASize() throws {
        let folder = try makeImageFolder(["w.png": patternImage(width: 6, height: 4, channels: 3)], lines: [captionLine("w.png", "wide")])
        #expect(thrownMessage { _ = try FolderDataset(directory: folder.url) }?.contains("not square") == true)
        let data = try FolderDataset(directory: folder.url, size: 3, resize: true)
        #expect(data.imageSize == 3 && data.sample(at: 0).image.width == 3)
    }
}
