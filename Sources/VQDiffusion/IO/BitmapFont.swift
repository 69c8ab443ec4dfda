/// A tiny built-in 5×7 bitmap font for printable ASCII (32…126), drawn for this project, for
/// putting captions and labels on images without any font files.
///
/// Each glyph is 7 rows of 5 bits packed into one integer, top row in the highest bits and the
/// leftmost pixel the highest bit of its row: bit (6 − row)·5 + (4 − column). Characters outside
/// the table are drawn as "?". Text advances 6 pixels per character (one blank column) and
/// 9 pixels per line (two blank rows).
public enum BitmapFont {
    public static let glyphWidth = 5
    public static let glyphHeight = 7
    /// Horizontal advance per character.
    public static let advance = 6
    /// Vertical advance per line.
    public static let lineHeight = 9

    /// Glyphs of ASCII 32 (space) … 126 (~), in order.
    static let glyphs: [UInt64] = [
        0x000000000, 0x108421004, 0x294000000, 0x2BEA52BEA, 0x11F4717C4, 0x6744222D6, 0x32544564D, 0x108000000,
        0x088842082, 0x208210888, 0x009575480, 0x0084F9080, 0x000001844, 0x0000F8000, 0x00000018C, 0x044222110,
        0x3A33AE62E, 0x11842108E, 0x3A211111F, 0x78217043E, 0x08CA97C42, 0x7E1E0862E, 0x1910F462E, 0x7C2222108,
        0x3A317462E, 0x3A317844C, 0x018C03180, 0x018C03088, 0x088882082, 0x001F07C00, 0x208208888, 0x3A2111004,
        0x3A37ADE0E, 0x3A31FC631, 0x7A31F463E, 0x3A308422E, 0x72518C65C, 0x7E10F421F, 0x7E10F4210, 0x3A30BC62F,
        0x4631FC631, 0x38842108E, 0x1C4210A4C, 0x4654C5251, 0x42108421F, 0x4775AC631, 0x4639ACE31, 0x3A318C62E,
        0x7A31F4210, 0x3A318D64D, 0x7A31F5251, 0x3E107043E, 0x7C8421084, 0x46318C62E, 0x46318C544, 0x4631AD6AA,
        0x462A22A31, 0x462A21084, 0x7C222221F, 0x39084210E, 0x410820841, 0x38421084E, 0x115100000, 0x00000001F,
        0x208000000, 0x000E0BE2F, 0x4216CC63E, 0x000E8422E, 0x042D9C62F, 0x000E8FE0E, 0x1928E2108, 0x01F18BC2E,
        0x4216CC631, 0x100C2108E, 0x080610A4C, 0x4212A6292, 0x30842108E, 0x001AAD631, 0x0016CC631, 0x000E8C62E,
        0x001E8FA10, 0x000D9BC21, 0x0016CC210, 0x000E8383E, 0x211C42126, 0x00118C66D, 0x00118C544, 0x00118D6AA,
        0x001151151, 0x00118BC2E, 0x001F1111F, 0x088441082, 0x108421084, 0x208411088, 0x0008A8800,
    ]

    /// The packed glyph of `character` ("?" when it has none).
    public static func glyph(_ character: Character) -> UInt64 {
        if let a = character.asciiValue, a >= 32, a <= 126 { return glyphs[Int(a) - 32] }
        return glyphs[Int(Character("?").asciiValue!) - 32]
    }

    /// Whether the pixel at (column, row) of `character`'s glyph is ink.
    public static func isInk(_ character: Character, column: Int, row: Int) -> Bool {
        precondition((0..<glyphWidth).contains(column) && (0..<glyphHeight).contains(row),
                     "glyph pixel (\(column), \(row)) outside 5×7")
        return glyph(character) >> UInt64((6 - row) * 5 + (4 - column)) & 1 == 1
    }

    /// The width in pixels of `text` on one line (no trailing blank column).
    public static func width(of text: String) -> Int { text.isEmpty ? 0 : text.count * advance - 1 }

    /// Draws `text` on one line with its top-left corner at (x, y), ink = `color` (one value per
    /// channel of `image`). Pixels outside the image are skipped.
    public static func draw(_ text: String, into image: inout Image, x: Int, y: Int, color: [UInt8]) {
        precondition(color.count == image.channels, "draw: \(color.count) colour values for a \(image.channels)-channel image")
        let (W, H, C) = (image.width, image.height, image.channels)
        image.pixels.withUnsafeMutableBufferPointer { p in
            for (i, character) in text.enumerated() {
                let bits = glyph(character)
                let left = x + i * advance
                if left >= W { break }
                for row in 0..<glyphHeight {
                    let py = y + row
                    guard py >= 0 && py < H else { continue }
                    for column in 0..<glyphWidth where bits >> UInt64((6 - row) * 5 + (4 - column)) & 1 == 1 {
                        let px = left + column
                        guard px >= 0 && px < W else { continue }
                        for c in 0..<C { p[(py * W + px) * C + c] = color[c] }
                    }
                }
            }
        }
    }

    /// `text` broken into at most `maxLines` lines of at most `columns` characters, at spaces
    /// where possible (a word longer than a line is cut). If the text does not fit, the last
    /// line ends in "..".
    public static func wrap(_ text: String, columns: Int, maxLines: Int) -> [String] {
        precondition(columns >= 3 && maxLines >= 1, "wrap: need columns ≥ 3 and maxLines ≥ 1, got \(columns), \(maxLines)")
        var lines: [String] = []
        var current = ""
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
        while !words.isEmpty {
            let word = words.removeFirst()
            if current.isEmpty {
                if word.count <= columns { current = word } else {
                    current = String(word.prefix(columns))
                    words.insert(String(word.dropFirst(columns)), at: 0)
                }
            } else if current.count + 1 + word.count <= columns {
                current += " " + word
            } else {
                lines.append(current)
                current = ""
                words.insert(word, at: 0)
            }
            if lines.count == maxLines { break }
        }
        if !current.isEmpty && lines.count < maxLines { lines.append(current); current = "" }
        let truncated = !words.isEmpty || !current.isEmpty
        if truncated, let last = lines.last {
            lines[lines.count - 1] = String(last.prefix(columns - 2)) + ".."
        }
        return lines
    }
}
