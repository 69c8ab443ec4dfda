import Engine
import Foundation
import Testing
@testable import VQDiffusion

@Suite struct ShapesRenderingTests {
    /// The brightest channel of the darkest palette colour, after jitter: background must stay below.
    static let dimmestBrightChannel: Float = ShapeColor.allCases.map { c in
        let v = c.rgb
        return max(v.r, v.g, v.b) - ShapeColor.jitter
    }.min()!

    @Test func centrePixelsHaveTheObjectsColour() {
        let data = shapesSplit(.train, count: 300)
        for i in 0..<data.count {
            let s = data.shapesSample(at: i)
            for o in s.objects {
                let (x, y) = (Int(o.centerX), Int(o.centerY))
                let drawn = [o.red, o.green, o.blue], palette = o.color.rgb
                for (c, base) in [palette.r, palette.g, palette.b].enumerated() {
                    let v = Float(s.image[x: x, y: y, channel: c])
                    #expect(abs(v - drawn[c]) <= 0.5 + 1e-3, "sample \(i) \(o.shape): centre channel \(c) is \(v), drawn \(drawn[c])")
                    #expect(abs(v - base) <= 12.5, "sample \(i): centre channel \(c) is \(v), palette \(base)")
                }
            }
        }
    }

    @Test func pixelsWhollyInsideAConvexShapeAreUniform() {
        // A pixel whose four corners lie in a convex shape is fully covered: exactly the object's
        // colour, anti-aliasing only at the edges.
        let data = shapesSplit(.val, count: 200)
        var checked = 0
        for i in 0..<data.count {
            let s = data.shapesSample(at: i)
            for o in s.objects where o.shape != .cross {
                let h = o.extent / 2
                for y in Int(o.minY)..<Int(o.maxY.rounded(.up)) {
                    for x in Int(o.minX)..<Int(o.maxX.rounded(.up)) {
                        let corners = [(0, 0), (1, 0), (0, 1), (1, 1)].allSatisfy { (cx, cy) in
                            ShapesRenderer.contains(o.shape, Float(x + cx) - o.centerX, Float(y + cy) - o.centerY, h)
                        }
                        guard corners else { continue }
                        checked += 1
                        #expect(Float(s.image[x: x, y: y, channel: 0]) == o.red.rounded() && Float(s.image[x: x, y: y, channel: 1]) == o.green.rounded()
                                && Float(s.image[x: x, y: y, channel: 2]) == o.blue.rounded(), "sample \(i) pixel (\(x), \(y))")
                    }
                }
            }
        }
        #expect(checked > 1000)
    }

    @Test func edgesAreAntiAliased() {
        // Every circle has edge pixels between background and object colour in its brightest channel.
        let data = shapesSplit(.test, count: 300)
        var circles = 0
        for i in 0..<data.count {
            let s = data.shapesSample(at: i)
            for o in s.objects where o.shape == .circle {
                circles += 1
                let rgb = [o.red, o.green, o.blue]
                let c = rgb.indices.max { rgb[$0] < rgb[$1] }!
                var partial = 0
                for y in Int(o.minY)..<Int(o.maxY.rounded(.up)) {
                    for x in Int(o.minX)..<Int(o.maxX.rounded(.up)) {
                        let v = Float(s.image[x: x, y: y, channel: c])
                        if v > 100 && v < rgb[c] - 20 { partial += 1 }
                    }
                }
                #expect(partial >= 4, "sample \(i): circle without anti-aliased edge pixels")
            }
        }
        #expect(circles > 20)
    }

    @Test func backgroundIsDarkerThanEveryPaletteColour() {
        for size in [16, 32, 64] {
            let data = shapesSplit(.novel, size: size, count: 60)
            for i in 0..<data.count {
                let s = data.shapesSample(at: i)
                var sum: Float = 0, n = 0
                for y in 0..<size {
                    for x in 0..<size {
                        let far = s.objects.allSatisfy { o in
                            Float(x + 1) < o.minX - 1 || Float(x) > o.maxX + 1 || Float(y + 1) < o.minY - 1 || Float(y) > o.maxY + 1
                        }
                        guard far else { continue }
                        for c in 0..<3 {
                            let v = Float(s.image[x: x, y: y, channel: c])
                            #expect(v < Self.dimmestBrightChannel, "S=\(size) sample \(i): background (\(x), \(y)) channel \(c) = \(v)")
                            sum += v
                            n += 1
                        }
                    }
                }
                // Base in [10, 60] plus at most ±10 of gradient; the noise averages out.
                let mean = sum / Float(max(n, 1))
                #expect(mean > 0 && mean < 75, "S=\(size) sample \(i): mean background \(mean)")
            }
        }
    }

    @Test func backgroundNoiseHasTheSpecifiedSpread() {
        // Differences of horizontal neighbours in an empty corner: gradient ≤ 20/S per pixel,
        // noise difference σ·√2 ≈ 4.2 (slightly less after rounding and clipping).
        let data = shapesSplit(.train, size: 64, count: 20)
        var sumSquares: Double = 0, n = 0
        for i in 0..<data.count {
            let s = data.shapesSample(at: i)
            for y in 0..<64 {
                for x in 0..<63 {
                    let far = s.objects.allSatisfy { o in
                        Float(x + 2) < o.minX - 1 || Float(x) > o.maxX + 1 || Float(y + 1) < o.minY - 1 || Float(y) > o.maxY + 1
                    }
                    guard far else { continue }
                    let d = Double(s.image[x: x + 1, y: y, channel: 1]) - Double(s.image[x: x, y: y, channel: 1])
                    sumSquares += d * d
                    n += 1
                }
            }
        }
        let std = (sumSquares / Double(n)).squareRoot()
        #expect(std > 3.6 && std < 4.8, "neighbour difference std \(std)")
    }

    @Test func coverageTestsMatchTheShapeDefinitions() {
        let h: Float = 6
        #expect(ShapesRenderer.contains(.circle, 4, 4, h) && !ShapesRenderer.contains(.circle, 4.5, 4.5, h))
        #expect(ShapesRenderer.contains(.square, 5.9, -5.9, h) && !ShapesRenderer.contains(.square, 6.1, 0, h))
        // Triangle: apex (0, −6), base corners (±6, 6).
        #expect(ShapesRenderer.contains(.triangle, 0, -5.9, h) && !ShapesRenderer.contains(.triangle, 1, -5.9, h))
        #expect(ShapesRenderer.contains(.triangle, 5.9, 5.9, h) && !ShapesRenderer.contains(.triangle, 0, 6.1, h))
        #expect(ShapesRenderer.contains(.diamond, 3, 2.9, h) && !ShapesRenderer.contains(.diamond, 3, 3.1, h))
        // Cross: arms of half-thickness 2 reaching ±6.
        #expect(ShapesRenderer.contains(.cross, 5.9, 1.9, h) && ShapesRenderer.contains(.cross, -1.9, -5.9, h))
        #expect(!ShapesRenderer.contains(.cross, 2.1, 2.1, h) && !ShapesRenderer.contains(.cross, 6.1, 0, h))
    }
}

