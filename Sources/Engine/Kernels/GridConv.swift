/// Depthwise 3×3 convolution over the token grid of a sequence, channels last, zero padding,
/// one autograd node. A sequence (B, h·w, C) in raster order is read as B grids h×w of
/// C-vectors; each channel is convolved with its own 3×3 kernel:
///
///   y[b, i, j, c] = bias[c] + Σ_{u, v ∈ −1…1} weight[(u+1)·3 + (v+1), c] · x[b, i+u, j+v, c]
///
/// with x = 0 off the grid. Channels last keeps every inner loop a contiguous run over C (the
/// transformer's layout, no transposes). Forward and the input gradient are gathers over the
/// output rows (no write conflicts between workers); the weight and bias gradients are summed per
/// chunk of rows in scratch, then added in chunk order, so for a given number of workers every run
/// gives the same bits whatever order the threads finish in.

/// The sizes of one grid convolution: B grids h×w, C channels.
public struct GridConvGeometry: Equatable, Sendable {
    public var B: Int, h: Int, w: Int, C: Int

    public init(B: Int, h: Int, w: Int, C: Int) { (self.B, self.h, self.w, self.C) = (B, h, w, C) }

    /// Grid rows over all grids: the unit of work split over workers.
    var rows: Int { B * h }
    /// Kernel taps, (u + 1)·3 + (v + 1) for the offset (u, v).
    public static let taps = 9
    /// The centre tap, (0, 0): taps before it in raster order are the row above and the left neighbour.
    public static let centreTap = 4
}

/// dst[c] += a[c]·b[c] for c in 0..<C.
@inline(__always)
private func multiplyAdd(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ C: Int) {
    for c in 0..<C { dst[c] += a[c] * b[c] }
}

/// Calls body(tap, i + u, j + v) for the taps of output (i, j) whose input lies on the grid.
@inline(__always)
private func forEachTap(i: Int, j: Int, _ g: GridConvGeometry, _ body: (Int, Int, Int) -> Void) {
    for u in -1...1 {
        let r = i + u
        if r < 0 || r >= g.h { continue }
        for v in -1...1 {
            let s = j + v
            if s < 0 || s >= g.w { continue }
            body((u + 1) * 3 + (v + 1), r, s)
        }
    }
}

/// - out, x: (B, h·w, C); weight: (9, C); bias: (C) or nil.
public func gridConvForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ g: GridConvGeometry) {
    let (h, w, C) = (g.h, g.w, g.C)
    Parallel.chunks(g.rows, minimumPerChunk: 4) { _, rows in
        for row in rows {
            let (b, i) = (row / h, row % h)
            let grid = x + b * h * w * C
            for j in 0..<w {
                let o = out + ((b * h + i) * w + j) * C
                if let bias { o.update(from: bias, count: C) } else { o.update(repeating: 0, count: C) }
                forEachTap(i: i, j: j, g) { tap, r, s in multiplyAdd(o, weight + tap * C, grid + (r * w + s) * C, C) }
            }
        }
    }
}

/// Backward of `gridConvForward`: dx[b, r, s] += Σ_taps weight[tap]·dy[b, r−u, s−v] (the gather
/// of every output that read (r, s)); dweight[tap] += Σ dy[b, i, j]·x[b, i+u, j+v];
/// dbias += Σ dy. Any gradient pointer may be nil.
public func gridConvBackward(dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                             dbias: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                             x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ g: GridConvGeometry) {
    let (h, w, C) = (g.h, g.w, g.C)
    let taps = GridConvGeometry.taps
    let wantsParameters = dweight != nil || dbias != nil
    let chunkCount = Parallel.chunkCount(g.rows, minimumPerChunk: 4)
    let partialCount = wantsParameters ? (taps + 1) * C * chunkCount : 0
    let scratch = ScratchPool.shared.take(max(partialCount, 1))
    defer { ScratchPool.shared.give(scratch) }
    let partials = scratch.pointer
    partials.initialize(repeating: 0, count: partialCount)
    Parallel.chunks(g.rows, count: chunkCount) { chunk, rows in
        let pw = partials + (taps + 1) * C * chunk    // (9, C) this chunk's dweight
        let pb = pw + taps * C                        // (C) this chunk's dbias
        for row in rows {
            let (b, i) = (row / h, row % h)
            let base = b * h * w * C
            for j in 0..<w {
                let at = base + (i * w + j) * C
                if wantsParameters {
                    for c in 0..<C { pb[c] += dy[at + c] }
                    forEachTap(i: i, j: j, g) { tap, r, s in multiplyAdd(pw + tap * C, dy + at, x + base + (r * w + s) * C, C) }
                }
                // Input (i, j) was read by output (i − u, j − v) through tap (u, v).
                if let dx {
                    forEachTap(i: i, j: j, g) { tap, r, s in
                        multiplyAdd(dx + at, weight + (taps - 1 - tap) * C, dy + base + (r * w + s) * C, C)
                    }
                }
            }
        }
    }
    guard wantsParameters else { return }
    for chunk in 0..<chunkCount {
        let pw = partials + (taps + 1) * C * chunk, pb = pw + taps * C
        if let dweight { for k in 0..<(taps * C) { dweight[k] += pw[k] } }
        if let dbias { for c in 0..<C { dbias[c] += pb[c] } }
    }
}

/// Depthwise 3×3 convolution of x (B, h·w, C), read as B grids h×w in raster order, with
/// weight (9, C) and optional bias (C); zero padding keeps the shape.
public func gridConv(_ x: Tensor, height h: Int, width w: Int, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 3 && x.shape[1] == h * w,
                 "gridConv: input \(x.shape) must be [B, \(h * w), C] for a \(h)×\(w) grid")
    let C = x.shape[2]
    precondition(weight.shape == [GridConvGeometry.taps, C], "gridConv: weight \(weight.shape) must be [9, \(C)]")
    if let bias { precondition(bias.shape == [C], "gridConv: bias \(bias.shape) must be [\(C)]") }
    let g = GridConvGeometry(B: x.shape[0], h: h, w: w, C: C)
    let out = Tensor(uninitializedShape: x.shape)
    gridConvForward(out: out.pointer, x: x.pointer, weight: weight.pointer, bias: bias?.pointer, g)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return out.recordOp(inputs: inputs) { out in
        gridConvBackward(dx: x.requiresGrad ? x.gradAccumulationPointer() : nil,
                         dweight: weight.requiresGrad ? weight.gradAccumulationPointer() : nil,
                         dbias: (bias?.requiresGrad ?? false) ? bias!.gradAccumulationPointer() : nil,
                         dy: out.gradStorage!.pointer, x: x.pointer, weight: weight.pointer, g)
    }
}
