import Engine

/// An 8-bit image: `channels` interleaved values per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA),
/// rows top to bottom. `pixels` is (H, W, C).
public struct Image: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]   // (H, W, C)

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition((1...4).contains(channels), "an image has 1 to 4 channels, got \(channels)")
        precondition(width >= 0 && height >= 0, "image size \(width)×\(height) must be non-negative")
        precondition(pixels.count == width * height * channels,
                     "\(pixels.count) values do not fit a \(width)×\(height) image of \(channels) channels")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image filled with one colour (`fill` has one value per channel).
    public init(width: Int, height: Int, fill: [UInt8]) {
        var pixels = [UInt8](repeating: 0, count: width * height * fill.count)
        for i in 0..<(width * height) { for c in 0..<fill.count { pixels[i * fill.count + c] = fill[c] } }
        self.init(width: width, height: height, channels: fill.count, pixels: pixels)
    }

    /// From a Float32 tensor (C, H, W) with values in [-1, 1]: v ↦ round((v + 1)·127.5), clamped.
    public init(tensor: Tensor) {
        precondition(tensor.rank == 3, "Image(tensor:) needs (C, H, W), got shape \(tensor.shape)")
        let (C, H, W) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        precondition((1...4).contains(C), "Image(tensor:) needs 1 to 4 channels, got shape \(tensor.shape)")
        let src = tensor.pointer
        var pixels = [UInt8](repeating: 0, count: C * H * W)
        pixels.withUnsafeMutableBufferPointer { dst in
            for c in 0..<C {
                for y in 0..<H {
                    for x in 0..<W {
                        let v = (src[(c * H + y) * W + x] + 1) * 127.5
                        let q = v.isNaN ? 0 : min(max(v.rounded(), 0), 255)
                        dst[(y * W + x) * C + c] = UInt8(q)
                    }
                }
            }
        }
        self.init(width: W, height: H, channels: C, pixels: pixels)
    }

    /// Images from a batch tensor (B, C, H, W) in [-1, 1].
    public static func batch(_ tensor: Tensor) -> [Image] {
        precondition(tensor.rank == 4, "Image.batch needs (B, C, H, W), got shape \(tensor.shape)")
        let (B, C, H, W) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
        let plane = C * H * W
        return (0..<B).map { b in
            let one = Tensor(shape: [C, H, W], values: Array(tensor.buffer[(b * plane)..<((b + 1) * plane)]))
            return Image(tensor: one)
        }
    }

    /// A Float32 tensor (C, H, W) with values in [-1, 1]: u ↦ u/127.5 − 1.
    public func tensor() -> Tensor {
        let (C, H, W) = (channels, height, width)
        let out = Tensor(uninitializedShape: [C, H, W])
        let dst = out.pointer
        pixels.withUnsafeBufferPointer { src in
            for y in 0..<H {
                for x in 0..<W {
                    for c in 0..<C { dst[(c * H + y) * W + x] = Float(src[(y * W + x) * C + c]) / 127.5 - 1 }
                }
            }
        }
        return out
    }

    public subscript(x x: Int, y y: Int, channel channel: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + channel] }
        set { pixels[(y * width + x) * channels + channel] = newValue }
    }

    /// The same picture with `count` channels: grey is repeated into RGB, RGB averaged into grey
    /// (ITU-R BT.601 weights), alpha dropped or set opaque.
    public func converted(toChannels count: Int) -> Image {
        precondition((1...4).contains(count), "an image has 1 to 4 channels, got \(count)")
        if count == channels { return self }
        var out = [UInt8](repeating: 0, count: width * height * count)
        let hasAlpha = channels == 2 || channels == 4
        let wantsAlpha = count == 2 || count == 4
        for i in 0..<(width * height) {
            let p = i * channels
            let (r, g, b): (Int, Int, Int) = channels >= 3
                ? (Int(pixels[p]), Int(pixels[p + 1]), Int(pixels[p + 2]))
                : (Int(pixels[p]), Int(pixels[p]), Int(pixels[p]))
            let alpha = hasAlpha ? pixels[p + channels - 1] : 255
            let q = i * count
            if count >= 3 {
                out[q] = UInt8(r); out[q + 1] = UInt8(g); out[q + 2] = UInt8(b)
            } else {
                out[q] = channels >= 3 ? UInt8((299 * r + 587 * g + 114 * b + 500) / 1000) : UInt8(r)
            }
            if wantsAlpha { out[q + count - 1] = alpha }
        }
        return Image(width: width, height: height, channels: count, pixels: out)
    }

    /// A sample sheet: `images` in rows of `columns`, left to right and top to bottom, separated
    /// and framed by `gap` pixels of `background` (one value per channel; default black, opaque).
    /// All images must have the same size; channels are unified to the largest count.
    /// Size, with c = min(columns, images.count) and r = ⌈images.count / c⌉:
    /// width = c·w + (c+1)·gap, height = r·h + (r+1)·gap.
    public static func grid(_ images: [Image], columns: Int, gap: Int = 2, background: [UInt8]? = nil) -> Image {
        precondition(!images.isEmpty, "Image.grid needs at least one image")
        precondition(columns > 0 && gap >= 0, "Image.grid needs columns > 0 and gap ≥ 0, got \(columns), \(gap)")
        let (w, h) = (images[0].width, images[0].height)
        precondition(images.allSatisfy { $0.width == w && $0.height == h },
                     "Image.grid needs images of one size, got \(images.map { "\($0.width)×\($0.height)" })")
        let C = images.map(\.channels).max()!
        let fill = background ?? (C == 2 || C == 4 ? [UInt8](repeating: 0, count: C - 1) + [255] : [UInt8](repeating: 0, count: C))
        precondition(fill.count == C, "background has \(fill.count) values for \(C)-channel images")
        let cols = min(columns, images.count)
        let rows = (images.count + cols - 1) / cols
        var sheet = Image(width: cols * w + (cols + 1) * gap, height: rows * h + (rows + 1) * gap, fill: fill)
        let W = sheet.width
        for (k, image) in images.enumerated() {
            let img = image.converted(toChannels: C)
            let (x0, y0) = (gap + (k % cols) * (w + gap), gap + (k / cols) * (h + gap))
            for y in 0..<h {
                let src = y * w * C
                let dst = ((y0 + y) * W + x0) * C
                sheet.pixels.replaceSubrange(dst..<(dst + w * C), with: img.pixels[src..<(src + w * C)])
            }
        }
        return sheet
    }
}

