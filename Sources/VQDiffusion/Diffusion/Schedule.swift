import Foundation

// The mask-and-replace noise schedule of VQ-Diffusion (Gu et al. 2022, Sec. 3.2, Eq. 5–7).
//
// Conventions: codes 0…K−1 are real VQ codes, index K is [MASK]; time runs t = 1…T and t = 0 is
// clean data. The cumulative rates are linear in t:
//   ᾱ_t from ᾱ_1 to ᾱ_T,  γ̄_t from γ̄_1 to γ̄_T,  K·β̄_t = 1 − ᾱ_t − γ̄_t,
// and with ᾱ_0 = 1, γ̄_0 = 0 the one-step rates are
//   α_t = ᾱ_t/ᾱ_{t−1},  γ_t = 1 − (1−γ̄_t)/(1−γ̄_{t−1}),  β_t = (1 − α_t − γ_t)/K.
// Everything here is Float64.

/// The end points of the schedule. The defaults are the paper's: γ̄_T = 0.9 and K·β̄_T ≈ 0.1.
public struct DiffusionConfiguration: Equatable, Sendable, Codable {
    /// K, the number of real codes (the VQ codebook size); index K is [MASK].
    public var classes: Int
    /// T, the number of diffusion steps.
    public var steps: Int = 100
    /// ᾱ_1, the probability that a token is untouched after the first step.
    public var alphaStart: Double = 0.99999
    /// ᾱ_T, the probability that a token is untouched after the last step.
    public var alphaEnd: Double = 0.000009
    /// γ̄_1, the probability that a token is masked after the first step.
    public var gammaStart: Double = 0.000009
    /// γ̄_T, the final mask rate (the paper's ablation varies it; 0.9 is best).
    public var gammaEnd: Double = 0.9

    public init(classes: Int, steps: Int = 100, alphaStart: Double = 0.99999, alphaEnd: Double = 0.000009,
                gammaStart: Double = 0.000009, gammaEnd: Double = 0.9) {
        (self.classes, self.steps, self.alphaStart, self.alphaEnd) = (classes, steps, alphaStart, alphaEnd)
        (self.gammaStart, self.gammaEnd) = (gammaStart, gammaEnd)
    }

    /// The paper's setting: γ̄_T = 0.9, K·β̄_T ≈ 0.1.
    public static func paper(classes: Int, steps: Int = 100) -> DiffusionConfiguration {
        DiffusionConfiguration(classes: classes, steps: steps)
    }

    /// The released reference implementations' default: γ̄_T = 0.99999 with the same ᾱ ends, which
    /// leaves K·β̄_t = 1e-6 at every t — effectively mask-only.
    public static func referenceMaskOnly(classes: Int, steps: Int = 100) -> DiffusionConfiguration {
        DiffusionConfiguration(classes: classes, steps: steps, gammaEnd: 0.99999)
    }

    /// This configuration with the final mask rate γ̄_T set to `g` for the mask-rate ablation:
    /// g = 0 is replace-only, g = 1 is mask-only. The end points are clamped so that every one-step
    /// and cumulative probability is valid:
    ///
    /// - γ̄_1 ← min(γ̄_1, g), so γ̄_t never decreases (g = 0 gives γ̄_t = 0 for every t);
    /// - γ̄_T ← min(g, γ̄_max) with γ̄_max = 1 − ᾱ_T − (ᾱ_T/ᾱ_1)·(1 − ᾱ_1 − γ̄_1), the largest final
    ///   mask rate for which every β_t ≥ 0 (see `DiffusionSchedule.validate`). At γ̄_T = γ̄_max
    ///   the ratio K·β̄_t/ᾱ_t is constant, so β_t = 0 for t ≥ 2: no replacement after the first
    ///   step. With the default ends γ̄_max = 0.99999099999999…, K·β̄_T ≈ 9e-12.
    public func withGammaFinal(_ g: Double) throws -> DiffusionConfiguration {
        guard g.isFinite, g >= 0, g <= 1 else {
            throw DiffusionConfigurationError("the final mask rate γ̄_T must lie in [0, 1], got \(g)")
        }
        var c = self
        c.gammaStart = min(gammaStart, g)
        let gammaMax = 1 - alphaEnd - (alphaEnd / alphaStart) * (1 - alphaStart - c.gammaStart)
        c.gammaEnd = max(c.gammaStart, min(g, gammaMax))
        return c
    }
}

