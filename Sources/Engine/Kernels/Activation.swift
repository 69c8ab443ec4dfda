import Foundation

/// An elementwise nonlinearity fused into `linear` (applied to x·Wᵀ + b in the same node).
public enum Activation: String, CaseIterable, Sendable {
    /// Identity.
    case none
    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2, VQ-Diffusion).
    case gelu
    /// GELU, exact: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (BERT).
    case geluErf
    /// SiLU (swish): x·σ(x).
    case silu
    /// max(0, x).
    case relu

    /// Applies the activation in place to x[0..<n] (the forward pass of pointer-level code).
    public func apply(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        ActivationKernel.forward(self, out: x, z: x, n: n)
    }
}

private let geluK: Float = 0.797_884_560_8      // √(2/π)
private let geluC: Float = 0.044_715
private let invSqrt2: Float = 0.707_106_781_2
private let invSqrt2Pi: Float = 0.398_942_280_4  // 1/√(2π)

/// Elementwise activation forward and backward over flat buffers.
enum ActivationKernel {
    @inline(__always) static func gelu(_ x: Float) -> Float {
        let u = geluK * (x + geluC * x * x * x)
        let t = 1 - 2 / (1 + FastMath.exp(2 * u))          // tanh(u)
        return 0.5 * x * (1 + t)
    }

    @inline(__always) static func geluErf(_ x: Float) -> Float { 0.5 * x * (1 + erf(x * invSqrt2)) }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + FastMath.exp(-x)) }

    @inline(__always) static func relu(_ x: Float) -> Float { max(x, 0) }

    /// out[i] = f(z[i]) for i < n. `out` may equal `z`. (The in-place case gets its own loop:
    /// the vectoriser's overlap check would send an `out[i] = f(z[i])` loop with out == z down
    /// its scalar path.)
    static func forward(_ activation: Activation, out: UnsafeMutablePointer<Float>,
                        z: UnsafePointer<Float>, n: Int) {
        let inPlace = UnsafePointer(out) == z
        switch activation {
        case .none:
            if !inPlace { out.update(from: z, count: n) }
        case .gelu:
            if inPlace { for i in 0..<n { out[i] = gelu(out[i]) } } else { for i in 0..<n { out[i] = gelu(z[i]) } }
        case .geluErf:
            if inPlace { for i in 0..<n { out[i] = geluErf(out[i]) } } else { for i in 0..<n { out[i] = geluErf(z[i]) } }
        case .silu:
            if inPlace { for i in 0..<n { out[i] = silu(out[i]) } } else { for i in 0..<n { out[i] = silu(z[i]) } }
        case .relu:
            if inPlace { for i in 0..<n { out[i] = relu(out[i]) } } else { for i in 0..<n { out[i] = relu(z[i]) } }
        }
    }

    /// dz[i] = dy[i] · f′(z[i]) for i < n; `dz` must not overlap `dy` or `z`.
    static func backward(_ activation: Activation, dz: UnsafeMutablePointer<Float>,
                         dy: UnsafePointer<Float>, z: UnsafePointer<Float>, n: Int) {
        switch activation {
        case .none:
            dz.update(from: dy, count: n)
        case .gelu:
            for i in 0..<n {
                let x = z[i]
                let u = geluK * (x + geluC * x * x * x)
                let t = 1 - 2 / (1 + FastMath.exp(2 * u))
                let du = geluK * (1 + 3 * geluC * x * x)
                dz[i] = dy[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
            }
        case .geluErf:
            for i in 0..<n {
                let x = z[i]
                let cdf = 0.5 * (1 + erf(x * invSqrt2))
                let pdf = invSqrt2Pi * FastMath.exp(-0.5 * x * x)
                dz[i] = dy[i] * (cdf + x * pdf)
            }
        case .silu:
            for i in 0..<n {
                let x = z[i]
                let s = 1 / (1 + FastMath.exp(-x))
                dz[i] = dy[i] * (s * (1 + x * (1 - s)))
            }
        case .relu:
            for i in 0..<n { dz[i] = z[i] > 0 ? dy[i] : 0 }
        }
    }
}
