import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct PNGTests {
    /// A deterministic image with every channel value varying.
    static func pattern(width: Int, height: Int, channels: Int) -> Image {
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        for i in 0..<pixels.count { pixels[i] = UInt8((i * 37 + i / 7) % 256) }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    @Test func roundTripsGreyRGBAndRGBA() throws {
        let folder = TemporaryFolder()
        for channels in [1, 2, 3, 4] {
            let image = Self.pattern(width: 13, height: 7, channels: channels)
            let url = folder.file("p\(channels).png")
            try PNG.write(image, to: url)
            let back = try PNG.read(url)
            #expect(back == image, "channels \(channels)")
        }
    }

    @Test func tensorConversionsMapToMinusOneOne() {
        let image = Self.pattern(width: 5, height: 4, channels: 3)
        let tensor = image.tensor()   // (C, H, W)
        #expect(tensor.shape == [3, 4, 5])
        #expect(tensor.values.allSatisfy { $0 >= -1 && $0 <= 1 })
        #expect(tensor.pointer[(2 * 4 + 1) * 5 + 3] == Float(image[x: 3, y: 1, channel: 2]) / 127.5 - 1)
        #expect(Image(tensor: tensor) == image)
        let extremes = Image(tensor: Tensor(shape: [1, 1, 4], values: [-1, 1, -3, 0]))
        #expect(extremes.pixels == [0, 255, 0, 128])
        let batch = Image.batch(Tensor(shape: [2, 1, 1, 2], values: [-1, -1, 1, 1]))
        #expect(batch.map(\.pixels) == [[0, 0], [255, 255]])
    }

    @Test func gridGeometry() {
        let images = (0..<5).map { k in Image(width: 4, height: 3, fill: [UInt8(10 * (k + 1)), 0, 0]) }
        let sheet = Image.grid(images, columns: 3, gap: 2, background: [255, 255, 255])
        #expect(sheet.width == 3 * 4 + 4 * 2)
        #expect(sheet.height == 2 * 3 + 3 * 2)
        #expect(sheet.channels == 3)
        #expect(sheet[x: 0, y: 0, channel: 0] == 255)              // frame
        #expect(sheet[x: 2, y: 2, channel: 0] == 10)               // first image's corner
        #expect(sheet[x: 5, y: 4, channel: 0] == 10)               // first image's last pixel
        #expect(sheet[x: 6, y: 2, channel: 0] == 255)              // gap between columns
        #expect(sheet[x: 8, y: 2, channel: 0] == 20)               // second image
        #expect(sheet[x: 2, y: 7, channel: 0] == 40)               // second row, first column
        #expect(sheet[x: 14, y: 7, channel: 0] == 255)             // the empty sixth cell
        let mixed = Image.grid([Image(width: 2, height: 2, fill: [9]), Image(width: 2, height: 2, fill: [1, 2, 3])], columns: 4, gap: 0)
        #expect(mixed.width == 4 && mixed.height == 2 && mixed.channels == 3)
        #expect(mixed[x: 0, y: 0, channel: 2] == 9)
    }

    @Test func garbageAndTruncatedFilesThrow() throws {
        func error(_ data: Data) -> String? { thrownMessage { _ = try PNG.decode(data, path: "bad.png") } }
        #expect(error(Data("definitely not a png".utf8))?.contains("not a PNG") == true)
        #expect(error(Data())?.contains("not a PNG") == true)
        let good = try PNG.encode(Self.pattern(width: 32, height: 32, channels: 3))
        #expect(try PNG.decode(good, path: "good.png").width == 32)
        for keep in [8, 20, 40, good.count / 2, good.count - 13] {
            #expect(error(good.prefix(keep)) != nil, "kept \(keep) of \(good.count) bytes")
        }
        var corrupt = [UInt8](good)
        for i in stride(from: 60, to: corrupt.count - 20, by: 7) { corrupt[i] ^= 0x5A }
        #expect(error(Data(corrupt)) != nil)
        #expect(thrownMessage { _ = try PNG.read(URL(fileURLWithPath: "/nonexistent/x.png")) }?.contains("no such file") == true)
    }
}
