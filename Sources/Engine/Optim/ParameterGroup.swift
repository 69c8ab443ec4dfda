/// A set of named parameters that share optimizer settings (here: the weight decay).
public struct ParameterGroup {
    /// A label for logs and error messages, e.g. "decay" or "noDecay".
    public var name: String
    /// The parameters, with the dotted names that key their optimizer state in checkpoints.
    public var parameters: [(name: String, tensor: Tensor)]
    /// Decoupled weight decay coefficient λ: each step multiplies the weights by (1 − lr·λ).
    public var weightDecay: Float

    public init(name: String, parameters: [(name: String, tensor: Tensor)], weightDecay: Float) {
        precondition(weightDecay >= 0, "weight decay must be non-negative, got \(weightDecay) for group \(name)")
        self.name = name
        self.parameters = parameters
        self.weightDecay = weightDecay
    }

    /// Whether the standard grouping decays this parameter.
    ///
    /// The rule: a parameter is decayed when its rank is at least 2 (weight matrices, conv
    /// kernels) and its name contains none of "embedding", "Embedding", "norm", "Norm".
    /// Biases and norm gains/shifts are vectors (rank 1) and are never decayed; embedding tables
    /// and norm-owned matrices (such as AdaLN projections named under a "norm" field) are matched
    /// by name and left undecayed too.
    public static func isDecayed(name: String, tensor: Tensor) -> Bool {
        guard tensor.rank >= 2 else { return false }
        for word in ["embedding", "Embedding", "norm", "Norm"] where name.contains(word) { return false }
        return true
    }

    /// Splits `named` into two groups by `isDecayed`: "decay" (with `weightDecay`) and "noDecay"
    /// (with 0), in that order, each keeping the input order. Empty groups are still returned.
    public static func standard(_ named: [(name: String, tensor: Tensor)], weightDecay: Float) -> [ParameterGroup] {
        var decayed: [(name: String, tensor: Tensor)] = []
        var undecayed: [(name: String, tensor: Tensor)] = []
        for p in named {
            if isDecayed(name: p.name, tensor: p.tensor) { decayed.append(p) } else { undecayed.append(p) }
        }
        return [ParameterGroup(name: "decay", parameters: decayed, weightDecay: weightDecay),
                ParameterGroup(name: "noDecay", parameters: undecayed, weightDecay: 0)]
    }
}
