import Engine

// Multi-head attention sub-layers with their projections. The attention itself is the engine's
// fused kernel; this class owns the query/key/value/output projections.

/// Multi-head attention with its projections, in one of two roles:
/// - self-attention over a sequence (B, L, C), full (the diffusion model) or causal (the
///   autoregressive baseline): `SelfAttention(width:heads:causal:using:)`, called as `a(x)`;
/// - attention from a sequence (B, L, C) to a context (B, Lc, Cc) with a key-padding mask, by
///   which the tokens read the text features: `CrossAttention(width:contextWidth:heads:using:)`,
///   called as `a(x, context:contextMask:)`.
public final class Attention: CompositeModule {
    public let query: Linear                 // (C, C)
    public let key: Linear, value: Linear    // (C, Cc) each; Cc = C for self-attention
    public let output: Linear                // (C, C)
    public let heads: Int
    public let causal: Bool

    fileprivate init(role: String, width: Int, contextWidth: Int, heads: Int, causal: Bool,
                     using rng: inout RandomGenerator) {
        precondition(heads >= 1 && width % heads == 0, "\(role): width \(width) is not divisible by \(heads) heads")
        query = Linear(width, width, using: &rng)
        key = Linear(contextWidth, width, using: &rng)
        value = Linear(contextWidth, width, using: &rng)
        output = Linear(width, width, using: &rng)
        self.heads = heads
        self.causal = causal
    }

    /// Self-attention: x (B, L, C) → (B, L, C).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        output(attention(query: query(x), key: key(x), value: value(x), heads: heads, causal: causal))
    }

    /// Cross-attention: x (B, L, C), context (B, Lc, Cc), contextMask (B·Lc, true = real token) → (B, L, C).
    public func callAsFunction(_ x: Tensor, context: Tensor, contextMask: [Bool]?) -> Tensor {
        precondition(context.rank == 3 && context.shape[0] == x.shape[0],
                     "CrossAttention: context \(context.shape) does not match input \(x.shape)")
        return output(attention(query: query(x), key: key(context), value: value(context), heads: heads,
                                keyPaddingMask: contextMask))
    }

    public var children: [ModuleChild] {
        [.one("query", query), .one("key", key), .one("value", value), .one("output", output)]
    }
}

public typealias SelfAttention = Attention
public typealias CrossAttention = Attention

extension Attention {
    public convenience init(width: Int, heads: Int, causal: Bool, using rng: inout RandomGenerator) {
        self.init(role: "SelfAttention", width: width, contextWidth: width, heads: heads, causal: causal, using: &rng)
    }

    public convenience init(width: Int, contextWidth: Int, heads: Int, using rng: inout RandomGenerator) {
        self.init(role: "CrossAttention", width: width, contextWidth: contextWidth, heads: heads, causal: false,
                  using: &rng)
    }
}
