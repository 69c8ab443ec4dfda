import Foundation
import Testing
@testable import Engine

extension KernelTests {
    @Suite("Kernel attention")
    struct KernelAttentionTests {
        /// Naive multi-head attention with explicit loops and softmax, in Double.
        func naive(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads H: Int, causal: Bool, mask: [Bool]?) -> [Double] {
            let (B, Lq, D) = (q.shape[0], q.shape[1], q.shape[2])
            let Lk = k.shape[1]
            let d = D / H
            var out = [Double](repeating: 0, count: B * Lq * D)
            for b in 0..<B {
                for h in 0..<H {
                    for i in 0..<Lq {
                        var scores = [Double](repeating: -.infinity, count: Lk)
                        for j in 0..<Lk {
                            if causal && j > i { continue }
                            if let mask, !mask[b * Lk + j] { continue }
                            var s = 0.0
                            for c in 0..<d {
                                s += Double(q.pointer[(b * Lq + i) * D + h * d + c]) * Double(k.pointer[(b * Lk + j) * D + h * d + c])
                            }
                            scores[j] = s / Double(d).squareRoot()
                        }
                        let mx = scores.max()!
                        guard mx > -.infinity else { continue }     // fully masked: output 0
                        let e = scores.map { exp($0 - mx) }
                        let total = e.reduce(0, +)
                        for c in 0..<d {
                            var o = 0.0
                            for j in 0..<Lk { o += e[j] / total * Double(v.pointer[(b * Lk + j) * D + h * d + c]) }
                            out[(b * Lq + i) * D + h * d + c] = o
                        }
                    }
                }
            }
            return out
        }

        func inputs(B: Int, Lq: Int, Lk: Int, D: Int, seed: UInt64) -> (Tensor, Tensor, Tensor) {
            var rng = RandomGenerator(seed: seed)
            return (Tensor.randn([B, Lq, D], using: &rng), Tensor.randn([B, Lk, D], using: &rng),
                    Tensor.randn([B, Lk, D], using: &rng))
        }

        /// Batch 0 sees its first 3 keys, batch 1 sees none (a fully masked row), batch 2 all but one.
        func paddingMask(B: Int, Lk: Int) -> [Bool] {
            (0..<(B * Lk)).map { idx in
                let (b, j) = (idx / Lk, idx % Lk)
                return b == 0 ? j < 3 : b == 1 ? false : j != 1
            }
        }

        @Test("forward matches naive attention: plain, causal, padding mask, cross (Lq ≠ Lk)",
              arguments: [(false, false, 5, 5), (true, false, 5, 5), (false, true, 5, 5), (false, true, 3, 4), (false, false, 4, 7)])
        func forward(causal: Bool, masked: Bool, Lq: Int, Lk: Int) {
            let (B, D, H) = (3, 8, 2)
            let (q, k, v) = inputs(B: B, Lq: Lq, Lk: Lk, D: D, seed: 31)
            let mask = masked ? paddingMask(B: B, Lk: Lk) : nil
            let y = attention(query: q, key: k, value: v, heads: H, causal: causal, keyPaddingMask: mask)
            #expect(y.shape == [B, Lq, D])
            let ref = naive(q, k, v, heads: H, causal: causal, mask: mask)
            let worst = (0..<y.count).map { abs(Double(y.pointer[$0]) - ref[$0]) }.max()!
            #expect(worst < 1e-5, "worst difference \(worst)")
            #expect(y.values.allSatisfy { $0.isFinite })
        }

