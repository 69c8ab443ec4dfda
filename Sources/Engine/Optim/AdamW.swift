import Foundation

/// Settings of `AdamW`. The defaults are PyTorch's; `.paper` has the paper's betas and decay.
public struct AdamWConfiguration {
    /// Step size; `AdamW.learningRate` starts here and a schedule may change it every step.
    public var learningRate: Float = 1e-3
    /// Decay of the first-moment (mean) estimate.
    public var beta1: Float = 0.9
    /// Decay of the second-moment (uncentred variance) estimate. The paper uses 0.96.
    public var beta2: Float = 0.999
    /// Added to the root of the second moment to avoid division by zero.
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay for the decayed group when the optimizer builds its own groups
    /// (`AdamW(named:configuration:)`); explicit groups carry their own.
    public var weightDecay: Float = 0.01

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// VQ-Diffusion's settings: β = (0.9, 0.96), weight decay 0.045 (the learning rate is the
    /// schedule's business).
    public static let paper = AdamWConfiguration(beta1: 0.9, beta2: 0.96, weightDecay: 0.045)
}

/// Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
/// Regularization", Algorithm 2), in PyTorch's form. For each parameter with a gradient g, at
/// step t (counted from 1):
///
///     θ ← θ · (1 − lr·λ)                           decoupled decay (λ of the parameter's group)
///     m ← β1·m + (1 − β1)·g
///     v ← β2·v + (1 − β2)·g²
///     θ ← θ − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)
///
/// Parameters without a gradient (`gradStorage == nil`) are skipped entirely that step: no
/// decay, no moment update. The step count t is the optimizer's, shared by all parameters.
/// The state (t, m and v per parameter name) is available as named tensors for checkpoints.
public final class AdamW {
    public let groups: [ParameterGroup]
    public let configuration: AdamWConfiguration
    /// The step size for the next `step()`; set it before each step to follow a schedule.
    public var learningRate: Float
    /// Number of `step()` calls so far (the t of the bias corrections).
    public private(set) var stepCount: Int = 0

    /// First and second moments, one pair per parameter, in group order.
    private var firstMoments: [Storage] = []
    private var secondMoments: [Storage] = []
    /// Flattened (name, tensor, weight decay), parallel to the moments.
    private let entries: [(name: String, tensor: Tensor, weightDecay: Float)]

    /// An optimizer over explicit groups. Parameter names must be unique across groups.
    public init(groups: [ParameterGroup], configuration: AdamWConfiguration = AdamWConfiguration()) {
        let c = configuration
        precondition(c.beta1 >= 0 && c.beta1 < 1, "beta1 must be in [0, 1), got \(c.beta1)")
        precondition(c.beta2 >= 0 && c.beta2 < 1, "beta2 must be in [0, 1), got \(c.beta2)")
        precondition(c.epsilon > 0, "epsilon must be positive, got \(c.epsilon)")
        self.groups = groups
        self.configuration = configuration
        self.learningRate = configuration.learningRate
        var seen = Set<String>()
        var entries: [(name: String, tensor: Tensor, weightDecay: Float)] = []
        for g in groups {
            for p in g.parameters {
                precondition(seen.insert(p.name).inserted, "parameter name '\(p.name)' appears twice in the optimizer's groups")
                entries.append((name: p.name, tensor: p.tensor, weightDecay: g.weightDecay))
                firstMoments.append(Storage(count: p.tensor.count))
                secondMoments.append(Storage(count: p.tensor.count))
            }
        }
        self.entries = entries
    }

    /// An optimizer over `named` split by `ParameterGroup.standard` with the configuration's
    /// weight decay (no decay on norms, biases and embeddings).
    public convenience init(named: [(name: String, tensor: Tensor)], configuration: AdamWConfiguration = AdamWConfiguration()) {
        self.init(groups: ParameterGroup.standard(named, weightDecay: configuration.weightDecay),
                  configuration: configuration)
    }

    /// Every parameter the optimizer updates.
    public var parameters: [Tensor] { entries.map(\.tensor) }

    /// Drops the gradients of every parameter (call after `step()`).
    public func zeroGrad() { for e in entries { e.tensor.zeroGrad() } }

    /// One update of every parameter that has a gradient, in place.
    public func step() {
        stepCount += 1
        let (beta1, beta2, eps) = (configuration.beta1, configuration.beta2, configuration.epsilon)
        let t = Double(stepCount)
        let correction1 = 1 - Foundation.pow(Double(beta1), t)
        let correction2 = 1 - Foundation.pow(Double(beta2), t)
        // θ −= stepSize · m / (√v · rootScale + ε), which is the bias-corrected update above.
        let stepSize = Float(Double(learningRate) / correction1)
        let rootScale = Float(1 / correction2.squareRoot())
        let (oneMinusBeta1, oneMinusBeta2) = (1 - beta1, 1 - beta2)
        for (k, e) in entries.enumerated() {
            guard let grad = e.tensor.gradStorage else { continue }
            let n = e.tensor.count
            let p = e.tensor.pointer                      // (n) parameter
            let g = UnsafePointer(grad.pointer)           // (n) gradient
            let m = firstMoments[k].pointer               // (n)
            let v = secondMoments[k].pointer              // (n)
            let keep = 1 - learningRate * e.weightDecay
            if keep != 1 {
                for i in 0..<n { p[i] *= keep }
            }
            for i in 0..<n {
                let gi = g[i]
                let mi = beta1 * m[i] + oneMinusBeta1 * gi
                let vi = beta2 * v[i] + oneMinusBeta2 * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] -= stepSize * mi / (vi.squareRoot() * rootScale + eps)
            }
        }
    }

    // MARK: - State

    /// The state as named tensors (copies): "step" (a scalar count) and, per parameter name,
    /// "m.<name>" and "v.<name>" with the parameter's shape.
    public func stateTensors() -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = [(name: "step", tensor: stateCounterTensor(stepCount))]
        for (k, e) in entries.enumerated() {
            out.append((name: "m." + e.name, tensor: Tensor(shape: e.tensor.shape, storage: firstMoments[k].copy())))
            out.append((name: "v." + e.name, tensor: Tensor(shape: e.tensor.shape, storage: secondMoments[k].copy())))
        }
        return out
    }

    /// Restores a state written by `stateTensors()`. Every expected name must be present with
    /// the parameter's shape, or this throws naming the tensor and leaves the optimizer
    /// unchanged. Extra tensors (e.g. model weights in the same checkpoint) are ignored.
    public func loadState(_ tensors: [String: Tensor]) throws {
        let step = try readStateCounter(tensors, "step")
        var m: [Storage] = [], v: [Storage] = []
        for e in entries {
            let mt = try requireStateTensor(tensors, "m." + e.name, shape: e.tensor.shape)
            let vt = try requireStateTensor(tensors, "v." + e.name, shape: e.tensor.shape)
            let vp = vt.pointer
            for i in 0..<vt.count where !(vp[i] >= 0) {
                throw OptimizerStateError.invalidValue(name: "v." + e.name,
                                                       reason: "a second moment must be non-negative, found \(vp[i]) at index \(i)")
            }
            m.append(mt.storage.copy())
            v.append(vt.storage.copy())
        }
        stepCount = step
        firstMoments = m
        secondMoments = v
    }
}