@Suite struct ShapesNoiseTests {
    @Test func zigguratDrawsStandardNormals() {
        var rng = RandomGenerator(seed: 42)
        let normal = ZigguratNormal.standard
        let n = 400_000
        var sum = 0.0, sumSquares = 0.0, sumFourth = 0.0
        // Standard normal CDF at a few points, against the empirical one.
        let points: [Double] = [-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 3.5]
        var below = [Int](repeating: 0, count: points.count)
        for _ in 0..<n {
            let x = Double(normal.next(&rng))
            sum += x
            sumSquares += x * x
            sumFourth += x * x * x * x
            for (k, p) in points.enumerated() where x < p { below[k] += 1 }
        }
        let mean = sum / Double(n), variance = sumSquares / Double(n) - mean * mean
        #expect(abs(mean) < 0.01 && abs(variance - 1) < 0.015, "mean \(mean), variance \(variance)")
        #expect(abs(sumFourth / Double(n) - 3) < 0.1, "fourth moment \(sumFourth / Double(n))")
        for (k, p) in points.enumerated() {
            let cdf = 0.5 * erfc(-p / 2.0.squareRoot())
            expectDatasetFrequency(below[k], of: n, near: cdf, "P(x < \(p))")
        }
        // The same generator state gives the same draws.
        var a = RandomGenerator(seed: 3), b = RandomGenerator(seed: 3)
        #expect((0..<1000).map { _ in normal.next(&a) } == (0..<1000).map { _ in normal.next(&b) })
    }
}
