// Decoding speed of the VQ-AR baseline: tokens per second with the key/value cache (one new
// token per step) and without it (the whole prefix recomputed at every step, as the paper's AR
// baselines did), for 8×8, 16×16 and 32×32 token grids at batch 1 and 16.
//
// The model is the `small`-sized baseline (ARModelConfiguration.matching(.small), K = 512, 384-wide
// text features of length 32) with random weights and position tables sized for the grid.
// Cached decoding is timed over the whole grid. Uncached decoding costs O(N³) attention and
// O(N²) projections, so it is timed over the first 64 tokens only (the whole grid at 8×8); the
// speed-up compares both over that same 64-token prefix. Over a whole 16×16 or 32×32 grid the
// uncached decoder is slower still (each step recomputes a longer prefix), so the speed-up of a
// full decode is larger than the one shown.
import Engine
import Experiments
import Foundation
import VQDiffusion

/// Tokens timed without the cache (and for the speed-up).
let uncachedPrefix = 64
/// Timed repetitions of each decode; the fastest counts (the machine may be shared).
let decodeRepetitions = 3

/// Runs the decoding cases whose name ("decode 8x8 batch 1", …) contains `only` (all when nil),
/// prints a table, and returns the figures.
func runDecodeBenchmarks(only: String? = nil) -> [(name: String, value: Double)] {
    let cases = [(8, 1), (8, 16), (16, 1), (16, 16), (32, 1), (32, 16)].filter { grid, batch in
        only.map { "decode \(grid)x\(grid) batch \(batch)".contains($0) } ?? true
    }
    guard !cases.isEmpty else { return [] }
    print("")
    print("AR decoding, small-sized VQ-AR (random weights, K = 512, text 32 × 384): tokens/s")
    print("cached: whole grid; uncached: first \(uncachedPrefix) tokens only; speed-up: over that same prefix; "
          + "fastest of \(decodeRepetitions)")
    print("grid    batch  params   cached tok/s  uncached tok/s  speed-up")
    var figures: [(name: String, value: Double)] = []
    for (grid, batch) in cases {
        let diffusion = DiffusionModelConfiguration.small(classes: 512, gridHeight: grid, gridWidth: grid, steps: 100,
                                                          textWidth: 384)
        var rng = RandomGenerator(seed: 7)
        let model = ARTransformer(.matching(diffusion), using: &rng)
        let text = TextFeatures(features: Tensor.randn([batch, 32, 384], using: &rng),
                                mask: [Bool](repeating: true, count: batch * 32))
        let decoder = ARDecoder(model: model)
        let N = grid * grid
        let prefix = min(N, uncachedPrefix)
        _ = decoder.decode(text: text, options: ARSamplingOptions(), steps: 4, using: &rng)   // warm-up

        // Cached: the whole grid, noting when the prefix is done.
        var (cachedSeconds, prefixSeconds, uncachedSeconds) = (Double.infinity, Double.infinity, Double.infinity)
        for _ in 0..<decodeRepetitions {
            let start = Date()
            var prefixDone = 0.0
            _ = decoder.decode(text: text, options: ARSamplingOptions(useCache: true), using: &rng) { n, _ in
                if n == prefix - 1 { prefixDone = Date().timeIntervalSince(start) }
            }
            cachedSeconds = min(cachedSeconds, Date().timeIntervalSince(start))
            prefixSeconds = min(prefixSeconds, prefixDone)
        }
        for _ in 0..<decodeRepetitions {
            let start = Date()
            _ = decoder.decode(text: text, options: ARSamplingOptions(useCache: false), steps: prefix, using: &rng)
            uncachedSeconds = min(uncachedSeconds, Date().timeIntervalSince(start))
        }
        let cached = Double(batch * N) / cachedSeconds
        let cachedPrefix = Double(batch * prefix) / prefixSeconds
        let uncached = Double(batch * prefix) / uncachedSeconds
        let speedUp = cachedPrefix / uncached

        let name = "decode \(grid)x\(grid) batch \(batch)"
        print("\(grid)×\(grid)".padding(toLength: 7, withPad: " ", startingAt: 0)
              + String(format: " %5d  %5.2fM  %13.1f  %14.1f  %7.1f×", batch,
                     Double(model.parameterCount) / 1e6, cached, uncached, speedUp))
        figures += [(name + " cached tok/s", cached), (name + " uncached tok/s (first \(prefix))", uncached),
                    (name + " speed-up (first \(prefix))", speedUp)]
    }
    return figures
}
