import Foundation

/// NumPy-style broadcasting: shapes are aligned at the right; each pair of dimensions must be
/// equal or one of them 1. Returns nil when the shapes do not broadcast.
public func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

/// How two inputs map onto a broadcast output, with dimensions of size 1 dropped and adjacent
/// dimensions merged wherever both inputs are either contiguous or broadcast along both.
///
/// After collapsing, every dimension has size > 1 and each input's stride along it is either its
/// contiguous stride or 0 (broadcast). The innermost stride is therefore 1 or 0 for each input.
struct BroadcastLayout {
    /// Collapsed output dimensions (at least one; `[1]` for a single element).
    var dims: [Int]
    var strideA: [Int]
    var strideB: [Int]

    init(out: [Int], a: [Int], b: [Int]) {
        let rank = out.count
        func strides(_ s: [Int]) -> [Int] {
            precondition(s.count <= rank, "shape \(s) does not broadcast to \(out)")
            let padded = [Int](repeating: 1, count: rank - s.count) + s
            var st = [Int](repeating: 0, count: rank)
            var acc = 1
            for i in stride(from: rank - 1, through: 0, by: -1) {
                precondition(padded[i] == out[i] || padded[i] == 1, "shape \(s) does not broadcast to \(out)")
                st[i] = padded[i] == out[i] && out[i] != 1 ? acc : 0
                acc *= padded[i]
            }
            return st
        }
        let sa = strides(a), sb = strides(b)
        var dims: [Int] = [], stA: [Int] = [], stB: [Int] = []
        for i in 0..<rank where out[i] != 1 {
            if let last = dims.last,
               (stA.last! == 0) == (sa[i] == 0), (stB.last! == 0) == (sb[i] == 0) {
                // Mergeable: both inputs keep the same broadcast pattern across the two dims.
                dims[dims.count - 1] = last * out[i]
                stA[stA.count - 1] = sa[i]
                stB[stB.count - 1] = sb[i]
            } else {
                dims.append(out[i]); stA.append(sa[i]); stB.append(sb[i])
            }
        }
        if dims.isEmpty { dims = [1]; stA = [1]; stB = [1] }
        self.dims = dims
        strideA = stA
        strideB = stB
    }

    var inner: Int { dims[dims.count - 1] }
    var innerStrideA: Int { strideA[strideA.count - 1] }
    var innerStrideB: Int { strideB[strideB.count - 1] }

    /// Number of innermost rows.
    var rows: Int { dims.dropLast().reduce(1, *) }

    /// Calls `row(outOffset, aOffset, bOffset)` for every innermost row in `range` (all by
    /// default), in order.
    @inline(__always)
    func forEachRow(in range: Range<Int>? = nil, _ row: (Int, Int, Int) -> Void) {
        let outer = dims.count - 1
        let range = range ?? 0..<rows
        if range.isEmpty { return }
        if outer == 0 { row(0, 0, 0); return }
        // Odometer position of the first row.
        var index = [Int](repeating: 0, count: outer)
        var oa = 0, ob = 0
        var rest = range.lowerBound
        for d in stride(from: outer - 1, through: 0, by: -1) {
            index[d] = rest % dims[d]
            rest /= dims[d]
            oa += index[d] * strideA[d]
            ob += index[d] * strideB[d]
        }
        let n = inner
        for r in range {
            row(r * n, oa, ob)
            var d = outer - 1
            while d >= 0 {
                index[d] += 1
                oa += strideA[d]
                ob += strideB[d]
                if index[d] < dims[d] { break }
                oa -= strideA[d] * dims[d]
                ob -= strideB[d] * dims[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Like `forEachRow`, with the rows split across threads when the output is large.
    @inline(__always)
    func forEachRowConcurrently(_ row: (Int, Int, Int) -> Void) {
        let rows = self.rows
        let threads = rows * inner >= ElementwiseParallel.threshold && rows > 1 ? Parallel.workers : 1
        if threads <= 1 { forEachRow(row); return }
        let chunk = (rows + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { c in
            let lo = c * chunk, hi = Swift.min(rows, lo + chunk)
            if lo < hi { forEachRow(in: lo..<hi, row) }
        }
    }
}

/// Adds `g` (shape `from`) into `dst` (shape `to`, which broadcasts to `from`), summing over the
/// broadcast dimensions.
func accumulateReduced(_ g: UnsafePointer<Float>, from: [Int], into dst: UnsafeMutablePointer<Float>, to: [Int]) {
    let layout = BroadcastLayout(out: from, a: to, b: from)
    let n = layout.inner
    if layout.innerStrideA == 1 {
        layout.forEachRow { o, oa, _ in
            for k in 0..<n { dst[oa + k] += g[o + k] }
        }
    } else {
        layout.forEachRow { o, oa, _ in
            var s: Float = 0
            for k in 0..<n { s += g[o + k] }
            dst[oa] += s
        }
    }
}

extension Tensor {
    /// The values repeated along broadcast dimensions to `shape` (a copy). The gradient sums back.
    public func broadcast(to target: [Int]) -> Tensor {
        precondition(broadcastShapes(shape, target) == target,
                     "broadcast(to:): shape \(shape) does not broadcast to \(target)")
        if target == shape { return self }
        let out = Tensor(uninitializedShape: target)
        let layout = BroadcastLayout(out: target, a: shape, b: target)
        let (px, po) = (pointer, out.pointer)
        let n = layout.inner
        if layout.innerStrideA == 1 {
            layout.forEachRow { o, oa, _ in (po + o).update(from: px + oa, count: n) }
        } else {
            layout.forEachRow { o, oa, _ in (po + o).update(repeating: px[oa], count: n) }
        }
        let inShape = shape
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: inShape) { gx in
                accumulateReduced(g, from: target, into: gx.baseAddress!, to: inShape)
            }
        }
    }

    /// Same as `broadcast(to:)`.
    public func expand(_ target: [Int]) -> Tensor { broadcast(to: target) }
}

/// Splits `0..<count` into contiguous chunks run concurrently when the work is large
/// (≥ 1M elements) and more than one thread is configured; otherwise runs one chunk inline.
enum ElementwiseParallel {
    static let threshold = 1 << 20

    @inline(__always)
    static func forEachChunk(_ count: Int, _ body: (Range<Int>) -> Void) {
        let threads = count >= threshold ? Parallel.workers : 1
        if threads <= 1 { body(0..<count); return }
        let chunk = (count + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { c in
            let lo = c * chunk, hi = min(count, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }
}
