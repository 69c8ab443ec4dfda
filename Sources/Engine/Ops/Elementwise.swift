import Foundation

// Binary arithmetic with NumPy-style broadcasting: a + b, a - b, a * b, a / b over tensors, and
// with a Float on either side. Each is one graph node; backward sums the gradient over the
// dimensions an input was broadcast along.

/// One elementwise binary operation: the value and its partial derivatives.
protocol BinaryKernel {
    static func value(_ a: Float, _ b: Float) -> Float
    /// ∂value/∂a times the incoming gradient `g`.
    static func gradA(_ g: Float, _ a: Float, _ b: Float) -> Float
    /// ∂value/∂b times the incoming gradient `g`.
    static func gradB(_ g: Float, _ a: Float, _ b: Float) -> Float
}

enum AddKernel: BinaryKernel {
    @inline(__always) static func value(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func gradA(_ g: Float, _ a: Float, _ b: Float) -> Float { g }
    @inline(__always) static func gradB(_ g: Float, _ a: Float, _ b: Float) -> Float { g }
}

enum SubKernel: BinaryKernel {
    @inline(__always) static func value(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) static func gradA(_ g: Float, _ a: Float, _ b: Float) -> Float { g }
    @inline(__always) static func gradB(_ g: Float, _ a: Float, _ b: Float) -> Float { -g }
}

enum MulKernel: BinaryKernel {
    @inline(__always) static func value(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func gradA(_ g: Float, _ a: Float, _ b: Float) -> Float { g * b }
    @inline(__always) static func gradB(_ g: Float, _ a: Float, _ b: Float) -> Float { g * a }
}

enum DivKernel: BinaryKernel {
    @inline(__always) static func value(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) static func gradA(_ g: Float, _ a: Float, _ b: Float) -> Float { g / b }
    @inline(__always) static func gradB(_ g: Float, _ a: Float, _ b: Float) -> Float { -g * a / (b * b) }
}

/// Forward and backward of a broadcasting binary op. `name` appears in shape errors.
func broadcastBinary<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ kernel: K.Type, _ name: String) -> Tensor {
    guard let outShape = broadcastShapes(a.shape, b.shape) else {
        preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let out = Tensor(uninitializedShape: outShape)
    let (pa, pb, po) = (a.pointer, b.pointer, out.pointer)
    if a.shape == b.shape {
        // Same shape: one flat loop, split across threads when large.
        ElementwiseParallel.forEachChunk(out.count) { r in
            for i in r { po[i] = K.value(pa[i], pb[i]) }
        }
        return out.recordOp(inputs: [a, b]) { out in
            let g = out.gradStorage!.pointer
            let n = out.count
            if a.requiresGrad {
                a.accumulateGrad(shape: a.shape) { ga in
                    let d = ga.baseAddress!
                    ElementwiseParallel.forEachChunk(n) { r in for i in r { d[i] += K.gradA(g[i], pa[i], pb[i]) } }
                }
            }
            if b.requiresGrad {
                b.accumulateGrad(shape: b.shape) { gb in
                    let d = gb.baseAddress!
                    ElementwiseParallel.forEachChunk(n) { r in for i in r { d[i] += K.gradB(g[i], pa[i], pb[i]) } }
                }
            }
        }
    }
    // General case, covering scalars, [..., C] with [C] and [B,1,C] with [B,T,C]: after
    // collapsing dimensions, each innermost row is a contiguous or a repeated value per input.
    let layout = BroadcastLayout(out: outShape, a: a.shape, b: b.shape)
    let n = layout.inner
    switch (layout.innerStrideA, layout.innerStrideB) {
    case (1, 1):
        layout.forEachRowConcurrently { o, oa, ob in for k in 0..<n { po[o + k] = K.value(pa[oa + k], pb[ob + k]) } }
    case (1, _):
        layout.forEachRowConcurrently { o, oa, ob in
            let vb = pb[ob]
            for k in 0..<n { po[o + k] = K.value(pa[oa + k], vb) }
        }
    case (_, 1):
        layout.forEachRowConcurrently { o, oa, ob in
            let va = pa[oa]
            for k in 0..<n { po[o + k] = K.value(va, pb[ob + k]) }
        }
    default:
        layout.forEachRowConcurrently { o, oa, ob in
            let v = K.value(pa[oa], pb[ob])
            for k in 0..<n { po[o + k] = v }
        }
    }
    let (shapeA, shapeB) = (a.shape, b.shape)
    return out.recordOp(inputs: [a, b]) { out in
        let g = out.gradStorage!.pointer
        let (sa, sb) = (layout.innerStrideA, layout.innerStrideB)
        if a.requiresGrad {
            a.accumulateGrad(shape: shapeA) { ga in
                let d = ga.baseAddress!
                func row(_ o: Int, _ oa: Int, _ ob: Int) {
                    if sa == 1 && sb == 1 {
                        for k in 0..<n { d[oa + k] += K.gradA(g[o + k], pa[oa + k], pb[ob + k]) }
                    } else if sa == 1 {
                        let vb = pb[ob]
                        for k in 0..<n { d[oa + k] += K.gradA(g[o + k], pa[oa + k], vb) }
                    } else {
                        var s: Float = 0
                        for k in 0..<n { s += K.gradA(g[o + k], pa[oa], pb[ob + k * sb]) }
                        d[oa] += s
                    }
                }
                // Rows write disjoint parts of the gradient unless `a` was broadcast.
                if ga.count == out.count { layout.forEachRowConcurrently(row) } else { layout.forEachRow(row) }
            }
        }
        if b.requiresGrad {
            b.accumulateGrad(shape: shapeB) { gb in
                let d = gb.baseAddress!
                func row(_ o: Int, _ oa: Int, _ ob: Int) {
                    if sb == 1 && sa == 1 {
                        for k in 0..<n { d[ob + k] += K.gradB(g[o + k], pa[oa + k], pb[ob + k]) }
                    } else if sb == 1 {
                        let va = pa[oa]
                        for k in 0..<n { d[ob + k] += K.gradB(g[o + k], va, pb[ob + k]) }
                    } else {
                        var s: Float = 0
                        for k in 0..<n { s += K.gradB(g[o + k], pa[oa + k * sa], pb[ob]) }
                        d[ob] += s
                    }
                }
                if gb.count == out.count { layout.forEachRowConcurrently(row) } else { layout.forEachRow(row) }
            }
        }
    }
}

public func + (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, AddKernel.self, "add") }
public func - (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, SubKernel.self, "subtract") }
public func * (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, MulKernel.self, "multiply") }
public func / (a: Tensor, b: Tensor) -> Tensor { broadcastBinary(a, b, DivKernel.self, "divide") }

