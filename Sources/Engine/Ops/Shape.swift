import Foundation

// Shape ops: reshape (a view sharing storage), transpose/permute (strided copies), slice, concat,
// squeeze and unsqueeze.

extension Tensor {
    /// The same values under a new shape; shares storage. At most one dimension may be −1 (inferred).
    public func reshape(_ newShape: [Int]) -> Tensor {
        var target = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        precondition(inferred.count <= 1, "reshape: at most one −1 allowed, got \(newShape) for shape \(shape)")
        if let i = inferred.first {
            let known = newShape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0,
                         "reshape: cannot infer −1 in \(newShape) for shape \(shape) (\(count) values)")
            target[i] = count / known
        }
        precondition(target.allSatisfy { $0 >= 0 } && Tensor.elementCount(target) == count,
                     "reshape: shape \(shape) (\(count) values) cannot become \(newShape)")
        let out = Tensor(shape: target, storage: storage)
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                ElementwiseParallel.forEachChunk(gx.count) { r in for i in r { d[i] += g[i] } }
            }
        }
    }

    /// Inserts a dimension of size 1 at `axis` (0…rank; negative counts from the end of the result).
    public func unsqueeze(_ axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "unsqueeze: axis \(axis) out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: a)
        return reshape(s)
    }

    /// Removes the dimension `axis`, which must have size 1.
    public func squeeze(_ axis: Int) -> Tensor {
        let a = normalizedAxis(axis)
        precondition(shape[a] == 1, "squeeze: dimension \(axis) of shape \(shape) is not 1")
        var s = shape
        s.remove(at: a)
        return reshape(s)
    }

    /// Swaps two dimensions (a copy).
    public func transpose(_ a: Int, _ b: Int) -> Tensor {
        var axes = Array(0..<rank)
        axes.swapAt(normalizedAxis(a), normalizedAxis(b))
        return permute(axes)
    }

    /// Reorders dimensions: output dimension i is input dimension `axes[i]` (a copy).
    public func permute(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank),
                     "permute: \(axes) is not a permutation of the dimensions of shape \(shape)")
        if axes == Array(0..<rank) { return self }
        let outShape = axes.map { shape[$0] }
        let out = Tensor(uninitializedShape: outShape)
        permuteCopy(from: pointer, shape: shape, axes: axes, to: out.pointer, accumulate: false)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                permuteCopy(from: g, shape: outShape, axes: inverse, to: gx.baseAddress!, accumulate: true)
            }
        }
    }

    /// Elements start..<end along `axis` (a copy).
    public func slice(axis: Int, start: Int, end: Int) -> Tensor {
        let a = normalizedAxis(axis)
        precondition(0 <= start && start <= end && end <= shape[a],
                     "slice: range \(start)..<\(end) out of bounds for dimension \(axis) of shape \(shape)")
        let outer = shape[..<a].reduce(1, *)
        let inner = shape[(a + 1)...].reduce(1, *)
        let (n, m) = (shape[a], end - start)
        var outShape = shape
        outShape[a] = m
        let out = Tensor(uninitializedShape: outShape)
        let (px, po) = (pointer, out.pointer)
        for o in 0..<outer {
            (po + o * m * inner).update(from: px + (o * n + start) * inner, count: m * inner)
        }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                for o in 0..<outer {
                    let dst = d + (o * n + start) * inner, src = g + o * m * inner
                    for k in 0..<(m * inner) { dst[k] += src[k] }
                }
            }
        }
    }
}

/// Joins tensors along `axis`; all other dimensions must agree.
public func concat(_ xs: [Tensor], axis: Int) -> Tensor {
    precondition(!xs.isEmpty, "concat: no tensors given")
    let first = xs[0]
    let a = first.normalizedAxis(axis)
    for x in xs {
        var s = x.shape, f = first.shape
        precondition(s.count == f.count, "concat: shapes \(f) and \(x.shape) differ in rank")
        s[a] = 0; f[a] = 0
        precondition(s == f, "concat along \(axis): shapes \(first.shape) and \(x.shape) differ off that axis")
    }
    let outer = first.shape[..<a].reduce(1, *)
    let inner = first.shape[(a + 1)...].reduce(1, *)
    let sizes = xs.map { $0.shape[a] }
    let total = sizes.reduce(0, +)
    var outShape = first.shape
    outShape[a] = total
    let out = Tensor(uninitializedShape: outShape)
    let po = out.pointer
    var offset = 0
    for (x, m) in zip(xs, sizes) {
        let px = x.pointer
        for o in 0..<outer {
            (po + (o * total + offset) * inner).update(from: px + o * m * inner, count: m * inner)
        }
        offset += m
    }
    return out.recordOp(inputs: xs) { out in
        let g = out.gradStorage!.pointer
        var offset = 0
        for (x, m) in zip(xs, sizes) {
            if x.requiresGrad {
                x.accumulateGrad(shape: x.shape) { gx in
                    let d = gx.baseAddress!
                    for o in 0..<outer {
                        let src = g + (o * total + offset) * inner, dst = d + o * m * inner
                        for k in 0..<(m * inner) { dst[k] += src[k] }
                    }
                }
            }
            offset += m
        }
    }
}

