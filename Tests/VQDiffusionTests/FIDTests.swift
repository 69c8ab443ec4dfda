import Foundation
import Testing
import Engine
@testable import VQDiffusion

/// Row-major (n, d) normal features with per-column scales, so covariances are not isotropic.
func randomFeatures(_ n: Int, _ d: Int, seed: UInt64, shift: Double = 0) -> [Double] {
    var rng = RandomGenerator(seed: seed)
    var out = [Double](repeating: 0, count: n * d)
    for i in 0..<n { for j in 0..<d { out[i * d + j] = Double(rng.normal()) * (1 + 0.3 * Double(j % 4)) + shift } }
    // Mix columns a little so the covariance has off-diagonal structure.
    for i in 0..<n { for j in 1..<d { out[i * d + j] += 0.5 * out[i * d + j - 1] } }
    return out
}

/// Eigenvalues of a symmetric (n, n) row-major matrix by cyclic Jacobi rotations.
private func jacobiEigenvalues(_ input: [Double], n: Int) -> [Double] {
    var a = input
    for _ in 0..<100 {
        var off = 0.0, total = 0.0
        for i in 0..<n { for j in 0..<n { total += a[i * n + j] * a[i * n + j]; if i != j { off += a[i * n + j] * a[i * n + j] } } }
        if off <= 1e-30 * total { break }
        for p in 0..<n {
            for q in (p + 1)..<n where a[p * n + q] != 0 {
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q])
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k])
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
            }
        }
    }
    return (0..<n).map { a[$0 * n + $0] }
}

/// FID by a different route: with A1 = X̃/√(N1−1) and A2 = Ỹ/√(N2−1) the centred, scaled data,
/// Σ1 Σ2 = A1ᵀ A1 A2ᵀ A2 has the nonzero eigenvalues of CᵀC with C = A2 A1ᵀ, so
/// tr((Σ1 Σ2)^½) is the sum of C's singular values (its nuclear norm), found here by Jacobi.
private func referenceFID(_ x: [Double], _ n1: Int, _ y: [Double], _ n2: Int, _ d: Int) -> Double {
    func centred(_ z: [Double], _ n: Int) -> (mean: [Double], a: [Double]) {
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += z[i * d + j] / Double(n) } }
        let scale = 1 / Double(n - 1).squareRoot()
        return (mean, (0..<(n * d)).map { (z[$0] - mean[$0 % d]) * scale })
    }
    let (mu1, a1) = centred(x, n1), (mu2, a2) = centred(y, n2)
    let meanTerm = zip(mu1, mu2).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    let trace1 = a1.reduce(0) { $0 + $1 * $1 }, trace2 = a2.reduce(0) { $0 + $1 * $1 }
    var c = [Double](repeating: 0, count: n2 * n1)                 // (N2, N1) A2 A1ᵀ
    for i in 0..<n2 { for k in 0..<n1 { for j in 0..<d { c[i * n1 + k] += a2[i * d + j] * a1[k * d + j] } } }
    var ctc = [Double](repeating: 0, count: n1 * n1)               // (N1, N1) CᵀC
    for p in 0..<n1 { for q in 0..<n1 { for i in 0..<n2 { ctc[p * n1 + q] += c[i * n1 + p] * c[i * n1 + q] } } }
    // Eigenvalues within rounding of zero (the rank deficiency) count as 0.
    let eigenvalues = jacobiEigenvalues(ctc, n: n1)
    let floor = 1e-13 * (eigenvalues.max() ?? 0)
    let nuclear = eigenvalues.reduce(0) { $0 + ($1 > floor ? $1.squareRoot() : 0) }
    return meanTerm + trace1 + trace2 - 2 * nuclear
}

@Suite struct FIDTests {
    @Test func setWithItselfIsZero() throws {
        let (n, d) = (200, 16)
        let x = randomFeatures(n, d, seed: 1)
        let r = try FID.compute(x, shape: [n, d], x, shape: [n, d])
        let scale = try GaussianFit(features: x, shape: [n, d]).covarianceTrace
        #expect(abs(r.fid) <= 1e-6 * scale)
        #expect(r.meanTerm == 0)
    }