/// An impossible schedule or option, with what to change.
public struct DiffusionConfigurationError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// The validated schedule: cumulative and one-step rates for t = 0…T, in Float64.
///
/// Arrays are indexed by t, with index 0 the clean data (ᾱ_0 = 1, β̄_0 = 0, γ̄_0 = 0 and the
/// one-step values at 0 set to the identity).
public struct DiffusionSchedule: Equatable, Sendable {
    public let configuration: DiffusionConfiguration
    /// K, the number of real codes; [MASK] is index K.
    public var classes: Int { configuration.classes }
    /// T.
    public var steps: Int { configuration.steps }
    /// Index of [MASK].
    public var maskIndex: Int { configuration.classes }

    /// ᾱ_t, β̄_t (per code), γ̄_t for t = 0…T.
    public let alphaBar: [Double], betaBar: [Double], gammaBar: [Double]
    /// α_t, β_t (per code), γ_t for t = 0…T (index 0: 1, 0, 0).
    public let alpha: [Double], beta: [Double], gamma: [Double]

    public init(_ c: DiffusionConfiguration) throws {
        try DiffusionSchedule.validate(c)
        configuration = c
        let (K, T) = (Double(c.classes), c.steps)
        var att = [1.0], ctt = [0.0], btt = [0.0]
        for t in 1...T {
            let s = Double(t - 1) / Double(T - 1)
            let a = s * (c.alphaEnd - c.alphaStart) + c.alphaStart
            let g = s * (c.gammaEnd - c.gammaStart) + c.gammaStart
            att.append(a)
            ctt.append(g)
            btt.append(DiffusionSchedule.replaceRate(1 - a - g, classes: K))
        }
        var at = [1.0], bt = [0.0], ct = [0.0]
        for t in 1...T {
            let a = att[t] / att[t - 1]
            let g = 1 - (1 - ctt[t]) / (1 - ctt[t - 1])
            at.append(a)
            ct.append(g)
            bt.append(DiffusionSchedule.replaceRate(1 - a - g, classes: K))
        }
        (alphaBar, betaBar, gammaBar) = (att, btt, ctt)
        (alpha, beta, gamma) = (at, bt, ct)
    }

    /// Throws with a message naming the offending value when the end points cannot define a
    /// mask-and-replace process. Requirements: K ≥ 1; T ≥ 2; 0 ≤ ᾱ_T ≤ ᾱ_1 ≤ 1 with ᾱ_1 > 0; 0 ≤ γ̄_1 ≤ γ̄_T ≤ 1 with γ̄_1 < 1; K·β̄ ≥ 0 at both ends;
    /// and every one-step β_t ≥ 0, which for linear schedules is exactly
    /// K·β̄_T·ᾱ_1 ≥ K·β̄_1·ᾱ_T (the ratio K·β̄_t/ᾱ_t must not decrease: a replaced token cannot be
    /// "un-replaced").
    public static func validate(_ c: DiffusionConfiguration) throws {
        let tolerance = 1e-12
        guard c.classes >= 1 else {
            throw DiffusionConfigurationError("the number of classes K must be at least 1, got \(c.classes)")
        }
        guard c.steps >= 2 else {
            throw DiffusionConfigurationError("the number of diffusion steps T must be at least 2, got \(c.steps)")
        }
        for (name, v) in [("alpha start ᾱ_1", c.alphaStart), ("alpha end ᾱ_T", c.alphaEnd),
                          ("gamma start γ̄_1", c.gammaStart), ("gamma end γ̄_T", c.gammaEnd)] {
            guard v.isFinite, v >= 0, v <= 1 else {
                throw DiffusionConfigurationError("\(name) must lie in [0, 1], got \(v)")
            }
        }
        guard c.alphaStart > 0 else {
            throw DiffusionConfigurationError("alpha start ᾱ_1 must be positive (tokens must survive the first step), got 0")
        }
        guard c.alphaEnd <= c.alphaStart else {
            throw DiffusionConfigurationError(
                "alpha must not increase: alpha end ᾱ_T = \(c.alphaEnd) exceeds alpha start ᾱ_1 = \(c.alphaStart)")
        }
        guard c.gammaStart <= c.gammaEnd else {
            throw DiffusionConfigurationError(
                "the mask rate must not decrease: gamma start γ̄_1 = \(c.gammaStart) exceeds gamma end γ̄_T = \(c.gammaEnd)")
        }
        guard c.gammaStart < 1 else {
            throw DiffusionConfigurationError("gamma start γ̄_1 must be below 1 (otherwise every step after the first is undefined)")
        }
        let replaceStart = 1 - c.alphaStart - c.gammaStart   // K·β̄_1
        let replaceEnd = 1 - c.alphaEnd - c.gammaEnd         // K·β̄_T
        guard replaceStart >= -tolerance else {
            throw DiffusionConfigurationError(
                "alpha start + gamma start = \(c.alphaStart + c.gammaStart) exceeds 1; lower one of them")
        }
        guard replaceEnd >= -tolerance else {
            throw DiffusionConfigurationError(
                "alpha end + gamma end = \(c.alphaEnd + c.gammaEnd) exceeds 1; lower gamma end to at most \(1 - c.alphaEnd)")
        }
        guard max(0, replaceEnd) * c.alphaStart - max(0, replaceStart) * c.alphaEnd >= -tolerance else {
            let gammaMax = 1 - c.alphaEnd - (c.alphaEnd / c.alphaStart) * replaceStart
            throw DiffusionConfigurationError(
                "gamma end \(c.gammaEnd) would need negative replacement probabilities β_t; " +
                "with these alpha ends and gamma start use gamma end ≤ \(gammaMax)")
        }
    }