extension Image {
    /// The image `factor` times larger, each pixel repeated factor × factor times (nearest neighbour).
    public func scaled(by factor: Int) -> Image {
        precondition(factor >= 1, "scaled(by:) needs a factor ≥ 1, got \(factor)")
        guard factor > 1 else { return self }
        let (W, H, C) = (width * factor, height * factor, channels)
        var out = [UInt8](repeating: 0, count: W * H * C)
        for y in 0..<H {
            for x in 0..<W {
                let p = ((y / factor) * width + x / factor) * C
                for c in 0..<C { out[(y * W + x) * C + c] = pixels[p + c] }
            }
        }
        return Image(width: W, height: H, channels: C, pixels: out)
    }

    /// The image in RGB with `text` written under it in the built-in 5×7 font (white on the
    /// darkest grey, wrapped at spaces to the image's width; at most `maxLines` lines).
    public func captioned(_ text: String, maxLines: Int = 4, margin: Int = 4) -> Image {
        let rgb = channels >= 3 ? Image(width: width, height: height, channels: 3,
                                        pixels: (0..<(width * height)).flatMap { i in (0..<3).map { pixels[i * channels + $0] } })
                                : Image(width: width, height: height, channels: 3,
                                        pixels: (0..<(width * height)).flatMap { i in [UInt8](repeating: pixels[i * channels], count: 3) })
        let lines = BitmapFont.wrap(text, columns: max(3, (width - 2 * margin + 1) / BitmapFont.advance), maxLines: maxLines)
        var out = Image(width: width, height: height + 2 * margin + lines.count * BitmapFont.lineHeight, fill: [24, 24, 24])
        out.pixels.replaceSubrange(0..<rgb.pixels.count, with: rgb.pixels)
        for (i, line) in lines.enumerated() {
            BitmapFont.draw(line, into: &out, x: margin, y: height + margin + i * BitmapFont.lineHeight, color: [255, 255, 255])
        }
        return out
    }
}
