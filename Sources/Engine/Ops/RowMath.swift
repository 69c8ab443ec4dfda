/// Row helpers of the ops that have no twin among the kernels' `FastMath` reductions (which the
/// ops use for sums, dot products and maxima).
enum RowMath {
    /// y[j] = e^(x[j] − shift) for the row, returning Σ y.
    @inline(__always)
    static func expShifted(_ x: UnsafePointer<Float>, shift: Float, into y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        for j in 0..<n { y[j] = vectorExp(x[j] - shift) }
        return FastMath.sum(UnsafePointer(y), n)
    }
}
