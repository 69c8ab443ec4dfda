import Foundation
import Testing
import Engine
@testable import VQDiffusion

/// MMD²_u with the cubic kernel over whole sets, written as plain loops.
private func referenceMMD(_ x: [Double], _ y: [Double], n: Int, d: Int) -> Double {
    func k(_ a: [Double], _ i: Int, _ b: [Double], _ j: Int) -> Double {
        var dot = 0.0
        for c in 0..<d { dot += a[i * d + c] * b[j * d + c] }
        return pow(dot / Double(d) + 1, 3)
    }
    var xx = 0.0, yy = 0.0, xy = 0.0
    for i in 0..<n {
        for j in 0..<n {
            if i != j { xx += k(x, i, x, j); yy += k(y, i, y, j) }
            xy += k(x, i, y, j)
        }
    }
    let m = Double(n)
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)
}

@Suite struct KIDTests {
    @Test func wholeSetSubsetMatchesDirectSum() throws {
        // A subset the size of the set is a permutation of it, and MMD² ignores order.
        let (n, d) = (25, 6)
        let x = randomFeatures(n, d, seed: 60), y = randomFeatures(n, d, seed: 61, shift: 0.3)
        var rng = RandomGenerator(seed: 5)
        let r = try KID.compute(x, shape: [n, d], y, shape: [n, d], subsets: 3, subsetSize: n, using: &rng)
        let reference = referenceMMD(x, y, n: n, d: d)
        #expect(abs(r.mean - reference) <= 1e-10 * abs(reference))
        #expect(r.std <= 1e-10 * abs(reference))
        #expect(r.subsets == 3 && r.subsetSize == n)
    }

    @Test func sameDistributionNearZeroDifferentClearlyPositive() throws {
        let (n, d) = (400, 16)
        let x = randomFeatures(n, d, seed: 70), y = randomFeatures(n, d, seed: 71)
        let z = randomFeatures(n, d, seed: 72, shift: 0.5)
        var rng = RandomGenerator(seed: 9)
        let same = try KID.compute(x, shape: [n, d], y, shape: [n, d], subsets: 50, subsetSize: 100, using: &rng)
        let different = try KID.compute(x, shape: [n, d], z, shape: [n, d], subsets: 50, subsetSize: 100, using: &rng)
        #expect(abs(same.mean) < 0.05 * different.mean, "same \(same.mean), different \(different.mean)")
        // Clearly positive: many standard errors of the subset mean above zero.
        #expect(different.mean > 10 * different.std / Double(different.subsets).squareRoot())
        #expect(same.std > 0)
    }

    @Test func defaultsAndDeterminism() throws {
        let x = randomFeatures(30, 4, seed: 80).map { Float($0) }, y = randomFeatures(20, 4, seed: 81).map { Float($0) }
        var a = RandomGenerator(seed: 1), b = RandomGenerator(seed: 1)
        let r1 = try KID.compute(x, shape: [30, 4], y, shape: [20, 4], using: &a)
        let r2 = try KID.compute(x, shape: [30, 4], y, shape: [20, 4], using: &b)
        #expect(r1 == r2)
        #expect(r1.subsets == 100 && r1.subsetSize == 20)
    }

    @Test func rejectsBadInputs() {
        let x = randomFeatures(10, 4, seed: 90), y = randomFeatures(10, 3, seed: 91)
        var rng = RandomGenerator(seed: 0)
        #expect(throws: MetricError.self) { try KID.compute(x, shape: [10, 4], y, shape: [10, 3], using: &rng) }
        #expect(throws: MetricError.self) { try KID.compute(x, shape: [10, 4], x, shape: [10, 4], subsetSize: 11, using: &rng) }
        #expect(throws: MetricError.self) { try KID.compute(x, shape: [10, 4], x, shape: [10, 4], subsetSize: 1, using: &rng) }
        #expect(throws: MetricError.self) { try KID.compute(x, shape: [10, 4], x, shape: [10, 4], subsets: 0, using: &rng) }
    }
}
