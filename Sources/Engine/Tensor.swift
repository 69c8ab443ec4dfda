import Foundation

/// A Float32 tensor: contiguous row-major values with a shape, and optionally a gradient.
///
/// Ops build a fresh output and, when grad mode is on and an input requires a gradient, attach a
/// backward closure (a `GradNode`) that adds into the inputs' gradients. `backward()` sorts the
/// graph once, iteratively, and runs the closures in reverse topological order.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let storage: Storage
    /// The gradient, allocated (zeroed) on first accumulation.
    public internal(set) var gradStorage: Storage?
    /// Whether gradients flow into this tensor. Set it on parameters; ops set it on their outputs.
    public var requiresGrad: Bool
    /// How this tensor was computed; nil for leaves and for anything made in no-grad mode.
    public internal(set) var gradNode: GradNode?
    /// Optional name, used in error messages and checkpoints.
    public var name: String?

    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        let n = Tensor.elementCount(shape)
        precondition(storage.count == n, "storage of \(storage.count) values does not fit shape \(shape) (\(n) values)")
        self.shape = shape
        self.count = n
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// Zeros of the given shape.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, storage: Storage(count: Tensor.elementCount(shape)), requiresGrad: requiresGrad)
    }

    /// Every element set to `value`.
    public convenience init(shape: [Int], repeating value: Float, requiresGrad: Bool = false) {
        self.init(shape: shape, storage: Storage(count: Tensor.elementCount(shape), repeating: value), requiresGrad: requiresGrad)
    }

    /// Values in row-major order.
    public convenience init(shape: [Int], values: [Float], requiresGrad: Bool = false) {
        precondition(values.count == Tensor.elementCount(shape),
                     "\(values.count) values do not fit shape \(shape)")
        self.init(shape: shape, storage: Storage(values), requiresGrad: requiresGrad)
    }

    /// Uninitialised output of an op; the op must write every element.
    public convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: Storage(uninitializedCount: Tensor.elementCount(shape)))
    }

    /// A scalar (shape []).
    public convenience init(scalar value: Float, requiresGrad: Bool = false) {
        self.init(shape: [], values: [value], requiresGrad: requiresGrad)
    }

    @inline(__always)
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "negative dimension in shape \(shape)")
            n *= d
        }
        return n
    }

    public var rank: Int { shape.count }
    public var values: [Float] { Array(storage.buffer) }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var buffer: UnsafeMutableBufferPointer<Float> { storage.buffer }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a tensor with one element, got shape \(shape)")
        return storage.pointer[0]
    }

    /// The gradient as a tensor of the same shape (no graph), or nil if none has been accumulated.
    public var grad: Tensor? {
        guard let g = gradStorage else { return nil }
        return Tensor(shape: shape, storage: g)
    }

    public func zeroGrad() { gradStorage = nil }

    /// The same values with no graph and no gradient (shares storage).
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// A deep copy of the values (no graph).
    public func copy() -> Tensor { Tensor(shape: shape, storage: storage.copy()) }

    /// Size of dimension `axis` (negative counts from the end).
    public func size(_ axis: Int) -> Int { shape[normalizedAxis(axis)] }

    public func normalizedAxis(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// Adds into this tensor's gradient through `body`, allocating it zeroed on first use.
    /// `shape` is the shape of the gradient being accumulated; it must equal this tensor's.
    @inline(__always)
    public func accumulateGrad(shape gradShape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        precondition(gradShape == shape, "gradient of shape \(gradShape) accumulated into tensor of shape \(shape)")
        if gradStorage == nil { gradStorage = Storage(count: count) }
        body(gradStorage!.buffer)
    }

    /// Adds `g` (same shape) into this tensor's gradient.
    public func accumulateGrad(_ g: Tensor) {
        if gradStorage == nil {
            // The first contribution is copied, not added to zeros: one pass instead of two.
            precondition(g.shape == shape, "gradient of shape \(g.shape) accumulated into tensor of shape \(shape)")
            let fresh = Storage(uninitializedCount: count)
            fresh.pointer.update(from: g.storage.pointer, count: count)
            gradStorage = fresh
            return
        }
        accumulateGrad(shape: g.shape) { dst in
            let src = g.storage.pointer
            for i in 0..<dst.count { dst[i] += src[i] }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = values.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
