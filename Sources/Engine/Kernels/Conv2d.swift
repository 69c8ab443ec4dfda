/// 2-D convolution (cross-correlation, as in PyTorch) by im2col + GEMM, one autograd node.
///
/// For a group of g images, im2col lays the receptive fields out as columns,
/// col (K, g·P) with K = C·kh·kw and P = Ho·Wo, and the convolution is one GEMM
/// W (O, K) · col → (O, g·P). Images are grouped until a GEMM has about `groupColumns` columns
/// (small feature maps), and the images are split over the workers, each with its own im2col
/// buffer from the scratch pool and single-threaded BLAS. Backward recomputes col rather than
/// saving it: dW += dY·colᵀ, dcol = Wᵀ·dY, then col2im adds dcol into dx.
/// A 1×1 convolution with stride 1 and no padding is a plain GEMM on the input: no im2col.
/// With the oneDNN backend (or bf16 operands) both passes run as oneDNN convolutions instead.

/// The sizes of one convolution.
public struct ConvGeometry: Hashable, Sendable {
    public var N: Int, C: Int, H: Int, W: Int      // input (N, C, H, W)
    public var O: Int, kh: Int, kw: Int            // weight (O, C, kh, kw)
    public var stride: Int, padding: Int

    public init(N: Int, C: Int, H: Int, W: Int, O: Int, kh: Int, kw: Int, stride: Int, padding: Int) {
        (self.N, self.C, self.H, self.W, self.O, self.kh, self.kw) = (N, C, H, W, O, kh, kw)
        (self.stride, self.padding) = (stride, padding)
    }

    public var Ho: Int { (H + 2 * padding - kh) / stride + 1 }
    public var Wo: Int { (W + 2 * padding - kw) / stride + 1 }
    /// Output positions per image.
    public var P: Int { Ho * Wo }
    /// Rows of col: one per (channel, kernel row, kernel column).
    public var K: Int { C * kh * kw }
    /// A 1×1, stride 1, unpadded convolution: the input image already is its col matrix.
    public var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padding == 0 }

    /// GEMM width the grouping of small images aims for.
    static let groupColumns = 1024

    /// Images per GEMM for a chunk of `images` images (always 1 for a pointwise convolution,
    /// whose GEMM reads the images in place).
    func groupSize(images: Int) -> Int {
        isPointwise ? 1 : max(1, min(images, (Self.groupColumns + P - 1) / max(P, 1)))
    }
}

/// Fills columns colOffset ..< colOffset + P of col (K, ldcol) with the receptive fields of one
/// image x (C, H, W); out-of-image positions are 0.
func im2col(_ col: UnsafeMutablePointer<Float>, ldcol: Int, colOffset: Int,
            _ x: UnsafePointer<Float>, _ g: ConvGeometry) {
    let (Ho, Wo, s, p) = (g.Ho, g.Wo, g.stride, g.padding)
    for c in 0..<g.C {
        let xc = x + c * g.H * g.W
        for ki in 0..<g.kh {
            for kj in 0..<g.kw {
                let row = col + ((c * g.kh + ki) * g.kw + kj) * ldcol + colOffset
                let (lo, hi) = validRange(kernelOffset: kj, size: g.W, outSize: Wo, stride: s, padding: p)
                for oy in 0..<Ho {
                    let dst = row + oy * Wo
                    let iy = oy * s - p + ki
                    if iy < 0 || iy >= g.H || lo >= hi {
                        dst.update(repeating: 0, count: Wo)
                        continue
                    }
                    let src = xc + iy * g.W - p + kj       // src[ox·s] is x[c, iy, ox·s − p + kj]
                    if lo > 0 { dst.update(repeating: 0, count: lo) }
                    if s == 1 {
                        (dst + lo).update(from: src + lo, count: hi - lo)
                    } else {
                        for ox in lo..<hi { dst[ox] = src[ox * s] }
                    }
                    if hi < Wo { (dst + hi).update(repeating: 0, count: Wo - hi) }
                }
            }
        }
    }
}

