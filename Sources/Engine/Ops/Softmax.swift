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
        lastAxisRowOp(forward: { x, y, C in
            let m = FastMath.max(x, C)
            if m == -.infinity { for j in 0..<C { y[j] = 0 }; return }
            let inv = 1 / RowMath.expShifted(x, shift: m, into: y, C)
            for j in 0..<C { y[j] *= inv }
        }, backward: { g, y, d, C in
            // dx = y ⊙ (g − Σ g·y)
            let dot = FastMath.dot(g, y, C)
            for j in 0..<C { d[j] += y[j] * (g[j] - dot) }
        })
    }

    /// x − logsumexp(x) over the last axis.
    public func logSoftmax() -> Tensor {
        lastAxisRowOp(forward: { x, y, C in
            let m = FastMath.max(x, C)
            if m == -.infinity { for j in 0..<C { y[j] = -.infinity }; return }
            // The row of y holds e^(x − m) until it is overwritten with the result.
            let lse = m + Foundation.log(RowMath.expShifted(x, shift: m, into: y, C))
            for j in 0..<C { y[j] = x[j] - lse }
        }, backward: { g, y, d, C in
            // dx = g − softmax · Σ g
            let s = FastMath.sum(g, C)
            for j in 0..<C { d[j] += g[j] - vectorExp(y[j]) * s }
        })
    }

    /// One node that maps every row of the last axis on its own: `forward(x, y, C)` writes the
    /// output row y from the input row x; `backward(g, y, dx, C)` adds the row's input gradient to
    /// dx from the output gradient g and the output y.
    @inline(__always)
    private func lastAxisRowOp(
        forward: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
        backward: @escaping (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        let (rows, C) = lastAxisRows
        let out = Tensor(uninitializedShape: shape)
        let (px, py) = (pointer, out.pointer)
        forEachRowChunk(rows: rows, C: C) { r in
            for row in r { forward(px + row * C, py + row * C, C) }
        }
        return out.recordOp(inputs: [self]) { out in
            let (g, y) = (out.gradStorage!.pointer, out.pointer)
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                self.forEachRowChunk(rows: rows, C: C) { r in
                    for row in r { backward(g + row * C, y + row * C, d + row * C, C) }
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