        @Test("gradients: plain and causal self-attention", arguments: [false, true])
        func gradientsSelf(causal: Bool) {
            let (q, k, v) = inputs(B: 2, Lq: 4, Lk: 4, D: 6, seed: 32)
            let err = gradientError([q, k, v]) { attention(query: $0[0], key: $0[1], value: $0[2], heads: 3, causal: causal) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("gradients: cross-attention with Lq ≠ Lk and a key padding mask with a fully masked row")
        func gradientsMasked() {
            let (B, Lq, Lk) = (3, 2, 5)
            let (q, k, v) = inputs(B: B, Lq: Lq, Lk: Lk, D: 4, seed: 33)
            let mask = paddingMask(B: B, Lk: Lk)
            let err = gradientError([q, k, v]) {
                attention(query: $0[0], key: $0[1], value: $0[2], heads: 2, keyPaddingMask: mask)
            }
            #expect(err < 5e-3, "gradient error \(err)")
            // The fully masked batch 1: output 0 and no gradient to its queries.
            for i in (Lq * 4)..<(2 * Lq * 4) { #expect(q.grad!.pointer[i] == 0) }
        }

        @Test("a fully masked row gives zeros, never NaN, in forward and backward")
        func fullyMasked() {
            let (q, k, v) = inputs(B: 1, Lq: 3, Lk: 2, D: 4, seed: 34)
            for t in [q, k, v] { t.requiresGrad = true }
            let y = attention(query: q, key: k, value: v, heads: 2, keyPaddingMask: [false, false])
            #expect(y.values.allSatisfy { $0 == 0 })
            y.backward(seed: Tensor(shape: y.shape, repeating: 1))
            for t in [q, k, v] { #expect(t.grad!.values.allSatisfy { $0 == 0 }) }
        }

        @Test("causal: changing a later key or value never changes earlier outputs")
        func causality() {
            let (B, L, D) = (2, 6, 8)
            let (q, k, v) = inputs(B: B, Lq: L, Lk: L, D: D, seed: 35)
            let before = attention(query: q, key: k, value: v, heads: 2, causal: true)
            for t in 1..<L {
                let (k2, v2) = (k.copy(), v.copy())
                for b in 0..<B {
                    for c in 0..<D {
                        k2.pointer[(b * L + t) * D + c] += 1.5
                        v2.pointer[(b * L + t) * D + c] -= 2
                    }
                }
                let after = attention(query: q, key: k2, value: v2, heads: 2, causal: true)
                for b in 0..<B {
                    for i in 0..<L {
                        let row = (b * L + i) * D
                        let same = (0..<D).allSatisfy { after.pointer[row + $0] == before.pointer[row + $0] }
                        #expect(same == (i < t), "position \(i) after changing \(t)")
                    }
                }
            }
        }

        @Test("the same tensor as key and value gets both gradients")
        func sharedKeyValue() {
            var rng = RandomGenerator(seed: 36)
            let q = Tensor.randn([2, 3, 4], using: &rng)
            let kv = Tensor.randn([2, 5, 4], using: &rng)
            let err = gradientError([q, kv]) { attention(query: $0[0], key: $0[1], value: $0[1], heads: 2) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        /// Columns c0..<c0+D of x (B, L, W) as a new (B, L, D) tensor.
        func columns(_ x: Tensor, _ c0: Int, _ D: Int) -> Tensor {
            let (B, L, W) = (x.shape[0], x.shape[1], x.shape[2])
            let out = Tensor(zeros: [B, L, D])
            for r in 0..<(B * L) { for c in 0..<D { out.pointer[r * D + c] = x.pointer[r * W + c0 + c] } }
            return out
        }

        @Test("selfAttention on a fused (B, L, 3D) projection equals attention on its three blocks")
        func fusedSelf() {
            var rng = RandomGenerator(seed: 38)
            let (B, L, D) = (2, 5, 8)
            let qkv = Tensor.randn([B, L, 3 * D], using: &rng)
            let mask = (0..<(B * L)).map { $0 != 3 }
            let fused = selfAttention(qkv: qkv, heads: 2, causal: true, keyPaddingMask: mask)
            let split = attention(query: columns(qkv, 0, D), key: columns(qkv, D, D), value: columns(qkv, 2 * D, D),
                                  heads: 2, causal: true, keyPaddingMask: mask)
            #expect(fused.values == split.values)
            let err = gradientError([qkv]) { selfAttention(qkv: $0[0], heads: 2, causal: true, keyPaddingMask: mask) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("crossAttention on a fused (B, Lk, 2D) key/value projection matches and has correct gradients")
        func fusedCross() {
            var rng = RandomGenerator(seed: 39)
            let (B, Lq, Lk, D) = (3, 4, 5, 6)
            let q = Tensor.randn([B, Lq, D], using: &rng)
            let kv = Tensor.randn([B, Lk, 2 * D], using: &rng)
            let mask = paddingMask(B: B, Lk: Lk)
            let fused = crossAttention(query: q, keyValue: kv, heads: 3, keyPaddingMask: mask)
            let split = attention(query: q, key: columns(kv, 0, D), value: columns(kv, D, D), heads: 3, keyPaddingMask: mask)
            #expect(fused.values == split.values)
            let err = gradientError([q, kv]) { crossAttention(query: $0[0], keyValue: $0[1], heads: 3, keyPaddingMask: mask) }
            #expect(err < 5e-3, "gradient error \(err)")
        }

        @Test("many (batch, head) pairs split over workers match the naive reference")
        func manyPairs() {
            let (q, k, v) = inputs(B: 9, Lq: 7, Lk: 3, D: 12, seed: 37)
            let y = attention(query: q, key: k, value: v, heads: 3)
            let ref = naive(q, k, v, heads: 3, causal: false, mask: nil)
            let worst = (0..<y.count).map { abs(Double(y.pointer[$0]) - ref[$0]) }.max()!
            #expect(worst < 1e-5, "worst difference \(worst)")
        }
    }
}
