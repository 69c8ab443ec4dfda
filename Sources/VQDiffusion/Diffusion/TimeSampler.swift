import Engine
import Foundation

// Which t to train on. Uniform sampling gives every term of the bound the same weight; importance
// sampling (Nichol & Dhariwal 2021, used by VQ-Diffusion) draws t with
//
//   p(t) ∝ sqrt(E[L_t²]),
//
// where E[L_t²] is a running mean of the squared loss at t, once every t has been seen
// `warmupCount` times (uniform until then). Each drawn term is multiplied by 1/(T·p(t)): 1 under
// uniform sampling, so the two methods estimate the same objective. (The reference code divides by
// p(t) alone, a constant factor T larger.)
//
// The running mean is the plain mean of the first `warmupCount` values at t, then an exponential
// average with weight `1/warmupCount` on the newest value (the reference's 0.1 for 10) — so it
// does not start biased towards zero.

public enum TimeSampling: String, Codable, Sendable, CaseIterable {
    case uniform, importance
}

/// The loss history and the time distribution it implies. A value the training loop owns and
/// saves in its checkpoints.
public struct DiffusionTimeSampler: Equatable, Codable, Sendable {
    public var method: TimeSampling
    /// T.
    public var steps: Int
    /// Updates of every t needed before importance sampling starts.
    public var warmupCount: Int = 10
    /// (T) running mean of L_t² for t = 1…T (index t − 1).
    public private(set) var meanSquare: [Double]
    /// (T) how many losses were recorded at each t.
    public private(set) var counts: [Int]

    public init(method: TimeSampling, steps: Int, warmupCount: Int = 10) {
        precondition(steps >= 1 && warmupCount >= 1, "DiffusionTimeSampler: need steps ≥ 1 and warmupCount ≥ 1")
        self.method = method
        self.steps = steps
        self.warmupCount = warmupCount
        meanSquare = [Double](repeating: 0, count: steps)
        counts = [Int](repeating: 0, count: steps)
    }

    /// Whether every t has been seen `warmupCount` times.
    public var isWarm: Bool { counts.allSatisfy { $0 >= warmupCount } }

    /// p(t) for t = 1…T (index t − 1) as the next draw will use it.
    public var probabilities: [Double] {
        let T = steps
        guard method == .importance, isWarm else { return [Double](repeating: 1 / Double(T), count: T) }
        let roots = meanSquare.map { ($0 + 1e-20).squareRoot() }
        let total = roots.reduce(0, +)
        return roots.map { $0 / total }
    }

    /// Draws `count` times in 1…T and returns them with their weights 1/(T·p(t)).
    public func draw(count: Int, using rng: inout RandomGenerator) -> (t: [Int], weights: [Double]) {
        let T = steps
        if method == .uniform || !isWarm {
            return ((0..<count).map { _ in 1 + rng.int(below: T) }, [Double](repeating: 1, count: count))
        }
        let p = probabilities
        var cumulative = [Double](repeating: 0, count: T)
        var s = 0.0
        for i in 0..<T { s += p[i]; cumulative[i] = s }
        var t: [Int] = [], w: [Double] = []
        for _ in 0..<count {
            let u = rng.uniformDouble() * s
            var lo = 0, hi = T - 1
            while lo < hi {                       // first i with cumulative[i] > u
                let mid = (lo + hi) / 2
                if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
            }
            t.append(lo + 1)
            w.append(1 / (Double(T) * p[lo]))
        }
        return (t, w)
    }

    /// Records the loss L_t of one batch element at time t.
    public mutating func record(t: Int, loss: Double) {
        precondition(t >= 1 && t <= steps, "DiffusionTimeSampler: time \(t) outside 1…\(steps)")
        guard loss.isFinite else { return }
        let i = t - 1
        counts[i] += 1
        let rate = 1 / Double(min(counts[i], warmupCount))
        meanSquare[i] += rate * (loss * loss - meanSquare[i])
    }

    /// The history as JSON (for checkpoint metadata); numbers round-trip exactly.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public static func fromJSON(_ text: String) throws -> DiffusionTimeSampler {
        try JSONDecoder().decode(DiffusionTimeSampler.self, from: Data(text.utf8))
    }

    /// sqrt(E[L_t²]) averaged over `buckets` equal ranges of t (early to late), for logging.
    public func rootMeanSquareSummary(buckets: Int) -> [Double] {
        let T = steps
        let n = max(1, min(buckets, T))
        return (0..<n).map { b in
            let lo = b * T / n, hi = (b + 1) * T / n
            let seen = (lo..<hi).filter { counts[$0] > 0 }
            guard !seen.isEmpty else { return .nan }
            return seen.map { meanSquare[$0].squareRoot() }.reduce(0, +) / Double(seen.count)
        }
    }
}
