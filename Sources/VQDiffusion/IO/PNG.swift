import CLibs
import Foundation

/// PNG files through libpng's simplified API (`png_image`), which reports errors through return
/// codes and `image.message` rather than longjmp, so a bad file becomes a thrown error.
public enum PNG {
    // png.h's PNG_FORMAT_* values (the compound macros do not import into Swift).
    static let formatGrey = UInt32(0)
    static let formatGA = UInt32(PNG_FORMAT_FLAG_ALPHA)
    static let formatRGB = UInt32(PNG_FORMAT_FLAG_COLOR)
    static let formatRGBA = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)

    /// Reads a PNG as 8-bit grey, grey+alpha, RGB or RGBA, whichever the file holds
    /// (palette and 16-bit files are converted to 8-bit).
    public static func read(_ url: URL) throws -> Image {
        try decode(AtomicFile.read(url), path: url.path)
    }

    /// Writes `image` as an 8-bit PNG, atomically.
    public static func write(_ image: Image, to url: URL) throws {
        try AtomicFile.write(encode(image, path: url.path), to: url)
    }

    public static func decode(_ data: Data, path: String) throws -> Image {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard data.count >= 8, Array(data.prefix(8)) == signature else {
            throw FileError(path, "not a PNG file (wrong signature)")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw FileError(path, "unreadable PNG: \(message(&image))")
            }
            let channels: Int
            switch (image.format & PNG_FORMAT_FLAG_COLOR != 0, image.format & PNG_FORMAT_FLAG_ALPHA != 0) {
            case (false, false): channels = 1; image.format = formatGrey
            case (false, true): channels = 2; image.format = formatGA
            case (true, false): channels = 3; image.format = formatRGB
            case (true, true): channels = 4; image.format = formatRGBA
            }
            let (width, height) = (Int(image.width), Int(image.height))
            guard width * height <= 1 << 28 else {
                throw FileError(path, "PNG of \(width)×\(height) pixels is too large")
            }
            var pixels = [UInt8](repeating: 0, count: width * height * channels)
            let ok = pixels.withUnsafeMutableBytes { out in
                png_image_finish_read(&image, nil, out.baseAddress, Int32(width * channels), nil)
            }
            guard ok != 0 else { throw FileError(path, "unreadable PNG: \(message(&image))") }
            return Image(width: width, height: height, channels: channels, pixels: pixels)
        }
    }

    public static func encode(_ img: Image, path: String = "PNG") throws -> Data {
        guard img.width > 0 && img.height > 0 else { throw FileError(path, "cannot write an empty \(img.width)×\(img.height) image") }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = [formatGrey, formatGA, formatRGB, formatRGBA][img.channels - 1]
        let stride = Int32(img.width * img.channels)
        var size = 0
        return try img.pixels.withUnsafeBytes { src in
            // First call measures, second writes.
            guard png_image_write_to_memory(&image, nil, &size, 0, src.baseAddress, stride, nil) != 0 else {
                let m = message(&image); png_image_free(&image)
                throw FileError(path, "PNG encoding failed: \(m)")
            }
            var out = Data(count: size)
            let ok = out.withUnsafeMutableBytes { dst in
                png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, stride, nil)
            }
            guard ok != 0 else {
                let m = message(&image); png_image_free(&image)
                throw FileError(path, "PNG encoding failed: \(m)")
            }
            png_image_free(&image)
            return out.prefix(size)
        }
    }

    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