    /// q(x_t | x_{t−1}): the one-step transition at step t (1…T).
    public func oneStep(_ t: Int) -> MaskReplaceTransition {
        precondition(t >= 1 && t <= steps, "oneStep: step \(t) outside 1…\(steps)")
        return MaskReplaceTransition(classes: classes, keep: alpha[t], replace: beta[t], mask: gamma[t])
    }

    /// q(x_t | x_0): the cumulative transition at t (0…T; t = 0 is the identity).
    public func cumulative(_ t: Int) -> MaskReplaceTransition {
        precondition(t >= 0 && t <= steps, "cumulative: time \(t) outside 0…\(steps)")
        return MaskReplaceTransition(classes: classes, keep: alphaBar[t], replace: betaBar[t], mask: gammaBar[t])
    }

    /// q(x_t | x_s) for 0 ≤ s ≤ t ≤ T: keep ᾱ_t/ᾱ_s, mask 1 − (1−γ̄_t)/(1−γ̄_s), replace the rest.
    /// For s = t − 1 it equals `oneStep(t)`; for s = 0 it equals `cumulative(t)`.
    public func transition(from s: Int, to t: Int) -> MaskReplaceTransition {
        precondition(s >= 0 && s <= t && t <= steps, "transition: need 0 ≤ s ≤ t ≤ \(steps), got s = \(s), t = \(t)")
        if s == t { return .identity(classes: classes) }
        if s == t - 1 { return oneStep(t) }
        if s == 0 { return cumulative(t) }
        let a = alphaBar[t] / alphaBar[s]
        let g = 1 - (1 - gammaBar[t]) / (1 - gammaBar[s])
        return MaskReplaceTransition(classes: classes, keep: a, replace: DiffusionSchedule.replaceRate(1 - a - g, classes: Double(classes)), mask: g)
    }

    /// β from the total replacement mass 1 − α − γ. Masses within a few rounding errors of zero
    /// (|·| ≤ 16 ulp(1) ≈ 3.6e−15) are set to exactly 0: they arise where the schedule makes β
    /// vanish in exact arithmetic (mask-only after the first step) and, left as noise, would make
    /// the posterior of a real token depend on rounding.
    static func replaceRate(_ mass: Double, classes K: Double) -> Double {
        mass <= 16 * Double.ulpOfOne ? 0 : mass / K
    }

    /// The schedule as JSON for `vqd inspect schedule`: arrays at, bt, ct (one-step α_t, β_t, γ_t)
    /// and att, btt, ctt (cumulative ᾱ_t, β̄_t, γ̄_t), each of length T for t = 1…T, every number
    /// printed with enough digits to round-trip the Float64 exactly.
    public func json() -> String {
        func array(_ v: [Double]) -> String {
            "[" + v[1...].map { "\($0)" }.joined(separator: ",") + "]"
        }
        return "{\"at\":\(array(alpha)),\"bt\":\(array(beta)),\"ct\":\(array(gamma))," +
            "\"att\":\(array(alphaBar)),\"btt\":\(array(betaBar)),\"ctt\":\(array(gammaBar))}"
    }
}
