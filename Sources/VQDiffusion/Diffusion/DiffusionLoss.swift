import Engine
import Foundation

// The training objective of VQ-Diffusion (Sec. 3.3 and 4.1 of the paper), per token:
//
//   L = w_t · m · [ KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))     for t ≥ 2
//                   −log p_θ(x0 | x1)                                   for t = 1 ]
//     + w_t · m · λ · a(t) · (−log p_θ(x0 | x_t))                      (auxiliary; reparameterized only)
//
// with w_t = 1/(T·p(t)) from the time sampler, m the weight of masked or unmasked positions (by
// x_t), λ the auxiliary weight and a(t) = 1, or 2 − t/T when adaptive. As in the reference the
// total is summed over tokens and batch and divided by B·N: a loss per token. With the auxiliary
// normalisation `.maskedTokens` the auxiliary terms at [MASK] positions are instead averaged over
// each element's own [MASK] positions (N/M_b in place of 1 for M_b of them), as masked-token
// models train: every time t then carries the same auxiliary weight per element, where per token
// it grows with the number masked (about γ̄_t·N), so the small t that fill in a token with nearly
// the whole grid in view get a share of the signal instead of about 1 %. The bound terms are
// one fused KL node over (B, N, K+1); at t = 1 the target q is one-hot at x0, which makes the same
// KL the decoder NLL.

/// How the auxiliary cross-entropy at [MASK] positions is averaged.
public enum DiffusionAuxiliaryNormalization: String, Codable, Sendable, CaseIterable {
    /// Over all B·N tokens, like the bound (the paper's and the reference code's).
    case tokens
    /// Over each element's [MASK] positions: every element's masked terms weigh the same whatever
    /// its t. Positions holding a real code keep the per-token average.
    case maskedTokens = "masked-tokens"
}

public struct DiffusionLossConfiguration: Equatable, Codable, Sendable {
    /// λ, the weight of the auxiliary cross-entropy on p_θ(x0 | x_t) (the paper's 5e-4).
    public var auxiliaryWeight: Double = 5e-4
    /// Multiply the auxiliary term by 2 − t/T (the reference code's "adaptive" option).
    public var adaptiveAuxiliaryWeight: Bool = false
    /// Weight of the terms at positions where x_t is [MASK].
    public var maskedWeight: Double = 1
    /// Weight of the terms at positions where x_t is a real code.
    public var unmaskedWeight: Double = 1
    /// How the auxiliary terms at [MASK] positions are averaged.
    public var auxiliaryNormalization: DiffusionAuxiliaryNormalization = .tokens

    public init(auxiliaryWeight: Double = 5e-4, adaptiveAuxiliaryWeight: Bool = false,
                maskedWeight: Double = 1, unmaskedWeight: Double = 1,
                auxiliaryNormalization: DiffusionAuxiliaryNormalization = .tokens) {
        self.auxiliaryWeight = auxiliaryWeight
        self.adaptiveAuxiliaryWeight = adaptiveAuxiliaryWeight
        self.maskedWeight = maskedWeight
        self.unmaskedWeight = unmaskedWeight
        self.auxiliaryNormalization = auxiliaryNormalization
    }
}

/// The loss of one batch and what to log about it.
public struct DiffusionLossTerms {
    /// The scalar to differentiate.
    public let loss: Tensor
    /// The bound part of `loss` (weighted KL / NLL per token).
    public let bound: Double
    /// The auxiliary part of `loss` (λ included).
    public let auxiliary: Double
    /// (B) L_t of each batch element: its mean bound term per token with the mask weights but
    /// without the time weight (what the importance sampler records).
    public let boundPerElement: [Double]
    /// x0 predictions (argmax) that are right, among positions where x_t is [MASK].
    public let maskedCorrect: Int
    public let maskedCount: Int

    public var maskedAccuracy: Double { maskedCount == 0 ? .nan : Double(maskedCorrect) / Double(maskedCount) }
}

