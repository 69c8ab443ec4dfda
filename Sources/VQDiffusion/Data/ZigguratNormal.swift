import Engine
import Foundation

/// Standard normal deviates by the ziggurat method (Marsaglia & Tsang, "The Ziggurat Method for
/// Generating Random Variables", J. Stat. Software 5(8), 2000), drawing its bits from the project's
/// `RandomGenerator`.
///
/// The renderer needs one normal per channel of every background pixel; Box–Muller (two
/// logarithms and a sine and cosine per pair) would cost more than the rest of a sample together.
/// Here about 99 % of draws cost one 64-bit random number, a comparison and a multiplication.
/// The 128-layer tables use 32-bit magnitudes; the layer index comes from separate bits of the
/// same 64-bit draw, so index and value are independent.
public struct ZigguratNormal: Sendable {
    /// The tables for the standard normal, built once.
    public static let standard = ZigguratNormal()

    /// Start of the tail.
    static let r = 3.442619855899
    /// Area of each layer.
    static let v = 9.91256303526217e-3

    /// Acceptance thresholds on |value| per layer.
    private let k: [UInt32]
    /// Scale from a signed 32-bit value to x per layer.
    private let w: [Float]
    /// exp(−x²/2) at each layer's edge.
    private let f: [Float]

    private init() {
        let m = 2147483648.0  // 2^31
        var k = [UInt32](repeating: 0, count: 128)
        var w = [Float](repeating: 0, count: 128)
        var f = [Float](repeating: 0, count: 128)
        var d = ZigguratNormal.r, t = d
        let q = ZigguratNormal.v / exp(-0.5 * d * d)
        k[0] = UInt32((d / q) * m)
        k[1] = 0
        w[0] = Float(q / m)
        w[127] = Float(d / m)
        f[0] = 1
        f[127] = Float(exp(-0.5 * d * d))
        for i in stride(from: 126, through: 1, by: -1) {
            d = (-2 * log(ZigguratNormal.v / d + exp(-0.5 * d * d))).squareRoot()
            k[i + 1] = UInt32((d / t) * m)
            t = d
            f[i] = Float(exp(-0.5 * d * d))
            w[i] = Float(d / m)
        }
        (self.k, self.w, self.f) = (k, w, f)
    }

    /// One standard normal deviate.
    @inline(__always)
    public func next(_ rng: inout RandomGenerator) -> Float {
        let u = rng.next()
        let value = Int32(truncatingIfNeeded: u >> 32)
        let layer = Int(u & 127)
        if value.magnitude < k[layer] { return Float(value) * w[layer] }
        return slowPath(value, layer, &rng)
    }

    /// The rare cases: the base strip's tail and the wedges at the layers' right edges.
    private func slowPath(_ first: Int32, _ firstLayer: Int, _ rng: inout RandomGenerator) -> Float {
        var (value, layer) = (first, firstLayer)
        while true {
            let x = Float(value) * w[layer]
            if layer == 0 {
                // Tail beyond r (Marsaglia's method).
                var tx: Double, ty: Double
                repeat {
                    tx = -log(1 - rng.uniformDouble()) / ZigguratNormal.r
                    ty = -log(1 - rng.uniformDouble())
                } while ty + ty < tx * tx
                return Float(value > 0 ? ZigguratNormal.r + tx : -ZigguratNormal.r - tx)
            }
            if f[layer] + rng.uniform() * (f[layer - 1] - f[layer]) < Float(exp(-0.5 * Double(x) * Double(x))) {
                return x
            }
            let u = rng.next()
            value = Int32(truncatingIfNeeded: u >> 32)
            layer = Int(u & 127)
            if value.magnitude < k[layer] { return Float(value) * w[layer] }
        }
    }
}
