import Engine

// Time conditioning of the transformer blocks (docs/design.md §2):
//
//   AdaLN(x, t) = LN(x) · (1 + scale_t) + shift_t,   (scale_t, shift_t) = Linear(SiLU(emb(t)))
//
// emb(t) is a learned table of T vectors (the reference implementation's "adalayernorm_abs"),
// shared by every block; each norm has its own projection. The projections start at zero, so an
// untrained block normalises exactly like a plain LayerNorm and learns how much t should matter.

/// SiLU(emb(t)) for a batch of times: a learned table of T embeddings, one row per t = 1…T.
public final class TimestepEmbedding: Module {
    public let table: Embedding   // (T, C)

    public init(steps: Int, width: Int, using rng: inout RandomGenerator) {
        precondition(steps >= 1 && width >= 1, "TimestepEmbedding: need steps ≥ 1 and width ≥ 1, got \(steps), \(width)")
        table = Embedding(steps, width, using: &rng)
    }

    public var steps: Int { table.count }

    /// (B, C): SiLU(emb(t_b)) for t_b in 1…T.
    public func callAsFunction(_ t: [Int]) -> Tensor {
        let ids = t.map { tb -> Int32 in
            precondition(tb >= 1 && tb <= steps, "TimestepEmbedding: time \(tb) outside 1…\(steps)")
            return Int32(tb - 1)
        }
        return table(ids, shape: [t.count]).silu()   // (B, C)
    }

    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        table.visitParameters(prefix: childPrefix(prefix, "table"), visit)
    }
}

/// The normalisation in front of a sub-layer: adaptive (AdaLN, conditioned on the time embedding)
/// or, for blocks without time conditioning (the autoregressive baseline), an ordinary affine
/// LayerNorm.
public final class BlockNorm: CompositeModule {
    /// Present for AdaLN: (2C, C), producing (scale, shift) from SiLU(emb(t)).
    public let projection: Linear?
    /// Present for the plain LayerNorm (affine); AdaLN normalises without affine parameters.
    public let norm: LayerNorm
    public let width: Int

    public init(width: Int, timeConditioned: Bool, using rng: inout RandomGenerator) {
        self.width = width
        if timeConditioned {
            let p = Linear(width, 2 * width, using: &rng)
            p.weight.storage.fill(0)
            projection = p
            norm = LayerNorm(width, affine: false)
        } else {
            projection = nil
            norm = LayerNorm(width)
        }
    }

    public var isTimeConditioned: Bool { projection != nil }

    /// x (B, L, C), time (B, C) = SiLU(emb(t)) when time-conditioned (ignored otherwise).
    public func callAsFunction(_ x: Tensor, time: Tensor?) -> Tensor {
        let normalized = norm(x)                                   // (B, L, C)
        guard let projection else { return normalized }
        guard let time else { preconditionFailure("BlockNorm: a time-conditioned norm needs the time embedding") }
        let (B, C) = (x.shape[0], width)
        precondition(time.shape == [B, C], "BlockNorm: time embedding \(time.shape) does not match input \(x.shape)")
        let modulation = projection(time).reshape([B, 1, 2 * C])   // (B, 1, 2C)
        let scale = modulation.slice(axis: 2, start: 0, end: C)    // (B, 1, C)
        let shift = modulation.slice(axis: 2, start: C, end: 2 * C)
        return normalized * (scale + 1) + shift                    // (B, L, C)
    }

    public var children: [ModuleChild] { [.one("projection", projection), .one("norm", norm)] }
}