public enum DiffusionLoss {
    /// The loss for network logits (B, N, K) — or (B, N, K+1) for the direct parameterization —
    /// computed from x_t (B·N) noised from x0 (B·N) at times t (B), with time weights (B)
    /// 1/(T·p(t)).
    public static func compute(logits: Tensor, x0: [Int32], xt: [Int32], t: [Int], timeWeights: [Double],
                               schedule: DiffusionSchedule, parameterization: DiffusionParameterization,
                               configuration c: DiffusionLossConfiguration) -> DiffusionLossTerms {
        let K = schedule.classes, T = schedule.steps
        let B = t.count
        precondition(B > 0 && x0.count % B == 0 && xt.count == x0.count && timeWeights.count == B,
                     "DiffusionLoss: \(x0.count) clean and \(xt.count) noised tokens, \(t.count) times, \(timeWeights.count) weights")
        let N = x0.count / B
        let outputs = parameterization == .direct ? K + 1 : K
        precondition(logits.shape == [B, N, outputs],
                     "DiffusionLoss: logits \(logits.shape) do not match [\(B), \(N), \(outputs)] (\(parameterization))")
        // Per-row weights: time weight × mask weight / (B·N).
        var rowWeights = [Float](repeating: 0, count: B * N)         // (B·N)
        var maskWeights = [Double](repeating: 0, count: B * N)
        var maskedPerElement = [Int](repeating: 0, count: B)          // (B) M_b
        let perToken = 1 / Double(B * N)
        for b in 0..<B {
            for n in 0..<N {
                let r = b * N + n
                let masked = Int(xt[r]) == K
                if masked { maskedPerElement[b] += 1 }
                maskWeights[r] = masked ? c.maskedWeight : c.unmaskedWeight
                rowWeights[r] = Float(timeWeights[b] * maskWeights[r] * perToken)
            }
        }
        let logModel: Tensor                                          // (B, N, K+1) log p_θ(x_{t−1} | x_t)
        let logX0: Tensor?                                            // (B, N, K) log p_θ(x0 | x_t)
        switch parameterization {
        case .reparameterized:
            let l = logits.logSoftmax()
            logX0 = l
            logModel = schedule.posteriorLogProbabilities(logX0: l, xt: xt, t: t)
        case .direct:
            logX0 = nil
            logModel = logits.logSoftmax()
        }
        let logTrue = schedule.truePosteriorLogProbabilities(x0: x0, xt: xt, t: t)   // (B·N·(K+1))
        let (klLoss, perRow) = diffusionKL(logTrue: logTrue, model: logModel, weights: rowWeights)
        var boundPerElement = [Double](repeating: 0, count: B)
        for b in 0..<B {
            var s = 0.0
            for n in 0..<N { s += maskWeights[b * N + n] * Double(perRow[b * N + n]) }
            boundPerElement[b] = s / Double(N)
        }
        var loss = klLoss
        var auxiliary = 0.0
        if parameterization == .reparameterized && c.auxiliaryWeight != 0 {
            // crossEntropy averages over its B·N rows, which is the per-token normalisation;
            // N/M_b turns it into an average over the element's M_b masked positions.
            var auxWeights = [Float](repeating: 0, count: B * N)
            for b in 0..<B {
                let a = c.adaptiveAuxiliaryWeight ? 2 - Double(t[b]) / Double(T) : 1
                let masked = maskedPerElement[b]
                let maskedScale = c.auxiliaryNormalization == .maskedTokens && masked > 0 ? Double(N) / Double(masked) : 1
                for n in 0..<N {
                    let r = b * N + n
                    let scale = Int(xt[r]) == K ? maskedScale : 1
                    auxWeights[r] = Float(c.auxiliaryWeight * a * timeWeights[b] * maskWeights[r] * scale)
                }
            }
            let aux = crossEntropy(logits: logits.reshape([B * N, K]), targets: x0, weights: auxWeights)
            auxiliary = Double(aux.item)
            loss = loss + aux
        }
        // Accuracy of the argmax prediction at masked positions.
        let predictions = logX0 ?? logModel
        let P = predictions.shape[2], p = predictions.pointer
        var correct = 0, masked = 0
        for r in 0..<(B * N) where Int(xt[r]) == K {
            masked += 1
            let row = p + r * P
            var best = 0
            for k in 1..<K where row[k] > row[best] { best = k }
            if best == Int(x0[r]) { correct += 1 }
        }
        return DiffusionLossTerms(loss: loss, bound: Double(klLoss.item), auxiliary: auxiliary,
                                  boundPerElement: boundPerElement, maskedCorrect: correct, maskedCount: masked)
    }
}
