import Engine
import Foundation

// The reverse step through the x0 reparameterization (Eq. 11 of the paper):
//
//   p_θ(x_s | x_t) = Σ_{x̃0} q(x_s | x_t, x̃0) p_θ(x̃0 | x_t),
//   q(x_s | x_t, x̃0) = q(x_t | x_s) q(x_s | x̃0) / q(x_t | x̃0)                     (Bayes)
//
// with s = t − 1 for ordinary sampling and training, or s = t − Δt to skip steps.
//
// Closed form, O(K) per token. Write p_i = p̃(x0 = i) over the K real codes, j = x_t, and
//   d_i = q(x_t = j | x0 = i)   (two values when j is real: A + B for i = j and B otherwise;
//                                one value, C, when j is [MASK]) — A, B, C from q(x_t | x0),
//   e_k = q(x_t = j | x_s = k)  (j real: α + β for k = j, β for other real k, 0 for [MASK];
//                                j [MASK]: γ for real k, 1 for [MASK]),
//   w_i = p_i / d_i (0 where d_i = 0: x̃0 = i cannot have produced x_t),   S = Σ_i w_i.
// Then, with (ᾱ_s, β̄_s, γ̄_s) the cumulative rates at s, the unnormalised posterior is
//   u_k    = e_k · (ᾱ_s·w_k + β̄_s·S)   for real k,
//   u_MASK = e_MASK · γ̄_s · S,
// since Σ_i w_i q(x_s = k | x0 = i) = ᾱ_s w_k + β̄_s S. The result is log(u_k / Z), Z = Σ_k u_k,
// floored at −70. For a normalised p̃ with every d_i > 0, Z = Σ_i p_i = 1 exactly in exact
// arithmetic, so normalising only removes rounding; for any input it makes the output the
// posterior of p̃ ∝ exp(log p̃). At s = 0 (t = 1) it returns p̃ itself: p_θ(x0 | x1).
//
// Gradient (for a fused autograd node; the floor gives zero gradient where it is active):
// with upstream g_k, h_k = g_k / u_k and G = Σ_k g_k over unfloored k,
//   ∂L/∂log p̃_i = w_i · (ᾱ_s e_i h_i + β̄_s Σ_{real k} e_k h_k + γ̄_s e_MASK h_MASK) − G · w_i d_i / Z.
//
// If no x̃0 with p̃ > 0 can produce x_t (Z = 0: e.g. x_t = [MASK] when γ̄ = 0, or a
// real x_t that p̃ excludes under a mask-only schedule), the result is the point mass on
// x_s = x_t, with zero gradient.
//
// Layout: the transformer emits [B, N, K] logits (N = h·w tokens), so a token's K values are
// contiguous. The posterior works on rows: log p̃ (B·N, K) in, log p (B·N, K+1) out ([B, N, K+1]),
// one row per token, reading and writing contiguous memory.

/// What one reverse step p(x_s | x_t) needs: q(x_s | x0) and q(x_t | x_s).
public struct ReverseStep: Equatable, Sendable {
    /// q(x_s | x0): the cumulative transition at s.
    public var prior: MaskReplaceTransition
    /// q(x_t | x_s), treated as the transition from x_s to the current tokens.
    public var forward: MaskReplaceTransition
    public var classes: Int { prior.classes }

    public init(prior: MaskReplaceTransition, forward: MaskReplaceTransition) {
        precondition(prior.classes == forward.classes,
                     "ReverseStep: prior over \(prior.classes) and forward over \(forward.classes) classes")
        self.prior = prior
        self.forward = forward
    }
}

