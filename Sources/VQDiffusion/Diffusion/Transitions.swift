import Engine
import Foundation

/// Log-probabilities are floored here, as the reference implementation does: exp(−70) ≈ 4e−31
/// stands for "impossible", so no log is −∞ and no 0·(−∞) can arise downstream.
public let diffusionLogFloor: Float = -70

/// A mask-and-replace transition matrix over K real codes and [MASK] (index K) (Eq. 4 of the paper):
///
///     from a real code i:  to i with keep + replace, to any other real code with replace,
///                          to [MASK] with mask;        keep + K·replace + mask = 1
///     from [MASK]:         to [MASK] with 1 (absorbing)
///
/// One-step (α_t, β_t, γ_t), cumulative (ᾱ_t, β̄_t, γ̄_t) and s→t transitions all have this form;
/// `DiffusionSchedule` makes them. The matrix takes 3 numbers, so applying it costs O(K) per token.
public struct MaskReplaceTransition: Equatable, Sendable {
    /// K; [MASK] is index K.
    public var classes: Int
    /// Probability of keeping a real code (α).
    public var keep: Double
    /// Probability of moving to each particular real code, on top of `keep` for the same code (β).
    public var replace: Double
    /// Probability of a real code becoming [MASK] (γ).
    public var mask: Double

    public init(classes: Int, keep: Double, replace: Double, mask: Double) {
        self.classes = classes
        self.keep = keep
        self.replace = replace
        self.mask = mask
    }

    public static func identity(classes: Int) -> MaskReplaceTransition {
        MaskReplaceTransition(classes: classes, keep: 1, replace: 0, mask: 0)
    }

    /// This transition followed by `next` (the matrix product self · next); again mask-and-replace.
    /// The replace rate is summed from non-negative terms, so no cancellation occurs.
    public func then(_ next: MaskReplaceTransition) -> MaskReplaceTransition {
        precondition(classes == next.classes, "then: transitions over \(classes) and \(next.classes) classes")
        let k = Double(classes)
        return MaskReplaceTransition(
            classes: classes,
            keep: keep * next.keep,
            replace: keep * next.replace + replace * (next.keep + k * next.replace),
            mask: 1 - (1 - mask) * (1 - next.mask))
    }

    /// q(to | from) for indices 0…K.
    @inline(__always)
    public func probability(from i: Int, to j: Int) -> Double {
        if i == classes { return j == classes ? 1 : 0 }
        if j == classes { return mask }
        return i == j ? keep + replace : replace
    }

