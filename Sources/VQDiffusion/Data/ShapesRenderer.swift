import Engine
import Foundation

/// Draws a Shapes scene into S×S RGB pixels (docs/design.md §3).
///
/// Background: a base colour with each channel uniform in [10, 60], plus a linear gradient of
/// amplitude uniform in [0, 20] (the same on all channels) along a random direction, plus Gaussian
/// noise with σ = 3 drawn independently for every channel of every pixel (`ZigguratNormal`).
/// Objects are then blended over it in order, each pixel by its coverage: the fraction of a 4×4
/// grid of sub-sample points inside the shape. Only pixels within an object's bounding box are
/// sampled. Values are rounded and clipped to [0, 255] at the end.
public enum ShapesRenderer {
    /// Range of each background base channel.
    public static let baseRange: ClosedRange<Float> = 10...60
    /// Largest gradient amplitude (difference between opposite corners along its direction).
    public static let maxGradient: Float = 20
    /// Standard deviation of the per-pixel noise.
    public static let noiseStd: Float = 3
    /// Sub-samples per pixel along each axis (4 × 4 = 16 points).
    public static let supersampling = 4

    /// Renders `scene` on an S×S canvas, drawing the background from `rng`.
    /// `work` holds S·S·3 floats of scratch; `pixels` receives (S, S, 3) values.
    public static func render(_ scene: ShapesScene, size S: Int, using rng: inout RandomGenerator,
                              work: UnsafeMutableBufferPointer<Float>, pixels: UnsafeMutableBufferPointer<UInt8>) {
        precondition(work.count >= S * S * 3 && pixels.count >= S * S * 3,
                     "render: buffers of \(work.count) floats and \(pixels.count) bytes are too small for \(S)×\(S)×3")
        let canvas = work.baseAddress!  // (S, S, 3)
        drawBackground(canvas, size: S, using: &rng)
        for object in scene.objects { drawObject(object, canvas, size: S) }
        let out = pixels.baseAddress!
        for i in 0..<(S * S * 3) {
            let v = canvas[i].rounded()
            out[i] = UInt8(v < 0 ? 0 : (v > 255 ? 255 : v))
        }
    }

    /// Base colour + linear gradient + noise, into (S, S, 3) floats.
    static func drawBackground(_ canvas: UnsafeMutablePointer<Float>, size S: Int, using rng: inout RandomGenerator) {
        let r0 = rng.uniform(baseRange.lowerBound, baseRange.upperBound)
        let g0 = rng.uniform(baseRange.lowerBound, baseRange.upperBound)
        let b0 = rng.uniform(baseRange.lowerBound, baseRange.upperBound)
        let amplitude = rng.uniform(0, maxGradient)
        let angle = rng.uniform(0, 2 * Float.pi)
        let (dx, dy) = (Float(cos(Double(angle))), Float(sin(Double(angle))))
        // The projection on (dx, dy) of a point relative to the centre spans ±(|dx| + |dy|)·S/2 over
        // the canvas; scale it so the gradient spans ±amplitude/2.
        let scale = amplitude / ((abs(dx) + abs(dy)) * Float(S))
        let half = Float(S) / 2
        let normal = ZigguratNormal.standard
        for y in 0..<S {
            let py = (Float(y) + 0.5 - half) * dy
            let row = canvas + y * S * 3
            for x in 0..<S {
                let g = ((Float(x) + 0.5 - half) * dx + py) * scale
                row[3 * x] = r0 + g + noiseStd * normal.next(&rng)
                row[3 * x + 1] = g0 + g + noiseStd * normal.next(&rng)
                row[3 * x + 2] = b0 + g + noiseStd * normal.next(&rng)
            }
        }
    }

    /// Blends one object over the canvas by its per-pixel coverage.
    static func drawObject(_ o: SceneObject, _ canvas: UnsafeMutablePointer<Float>, size S: Int) {
        let x0 = max(0, Int(o.minX.rounded(.down))), x1 = min(S, Int(o.maxX.rounded(.up)))
        let y0 = max(0, Int(o.minY.rounded(.down))), y1 = min(S, Int(o.maxY.rounded(.up)))
        guard x0 < x1 && y0 < y1 else { return }
        let n = supersampling
        let step = 1 / Float(n)
        let weight = 1 / Float(n * n)
        let h = o.extent / 2
        for y in y0..<y1 {
            let row = canvas + y * S * 3
            for x in x0..<x1 {
                var inside = 0
                for j in 0..<n {
                    let dy = Float(y) + (Float(j) + 0.5) * step - o.centerY
                    for i in 0..<n {
                        let dx = Float(x) + (Float(i) + 0.5) * step - o.centerX
                        if contains(o.shape, dx, dy, h) { inside += 1 }
                    }
                }
                guard inside > 0 else { continue }
                let a = Float(inside) * weight
                let p = row + 3 * x
                p[0] += a * (o.red - p[0])
                p[1] += a * (o.green - p[1])
                p[2] += a * (o.blue - p[2])
            }
        }
    }

    /// Whether the point (dx, dy), relative to the centre, lies in `shape` of half-extent h.
    @inline(__always)
    public static func contains(_ shape: ShapeKind, _ dx: Float, _ dy: Float, _ h: Float) -> Bool {
        let ax = abs(dx), ay = abs(dy)
        switch shape {
        case .circle:
            return dx * dx + dy * dy <= h * h
        case .square:
            return ax <= h && ay <= h
        case .triangle:
            // Apex at (0, −h), base from (−h, h) to (h, h): the half-width grows from 0 to h.
            return dy >= -h && dy <= h && ax <= (dy + h) / 2
        case .diamond:
            return ax + ay <= h
        case .cross:
            // Arms of thickness e/3, i.e. half-thickness h/3.
            let t = h / 3
            return (ax <= t && ay <= h) || (ay <= t && ax <= h)
        }
    }
}
