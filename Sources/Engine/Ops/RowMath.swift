/// Reductions over one contiguous row, in eight independent lanes so that they vectorize
/// (a single running accumulator would serialise on the previous addition).
enum RowMath {
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            acc += raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        var s = acc.sum()
        while j < n { s += x[j]; j += 1 }
        return s
    }

    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        let (rx, ry) = (UnsafeRawPointer(x), UnsafeRawPointer(y))
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            acc += rx.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
                 * ry.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        var s = acc.sum()
        while j < n { s += x[j] * y[j]; j += 1 }
        return s
    }

    /// The largest value (−∞ for an empty row).
    @inline(__always)
    static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var acc = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            acc = pointwiseMax(acc, raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self))
            j += 8
        }
        var m = acc.max()
        while j < n { m = Swift.max(m, x[j]); j += 1 }
        return m
    }

    /// y[j] = e^(x[j] − shift) for the row, returning Σ y.
    @inline(__always)
    static func expShifted(_ x: UnsafePointer<Float>, shift: Float, into y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        for j in 0..<n { y[j] = vectorExp(x[j] - shift) }
        return sum(UnsafePointer(y), n)
    }
}