    /// The dense (K+1)×(K+1) matrix, row = from, column = to (row-major). For tests and inspection.
    public func denseMatrix() -> [Double] {
        let n = classes + 1
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { m[i * n + j] = probability(from: i, to: j) } }
        return m
    }

    @inline(__always)
    static func flooredLog(_ p: Double) -> Float {
        let l = Foundation.log(p)          // −∞ for p = 0
        return l > Double(diffusionLogFloor) ? Float(l) : diffusionLogFloor
    }

    /// log q(x' | x) for one-hot x given as indices 0…K, one row of K+1 log-probabilities per token.
    /// Log-probabilities are floored at `diffusionLogFloor`.
    public func logProbabilities(fromIndices x: UnsafePointer<Int32>, count: Int,
                                 into out: UnsafeMutablePointer<Float>) {          // out (count, K+1)
        let K = classes
        let (logSame, logOther, logMask) = (MaskReplaceTransition.flooredLog(keep + replace),
                                            MaskReplaceTransition.flooredLog(replace),
                                            MaskReplaceTransition.flooredLog(mask))
        for r in 0..<count {
            let i = Int(x[r])
            precondition(i >= 0 && i <= K, "logProbabilities: token \(i) outside 0…\(K)")
            let row = out + r * (K + 1)
            if i == K {
                row.update(repeating: diffusionLogFloor, count: K)
                row[K] = 0
            } else {
                row.update(repeating: logOther, count: K)
                row[i] = logSame
                row[K] = logMask
            }
        }
    }

    /// log q(x' | x) = log Σ_x q(x' | x) p(x) for distributions p over K+1 classes given as
    /// log-probabilities (need not be normalised: the result scales with Σp). Rows are independent:
    /// logX and out are (rows, K+1). Computed in Float64 after shifting by the row maximum, floored
    /// at `diffusionLogFloor`; −∞ inputs (exact zeros) are allowed.
    public func logProbabilities(fromLogDistributions logX: UnsafePointer<Float>, rows: Int,
                                 into out: UnsafeMutablePointer<Float>) {          // (rows, K+1)
        let K = classes
        for r in 0..<rows {
            let x = logX + r * (K + 1)
            let o = out + r * (K + 1)
            var m = -Float.infinity
            for k in 0...K { m = max(m, x[k]) }
            guard m > -Float.infinity else {            // no mass at all
                o.update(repeating: diffusionLogFloor, count: K + 1)
                continue
            }
            var real = 0.0                               // Σ_{k<K} p_k (shifted)
            for k in 0..<K { real += Foundation.exp(Double(x[k] - m)) }
            let pMask = Foundation.exp(Double(x[K] - m))
            let shared = replace * real
            for k in 0..<K {
                let v = keep * Foundation.exp(Double(x[k] - m)) + shared
                o[k] = max(Float(Double(m) + Foundation.log(v)), diffusionLogFloor)
            }
            o[K] = max(Float(Double(m) + Foundation.log(mask * real + pMask)), diffusionLogFloor)
        }
    }

    /// One draw x' ~ q(x' | x): [MASK] stays; a real code is kept with probability keep, becomes a
    /// uniformly random real code (possibly itself) with probability K·replace, and [MASK] otherwise
    /// — so it ends on its own code with probability keep + replace, as the matrix says.
    @inline(__always)
    public func sample(from x: Int32, using rng: inout RandomGenerator) -> Int32 {
        let K = classes
        if Int(x) == K { return x }
        let u = rng.uniformDouble()
        if u < keep { return x }
        if u < keep + Double(K) * replace { return Int32(rng.int(below: K)) }
        return Int32(K)
    }
}

extension DiffusionSchedule {
    /// Draws x_t ~ q(x_t | x_0) for a batch: x0 is (B, N) token indices in 0…K (row-major), t holds
    /// one time in 1…T per batch element. Tokens already [MASK] stay [MASK].
    public func noised(_ x0: [Int32], t: [Int], using rng: inout RandomGenerator) -> [Int32] {
        let B = t.count
        precondition(B > 0 && x0.count % B == 0, "noised: \(x0.count) tokens do not split into \(B) batch elements")
        let N = x0.count / B
        var xt = x0
        for b in 0..<B {
            let q = cumulative(t[b])
            precondition(t[b] >= 1, "noised: time \(t[b]) outside 1…\(steps)")
            for n in 0..<N {
                precondition(x0[b * N + n] >= 0 && Int(x0[b * N + n]) <= classes,
                             "noised: token \(x0[b * N + n]) outside 0…\(classes)")
                xt[b * N + n] = q.sample(from: x0[b * N + n], using: &rng)
            }
        }
        return xt
    }

    /// Draws one class per row from log-probabilities (rows, C) with the Gumbel-max trick
    /// (argmax of log p + Gumbel noise). Rows may be unnormalised; −∞ entries are never drawn
    /// unless the whole row is −∞ (then index 0).
    /// Rows are `stride` values apart (default `classes`); only their first `classes` are drawn from.
    public static func sampleLogCategorical(_ logP: UnsafePointer<Float>, rows: Int, stride: Int? = nil, classes C: Int,
                                            using rng: inout RandomGenerator) -> [Int32] {
        let stride = stride ?? C
        var out = [Int32](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = logP + r * stride
            var best = -Float.infinity, arg = 0
            for c in 0..<C {
                let v = row[c] + rng.gumbel()
                if v > best { best = v; arg = c }
            }
            out[r] = Int32(arg)
        }
        return out
    }
}
