import Foundation

// Reductions: sum, mean, max and logsumexp, over everything or over one axis.
// An axis reduction views the input as (outer, n, inner) with n the reduced dimension.

extension Tensor {
    /// (outer, n, inner) around `axis`, and the output shape with or without the kept dimension.
    func reductionLayout(_ axis: Int, keepDims: Bool) -> (outer: Int, n: Int, inner: Int, outShape: [Int]) {
        let a = normalizedAxis(axis)
        let outer = shape[..<a].reduce(1, *)
        let inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        return (outer, shape[a], inner, outShape)
    }

    /// The sum of all elements (shape []): Float within blocks of 4096, Double across blocks.
    public func sum() -> Tensor {
        let px = pointer
        var s = 0.0
        for start in stride(from: 0, to: count, by: 4096) {
            s += Double(FastMath.sum(px + start, Swift.min(4096, count - start)))
        }
        let out = Tensor(scalar: Float(s))
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer[0]
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                ElementwiseParallel.forEachChunk(gx.count) { r in for i in r { d[i] += g } }
            }
        }
    }

    /// The mean of all elements (shape []).
    public func mean() -> Tensor {
        precondition(count > 0, "mean() of an empty tensor (shape \(shape))")
        return sum() * (1 / Float(count))
    }

    /// Sum along `axis` (negative counts from the end).
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        sumAlong(axis, keepDims: keepDims, scale: 1)
    }

    /// Mean along `axis` (negative counts from the end).
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor {
        let n = shape[normalizedAxis(axis)]
        precondition(n > 0, "mean(axis: \(axis)) over an empty dimension (shape \(shape))")
        return sumAlong(axis, keepDims: keepDims, scale: 1 / Float(n))
    }

    /// scale · Σ over `axis`, one node.
    private func sumAlong(_ axis: Int, keepDims: Bool, scale: Float) -> Tensor {
        let (outer, n, inner, outShape) = reductionLayout(axis, keepDims: keepDims)
        let out = Tensor(zeros: outShape)
        let (px, po) = (pointer, out.pointer)
        if inner == 1 {
            for o in 0..<outer { po[o] = scale * FastMath.sum(px + o * n, n) }
        } else {
            for o in 0..<outer {
                let dst = po + o * inner
                for j in 0..<n {
                    let src = px + (o * n + j) * inner
                    for k in 0..<inner { dst[k] += src[k] }
                }
                if scale != 1 { for k in 0..<inner { dst[k] *= scale } }
            }
        }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                for o in 0..<outer {
                    for j in 0..<n {
                        let dst = d + (o * n + j) * inner
                        let src = g + o * inner
                        for k in 0..<inner { dst[k] += scale * src[k] }
                    }
                }
            }
        }
    }

    /// Maximum along `axis`. The gradient flows to the first position holding the maximum.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, n, inner, outShape) = reductionLayout(axis, keepDims: keepDims)
        precondition(n > 0, "max(axis: \(axis)) over an empty dimension (shape \(shape))")
        let out = Tensor(uninitializedShape: outShape)
        let (px, po) = (pointer, out.pointer)
        var argmax = [Int32](repeating: 0, count: outer * inner)
        argmax.withUnsafeMutableBufferPointer { am in
            for o in 0..<outer {
                let dst = po + o * inner
                let idx = am.baseAddress! + o * inner
                let first = px + o * n * inner
                for k in 0..<inner { dst[k] = first[k]; idx[k] = 0 }
                for j in 1..<Swift.max(n, 1) {
                    let src = px + (o * n + j) * inner
                    for k in 0..<inner where src[k] > dst[k] { dst[k] = src[k]; idx[k] = Int32(j) }
                }
            }
        }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                for o in 0..<outer {
                    for k in 0..<inner {
                        let j = Int(argmax[o * inner + k])
                        d[(o * n + j) * inner + k] += g[o * inner + k]
                    }
                }
            }
        }
    }

    /// log Σ exp(x) along `axis`, computed stably by shifting by the maximum. Rows that are all
    /// −∞ give −∞ and a zero gradient.
    public func logSumExp(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, n, inner, outShape) = reductionLayout(axis, keepDims: keepDims)
        let out = Tensor(uninitializedShape: outShape)
        let (px, po) = (pointer, out.pointer)
        if inner == 1 {
            let scratch = Storage(uninitializedCount: n)  // e^(x − m) for one row
            for o in 0..<outer {
                let row = px + o * n
                let m = FastMath.max(row, n)
                po[o] = m == -.infinity ? m : m + Foundation.log(RowMath.expShifted(row, shift: m, into: scratch.pointer, n))
            }
        } else {
            var m = [Float](repeating: 0, count: inner)
            var s = [Float](repeating: 0, count: inner)
            for o in 0..<outer {
                for k in 0..<inner { m[k] = -.infinity; s[k] = 0 }
                for j in 0..<n {
                    let src = px + (o * n + j) * inner
                    for k in 0..<inner { m[k] = Swift.max(m[k], src[k]) }
                }
                for j in 0..<n {
                    let src = px + (o * n + j) * inner
                    for k in 0..<inner where m[k] > -.infinity { s[k] += vectorExp(src[k] - m[k]) }
                }
                for k in 0..<inner { po[o * inner + k] = m[k] == -.infinity ? m[k] : m[k] + Foundation.log(s[k]) }
            }
        }
        return out.recordOp(inputs: [self]) { out in
            let (g, y) = (out.gradStorage!.pointer, out.pointer)
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                for o in 0..<outer {
                    for j in 0..<n {
                        let base = (o * n + j) * inner
                        for k in 0..<inner {
                            let lse = y[o * inner + k]
                            if lse > -.infinity { d[base + k] += g[o * inner + k] * vectorExp(px[base + k] - lse) }
                        }
                    }
                }
            }
        }
    }
}