    @Test func shiftedCopyGivesSquaredShift() throws {
        let (n, d) = (120, 10)
        let x = randomFeatures(n, d, seed: 2)
        let shift = (0..<d).map { 0.1 * Double($0) - 0.3 }
        let y = (0..<(n * d)).map { x[$0] + shift[$0 % d] }
        let r = try FID.compute(x, shape: [n, d], y, shape: [n, d])
        let expected = shift.reduce(0) { $0 + $1 * $1 }
        #expect(abs(r.fid - expected) <= 1e-8 * (1 + expected) + 1e-9 * 2 * Double(d))
        #expect(abs(r.meanTerm - expected) <= 1e-12)
    }

    @Test(arguments: [(40, 50, 6), (7, 9, 12), (5, 30, 20)])
    func agreesWithNuclearNormReference(sizes: (Int, Int, Int)) throws {
        let (n1, n2, d) = sizes
        let x = randomFeatures(n1, d, seed: 10), y = randomFeatures(n2, d, seed: 11, shift: 0.2)
        let ours = try FID.compute(x, shape: [n1, d], y, shape: [n2, d]).fid
        let reference = referenceFID(x, n1, y, n2, d)
        let scale = try GaussianFit(features: x, shape: [n1, d]).covarianceTrace
            + GaussianFit(features: y, shape: [n2, d]).covarianceTrace
        #expect(abs(ours - reference) <= 1e-10 * scale, "ours \(ours), reference \(reference)")
    }

    @Test func duplicatedFeatureColumnsAreStable() throws {
        // Column 3 repeats column 0 and column 4 is constant: both covariances are singular.
        let (n, d) = (60, 5)
        var x = randomFeatures(n, d, seed: 20), y = randomFeatures(n, d, seed: 21)
        for i in 0..<n {
            x[i * d + 3] = x[i * d]; y[i * d + 3] = y[i * d]
            x[i * d + 4] = 1; y[i * d + 4] = 1
        }
        let r = try FID.compute(x, shape: [n, d], y, shape: [n, d])
        #expect(r.fid.isFinite)
        #expect(abs(r.fid - referenceFID(x, n, y, n, d)) <= 1e-10 * (1 + r.fid))
    }

    @Test(arguments: [(50, 60, 8), (6, 9, 15)])
    func symmetricInItsArguments(sizes: (Int, Int, Int)) throws {
        let (n1, n2, d) = sizes
        let x = randomFeatures(n1, d, seed: 30), y = randomFeatures(n2, d, seed: 31, shift: -0.4)
        let xy = try FID.compute(x, shape: [n1, d], y, shape: [n2, d])
        let yx = try FID.compute(y, shape: [n2, d], x, shape: [n1, d])
        #expect(abs(xy.fid - yx.fid) <= 1e-10 * (1 + abs(xy.fid)))
        #expect(xy.meanTerm == yx.meanTerm)
    }

    @Test func float32InputMatchesFloat64() throws {
        let (n, d) = (30, 4)
        let x = randomFeatures(n, d, seed: 40).map { Float($0) }, y = randomFeatures(n, d, seed: 41).map { Float($0) }
        let single = try FID.compute(x, shape: [n, d], y, shape: [n, d])
        let double = try FID.compute(x.map(Double.init), shape: [n, d], y.map(Double.init), shape: [n, d])
        #expect(single == double)
    }

    @Test func rejectsBadInputs() {
        let x = randomFeatures(10, 4, seed: 50), y = randomFeatures(10, 5, seed: 51)
        #expect(throws: MetricError.self) { try FID.compute(x, shape: [10, 4], y, shape: [10, 5]) }
        #expect(throws: MetricError.self) { try FID.compute(Array(x.prefix(4)), shape: [1, 4], x, shape: [10, 4]) }
        #expect(throws: MetricError.self) { try FID.compute(x, shape: [10, 3], x, shape: [10, 4]) }
        #expect(throws: MetricError.self) { try FID.compute(x, shape: [40], x, shape: [10, 4]) }
        do {
            _ = try FID.compute(x, shape: [10, 4], y, shape: [10, 5])
        } catch {
            #expect("\(error)".contains("4") && "\(error)".contains("5"))
        }
        var bad = x
        bad[7] = .nan
        #expect(throws: MetricError.self) { try FID.compute(bad, shape: [10, 4], x, shape: [10, 4]) }
    }
}

