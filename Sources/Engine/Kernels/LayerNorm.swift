/// Layer normalisation over the last axis, one autograd node:
/// y = (x − mean) · rstd · weight + bias, rstd = 1/√(var + eps), var the biased variance.
/// Forward saves the per-row mean and rstd (N floats each); backward recomputes x̂ from them.

/// - out: (N, C), mean: (N), rstd: (N), x: (N, C), weight and bias: (C) or nil (no affine).
public func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                             eps: Float, N: Int, C: Int) {
    Parallel.chunks(N, minimumPerChunk: 64) { _, rows in
        for r in rows {
            let xr = x + r * C
            let yr = out + r * C
            let m = FastMath.sum(xr, C) / Float(C)
            // Biased variance as mean(x²) − m² would cancel badly; centre first, into the output row.
            for j in 0..<C { yr[j] = xr[j] - m }
            let v = FastMath.dot(yr, yr, C) / Float(C)
            let rs = 1 / (v + eps).squareRoot()
            mean[r] = m
            rstd[r] = rs
            switch (weight, bias) {
            case let (w?, b?): for j in 0..<C { yr[j] = yr[j] * rs * w[j] + b[j] }
            case let (w?, nil): for j in 0..<C { yr[j] = yr[j] * rs * w[j] }
            case let (nil, b?): for j in 0..<C { yr[j] = yr[j] * rs + b[j] }
            case (nil, nil): for j in 0..<C { yr[j] = yr[j] * rs }
            }
        }
    }
}

/// Backward of `layerNormForward`: dx += rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·weight;
/// dweight += Σ_rows dy·x̂, dbias += Σ_rows dy. Any gradient pointer may be nil.
/// When the rows are split over workers, each chunk sums its own dweight/dbias in scratch and the
/// chunks are then added in order.
public func layerNormBackward(dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                              dbias: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                              x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                              weight: UnsafePointer<Float>?, N: Int, C: Int) {
    let chunkCount = Parallel.chunkCount(N, minimumPerChunk: 64)
    let scratch = ScratchPool.shared.take(2 * C * chunkCount + C)
    defer { ScratchPool.shared.give(scratch) }
    let partials = scratch.pointer
    partials.initialize(repeating: 0, count: 2 * C * chunkCount + C)
    // Without affine the weight is 1: point at a row of ones after the partials.
    let ones = partials + 2 * C * chunkCount
    if weight == nil { ones.initialize(repeating: 1, count: C) }
    let w = weight ?? UnsafePointer(ones)
    Parallel.chunks(N, count: chunkCount) { chunk, rows in
        let pw = partials + 2 * C * chunk     // (C) this chunk's dweight
        let pb = pw + C                       // (C) this chunk's dbias
        let rowScratch = ScratchPool.shared.take(2 * C)
        defer { ScratchPool.shared.give(rowScratch) }
        let g = rowScratch.pointer, xh = g + C   // (C) dy·weight and x̂ of the current row
        for r in rows {
            let xr = x + r * C, gr = dy + r * C
            let m = mean[r], rs = rstd[r]
            for j in 0..<C {
                xh[j] = (xr[j] - m) * rs
                g[j] = gr[j] * w[j]
                pw[j] += gr[j] * xh[j]
                pb[j] += gr[j]
            }
            guard let dx else { continue }
            let meanG = FastMath.sum(g, C) / Float(C), meanGX = FastMath.dot(g, xh, C) / Float(C)
            let dxr = dx + r * C
            for j in 0..<C { dxr[j] += rs * (g[j] - meanG - xh[j] * meanGX) }
        }
    }
    for chunk in 0..<chunkCount {
        let pw = partials + 2 * C * chunk, pb = pw + C
        if let dweight { for j in 0..<C { dweight[j] += pw[j] } }
        if let dbias { for j in 0..<C { dbias[j] += pb[j] } }
    }
}

/// Layer normalisation over the last axis of x: (..., C) → (..., C). `weight` and `bias`, each
/// (C), are the optional affine transform.
public func layerNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) -> Tensor {
    precondition(x.rank >= 1, "layerNorm: input must have at least one axis, got shape \(x.shape)")
    let C = x.shape[x.rank - 1]
    if let weight { precondition(weight.shape == [C], "layerNorm: weight \(weight.shape) does not match input \(x.shape)") }
    if let bias { precondition(bias.shape == [C], "layerNorm: bias \(bias.shape) does not match input \(x.shape)") }
    let N = x.count / max(C, 1)
    let out = Tensor(uninitializedShape: x.shape)
    let mean = Storage(uninitializedCount: N)  // (N)
    let rstd = Storage(uninitializedCount: N)  // (N)
    layerNormForward(out: out.pointer, mean: mean.pointer, rstd: rstd.pointer, x: x.pointer,
                     weight: weight?.pointer, bias: bias?.pointer, eps: eps, N: N, C: C)
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return out.recordOp(inputs: inputs) { out in
        let dy = out.gradStorage!.pointer
        let wantsWeight = weight?.requiresGrad ?? false, wantsBias = bias?.requiresGrad ?? false
        layerNormBackward(dx: x.requiresGrad ? x.gradAccumulationPointer() : nil,
                          dweight: wantsWeight ? weight!.gradAccumulationPointer() : nil,
                          dbias: wantsBias ? bias!.gradAccumulationPointer() : nil,
                          dy: dy, x: x.pointer, mean: mean.pointer, rstd: rstd.pointer,
                          weight: weight?.pointer, N: N, C: C)
    }
}
