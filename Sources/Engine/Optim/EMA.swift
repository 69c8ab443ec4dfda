/// Exponential moving average of weights (Polyak averaging), kept as shadow copies keyed by
/// parameter name. Each `update(from:)` sets, for every parameter,
///
///     shadow ← d · shadow + (1 − d) · θ,    d = decay, or min(decay, (1 + n)/(10 + n)) with warm-up
///
/// where n counts earlier updates. A parameter seen for the first time starts its shadow at
/// its current value. The shadows are plain Float arrays, so the struct has value semantics:
/// copying an EMA copies its averages. To sample with the averaged weights, `swap(with:)`
/// exchanges shadows and live weights; a second `swap` restores the live ones.
public struct EMA {
    /// The averaging decay; the averaging window is about 1/(1 − decay) updates.
    public var decay: Float
    /// Whether early updates use the smaller decay (1 + n)/(10 + n), so the average is not
    /// dominated by the initial weights in short runs.
    public var warmup: Bool
    /// Number of `update(from:)` calls so far.
    public private(set) var updateCount: Int = 0

    private var names: [String] = []
    private var shapes: [[Int]] = []
    private var shadows: [[Float]] = []
    private var index: [String: Int] = [:]

    /// An empty average; shadows appear at the first `update(from:)`.
    public init(decay: Float, warmup: Bool = false) {
        precondition(decay >= 0 && decay < 1, "EMA decay must be in [0, 1), got \(decay)")
        self.decay = decay
        self.warmup = warmup
    }

    /// An average whose shadows start at the current values of `named`.
    public init(decay: Float, warmup: Bool = false, parameters named: [(name: String, tensor: Tensor)]) {
        self.init(decay: decay, warmup: warmup)
        for p in named { addShadow(p.name, p.tensor) }
    }

    /// The names of the averaged parameters, in the order first seen.
    public var parameterNames: [String] { names }

    /// The decay the next update will use.
    public var currentDecay: Float {
        guard warmup else { return decay }
        return min(decay, Float(1 + updateCount) / Float(10 + updateCount))
    }

    /// The shadow of one parameter as a fresh tensor, or nil if it is not tracked.
    public func shadow(_ name: String) -> Tensor? {
        guard let k = index[name] else { return nil }
        return Tensor(shape: shapes[k], values: shadows[k])
    }

    private mutating func addShadow(_ name: String, _ t: Tensor) {
        precondition(index[name] == nil, "EMA: parameter name '\(name)' appears twice")
        index[name] = names.count
        names.append(name)
        shapes.append(t.shape)
        shadows.append(t.values)
    }

    private func slot(_ name: String, _ t: Tensor) -> Int {
        guard let k = index[name] else { preconditionFailure("EMA: no shadow for parameter '\(name)'") }
        precondition(shapes[k] == t.shape, "EMA: shadow of '\(name)' has shape \(shapes[k]) but the parameter has \(t.shape)")
        return k
    }

    /// Moves every shadow towards the current weights of `named`.
    public mutating func update(from named: [(name: String, tensor: Tensor)]) {
        let d = currentDecay
        let w = 1 - d
        for p in named {
            guard index[p.name] != nil else { addShadow(p.name, p.tensor); continue }
            let k = slot(p.name, p.tensor)
            let src = p.tensor.pointer
            shadows[k].withUnsafeMutableBufferPointer { s in
                for i in 0..<s.count { s[i] = d * s[i] + w * src[i] }
            }
        }
        updateCount += 1
    }

    /// Writes the shadows into the weights of `named` (every one must be tracked).
    public func copy(into named: [(name: String, tensor: Tensor)]) {
        for p in named {
            let k = slot(p.name, p.tensor)
            shadows[k].withUnsafeBufferPointer { s in
                p.tensor.pointer.update(from: s.baseAddress!, count: s.count)
            }
        }
    }

    /// Exchanges shadows and the weights of `named`: after one call the model holds the
    /// averaged weights and the EMA the live ones; a second call undoes the first.
    public mutating func swap(with named: [(name: String, tensor: Tensor)]) {
        for p in named {
            let k = slot(p.name, p.tensor)
            let q = p.tensor.pointer
            shadows[k].withUnsafeMutableBufferPointer { s in
                for i in 0..<s.count { (s[i], q[i]) = (q[i], s[i]) }
            }
        }
    }

    // MARK: - State

    /// The state as named tensors: "updates" (a scalar count) and "shadow.<name>" per parameter.
    public func stateTensors() -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = [(name: "updates", tensor: stateCounterTensor(updateCount))]
        for k in names.indices {
            out.append((name: "shadow." + names[k], tensor: Tensor(shape: shapes[k], values: shadows[k])))
        }
        return out
    }

    /// Restores a state written by `stateTensors()` into the parameters this EMA tracks (create
    /// it with `init(decay:parameters:)` first). Every expected tensor must be present with the
    /// right shape, or this throws naming it and leaves the EMA unchanged. Extra tensors are ignored.
    public mutating func loadState(_ tensors: [String: Tensor]) throws {
        guard !names.isEmpty else {
            throw OptimizerStateError.empty(reason: "this EMA tracks no parameters yet, so there is nothing to restore "
                + "into; create it with EMA(decay:parameters:) from the model before loading its state")
        }
        let count = try readStateCounter(tensors, "updates")
        var restored: [[Float]] = []
        for k in names.indices {
            restored.append(try requireStateTensor(tensors, "shadow." + names[k], shape: shapes[k]).values)
        }
        updateCount = count
        shadows = restored
    }
}
