import Foundation

// Softmax and log-softmax over the last axis, each one node. Rows are shifted by their maximum,
// so inputs of any magnitude are safe; a row that is entirely −∞ gives NaN-free zeros
// (softmax) or −∞ (log-softmax).

extension Tensor {
    /// Rows (rows, C) over the last axis.
    private var lastAxisRows: (rows: Int, C: Int) {
        precondition(rank >= 1, "softmax over the last axis needs rank ≥ 1, got shape \(shape)")
        let C = shape[rank - 1]
        return (C == 0 ? 0 : count / C, C)
    }

    /// exp(x − logsumexp(x)) over the last axis.
    public func softmax() -> Tensor {
        let (rows, C) = lastAxisRows
        let out = Tensor(uninitializedShape: shape)
        let (px, py) = (pointer, out.pointer)
        forEachRowChunk(rows: rows, C: C) { r in
            for row in r {
                let x = px + row * C, y = py + row * C
                let m = FastMath.max(x, C)
                if m == -.infinity { for j in 0..<C { y[j] = 0 }; continue }
                let inv = 1 / RowMath.expShifted(x, shift: m, into: y, C)
                for j in 0..<C { y[j] *= inv }
            }
        }
        return out.recordOp(inputs: [self]) { out in
            // dx = y ⊙ (g − Σ g·y)
            let (g, y) = (out.gradStorage!.pointer, out.pointer)
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                self.forEachRowChunk(rows: rows, C: C) { r in
                    for row in r {
                        let (gr, yr, dr) = (g + row * C, y + row * C, d + row * C)
                        let dot = FastMath.dot(gr, yr, C)
                        for j in 0..<C { dr[j] += yr[j] * (gr[j] - dot) }
                    }
                }
            }
        }
    }

    /// x − logsumexp(x) over the last axis.
    public func logSoftmax() -> Tensor {
        let (rows, C) = lastAxisRows
        let out = Tensor(uninitializedShape: shape)
        let (px, py) = (pointer, out.pointer)
        forEachRowChunk(rows: rows, C: C) { r in
            for row in r {
                let x = px + row * C, y = py + row * C
                let m = FastMath.max(x, C)
                if m == -.infinity { for j in 0..<C { y[j] = -.infinity }; continue }
                // The row of y holds e^(x − m) until it is overwritten with the result.
                let lse = m + Foundation.log(RowMath.expShifted(x, shift: m, into: y, C))
                for j in 0..<C { y[j] = x[j] - lse }
            }
        }
        return out.recordOp(inputs: [self]) { out in
            // dx = g − softmax · Σ g
            let (g, y) = (out.gradStorage!.pointer, out.pointer)
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                self.forEachRowChunk(rows: rows, C: C) { r in
                    for row in r {
                        let (gr, yr, dr) = (g + row * C, y + row * C, d + row * C)
                        let s = FastMath.sum(gr, C)
                        for j in 0..<C { dr[j] += gr[j] - vectorExp(yr[j]) * s }
                    }
                }
            }
        }
    }

    /// Runs `body` over ranges of rows, concurrently when the tensor is large.
    @inline(__always)
    fileprivate func forEachRowChunk(rows: Int, C: Int, _ body: (Range<Int>) -> Void) {
        let threads = rows * C >= ElementwiseParallel.threshold && rows > 1 ? Parallel.workers : 1
        if threads <= 1 { body(0..<rows); return }
        let chunk = (rows + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { c in
            let lo = c * chunk, hi = Swift.min(rows, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }
}
