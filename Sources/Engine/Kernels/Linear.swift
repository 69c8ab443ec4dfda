/// Fully connected layer with a fused activation: y = f(x·Wᵀ + b), one autograd node.
///
/// Weights are stored [out, in] (as in PyTorch and safetensors checkpoints). Forward saves the
/// pre-activation z = x·Wᵀ + b when f needs it for its derivative (GELU, SiLU); ReLU reads its own
/// output, and `.none` saves nothing.

/// Elementwise loops are split over the workers in parts of at least this many elements.
let elementwiseGrain = 1 << 15

/// z = x·Wᵀ (+ b), then out = f(z). `preact` receives z when non-nil (it may equal `out` only for
/// `.none`).
///
/// - x: (N, IN), weight: (OUT, IN), bias: (OUT) or nil, out: (N, OUT), preact: (N, OUT) or nil.
public func linearForward(out: UnsafeMutablePointer<Float>, preact: UnsafeMutablePointer<Float>?,
                          x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          activation: Activation, N: Int, IN: Int, OUT: Int) {
    let z = preact ?? out
    BLAS.gemm(transB: true, m: N, n: OUT, k: IN, a: x, lda: IN, b: weight, ldb: IN, c: z, ldc: OUT)
    guard bias != nil || activation != .none || preact != nil else { return }
    // One parallel pass over the rows: z += b, out = f(z).
    Parallel.chunks(N, minimumPerChunk: max(1, elementwiseGrain / max(OUT, 1))) { _, rows in
        for r in rows {
            let zr = z + r * OUT
            if let bias { for j in 0..<OUT { zr[j] += bias[j] } }
            ActivationKernel.forward(activation, out: out + r * OUT, z: zr, n: OUT)
        }
    }
}

/// Backward of `linearForward`: dz = dy·f′(z) goes into `dzScratch` (N, OUT; unused, and may be
/// nil, for `.none`, where dz is dy itself); then dx (+)= dz·W, dW (+)= dzᵀ·x, db += Σ_rows dz.
///
/// `preact` is z (for GELU and SiLU); `out` is f(z) (for ReLU). Each gradient pointer may be nil
/// when not needed; `dxBeta`/`dweightBeta` are 0 to overwrite or 1 to accumulate.
public func linearBackward(dx: UnsafeMutablePointer<Float>?, dxBeta: Float,
                           dweight: UnsafeMutablePointer<Float>?, dweightBeta: Float,
                           dbias: UnsafeMutablePointer<Float>?,
                           dy: UnsafePointer<Float>, dzScratch: UnsafeMutablePointer<Float>?,
                           preact: UnsafePointer<Float>?, out: UnsafePointer<Float>,
                           x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           activation: Activation, N: Int, IN: Int, OUT: Int) {
    var dz = dy
    if activation != .none {
        guard let dzScratch else { preconditionFailure("linearBackward: \(activation) needs a dz scratch buffer") }
        let z = activation == .relu ? out : preact!
        Parallel.chunks(N * OUT, minimumPerChunk: elementwiseGrain) { _, range in
            let i = range.lowerBound
            ActivationKernel.backward(activation, dz: dzScratch + i, dy: dy + i, z: z + i, n: range.count)
        }
        dz = UnsafePointer(dzScratch)
    }
    if let dx {       // (N, IN) = (N, OUT)·(OUT, IN)
        BLAS.gemm(m: N, n: IN, k: OUT, a: dz, lda: OUT, b: weight, ldb: IN, beta: dxBeta, c: dx, ldc: IN)
    }
    if let dweight {  // (OUT, IN) = (N, OUT)ᵀ·(N, IN)
        BLAS.gemm(transA: true, m: OUT, n: IN, k: N, a: dz, lda: OUT, b: x, ldb: IN,
                  beta: dweightBeta, c: dweight, ldc: IN)
    }
    if let dbias {   // each worker sums a block of columns over all rows
        Parallel.chunks(OUT, minimumPerChunk: max(16, elementwiseGrain / max(N, 1))) { _, columns in
            let (j0, width) = (columns.lowerBound, columns.count)
            for r in 0..<N {
                let row = dz + r * OUT + j0
                for j in 0..<width { dbias[j0 + j] += row[j] }
            }
        }
    }
}

/// y = f(x·Wᵀ + b) over the last axis of x.
///
/// - x: (..., IN), weight: (OUT, IN), bias: (OUT) or nil. Returns (..., OUT).
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, activation: Activation = .none) -> Tensor {
    precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
                 "linear: input \(x.shape) does not match weight \(weight.shape) (expected [..., in] and [out, in])")
    let (IN, OUT) = (weight.shape[1], weight.shape[0])
    if let bias {
        precondition(bias.shape == [OUT], "linear: bias \(bias.shape) does not match weight \(weight.shape)")
    }
    let N = x.count / max(IN, 1)
    var outShape = x.shape
    outShape[outShape.count - 1] = OUT
    let out = Tensor(uninitializedShape: outShape)

    let needsGraph = Autograd.isEnabled && (x.requiresGrad || weight.requiresGrad || (bias?.requiresGrad ?? false))
    // The pre-activation is kept only when backward will need it.
    let keepPreact = needsGraph && (activation == .gelu || activation == .geluErf || activation == .silu)
    let preact: Storage? = keepPreact ? Storage(uninitializedCount: N * OUT) : nil
    linearForward(out: out.pointer, preact: preact?.pointer, x: x.pointer, weight: weight.pointer,
                  bias: bias?.pointer, activation: activation, N: N, IN: IN, OUT: OUT)
    guard needsGraph else { return out }

    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return out.recordOp(inputs: inputs) { out in
        let dy = out.gradStorage!.pointer
        let dzScratch: Storage? = activation == .none ? nil : ScratchPool.shared.take(N * OUT)
        defer { if let dzScratch { ScratchPool.shared.give(dzScratch) } }
        var dx: (pointer: UnsafeMutablePointer<Float>, beta: Float)? = nil
        var dw: (pointer: UnsafeMutablePointer<Float>, beta: Float)? = nil
        if x.requiresGrad { dx = x.gradForOverwriteOrAdd() }
        // x and weight may be one tensor (x·xᵀ): then the second gradient must add to the first.
        if weight.requiresGrad { dw = weight === x ? (x.gradStorage!.pointer, 1) : weight.gradForOverwriteOrAdd() }
        let db: UnsafeMutablePointer<Float>? = (bias?.requiresGrad ?? false) ? bias!.gradAccumulationPointer() : nil
        linearBackward(dx: dx?.pointer, dxBeta: dx?.beta ?? 0, dweight: dw?.pointer, dweightBeta: dw?.beta ?? 0,
                       dbias: db, dy: dy, dzScratch: dzScratch?.pointer, preact: preact.map { UnsafePointer($0.pointer) },
                       out: out.pointer, x: x.pointer, weight: weight.pointer,
                       activation: activation, N: N, IN: IN, OUT: OUT)
    }
}
