import Foundation

// Spatial resampling on images (N, C, H, W): nearest-neighbour upsampling and average pooling.

extension Tensor {
    /// Each pixel repeated `factor`×`factor`: (N, C, H, W) → (N, C, H·f, W·f).
    /// Backward sums each f×f block.
    public func upsampleNearest(factor f: Int) -> Tensor {
        precondition(rank == 4, "upsampleNearest: expected (N, C, H, W), got shape \(shape)")
        precondition(f >= 1, "upsampleNearest: factor must be ≥ 1, got \(f) (shape \(shape))")
        if f == 1 { return self }
        let (H, W) = (shape[2], shape[3])
        let Wo = W * f
        return perPlaneOp(outputHeight: H * f, outputWidth: Wo, forward: { src, dst in
            for h in 0..<H {
                let row = dst + h * f * Wo
                for w in 0..<W {
                    let v = src[h * W + w]
                    for k in 0..<f { row[w * f + k] = v }
                }
                for r in 1..<f { (row + r * Wo).update(from: row, count: Wo) }
            }
        }, backward: { g, d in
            for h in 0..<H {
                for r in 0..<f {
                    let row = g + (h * f + r) * Wo
                    for w in 0..<W {
                        var s: Float = 0
                        for k in 0..<f { s += row[w * f + k] }
                        d[h * W + w] += s
                    }
                }
            }
        })
    }

    /// Mean over `kernel`×`kernel` windows every `stride` pixels (no padding):
    /// (N, C, H, W) → (N, C, (H − k)/s + 1, (W − k)/s + 1). `stride` defaults to `kernel`.
    public func avgPool2d(kernel k: Int, stride s: Int? = nil) -> Tensor {
        let s = s ?? k
        precondition(rank == 4, "avgPool2d: expected (N, C, H, W), got shape \(shape)")
        precondition(k >= 1 && s >= 1, "avgPool2d: kernel \(k) and stride \(s) must be ≥ 1 (shape \(shape))")
        let (H, W) = (shape[2], shape[3])
        precondition(H >= k && W >= k, "avgPool2d: kernel \(k) larger than the image of shape \(shape)")
        let (Ho, Wo) = ((H - k) / s + 1, (W - k) / s + 1)
        let scale = 1 / Float(k * k)
        return perPlaneOp(outputHeight: Ho, outputWidth: Wo, forward: { src, dst in
            for i in 0..<Ho {
                for j in 0..<Wo {
                    var acc: Float = 0
                    for u in 0..<k {
                        let row = src + (i * s + u) * W + j * s
                        for v in 0..<k { acc += row[v] }
                    }
                    dst[i * Wo + j] = acc * scale
                }
            }
        }, backward: { g, d in
            for i in 0..<Ho {
                for j in 0..<Wo {
                    let v = g[i * Wo + j] * scale
                    for u in 0..<k {
                        let row = d + (i * s + u) * W + j * s
                        for w in 0..<k { row[w] += v }
                    }
                }
            }
        })
    }

    /// One node that resamples every (H, W) plane of (N, C, H, W) on its own into (Ho, Wo):
    /// `forward(x, y)` writes an output plane from an input plane; `backward(g, dx)` adds an input
    /// plane's gradient from its output plane's gradient.
    private func perPlaneOp(
        outputHeight Ho: Int, outputWidth Wo: Int,
        forward: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
        backward: @escaping (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) -> Tensor {
        let (planes, H, W) = (shape[0] * shape[1], shape[2], shape[3])
        let out = Tensor(uninitializedShape: [shape[0], shape[1], Ho, Wo])
        let (px, po) = (pointer, out.pointer)
        for p in 0..<planes { forward(px + p * H * W, po + p * Ho * Wo) }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                for p in 0..<planes { backward(g + p * Ho * Wo, d + p * H * W) }
            }
        }
    }
}
