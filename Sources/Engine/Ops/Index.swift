import Foundation

// Integer indexing: embedding lookup (gather rows), take-along-last-axis, and its transpose,
// scatter-add. Indices are [Int32] and never receive gradients.

/// Rows of `table` (V, D) picked by `ids`, shaped `shape + [D]`. Backward adds each output row's
/// gradient into its table row, so repeated ids accumulate.
public func embedding(_ table: Tensor, _ ids: [Int32], shape: [Int]) -> Tensor {
    precondition(table.rank == 2, "embedding: table must be (V, D), got shape \(table.shape)")
    precondition(Tensor.elementCount(shape) == ids.count,
                 "embedding: \(ids.count) ids do not fit shape \(shape)")
    let (V, D) = (table.shape[0], table.shape[1])
    for id in ids { precondition(id >= 0 && Int(id) < V, "embedding: id \(id) out of range for table \(table.shape)") }
    let out = Tensor(uninitializedShape: shape + [D])  // (..., D)
    let (pt, po) = (table.pointer, out.pointer)
    for (r, id) in ids.enumerated() { (po + r * D).update(from: pt + Int(id) * D, count: D) }
    return out.recordOp(inputs: [table]) { out in
        let g = out.gradStorage!.pointer
        table.accumulateGrad(shape: [V, D]) { gt in
            let d = gt.baseAddress!
            for (r, id) in ids.enumerated() {
                let dst = d + Int(id) * D, src = g + r * D
                for k in 0..<D { dst[k] += src[k] }
            }
        }
    }
}

extension Tensor {
    /// Take-along-last-axis: for x (..., C) and one index per row (x.count / C of them),
    /// out[r] = x[r, indices[r]], shaped (...).
    public func gather(axis: Int = -1, indices: [Int32]) -> Tensor {
        precondition(rank >= 1 && normalizedAxis(axis) == rank - 1,
                     "gather: only the last axis is supported, got axis \(axis) for shape \(shape)")
        let C = shape[rank - 1]
        let rows = C == 0 ? 0 : count / C
        precondition(indices.count == rows, "gather: \(indices.count) indices for \(rows) rows of shape \(shape)")
        for i in indices { precondition(i >= 0 && Int(i) < C, "gather: index \(i) out of range for shape \(shape)") }
        let out = Tensor(uninitializedShape: Array(shape.dropLast()))  // (...)
        let (px, po) = (pointer, out.pointer)
        for r in 0..<rows { po[r] = px[r * C + Int(indices[r])] }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                for r in 0..<rows { gx[r * C + Int(indices[r])] += g[r] }
            }
        }
    }
}

/// The transpose of `gather`: a zero tensor of `shape` (..., C) with values[r] added at
/// [r, indices[r]]; `values` has shape (...). Backward gathers the gradient at those positions.
public func scatterAdd(into shape: [Int], axis: Int = -1, indices: [Int32], values: Tensor) -> Tensor {
    precondition(!shape.isEmpty && (axis == -1 || axis == shape.count - 1),
                 "scatterAdd: only the last axis is supported, got axis \(axis) for shape \(shape)")
    let C = shape[shape.count - 1]
    let rowShape = Array(shape.dropLast())
    precondition(values.shape == rowShape, "scatterAdd: values of shape \(values.shape) do not match rows \(rowShape) of \(shape)")
    precondition(indices.count == values.count, "scatterAdd: \(indices.count) indices for values of shape \(values.shape)")
    for i in indices { precondition(i >= 0 && Int(i) < C, "scatterAdd: index \(i) out of range for shape \(shape)") }
    let out = Tensor(zeros: shape)
    let (pv, po) = (values.pointer, out.pointer)
    for r in 0..<indices.count { po[r * C + Int(indices[r])] += pv[r] }
    return out.recordOp(inputs: [values]) { out in
        let g = out.gradStorage!.pointer
        values.accumulateGrad(shape: rowShape) { gv in
            for r in 0..<indices.count { gv[r] += g[r * C + Int(indices[r])] }
        }
    }
}
