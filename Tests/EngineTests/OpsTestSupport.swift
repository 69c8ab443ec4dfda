import Testing
import Engine

// Helpers shared by the Ops test suites.

/// A tensor of uniform values in [low, high) from a fixed seed.
func opsUniform(_ shape: [Int], _ low: Float = -1, _ high: Float = 1, seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, using: &rng)
}

/// Largest absolute difference between two equal-length value lists.
func opsMaxDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compared lists differ in length: \(a.count) and \(b.count)")
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}

/// Row-major strides of a shape.
func opsStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    if shape.count >= 2 { for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] } }
    return s
}

/// The multi-index of flat position `i` in `shape`.
func opsIndex(_ i: Int, _ shape: [Int]) -> [Int] {
    var rest = i
    var idx = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        idx[d] = rest % shape[d]
        rest /= shape[d]
    }
    return idx
}

/// Naive broadcasting reference: the value of `x` at output multi-index `idx` (right-aligned).
func opsBroadcastValue(_ x: Tensor, _ idx: [Int]) -> Float {
    let offset = idx.count - x.rank
    let st = opsStrides(x.shape)
    var flat = 0
    for d in 0..<x.rank { flat += (x.shape[d] == 1 ? 0 : idx[d + offset]) * st[d] }
    return x.pointer[flat]
}

/// Parent of the Ops suites, run one test at a time: grad mode (`Autograd.withoutGrad`, used by
/// `gradientError`) is process-wide, so a test recording a graph must not overlap one that has
/// switched recording off.
@Suite(.serialized) struct OpsTests {}