/// Adds columns colOffset ..< colOffset + P of dcol (K, ldcol) back into one image's dx (C, H, W).
func col2im(_ dx: UnsafeMutablePointer<Float>, _ dcol: UnsafePointer<Float>, ldcol: Int, colOffset: Int,
            _ g: ConvGeometry) {
    let (Ho, Wo, s, p) = (g.Ho, g.Wo, g.stride, g.padding)
    for c in 0..<g.C {
        let dxc = dx + c * g.H * g.W
        for ki in 0..<g.kh {
            for kj in 0..<g.kw {
                let row = dcol + ((c * g.kh + ki) * g.kw + kj) * ldcol + colOffset
                let (lo, hi) = validRange(kernelOffset: kj, size: g.W, outSize: Wo, stride: s, padding: p)
                guard lo < hi else { continue }
                for oy in 0..<Ho {
                    let iy = oy * s - p + ki
                    if iy < 0 || iy >= g.H { continue }
                    let src = row + oy * Wo
                    let dst = dxc + iy * g.W - p + kj
                    if s == 1 {
                        for ox in lo..<hi { dst[ox] += src[ox] }
                    } else {
                        for ox in lo..<hi { dst[ox * s] += src[ox] }
                    }
                }
            }
        }
    }
}

/// Output columns ox whose input column ox·stride − padding + kernelOffset lies in 0..<size.
@inline(__always)
private func validRange(kernelOffset: Int, size: Int, outSize: Int, stride: Int, padding: Int) -> (Int, Int) {
    let first = padding - kernelOffset                       // smallest ox·stride allowed
    let lo = first <= 0 ? 0 : (first + stride - 1) / stride
    let last = size - 1 + padding - kernelOffset              // largest ox·stride allowed
    let hi = last < 0 ? 0 : min(outSize, last / stride + 1)
    return (min(lo, outSize), hi)
}

/// - out: (N, O, Ho, Wo), x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O) or nil.
public func conv2dForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ g: ConvGeometry) {
    if BLAS.convolvesOnOneDNN {
        return OneDNN.convolutionForward(out: out, x: x, weight: weight, bias: bias, g, precision: BLAS.precision)
    }
    let (O, K, P, CHW) = (g.O, g.K, g.P, g.C * g.H * g.W)
    Parallel.chunks(g.N, singleThreadedBLAS: true) { _, images in
        let group = g.groupSize(images: images.count)
        let pool = ScratchPool.shared
        let col = g.isPointwise ? nil : pool.take(K * group * P)       // (K, group·P)
        let gathered = group > 1 ? pool.take(O * group * P) : nil      // (O, group·P)
        defer {
            if let col { pool.give(col) }
            if let gathered { pool.give(gathered) }
        }
        var n0 = images.lowerBound
        while n0 < images.upperBound {
            let gi = min(group, images.upperBound - n0)               // images in this GEMM
            let ld = gi * P
            let b: UnsafePointer<Float>
            if let col {
                for i in 0..<gi { im2col(col.pointer, ldcol: ld, colOffset: i * P, x + (n0 + i) * CHW, g) }
                b = UnsafePointer(col.pointer)
            } else {
                b = x + n0 * CHW   // pointwise: one image at a time (group is 1)
            }
            let c = gathered?.pointer ?? (out + n0 * O * P)
            BLAS.gemm(m: O, n: ld, k: K, a: weight, lda: K, b: b, ldb: ld, c: c, ldc: ld)
            for i in 0..<gi {
                for o in 0..<O {
                    let dst = out + ((n0 + i) * O + o) * P
                    if let gathered { dst.update(from: gathered.pointer + o * ld + i * P, count: P) }
                    if let bias {
                        let bo = bias[o]
                        for j in 0..<P { dst[j] += bo }
                    }
                }
            }
            n0 += gi
        }
    }
}