// Tensor ⊕ Float: affine maps y = scale·x + shift need no saved input; division by a tensor does.

extension Tensor {
    /// y = scale · x + shift, elementwise (one node).
    public func affine(scale: Float, shift: Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let (px, po) = (pointer, out.pointer)
        ElementwiseParallel.forEachChunk(count) { r in for i in r { po[i] = scale * px[i] + shift } }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                ElementwiseParallel.forEachChunk(gx.count) { r in for i in r { d[i] += scale * g[i] } }
            }
        }
    }

    /// y = s / x, elementwise.
    func reciprocal(times s: Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let (px, po) = (pointer, out.pointer)
        ElementwiseParallel.forEachChunk(count) { r in for i in r { po[i] = s / px[i] } }
        return out.recordOp(inputs: [self]) { out in
            let g = out.gradStorage!.pointer
            self.accumulateGrad(shape: self.shape) { gx in
                let d = gx.baseAddress!
                ElementwiseParallel.forEachChunk(gx.count) { r in
                    for i in r { let x = px[i]; d[i] -= g[i] * s / (x * x) }
                }
            }
        }
    }
}

public func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
public func + (s: Float, a: Tensor) -> Tensor { a.affine(scale: 1, shift: s) }
public func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
public func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }
public func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
public func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, shift: 0) }
public func / (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
public func / (s: Float, a: Tensor) -> Tensor { a.reciprocal(times: s) }
public prefix func - (a: Tensor) -> Tensor { a.affine(scale: -1, shift: 0) }
