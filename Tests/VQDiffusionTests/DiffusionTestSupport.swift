import Foundation
import Engine
@testable import VQDiffusion

// Dense Float64 reference computations for the diffusion tests: (K+1)×(K+1) matrices, row = from.

/// The schedules every property is checked under: the paper's, the ablation's ends and the
/// reference code's effectively mask-only setting.
func diffusionTestSchedules(classes K: Int, steps T: Int) -> [(String, DiffusionSchedule)] {
    let base = DiffusionConfiguration(classes: K, steps: T)
    var out: [(String, DiffusionSchedule)] = []
    for g in [0.0, 0.5, 0.9, 1.0] {
        out.append(("gammaFinal \(g)", try! DiffusionSchedule(try! base.withGammaFinal(g))))
    }
    out.append(("paper", try! DiffusionSchedule(.paper(classes: K, steps: T))))
    out.append(("referenceMaskOnly", try! DiffusionSchedule(.referenceMaskOnly(classes: K, steps: T))))
    return out
}

func denseProduct(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for k in 0..<n { let v = a[i * n + k]; if v == 0 { continue }
        for j in 0..<n { c[i * n + j] += v * b[k * n + j] } } }
    return c
}

func denseIdentity(_ n: Int) -> [Double] {
    var m = [Double](repeating: 0, count: n * n)
    for i in 0..<n { m[i * n + i] = 1 }
    return m
}

/// The product of one-step matrices for steps s+1…t.
func denseSteps(_ schedule: DiffusionSchedule, from s: Int, to t: Int) -> [Double] {
    let n = schedule.classes + 1
    var m = denseIdentity(n)
    if t > s { for u in (s + 1)...t { m = denseProduct(m, schedule.oneStep(u).denseMatrix(), n) } }
    return m
}

func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var worst = 0.0
    for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i])) }
    return worst
}

/// Bayes' rule with dense matrices: Σ_i p_i · F[k][j] · Qs[i][k] / Qt[i][j] over x0 = i with
/// Qt[i][j] > 0 and p_i > 0, normalised over k; nil when no such i exists. Qs = q(x_s | x0),
/// F = q(x_t | x_s), Qt = Qs·F. p is over the K real codes.
func denseReversePosterior(p: [Double], xt j: Int, prior Qs: [Double], forward F: [Double], classes K: Int) -> [Double]? {
    let n = K + 1
    let Qt = denseProduct(Qs, F, n)
    var u = [Double](repeating: 0, count: n)
    for i in 0..<K where p[i] > 0 && Qt[i * n + j] > 0 {
        for k in 0..<n { u[k] += p[i] * F[k * n + j] * Qs[i * n + k] / Qt[i * n + j] }
    }
    let z = u.reduce(0, +)
    guard z > 0 else { return nil }
    return u.map { $0 / z }
}

/// A random distribution over K codes as log-probabilities, with about a quarter exact zeros
/// (−∞) when `zeros` is set, never all zero.
func randomLogDistribution(_ K: Int, zeros: Bool, using rng: inout RandomGenerator) -> [Float] {
    var l = (0..<K).map { _ in 2 * rng.normal() }
    if zeros { for i in 0..<K where rng.uniform() < 0.25 { l[i] = -.infinity } }
    if l.allSatisfy({ $0 == -.infinity }) { l[rng.int(below: K)] = 0 }
    let m = l.max()!
    let lse = m + Float(Foundation.log(l.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }))
    return l.map { $0 - lse }
}
