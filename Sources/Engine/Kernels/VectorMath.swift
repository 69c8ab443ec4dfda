import Foundation

/// Fast math for the kernels' inner loops. The project builds for the baseline x86-64 and arm64
/// targets, where the compiler vectorises plain loops only when they carry no serial dependency:
/// `exp` is branch-free so loops over it vectorise, and the reductions keep 16 independent
/// partial results (a fixed order, so results are reproducible).
public enum FastMath {
    /// e^x to about 2 ulp for x in [−87, 88] (clamped outside), branch-free and free of checked
    /// conversions so loops calling it vectorise. Range reduction x = n·ln2 + r, |r| ≤ ln2/2, a
    /// degree-6 polynomial for e^r (the Cephes expf coefficients), then scaling by 2^n through
    /// the exponent bits. n is rounded with the 1.5·2²³ trick, which also leaves n in the low
    /// mantissa bits of `t`.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let xc = Swift.min(Swift.max(x, -87.0), 88.0)
        let t = xc * 1.442_695_04 + 12_582_912          // 1.5·2²³ + n
        let n = t - 12_582_912
        let r = xc - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = p * r * r + r + 1
        // bits(t) = 0x4B40_0000 + n, so (bits(t) − 0x4B40_0000 + 127) << 23 is 2^n as a Float.
        let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
        return er * scale
    }

    /// Σ p[0..<n].
    @inlinable @inline(__always)
    public static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        return sumOfTerms(n, { raw.loadUnaligned(fromByteOffset: $0 * 4, as: SIMD16<Float>.self) }, { p[$0] })
    }

    /// Σ a[i]·b[i] over i < n.
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        return sumOfTerms(n, {
            ra.loadUnaligned(fromByteOffset: $0 * 4, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: $0 * 4, as: SIMD16<Float>.self)
        }, { a[$0] * b[$0] })
    }

    /// Σ term(i) over i < n: sixteen terms at a time from `lanes(i)` (terms i..<i+16), the tail
    /// one at a time from `term(i)`.
    @inlinable @inline(__always)
    static func sumOfTerms(_ n: Int, _ lanes: (Int) -> SIMD16<Float>, _ term: (Int) -> Float) -> Float {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n { acc += lanes(i); i += 16 }
        var s = acc.sum()
        while i < n { s += term(i); i += 1 }
        return s
    }

    /// max p[0..<n] (−∞ for n = 0).
    @inlinable @inline(__always)
    public static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        var acc = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            // (`pointwiseMax` compiles to scalar code here; a masked replace vectorises.)
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            acc.replace(with: v, where: v .> acc)
            i += 16
        }
        var m = acc.max()
        while i < n { m = Swift.max(m, p[i]); i += 1 }
        return m
    }
}