/// How to go from x_t to x_s when s < t − 1 (fast inference).
public enum StepSkipping: String, Sendable, CaseIterable {
    /// q(x_s | x_t, x̃0) from the s→t transition (ᾱ_t/ᾱ_s, 1 − (1−γ̄_t)/(1−γ̄_s)): exact.
    case exact
    /// The reference implementation's shortcut: the network sees x_t at time t, then one ordinary
    /// one-step posterior is taken as if the tokens were x_{s+1}, i.e. p(x_s | x_{s+1} = x_t) with
    /// q(x_{s+1} | x_s) and q(x_s | x0). Equal to `.exact` when s = t − 1.
    ///
    /// In the released code's 0-based step index (index = t − 1, stride Δt = skip_step + 1) this
    /// is `q_posterior(..., t = index − skip_step)`, the one-step posterior at our time
    /// t − Δt + 1 = s + 1. (That code falls back to the ordinary step at t once index ≤ skip_step;
    /// choosing the visited times is the sampler's business, not this function's.)
    case referenceApproximation
}

extension DiffusionSchedule {
    /// The reverse step from x_t to x_s (0 ≤ s < t ≤ T).
    public func reverseStep(from t: Int, to s: Int, skipping: StepSkipping = .exact) -> ReverseStep {
        precondition(s >= 0 && s < t && t <= steps, "reverseStep: need 0 ≤ s < t ≤ \(steps), got t = \(t), s = \(s)")
        switch skipping {
        case .exact: return ReverseStep(prior: cumulative(s), forward: transition(from: s, to: t))
        case .referenceApproximation: return ReverseStep(prior: cumulative(s), forward: oneStep(s + 1))
        }
    }

    /// The ordinary reverse step p(x_{t−1} | x_t).
    public func reverseStep(at t: Int) -> ReverseStep { reverseStep(from: t, to: t - 1) }
}

/// The fused posterior kernel over flat buffers (rows = tokens). Float32 in and out, Float64 inside.
public enum DiffusionPosterior {
    /// Per-token constants of the closed form for x_t = j.
    @usableFromInline
    struct TokenCase {
        var dSame: Double, dOther: Double   // d_i for i = j and i ≠ j
        var eSame: Double, eOther: Double   // e_k for real k = j and real k ≠ j
        var eMask: Double                   // e_MASK
        var j: Int                          // x_t when real, −1 for [MASK]

        @inline(__always)
        init(_ x: Int, _ step: ReverseStep) {
            let K = step.classes
            let composed = step.prior.then(step.forward)           // q(x_t | x0)
            let f = step.forward
            if x == K {
                (dSame, dOther) = (composed.mask, composed.mask)
                (eSame, eOther, eMask) = (f.mask, f.mask, 1)
                j = -1
            } else {
                (dSame, dOther) = (composed.keep + composed.replace, composed.replace)
                (eSame, eOther, eMask) = (f.keep + f.replace, f.replace, 0)
                j = x
            }
        }
    }

    /// Fills w (K) with w_i = p_i/d_i (p shifted by the row maximum) and returns S = Σ w_i, or nil
    /// when the row has no mass.
    @inline(__always)
    static func weights(_ l: UnsafePointer<Float>, _ K: Int, _ c: TokenCase,
                        _ w: UnsafeMutablePointer<Double>) -> Double? {
        var m = -Float.infinity
        for i in 0..<K { m = max(m, l[i]) }
        guard m > -Float.infinity, m.isFinite else { return nil }
        let invOther = c.dOther > 0 ? 1 / c.dOther : 0
        var S = 0.0
        for i in 0..<K {
            let v = Foundation.exp(Double(l[i] - m)) * invOther
            w[i] = v
            S += v
        }
        if c.j >= 0 {
            let v = c.dSame > 0 ? Foundation.exp(Double(l[c.j] - m)) / c.dSame : 0
            S += v - w[c.j]
            w[c.j] = v
        }
        return S
    }