@Suite struct FIDBootstrapTests {
    /// n rows of d Gaussian features with mean `shift` in every dimension.
    static func features(_ n: Int, _ d: Int, shift: Float, seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return (0..<(n * d)).map { _ in rng.normal() + shift }
    }

    @Test func theIntervalSeparatesADifferentModelAndCoversASameOne() throws {
        let (n, d) = (300, 4)
        let real = Self.features(n, d, shift: 0, seed: 1)
        let good = [Self.features(n, d, shift: 0, seed: 2), Self.features(n, d, shift: 0, seed: 3)]
        let bad = [Self.features(n, d, shift: 1, seed: 4), Self.features(n, d, shift: 1, seed: 5)]
        let apart = try FIDDifference.bootstrap(good, bad, reference: real, dimension: d, replicates: 200, seed: 7)
        // The mean term alone is d · 1² = 4 for the shifted sets.
        #expect(apart.estimate < -3 && apart.high < 0 && apart.low < apart.estimate && apart.estimate < apart.high)
        let same = try FIDDifference.bootstrap([good[0]], [good[1]], reference: real, dimension: d, replicates: 200, seed: 7)
        #expect(same.low < 0 && same.high > 0, "\(same)")
        // The estimate is the plain difference of the FIDs; the replicates follow the seed.
        let fids = try [good[0], good[1]].map { try FID.compute($0, shape: [n, d], real, shape: [n, d]).fid }
        #expect(abs(same.estimate - (fids[0] - fids[1])) < 1e-9)
        #expect(same == (try FIDDifference.bootstrap([good[0]], [good[1]], reference: real, dimension: d, replicates: 200, seed: 7)))
        #expect(throws: MetricError.self) { try FIDDifference.bootstrap([], bad, reference: real, dimension: d, replicates: 10, seed: 0) }
    }

    @Test func pairingOverCaptionsCancelsWhatTheCaptionsShare() throws {
        // Per caption a large shared part (what the caption asks for) plus each model's own small
        // noise; B is shifted a little. Paired draws keep the captions matched across the models.
        let (n, d) = (300, 4)
        let captions = Self.features(n, d, shift: 0, seed: 11).map { $0 * 3 }
        func model(_ seed: UInt64, shift: Float) -> [Float] {
            zip(captions, Self.features(n, d, shift: shift, seed: seed).map { $0 * 0.3 }).map { $0 + $1 }
        }
        let real = zip(Self.features(n, d, shift: 0, seed: 12).map { $0 * 3 }, Self.features(n, d, shift: 0, seed: 13).map { $0 * 0.3 })
            .map { $0 + $1 }
        let a = [model(21, shift: 0), model(22, shift: 0)], b = [model(23, shift: 0.15), model(24, shift: 0.15)]
        let paired = try FIDDifference.bootstrap(a, b, reference: real, dimension: d, replicates: 200, seed: 3, paired: true)
        let unpaired = try FIDDifference.bootstrap(a, b, reference: real, dimension: d, replicates: 200, seed: 3)
        #expect(paired.estimate == unpaired.estimate)
        #expect(paired.high - paired.low < 0.8 * (unpaired.high - unpaired.low), "paired \(paired), unpaired \(unpaired)")
        // The same sets on both sides differ by exactly 0 in every paired replicate.
        let same = try FIDDifference.bootstrap(a, a, reference: real, dimension: d, replicates: 50, seed: 3, paired: true)
        #expect(same.estimate == 0 && same.low == 0 && same.high == 0)
        // Sets of different captions cannot be paired.
        #expect(throws: MetricError.self) {
            try FIDDifference.bootstrap(a, [Array(b[0].prefix(100 * d))], reference: real, dimension: d, replicates: 5, seed: 0, paired: true)
        }
    }
}