/// Writes (or adds, if `accumulate`) the permutation of `src` (of `shape`) into `dst`, where
/// output dimension i is input dimension `axes[i]`.
func permuteCopy(from src: UnsafePointer<Float>, shape: [Int], axes: [Int],
                 to dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let rank = shape.count
    var inStrides = [Int](repeating: 1, count: rank)
    for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
    // Output dims with their input strides, dropping size-1 dims and merging runs that are
    // contiguous in the input too.
    var dims: [Int] = [], strides: [Int] = []
    for i in 0..<rank where shape[axes[i]] != 1 {
        let (n, s) = (shape[axes[i]], inStrides[axes[i]])
        if let last = strides.last, last == s * n {
            dims[dims.count - 1] *= n
            strides[strides.count - 1] = s
        } else {
            dims.append(n); strides.append(s)
        }
    }
    let total = shape.reduce(1, *)
    if total == 0 { return }
    if dims.isEmpty { dims = [1]; strides = [1] }
    if dims.count >= 2, strides[dims.count - 2] == 1, strides[dims.count - 1] == dims[dims.count - 2] {
        batchedTransposeCopy(from: src, dims: dims, strides: strides, to: dst, accumulate: accumulate)
        return
    }
    let inner = dims[dims.count - 1], innerStride = strides[strides.count - 1]
    let outer = dims.count - 1
    var index = [Int](repeating: 0, count: Swift.max(outer, 1))
    var offset = 0
    for r in 0..<(total / inner) {
        let o = dst + r * inner, s = src + offset
        switch (innerStride, accumulate) {
        case (1, false): o.update(from: s, count: inner)
        case (1, true): for k in 0..<inner { o[k] += s[k] }
        case (_, false): for k in 0..<inner { o[k] = s[k * innerStride] }
        case (_, true): for k in 0..<inner { o[k] += s[k * innerStride] }
        }
        advanceOdometer(&index, &offset, dims: dims, strides: strides, axes: outer)
    }
}

/// The permutation case where each batch entry is a 2-D transpose: output (…, P, Q) from input
/// (…, Q, P). Copies in square tiles so reads and writes both stay within cache lines.
private func batchedTransposeCopy(from src: UnsafePointer<Float>, dims: [Int], strides: [Int],
                                  to dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let (P, Q) = (dims[dims.count - 2], dims[dims.count - 1])
    let batchDims = Array(dims.dropLast(2)), batchStrides = Array(strides.dropLast(2))
    let tile = 32
    var index = [Int](repeating: 0, count: batchDims.count)
    var offset = 0
    for b in 0..<batchDims.reduce(1, *) {
        let s = src + offset, o = dst + b * P * Q
        for p0 in stride(from: 0, to: P, by: tile) {
            let p1 = Swift.min(p0 + tile, P)
            for q0 in stride(from: 0, to: Q, by: tile) {
                let q1 = Swift.min(q0 + tile, Q)
                for p in p0..<p1 {
                    let row = o + p * Q
                    if accumulate {
                        for q in q0..<q1 { row[q] += s[q * P + p] }
                    } else {
                        for q in q0..<q1 { row[q] = s[q * P + p] }
                    }
                }
            }
        }
        advanceOdometer(&index, &offset, dims: batchDims, strides: batchStrides, axes: batchDims.count)
    }
}

/// Steps a multi-index over the first `axes` dimensions by one in row-major order (the last of
/// them fastest), keeping `offset` = Σ index[d]·strides[d].
@inline(__always)
private func advanceOdometer(_ index: inout [Int], _ offset: inout Int, dims: [Int], strides: [Int], axes: Int) {
    var d = axes - 1
    while d >= 0 {
        index[d] += 1
        offset += strides[d]
        if index[d] < dims[d] { return }
        offset -= strides[d] * dims[d]
        index[d] = 0
        d -= 1
    }
}
