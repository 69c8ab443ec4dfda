import Foundation

// Elementwise unary functions. Each is one node; backward uses the saved input x and/or output y.

/// One elementwise function and its derivative, given both the input x and the output y = f(x).
protocol UnaryKernel {
    func value(_ x: Float) -> Float
    func derivative(x: Float, y: Float) -> Float
}

extension Tensor {
    /// Applies `kernel` elementwise and records its backward.
    func applyUnary<K: UnaryKernel>(_ kernel: K) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let (px, py) = (pointer, out.pointer)
        ElementwiseParallel.forEachChunk(count) { r in for i in r { py[i] = kernel.value(px[i]) } }
        return out.recordOp(inputs: [self]) { out in
            let (g, y) = (out.gradStorage!.pointer, out.pointer)
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                ElementwiseParallel.forEachChunk(gx.count) { r in
                    for i in r { d[i] += g[i] * kernel.derivative(x: px[i], y: y[i]) }
                }
            }
        }
    }

    public func exp() -> Tensor { applyUnary(ExpKernel()) }
    public func log() -> Tensor { applyUnary(LogKernel()) }
    public func sqrt() -> Tensor { applyUnary(SqrtKernel()) }
    public func tanh() -> Tensor { applyUnary(TanhKernel()) }
    /// 1 / (1 + e^−x), computed without overflow for large |x|.
    public func sigmoid() -> Tensor { applyUnary(SigmoidKernel()) }
    /// max(x, 0); the gradient at 0 is 0.
    public func relu() -> Tensor { applyUnary(ReluKernel()) }
    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public func gelu() -> Tensor { applyUnary(GeluTanhKernel()) }
    /// GELU, exact form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
    public func geluErf() -> Tensor { applyUnary(GeluErfKernel()) }
    /// SiLU (swish): x·sigmoid(x).
    public func silu() -> Tensor { applyUnary(SiluKernel()) }
    public func square() -> Tensor { applyUnary(SquareKernel()) }
    /// x^p elementwise (for non-integer p, x must be positive).
    public func pow(_ p: Float) -> Tensor { applyUnary(PowKernel(p: p)) }
    /// |x|; the gradient at 0 is 0.
    public func abs() -> Tensor { applyUnary(AbsKernel()) }
    /// Limits values to [min, max]; the gradient passes where min ≤ x ≤ max.
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        precondition(lo <= hi, "clamp: min \(lo) exceeds max \(hi) (shape \(shape))")
        return applyUnary(ClampKernel(lo: lo, hi: hi))
    }
}

struct ExpKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { vectorExp(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { y }
}

struct LogKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { Foundation.log(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 1 / x }
}

struct SqrtKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 0.5 / y }
}

struct TanhKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 1 - y * y }
}

/// 1 / (1 + e^−x): e^−x is +∞ for x < −88.7, giving exactly 0, and 0 for x > 87.3, giving 1.
@inline(__always) func stableSigmoid(_ x: Float) -> Float { 1 / (1 + vectorExp(-x)) }

struct SigmoidKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { stableSigmoid(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { y * (1 - y) }
}

struct ReluKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : 0 }
}

/// e^x in a form the compiler vectorizes (no library call, no trapping conversion): x = k·ln 2 + r
/// with |r| ≤ ln 2 / 2, e^r from its degree-6 Taylor polynomial, 2^k built in the exponent bits.
/// Within a few ulp of the exact value up to x = 88.37; 0 below −87.3 (where e^x leaves the normal
/// range), e^88.37 ≈ 2.4e38 from there to 88.7 (so that 2^k stays finite), +∞ above.
@inline(__always) func vectorExp(_ x: Float) -> Float {
    let xc = Swift.min(Swift.max(x, -87.3), 88.37)
    // k = round(x / ln 2) by the 1.5·2²³ trick: the sum's low mantissa bits hold k.
    let t = xc * 1.442_695_04 + 12_582_912
    let k = t - 12_582_912
    let r = (xc - k * 0.693_359_375) - k * -2.121_944_4e-4  // x − k·ln 2 in two parts (Cody–Waite)
    var p: Float = 1.388_888_9e-3
    p = p * r + 8.333_333_3e-3
    p = p * r + 4.166_666_8e-2
    p = p * r + 0.166_666_67
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let exponent = (t.bitPattern &- 0x4B40_0000 &+ 127) << 23  // (k + 127) in the exponent field
    let y = p * Float(bitPattern: exponent)
    return x < -87.3 ? 0 : (x > 88.7 ? .infinity : y)
}

/// tanh(u) = 1 − 2/(e^{2u} + 1): exact at ±∞ and within a few 1e-8 in absolute terms elsewhere
/// (enough where it feeds 0.5·x·(1 + tanh)).
@inline(__always) func fastTanh(_ u: Float) -> Float { 1 - 2 / (vectorExp(2 * u) + 1) }

struct GeluTanhKernel: UnaryKernel {
    static let c: Float = 0.797_884_560_802_865_4  // √(2/π)
    static let k: Float = 0.044715
    @inline(__always) func value(_ x: Float) -> Float {
        0.5 * x * (1 + fastTanh(Self.c * (x + Self.k * x * x * x)))
    }
    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        let t = fastTanh(Self.c * (x + Self.k * x * x * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * Self.c * (1 + 3 * Self.k * x * x)
    }
}

struct GeluErfKernel: UnaryKernel {
    static let invSqrt2: Float = 0.707_106_781_186_547_5
    static let invSqrt2Pi: Float = 0.398_942_280_401_432_7  // 1/√(2π)
    @inline(__always) func value(_ x: Float) -> Float { 0.5 * x * (1 + Foundation.erf(x * Self.invSqrt2)) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        // Φ(x) + x·φ(x)
        0.5 * (1 + Foundation.erf(x * Self.invSqrt2)) + x * Self.invSqrt2Pi * vectorExp(-0.5 * x * x)
    }
}

struct SiluKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { x * stableSigmoid(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        let s = stableSigmoid(x)
        return s * (1 + x * (1 - s))
    }
}

struct SquareKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { x * x }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { 2 * x }
}

struct PowKernel: UnaryKernel {
    let p: Float
    @inline(__always) func value(_ x: Float) -> Float { Foundation.pow(x, p) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        p == 0 ? 0 : p * Foundation.pow(x, p - 1)
    }
}

struct AbsKernel: UnaryKernel {
    @inline(__always) func value(_ x: Float) -> Float { Swift.abs(x) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}

struct ClampKernel: UnaryKernel {
    let lo: Float, hi: Float
    @inline(__always) func value(_ x: Float) -> Float { Swift.min(Swift.max(x, lo), hi) }
    @inline(__always) func derivative(x: Float, y: Float) -> Float { x >= lo && x <= hi ? 1 : 0 }
}