    /// log p(x_s | x_t) for `rows` tokens: logX0 (rows, K) log p̃(x0) over the real codes (need
    /// not be normalised; −∞ allowed), xt (rows) in 0…K, out (rows, K+1).
    public static func forward(logX0: UnsafePointer<Float>, xt: UnsafePointer<Int32>, rows: Int,
                               step: ReverseStep, out: UnsafeMutablePointer<Float>) {
        let K = step.classes
        let w = UnsafeMutablePointer<Double>.allocate(capacity: max(K, 1))   // (K) w_i
        defer { w.deallocate() }
        let (a0, b0, c0) = (step.prior.keep, step.prior.replace, step.prior.mask)
        let floor = diffusionLogFloor
        let caseMask = TokenCase(K, step)
        for r in 0..<rows {
            let x = Int(xt[r])
            precondition(x >= 0 && x <= K, "posterior: token \(x) outside 0…\(K)")
            let c = x == K ? caseMask : TokenCase(x, step)
            let o = out + r * (K + 1)
            guard let S = weights(logX0 + r * K, K, c, w) else { pointMass(o, K, x); continue }
            let shared = b0 * S
            var Z = 0.0
            for k in 0..<K {
                let u = c.eOther * (a0 * w[k] + shared)
                Z += u
            }
            if c.j >= 0 { Z += (c.eSame - c.eOther) * (a0 * w[c.j] + shared) }
            let uMask = c.eMask * c0 * S
            Z += uMask
            guard Z > 0, Z.isFinite else { pointMass(o, K, x); continue }
            let logZ = Foundation.log(Z)
            for k in 0..<K {
                let e = k == c.j ? c.eSame : c.eOther
                let v = Float(Foundation.log(e * (a0 * w[k] + shared)) - logZ)
                o[k] = v > floor ? v : floor
            }
            let v = Float(Foundation.log(uMask) - logZ)
            o[K] = v > floor ? v : floor
        }
    }

    /// Adds ∂L/∂logX0 into gradLogX0 (rows, K) given gradOut = ∂L/∂out (rows, K+1), recomputing
    /// the forward quantities. Same arguments as `forward`.
    public static func backward(logX0: UnsafePointer<Float>, xt: UnsafePointer<Int32>, rows: Int,
                                step: ReverseStep, gradOut: UnsafePointer<Float>,
                                gradLogX0: UnsafeMutablePointer<Float>) {
        let K = step.classes
        let w = UnsafeMutablePointer<Double>.allocate(capacity: 2 * max(K, 1))   // (K) w_i, then (K) h_k
        defer { w.deallocate() }
        let h = w + K
        let (a0, b0, c0) = (step.prior.keep, step.prior.replace, step.prior.mask)
        let floor = diffusionLogFloor
        let caseMask = TokenCase(K, step)
        for r in 0..<rows {
            let x = Int(xt[r])
            let c = x == K ? caseMask : TokenCase(x, step)
            let g = gradOut + r * (K + 1)
            let gi = gradLogX0 + r * K
            guard let S = weights(logX0 + r * K, K, c, w) else { continue }
            let shared = b0 * S
            var Z = 0.0
            for k in 0..<K { Z += (k == c.j ? c.eSame : c.eOther) * (a0 * w[k] + shared) }
            let uMask = c.eMask * c0 * S
            Z += uMask
            guard Z > 0, Z.isFinite else { continue }
            let logZ = Foundation.log(Z)
            // h_k = g_k / u_k on unfloored outputs (0 where the floor is active); G = Σ g_k there.
            var G = 0.0, realSum = 0.0
            for k in 0..<K {
                let e = k == c.j ? c.eSame : c.eOther
                let u = e * (a0 * w[k] + shared)
                var hk = 0.0
                if Float(Foundation.log(u) - logZ) > floor {
                    hk = Double(g[k]) / u
                    G += Double(g[k])
                    realSum += e * hk
                }
                h[k] = hk
            }
            var hMask = 0.0
            if Float(Foundation.log(uMask) - logZ) > floor {
                hMask = Double(g[K]) / uMask
                G += Double(g[K])
            }
            let H = b0 * realSum + c0 * c.eMask * hMask
            let scaleZ = G / Z
            for i in 0..<K {
                let (e, d) = i == c.j ? (c.eSame, c.dSame) : (c.eOther, c.dOther)
                gi[i] += Float(w[i] * (a0 * e * h[i] + H - scaleZ * d))
            }
        }
    }

    @inline(__always)
    static func pointMass(_ o: UnsafeMutablePointer<Float>, _ K: Int, _ x: Int) {
        o.update(repeating: diffusionLogFloor, count: K + 1)
        o[x] = 0
    }
}
