import Foundation

/// The project's one source of randomness: xoshiro256** seeded through SplitMix64.
///
/// A value type passed `inout` to everything that draws (initialisation, dropout, data order,
/// diffusion noise, sampling). There is no global generator. Integer arithmetic and
/// bit-exact conversions make the same seed give the same numbers on every machine.
public struct RandomGenerator: Sendable, Equatable {
    /// The full state; save it in checkpoints to resume a stream exactly.
    public var state: (UInt64, UInt64, UInt64, UInt64) {
        get { (s0, s1, s2, s3) }
        set { (s0, s1, s2, s3) = newValue }
    }
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    /// A second normal deviate left over from Box–Muller, if any.
    private var spareNormal: Float?

    public init(seed: UInt64) {
        var sm = seed
        s0 = RandomGenerator.splitMix64(&sm)
        s1 = RandomGenerator.splitMix64(&sm)
        s2 = RandomGenerator.splitMix64(&sm)
        s3 = RandomGenerator.splitMix64(&sm)
        spareNormal = nil
    }

    /// Restores a generator from `stateWords` (as returned by `stateWords`).
    public init(stateWords w: [UInt64]) {
        precondition(w.count == 4, "a generator state has 4 words, got \(w.count)")
        (s0, s1, s2, s3) = (w[0], w[1], w[2], w[3])
        spareNormal = nil
    }

    /// The state as four words, for checkpoints. (A pending Box–Muller spare is dropped on save,
    /// so call `discardSpare()` before saving when a resumed stream must match exactly.)
    public var stateWords: [UInt64] { [s0, s1, s2, s3] }

    public mutating func discardSpare() { spareNormal = nil }

    /// A generator for the sub-stream named by `keys` (e.g. split and sample index): a pure
    /// function of this generator's seed state and the keys, leaving self unchanged.
    public func derived(_ keys: UInt64...) -> RandomGenerator {
        var h = s0 ^ 0x9E37_79B9_7F4A_7C15
        for k in keys {
            var m = h ^ (k &* 0xBF58_476D_1CE4_E5B9)
            h = RandomGenerator.splitMix64(&m) ^ s1
        }
        return RandomGenerator(seed: h ^ s2 ^ (s3 >> 1))
    }

    public static func == (a: RandomGenerator, b: RandomGenerator) -> Bool {
        a.stateWords == b.stateWords && a.spareNormal == b.spareNormal
    }

    @inline(__always)
    static func splitMix64(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// 64 uniformly random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = RandomGenerator.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = RandomGenerator.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [low, high).
    @inline(__always)
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Uniform in [low, high).
    @inline(__always)
    public mutating func uniformDouble(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniformDouble() }

    /// Uniform integer in 0..<n (unbiased, Lemire's method).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs a positive bound, got \(n)")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Uniform integer in the closed range.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + int(below: range.upperBound - range.lowerBound + 1)
    }

    /// Standard normal deviate (Box–Muller, computed in Double).
    public mutating func normal() -> Float {
        if let s = spareNormal { spareNormal = nil; return s }
        var u1 = uniformDouble()
        while u1 <= 0 { u1 = uniformDouble() }
        let u2 = uniformDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spareNormal = Float(r * Foundation.sin(theta))
        return Float(r * Foundation.cos(theta))
    }

    /// Normal deviate with the given mean and standard deviation.
    public mutating func normal(mean: Float, std: Float) -> Float { mean + std * normal() }

    /// Standard Gumbel deviate: −log(−log u).
    public mutating func gumbel() -> Float {
        var u = uniformDouble()
        while u <= 0 { u = uniformDouble() }
        return Float(-Foundation.log(-Foundation.log(u)))
    }

    /// An index drawn with the given (unnormalised, non-negative) weights.
    public mutating func categorical(_ weights: UnsafeBufferPointer<Float>) -> Int {
        var total = 0.0
        for w in weights { total += Double(w) }
        precondition(total > 0, "categorical needs a positive total weight")
        let target = uniformDouble() * total
        var acc = 0.0
        for i in 0..<weights.count {
            acc += Double(weights[i])
            if target < acc { return i }
        }
        return weights.count - 1
    }

    public mutating func categorical(_ weights: [Float]) -> Int {
        weights.withUnsafeBufferPointer { categorical($0) }
    }

    /// In-place Fisher–Yates shuffle.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, int(below: i + 1))
        }
    }

    /// A random permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }
}

extension Tensor {
    /// Normal values with the given standard deviation.
    public static func randn(_ shape: [Int], std: Float = 1, requiresGrad: Bool = false,
                             using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.pointer
        for i in 0..<t.count { p[i] = std * rng.normal() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform values in [low, high).
    public static func uniform(_ shape: [Int], low: Float, high: Float, requiresGrad: Bool = false,
                               using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.pointer
        for i in 0..<t.count { p[i] = rng.uniform(low, high) }
        t.requiresGrad = requiresGrad
        return t
    }
}
