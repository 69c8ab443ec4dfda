import Engine

// Multi-head attention sub-layers with their projections. The attention itself is the engine's
// fused kernel; these classes own the query/key/value/output projections.

/// Self-attention over a sequence (B, L, C): full (the diffusion model) or causal (the
/// autoregressive baseline).
public final class SelfAttention: Module {
    public let query: Linear, key: Linear, value: Linear   // (C, C) each
    public let output: Linear                               // (C, C)
    public let heads: Int
    public let causal: Bool

    public init(width: Int, heads: Int, causal: Bool, using rng: inout RandomGenerator) {
        precondition(heads >= 1 && width % heads == 0, "SelfAttention: width \(width) is not divisible by \(heads) heads")
        query = Linear(width, width, using: &rng)
        key = Linear(width, width, using: &rng)
        value = Linear(width, width, using: &rng)
        output = Linear(width, width, using: &rng)
        self.heads = heads
        self.causal = causal
    }

    /// x (B, L, C) → (B, L, C).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let mixed = attention(query: query(x), key: key(x), value: value(x), heads: heads, causal: causal)
        return output(mixed)
    }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        query.visitParameters(prefix: childPrefix(prefix, "query"), visit)
        key.visitParameters(prefix: childPrefix(prefix, "key"), visit)
        value.visitParameters(prefix: childPrefix(prefix, "value"), visit)
        output.visitParameters(prefix: childPrefix(prefix, "output"), visit)
    }
}

/// Attention from a sequence (B, L, C) to a context (B, Lc, Cc) with a key-padding mask: the
/// tokens read the text features.
public final class CrossAttention: Module {
    public let query: Linear                 // (C, C)
    public let key: Linear, value: Linear    // (C, Cc) each
    public let output: Linear                // (C, C)
    public let heads: Int

    public init(width: Int, contextWidth: Int, heads: Int, using rng: inout RandomGenerator) {
        precondition(heads >= 1 && width % heads == 0, "CrossAttention: width \(width) is not divisible by \(heads) heads")
        query = Linear(width, width, using: &rng)
        key = Linear(contextWidth, width, using: &rng)
        value = Linear(contextWidth, width, using: &rng)
        output = Linear(width, width, using: &rng)
        self.heads = heads
    }

    /// x (B, L, C), context (B, Lc, Cc), contextMask (B·Lc, true = real token) → (B, L, C).
    public func callAsFunction(_ x: Tensor, context: Tensor, contextMask: [Bool]?) -> Tensor {
        precondition(context.rank == 3 && context.shape[0] == x.shape[0],
                     "CrossAttention: context \(context.shape) does not match input \(x.shape)")
        let mixed = attention(query: query(x), key: key(context), value: value(context), heads: heads,
                              keyPaddingMask: contextMask)
        return output(mixed)
    }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        query.visitParameters(prefix: childPrefix(prefix, "query"), visit)
        key.visitParameters(prefix: childPrefix(prefix, "key"), visit)
        value.visitParameters(prefix: childPrefix(prefix, "value"), visit)
        output.visitParameters(prefix: childPrefix(prefix, "output"), visit)
    }
}
