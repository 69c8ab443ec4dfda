import Foundation
import Testing
@testable import VQDiffusion

@Suite struct SheetTests {
    func images(_ n: Int, side: Int, channels: Int) -> [DatasetImage] {
        (0..<n).map { i in
            DatasetImage(width: side, height: side, channels: channels,
                         pixels: (0..<(side * side * channels)).map { UInt8(truncatingIfNeeded: $0 * 3 + i * 50) })
        }
    }

    /// Pixels equal to the text colour inside the caption band of cell `k`.
    func textPixels(_ sheet: Image, _ layout: ContactSheet, cell k: Int, columns: Int, side: Int) -> Int {
        let s = layout.effectiveScale(side: side)
        let (w, h) = (side * s, side * s + 2 + layout.captionLines * BitmapFont.lineHeight)
        let (x0, y0) = (layout.gap + (k % columns) * (w + layout.gap), layout.gap + (k / columns) * (h + layout.gap))
        var n = 0
        for y in (y0 + side * s)..<(y0 + h) {
            for x in x0..<(x0 + w) where (0..<3).allSatisfy({ sheet[x: x, y: y, channel: $0] == layout.textColor[$0] }) { n += 1 }
        }
        return n
    }

    @Test func dimensionsFollowTheLayout() {
        var layout = ContactSheet(scale: 2, captionLines: 2, gap: 3)
        let sheet = layout.render(images(5, side: 8, channels: 3), captions: (0..<5).map { "image \($0)" }, columns: 2)
        // w = 16, h = 16 + 2 + 2·9 = 36; 2 columns, 3 rows.
        #expect(sheet.channels == 3)
        #expect(sheet.width == 2 * 16 + 3 * 3 && sheet.height == 3 * 36 + 4 * 3)
        layout.scale = nil
        #expect(layout.effectiveScale(side: 32) == 4 && layout.effectiveScale(side: 16) == 8)
        #expect(layout.effectiveScale(side: 64) == 2 && layout.effectiveScale(side: 200) == 1)
        let one = ContactSheet().render(images(1, side: 32, channels: 1), captions: ["x"], columns: 4)
        #expect(one.width == 128 + 8 && one.height == 128 + 2 + 27 + 8)
    }

    @Test func imagesAreScaledByReplicationAndCaptionsDrawn() {
        let layout = ContactSheet(scale: 4, captionLines: 3, gap: 4)
        let source = images(3, side: 8, channels: 1)
        let captions = ["a small red circle in the top left corner", "   ", "x"]
        let sheet = layout.render(source, captions: captions, columns: 3)
        // Grey pixel (x 5, y 2) of image 0 fills the 4×4 block at (4 + 20…23, 4 + 8…11) in all channels.
        for dy in 0..<4 { for dx in 0..<4 { for c in 0..<3 {
            #expect(sheet[x: 4 + 20 + dx, y: 4 + 8 + dy, channel: c] == source[0][x: 5, y: 2, channel: 0])
        } } }
        let long = textPixels(sheet, layout, cell: 0, columns: 3, side: 8)
        let blank = textPixels(sheet, layout, cell: 1, columns: 3, side: 8)
        let single = textPixels(sheet, layout, cell: 2, columns: 3, side: 8)
        #expect(blank == 0)
        // "x" has 9 ink pixels in the font; the long caption as many as its wrapped lines' glyphs
        // (a 32-pixel cell holds 5 characters per line: "a", "small", "red..").
        #expect(single == 9)
        let lines = BitmapFont.wrap(captions[0], columns: 5, maxLines: 3)
        #expect(lines == ["a", "small", "red.."])
        #expect(long == lines.joined().reduce(0) { $0 + BitmapFont.glyph($1).nonzeroBitCount })
    }

    @Test func glyphsComeFromTheTable() {
        var image = Image(width: 12, height: 7, fill: [0])
        BitmapFont.draw("I-", into: &image, x: 0, y: 0, color: [255])
        let rowsOfI = [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]
        for (y, row) in rowsOfI.enumerated() {
            for (x, ch) in row.enumerated() { #expect((image[x: x, y: y, channel: 0] == 255) == (ch == "#")) }
        }
        for x in 6..<11 { #expect(image[x: x, y: 3, channel: 0] == 255) }   // the dash, middle row
        #expect(image[x: 5, y: 3, channel: 0] == 0)                          // the blank column between
        // Every printable character has ink except the space, and the glyphs are distinct.
        #expect(BitmapFont.glyphs.count == 95 && BitmapFont.glyphs[0] == 0)
        #expect(BitmapFont.glyphs.dropFirst().allSatisfy { $0 != 0 && $0 < 1 << 35 })
        #expect(Set(BitmapFont.glyphs).count == 95)
        #expect(BitmapFont.glyph("é") == BitmapFont.glyph("?"))
        #expect(BitmapFont.width(of: "abc") == 17)
    }

    @Test func captionsWrapAtSpacesAndTruncate() {
        let caption = "a small red circle in the top left corner"
        #expect(BitmapFont.wrap(caption, columns: 21, maxLines: 3) == ["a small red circle in", "the top left corner"])
        #expect(BitmapFont.wrap(caption, columns: 21, maxLines: 1) == ["a small red circle .."])
        #expect(BitmapFont.wrap("abcdefghij", columns: 4, maxLines: 3) == ["abcd", "efgh", "ij"])
        #expect(BitmapFont.wrap("abcdefghijk", columns: 4, maxLines: 2) == ["abcd", "ef.."])
        #expect(BitmapFont.wrap("  ", columns: 5, maxLines: 2).isEmpty)
    }
}
