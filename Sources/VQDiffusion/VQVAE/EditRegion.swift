import Foundation

/// The region of an image to redraw (`vqd edit`), and the token grid positions it reaches.
///
/// A token (i, j) of a VQ-VAE with downsampling factor f stands for the pixels of its patch,
/// rows i·f ..< (i+1)·f and columns j·f ..< (j+1)·f; the encoder's convolutions let it also see
/// a band around the patch. Its receptive field here is the patch grown by `margin` pixels on
/// every side (f/2 by default, the reach of the encoder's last 3×3 convolutions at the token
/// scale), and a token is redrawn when that field meets the region.
public struct EditRegion: Equatable, Sendable {
    public let width: Int, height: Int
    /// (height · width) true inside the region.
    public let pixels: [Bool]

    /// The box of pixels x0 ..< x1, y0 ..< y1. Throws for a box that is empty, leaves the image
    /// or covers all of it.
    public init(box x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, width: Int, height: Int) throws {
        guard x0 < x1 && y0 < y1 else {
            throw EditRegionError("the box \(x0),\(y0),\(x1),\(y1) is empty: give x0,y0,x1,y1 with x0 < x1 and y0 < y1 (x1 and y1 exclusive)")
        }
        guard x0 >= 0 && y0 >= 0 && x1 <= width && y1 <= height else {
            throw EditRegionError("the box \(x0),\(y0),\(x1),\(y1) leaves the \(width)×\(height) image: keep 0 ≤ x0 < x1 ≤ \(width) and 0 ≤ y0 < y1 ≤ \(height)")
        }
        var pixels = [Bool](repeating: false, count: width * height)
        for y in y0..<y1 { for x in x0..<x1 { pixels[y * width + x] = true } }
        try self.init(pixels: pixels, width: width, height: height)
    }

    /// A region given pixel by pixel. Throws when it is empty or the whole image.
    public init(pixels: [Bool], width: Int, height: Int) throws {
        precondition(pixels.count == width * height, "EditRegion: \(pixels.count) pixels for \(width)×\(height)")
        guard pixels.contains(true) else { throw EditRegionError("the region is empty: mark at least one pixel to redraw") }
        guard pixels.contains(false) else {
            throw EditRegionError("the region is the whole image, so nothing is kept: use vqd sample to draw a new image")
        }
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }

    /// The default receptive-field margin for downsampling factor f.
    public static func defaultMargin(downsampling f: Int) -> Int { f / 2 }

    /// (gridHeight · gridWidth) true for the tokens to redraw: those whose patch, grown by
    /// `margin` pixels, meets the region.
    public func tokens(downsampling f: Int, margin: Int) -> [Bool] {
        precondition(f >= 1 && width % f == 0 && height % f == 0, "EditRegion: a \(width)×\(height) image is not a grid of \(f)-pixel patches")
        let (gh, gw) = (height / f, width / f)
        var out = [Bool](repeating: false, count: gh * gw)
        for i in 0..<gh {
            for j in 0..<gw {
                let rows = max(0, i * f - margin)..<min(height, (i + 1) * f + margin)
                let columns = max(0, j * f - margin)..<min(width, (j + 1) * f + margin)
                out[i * gw + j] = rows.contains { y in columns.contains { x in pixels[y * width + x] } }
            }
        }
        return out
    }
}

public struct EditRegionError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// The regions the inpainting study redraws on a Shapes image.
public enum InpaintMask: String, Codable, CaseIterable, Sendable {
    /// The bounding box of the object that comes first in raster order (its box's top edge, then
    /// its left edge): what raster-order decoding reaches first, so the other object lies after it.
    case firstObject = "first-object"
    /// Rows 0 ..< S/2: the kept context lies wholly after the region in raster order.
    case topHalf = "top-half"
    /// The central square S/4 ..< 3S/4 on both axes: context on every side.
    case centre

    /// For `firstObject`, the index of the object (in the scene's and the caption's order) it
    /// covers; nil for the other masks.
    public func object(in scene: ShapesScene) -> Int? {
        guard self == .firstObject, !scene.objects.isEmpty else { return nil }
        return scene.objects.indices.min { a, b in
            let (p, q) = (scene.objects[a], scene.objects[b])
            return (p.minY.rounded(.down), p.minX.rounded(.down)) < (q.minY.rounded(.down), q.minX.rounded(.down))
        }
    }

    /// The region on an S×S image of `scene`.
    public func region(scene: ShapesScene, size S: Int) throws -> EditRegion {
        switch self {
        case .firstObject:
            guard let k = object(in: scene) else { throw EditRegionError("the scene has no object to mask") }
            let o = scene.objects[k]
            let clamp = { (v: Float) in min(S, max(0, Int(v))) }
            return try EditRegion(box: clamp(o.minX.rounded(.down)), clamp(o.minY.rounded(.down)),
                                  clamp(o.maxX.rounded(.up)), clamp(o.maxY.rounded(.up)), width: S, height: S)
        case .topHalf:
            return try EditRegion(box: 0, 0, S, S / 2, width: S, height: S)
        case .centre:
            return try EditRegion(box: S / 4, S / 4, 3 * S / 4, 3 * S / 4, width: S, height: S)
        }
    }
}
