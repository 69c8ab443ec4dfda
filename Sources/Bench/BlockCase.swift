import Engine

/// (b) One pre-norm transformer block, the shape of the PyTorch reference (torch_block.py):
/// width D = 256, 4 heads, 64 image tokens self-attending and cross-attending to 16 text
/// tokens, MLP 4×, batch 64; forward + backward + AdamW step.
///
///   x = x + o1(selfAttention(qkv(ln1(x))))
///   x = x + o2(crossAttention(q2(ln2(x)), kv2(c)))
///   y = x + fc2(gelu(fc1(ln3(x))))          loss = mean(y²)
final class BenchBlock: CompositeModule {
    let ln1: LayerNorm, ln2: LayerNorm, ln3: LayerNorm
    let qkv: Linear, o1: Linear, q2: Linear, kv2: Linear, o2: Linear, fc1: Linear, fc2: Linear
    let heads: Int

    init(width D: Int, heads: Int, using rng: inout RandomGenerator) {
        (ln1, ln2, ln3) = (LayerNorm(D), LayerNorm(D), LayerNorm(D))
        qkv = Linear(D, 3 * D, using: &rng)
        o1 = Linear(D, D, using: &rng)
        q2 = Linear(D, D, using: &rng)
        kv2 = Linear(D, 2 * D, using: &rng)
        o2 = Linear(D, D, using: &rng)
        fc1 = Linear(D, 4 * D, activation: .gelu, using: &rng)
        fc2 = Linear(4 * D, D, using: &rng)
        self.heads = heads
    }

    /// x (B, L, D), text c (B, Lt, D) → (B, L, D)
    func callAsFunction(_ x: Tensor, _ c: Tensor) -> Tensor {
        var x = x + o1(selfAttention(qkv: qkv(ln1(x)), heads: heads))
        x = x + o2(crossAttention(query: q2(ln2(x)), keyValue: kv2(c), heads: heads))
        return x + fc2(fc1(ln3(x)))
    }

    var children: [ModuleChild] {
        [("ln1", ln1), ("ln2", ln2), ("ln3", ln3)].map { .one($0, $1) }
            + [("qkv", qkv), ("o1", o1), ("q2", q2), ("kv2", kv2), ("o2", o2), ("fc1", fc1), ("fc2", fc2)].map { .one($0, $1) }
    }
}

func blockCase() -> BenchCase {
    let (B, L, Lt, D, H) = (64, 64, 16, 256, 4)
    let block = BenchBlock(width: D, heads: H, using: &rng)
    let optimizer = AdamW(named: block.namedParameters, configuration: AdamWConfiguration(learningRate: 1e-4))
    let x = Tensor.randn([B, L, D], using: &rng)
    let c = Tensor.randn([B, Lt, D], using: &rng)
    // The reference script's analytic count: projections and MLP 28·D² per image token, attention
    // scores and mixing 4·L·D (self) + 4·Lt·D (cross), text keys/values 4·D² per text token; ×3 for backward.
    let perImageToken = 28 * D * D + 4 * L * D + 4 * Lt * D
    let flops = 3 * Double(B * L * perImageToken + B * Lt * 4 * D * D)
    return BenchCase(name: "(b) transformer block D256 h4 L64+16 b64 fwd+bwd+AdamW", flops: flops, target: 0.60) {
        optimizer.zeroGrad()
        block(x, c).square().mean().backward()
        optimizer.step()
    }
}

/// The same block, optimizer and batch as (b), the batch cut into one data-parallel shard per
/// thread (`DataParallel`): each half's forward and backward on its own thread and copy of the
/// block with single-threaded kernels, the gradients combined, one AdamW step.
func shardedBlockCase(shards: Int) -> BenchCase {
    let (B, L, Lt, D, H) = (64, 64, 16, 256, 4)
    let block = BenchBlock(width: D, heads: H, using: &rng)
    let parallel = DataParallel(master: block, replicas: (1..<shards).map { _ in BenchBlock(width: D, heads: H, using: &rng) })
    let optimizer = AdamW(named: block.namedParameters, configuration: AdamWConfiguration(learningRate: 1e-4))
    let x = Tensor.randn([B, L, D], using: &rng).values
    let c = Tensor.randn([B, Lt, D], using: &rng).values
    func rows(_ values: [Float], _ range: Range<Int>, _ length: Int) -> Tensor {
        Tensor(shape: [range.count, length, D], values: Array(values[(range.lowerBound * length * D)..<(range.upperBound * length * D)]))
    }
    // Each shard's rows, keyed by where they start.
    let inputs = Dictionary(uniqueKeysWithValues: (0..<shards).map { i in
        let range = parallel.shardRange(i, rows: B)
        return (range.lowerBound, (x: rows(x, range, L), c: rows(c, range, Lt)))
    })
    let perImageToken = 28 * D * D + 4 * L * D + 4 * Lt * D
    let flops = 3 * Double(B * L * perImageToken + B * Lt * 4 * D * D)
    return BenchCase(name: "block (b) as \(shards) data-parallel shards fwd+bwd+AdamW", flops: flops) {
        optimizer.zeroGrad()
        _ = parallel.step(rows: B) { model, range in
            let input = inputs[range.lowerBound]!
            model(input.x, input.c).square().mean().backward()
        }
        optimizer.step()
    }
}
