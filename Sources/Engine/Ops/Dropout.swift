import Foundation

extension Tensor {
    /// Inverted dropout: each element is zeroed with probability `p` and the survivors are scaled
    /// by 1/(1 − p), so the expectation is unchanged. `p = 0` returns `self` and draws nothing.
    /// Whether to apply it (training) or not (evaluation) is the caller's choice of `p`.
    public func dropout(_ p: Float, using rng: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got \(p) (shape \(shape))")
        if p == 0 { return self }
        let keepScale = 1 / (1 - p)
        let mask = Storage(uninitializedCount: count)  // 0 or 1/(1 − p) per element
        let pm = mask.pointer
        // Compare 24 random bits against p·2²⁴, like `uniform() < p` without the conversion.
        let threshold = UInt64((Double(p) * 16_777_216).rounded())
        for i in 0..<count { pm[i] = (rng.next() >> 40) < threshold ? 0 : keepScale }
        let out = Tensor(uninitializedShape: shape)
        let (px, po) = (pointer, out.pointer)
        ElementwiseParallel.forEachChunk(count) { r in for i in r { po[i] = px[i] * pm[i] } }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                ElementwiseParallel.forEachChunk(gx.count) { r in for i in r { d[i] += g[i] * pm[i] } }
                withExtendedLifetime(mask) {}
            }
        }
    }
}
