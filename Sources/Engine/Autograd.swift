import Foundation

/// The record of one op in the graph: its inputs and the closure that, given the op's output
/// (whose gradient is complete), adds into the inputs' gradients.
public final class GradNode {
    public let inputs: [Tensor]
    let backward: (Tensor) -> Void

    init(inputs: [Tensor], backward: @escaping (Tensor) -> Void) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// Grad mode. When disabled (inference), ops record nothing and outputs never require gradients.
/// The mode is task-local (and thread-local outside tasks), so concurrent work is independent.
public enum Autograd {
    @TaskLocal private static var disabled = false

    public static var isEnabled: Bool { !disabled }

    /// Runs `body` with grad mode off: no graph is recorded.
    public static func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $disabled.withValue(true) { try body() }
    }

    /// Runs `body` with grad mode on (e.g. a training step inside an inference context).
    public static func withGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $disabled.withValue(false) { try body() }
    }
}

extension Tensor {
    /// Attaches `backward` to this op output when grad mode is on and some input requires a
    /// gradient; otherwise records nothing. Returns self for chaining.
    ///
    /// The closure receives the output; `output.gradStorage` holds its complete gradient.
    @discardableResult
    public func recordOp(inputs: [Tensor], backward: @escaping (Tensor) -> Void) -> Tensor {
        guard Autograd.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        requiresGrad = true
        gradNode = GradNode(inputs: inputs, backward: backward)
        return self
    }

    /// Whether an op should compute a gradient for this input.
    @inline(__always) public var needsGrad: Bool { requiresGrad }

    /// Reverse-mode differentiation from this tensor. A scalar is seeded with 1; otherwise pass
    /// `seed` of the same shape. Gradients of leaves accumulate; gradients of intermediate
    /// tensors are released once used, unless `retainGraph` keeps the whole graph.
    public func backward(seed: Tensor? = nil, retainGraph: Bool = false) {
        precondition(requiresGrad, "backward() on a tensor that does not require a gradient (shape \(shape))")
        if let seed {
            if gradStorage == nil && gradNode != nil && !retainGraph && seed.shape == shape {
                // The seed is read, never written, by the node below, and the gradient is dropped
                // when the pass is over: borrow its storage instead of copying it.
                gradStorage = seed.storage
            } else {
                accumulateGrad(seed)
            }
        } else {
            precondition(count == 1, "backward() without a seed needs a scalar, got shape \(shape)")
            accumulateGrad(shape: shape) { $0[0] += 1 }
        }
        let order = topologicalOrder()
        for t in order.reversed() {
            guard let node = t.gradNode else { continue }
            if t.gradStorage != nil { node.backward(t) }
            if !retainGraph {
                t.gradNode = nil
                t.gradStorage = nil
            }
        }
    }

    /// Tensors reachable from self through graph nodes, each after all its inputs (iterative DFS).
    func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            let id = ObjectIdentifier(t)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((t, true))
            if let node = t.gradNode {
                for input in node.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        return order
    }
}