/// Backward of `conv2dForward`: dx += col2im(Wᵀ·dY), dweight += dY·colᵀ, dbias += Σ dY; any
/// gradient pointer may be nil. Each worker sums its images' dweight and dbias in scratch; the
/// partial sums are then added in chunk order.
public func conv2dBackward(dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                           dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                           x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ g: ConvGeometry) {
    if BLAS.convolvesOnOneDNN {
        return OneDNN.convolutionBackward(dx: dx, dweight: dweight, dbias: dbias, dout: dout, x: x, weight: weight, g,
                                          precision: BLAS.precision)
    }
    let (O, K, P, CHW) = (g.O, g.K, g.P, g.C * g.H * g.W)
    let chunkCount = Parallel.chunkCount(g.N)
    let scratch = ScratchPool.shared.take(chunkCount * (O * K + O))
    defer { ScratchPool.shared.give(scratch) }
    let partials = scratch.pointer
    partials.initialize(repeating: 0, count: chunkCount * (O * K + O))
    Parallel.chunks(g.N, count: chunkCount, singleThreadedBLAS: true) { chunk, images in
        let pw = partials + chunk * (O * K + O)     // (O, K) this chunk's dweight
        let pb = pw + O * K                         // (O) this chunk's dbias
        let group = g.groupSize(images: images.count)
        let pool = ScratchPool.shared
        let col = g.isPointwise ? nil : pool.take(K * group * P)       // (K, group·P): col, then dcol
        let gathered = group > 1 ? pool.take(O * group * P) : nil      // (O, group·P) dY of the group
        defer {
            if let col { pool.give(col) }
            if let gathered { pool.give(gathered) }
        }
        var n0 = images.lowerBound
        while n0 < images.upperBound {
            let gi = min(group, images.upperBound - n0)
            let ld = gi * P
            // dY of the group as (O, gi·P).
            let dy: UnsafePointer<Float>
            if let gathered {
                for i in 0..<gi {
                    for o in 0..<O {
                        (gathered.pointer + o * ld + i * P).update(from: dout + ((n0 + i) * O + o) * P, count: P)
                    }
                }
                dy = UnsafePointer(gathered.pointer)
            } else {
                dy = dout + n0 * O * P
            }
            if dbias != nil {
                for o in 0..<O { pb[o] += FastMath.sum(dy + o * ld, ld) }
            }
            if let col {
                if dweight != nil {
                    for i in 0..<gi { im2col(col.pointer, ldcol: ld, colOffset: i * P, x + (n0 + i) * CHW, g) }
                    BLAS.gemm(transB: true, m: O, n: K, k: ld, a: dy, lda: ld, b: col.pointer, ldb: ld,
                              beta: 1, c: pw, ldc: K)
                }
                if let dx {
                    BLAS.gemm(transA: true, m: K, n: ld, k: O, a: weight, lda: K, b: dy, ldb: ld, c: col.pointer, ldc: ld)
                    for i in 0..<gi { col2im(dx + (n0 + i) * CHW, col.pointer, ldcol: ld, colOffset: i * P, g) }
                }
            } else {
                // Pointwise: col is the image itself (C = K, P = H·W).
                if dweight != nil {
                    BLAS.gemm(transB: true, m: O, n: K, k: P, a: dy, lda: P, b: x + n0 * CHW, ldb: P,
                              beta: 1, c: pw, ldc: K)
                }
                if let dx {
                    BLAS.gemm(transA: true, m: K, n: P, k: O, a: weight, lda: K, b: dy, ldb: P,
                              beta: 1, c: dx + n0 * CHW, ldc: P)
                }
            }
            n0 += gi
        }
    }
    for chunk in 0..<chunkCount {
        let pw = partials + chunk * (O * K + O), pb = pw + O * K
        if let dweight { for j in 0..<(O * K) { dweight[j] += pw[j] } }
        if let dbias { for o in 0..<O { dbias[o] += pb[o] } }
    }
}

/// Convolution of x (N, C, H, W) with weight (O, C, kh, kw) and optional bias (O);
/// returns (N, O, Ho, Wo) with Ho = (H + 2·padding − kh)/stride + 1 (likewise Wo).
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1],
                 "conv2d: input \(x.shape) and weight \(weight.shape) must be [N, C, H, W] and [O, C, kh, kw]")
    precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
    let g = ConvGeometry(N: x.shape[0], C: x.shape[1], H: x.shape[2], W: x.shape[3],
                         O: weight.shape[0], kh: weight.shape[2], kw: weight.shape[3], stride: stride, padding: padding)
    precondition(g.H + 2 * padding >= g.kh && g.W + 2 * padding >= g.kw,
                 "conv2d: kernel \(weight.shape) is larger than the padded input \(x.shape) (padding \(padding))")
    if let bias { precondition(bias.shape == [g.O], "conv2d: bias \(bias.shape) does not match weight \(weight.shape)") }
    let out = Tensor(uninitializedShape: [g.N, g.O, g.Ho, g.Wo])
    conv2dForward(out: out.pointer, x: x.pointer, weight: weight.pointer, bias: bias?.pointer, g)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return out.recordOp(inputs: inputs) { out in
        let wantsBias = bias?.requiresGrad ?? false
        conv2dBackward(dx: x.requiresGrad ? x.gradAccumulationPointer() : nil,
                       dweight: weight.requiresGrad ? weight.gradAccumulationPointer() : nil,
                       dbias: wantsBias ? bias!.gradAccumulationPointer() : nil,
                       dout: out.gradStorage!.pointer, x: x.pointer, weight: weight.pointer, g)
    }
}

