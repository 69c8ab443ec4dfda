/// A contact sheet: captioned images in a grid, each image scaled up by pixel replication
/// (nearest neighbour) with its caption written under it in the built-in 5×7 `BitmapFont`.
///
/// Layout, with S the image side, s the scale, c = min(columns, n), r = ⌈n / c⌉, L the caption
/// lines per cell and g the gap:
///   cell width  w = S·s,       cell height h = S·s + 2 + L·9 (caption lines 9 pixels apart),
///   sheet width = c·w + (c+1)·g, sheet height = r·h + (r+1)·g.
/// Captions wrap at spaces to ⌊(w + 1) / 6⌋ characters per line; text longer than L lines ends
/// in "..". The sheet is RGB (grey images are repeated into the three channels), on a dark grey
/// background with white text.
public struct ContactSheet {
    /// Magnification of each image; nil picks the smallest s with S·s ≥ 128 (legible captions).
    public var scale: Int? = nil
    /// Caption lines under each image.
    public var captionLines: Int = 3
    /// Pixels between and around cells.
    public var gap: Int = 4
    /// Background (R, G, B).
    public var background: [UInt8] = [24, 24, 24]
    /// Text colour (R, G, B).
    public var textColor: [UInt8] = [255, 255, 255]

    public init(scale: Int? = nil, captionLines: Int = 3, gap: Int = 4) {
        self.scale = scale
        self.captionLines = captionLines
        self.gap = gap
    }

    /// The magnification used for images of side `side`.
    public func effectiveScale(side: Int) -> Int {
        if let scale { return scale }
        return max(1, (128 + side - 1) / side)
    }

    /// The sheet of `images` (one size, 1 or 3 channels) with `captions` under them, `columns` per row.
    public func render(_ images: [DatasetImage], captions: [String], columns: Int) -> Image {
        precondition(!images.isEmpty, "ContactSheet: no images")
        precondition(images.count == captions.count, "ContactSheet: \(images.count) images but \(captions.count) captions")
        precondition(columns >= 1 && captionLines >= 1 && gap >= 0,
                     "ContactSheet: need columns ≥ 1, captionLines ≥ 1, gap ≥ 0, got \(columns), \(captionLines), \(gap)")
        let side = images[0].width
        precondition(images.allSatisfy { $0.width == side && $0.height == side },
                     "ContactSheet: images must all be \(side)×\(side)")
        let s = effectiveScale(side: side)
        let (w, h) = (side * s, side * s + 2 + captionLines * BitmapFont.lineHeight)
        let charactersPerLine = max(3, (w + 1) / BitmapFont.advance)
        let cols = min(columns, images.count)
        let rows = (images.count + cols - 1) / cols
        var sheet = Image(width: cols * w + (cols + 1) * gap, height: rows * h + (rows + 1) * gap, fill: background)
        let W = sheet.width
        for (k, image) in images.enumerated() {
            let (x0, y0) = (gap + (k % cols) * (w + gap), gap + (k / cols) * (h + gap))
            let C = image.channels
            sheet.pixels.withUnsafeMutableBufferPointer { dst in
                image.pixels.withUnsafeBufferPointer { src in
                    for y in 0..<(side * s) {
                        for x in 0..<(side * s) {
                            let p = ((y / s) * side + x / s) * C
                            let q = ((y0 + y) * W + x0 + x) * 3
                            for c in 0..<3 { dst[q + c] = src[p + (C == 3 ? c : 0)] }
                        }
                    }
                }
            }
            let lines = BitmapFont.wrap(captions[k], columns: charactersPerLine, maxLines: captionLines)
            for (i, line) in lines.enumerated() {
                BitmapFont.draw(line, into: &sheet, x: x0, y: y0 + side * s + 2 + i * BitmapFont.lineHeight, color: textColor)
            }
        }
        return sheet
    }
}
