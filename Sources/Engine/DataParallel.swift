/// Data parallelism for a training step: the batch is cut into shards, each shard's forward and
/// backward pass runs on its own thread with its own copy of the model (single-threaded kernels,
/// `Parallel.shards`), and the shards' gradients are combined into the master model's as the
/// gradient of the whole batch. With small matrices this keeps every core busy where splitting each
/// kernel leaves threads waiting on each other and on the serial code between kernels.
///
/// Shard 0 runs on the master itself; shard i > 0 on replica i − 1, whose weights are copied from
/// the master before every step. A shard's loss is a mean over its own rows, so the combined
/// gradient is Σ_i share_i · g_i with share_i the shard's fraction of the batch: the full batch's
/// mean. The optimizer only ever sees the master. Which rows a shard owns and the order of the
/// sum are fixed, so a step is bitwise reproducible for a given shard count.
///
/// Across processes the same cut happens one level up (`ProcessGroup`): each MPI rank gets a
/// contiguous part of the global batch, cuts it into its own shards here, and the ranks' means
/// are then weighed by their parts and summed.
public final class DataParallel<M: Module> {
    public let master: M
    public let replicas: [M]
    private let masterParameters: [Tensor]
    private let replicaParameters: [[Tensor]]

    /// `replicas` must have the master's parameters (names and shapes); their values do not matter.
    public init(master: M, replicas: [M]) {
        let named = master.namedParameters
        for replica in replicas {
            let other = replica.namedParameters
            precondition(other.count == named.count
                         && zip(named, other).allSatisfy { $0.name == $1.name && $0.tensor.shape == $1.tensor.shape },
                         "DataParallel: a replica's parameters differ from the master's")
            precondition(replica !== master, "DataParallel: the master cannot be its own replica")
        }
        self.master = master
        self.replicas = replicas
        masterParameters = named.map(\.tensor)
        replicaParameters = replicas.map { $0.parameters }
    }

    /// Number of shards a step is cut into (master + replicas).
    public var shardCount: Int { 1 + replicas.count }

    /// Rows of shard `index` when `rows` are cut into `shardCount` near-equal contiguous parts.
    public func shardRange(_ index: Int, rows: Range<Int>) -> Range<Int> {
        let part = Parallel.chunkRange(rows.count, chunks: shardCount, index: index)
        return (rows.lowerBound + part.lowerBound)..<(rows.lowerBound + part.upperBound)
    }

    /// Rows of shard `index` of a batch of `rows` rows.
    public func shardRange(_ index: Int, rows: Int) -> Range<Int> { shardRange(index, rows: 0..<rows) }

    /// Runs `body(model, rows_i)` for every shard of the batch rows `rows` concurrently, each on its
    /// model, then leaves in the master's gradients Σ_i (|rows_i| / |rows|) · g_i, where g_i is what
    /// shard i's backward pass accumulated (the replicas' gradients are cleared). The master's
    /// gradients must be clear on entry. Needs at least one row per shard.
    public func step<R>(rows: Range<Int>, _ body: (M, Range<Int>) -> R) -> [R] {
        precondition(rows.count >= shardCount, "DataParallel: \(rows.count) rows cannot fill \(shardCount) shards")
        precondition(masterParameters.allSatisfy { $0.gradStorage == nil },
                     "DataParallel: the master's gradients must be cleared before a step")
        for parameters in replicaParameters {
            for (source, target) in zip(masterParameters, parameters) {
                target.pointer.update(from: source.pointer, count: source.count)
                target.zeroGrad()
            }
        }
        let models = [master] + replicas
        let results = Parallel.shards(shardCount) { i in body(models[i], shardRange(i, rows: rows)) }
        let shares = (0..<shardCount).map { Float(shardRange($0, rows: rows).count) / Float(rows.count) }
        for (p, parameter) in masterParameters.enumerated() {
            let contributions = [parameter.gradStorage] + replicaParameters.map { $0[p].gradStorage }
            guard contributions.contains(where: { $0 != nil }) else { continue }
            let sum = Storage(count: parameter.count)
            let out = sum.pointer
            for (i, storage) in contributions.enumerated() {
                guard let storage else { continue }
                let g = storage.pointer, share = shares[i]
                for k in 0..<parameter.count { out[k] += share * g[k] }
            }
            parameter.gradStorage = sum
        }
        for parameters in replicaParameters { for parameter in parameters { parameter.zeroGrad() } }
        return results
    }

    /// As above for a body that throws: every shard runs and the gradients are combined, then the
    /// first error (in shard order) is rethrown.
    public func step<R>(rows: Range<Int>, _ body: (M, Range<Int>) throws -> R) throws -> [R] {
        try step(rows: rows) { model, range in Result { try body(model, range) } }.map { try $0.get() }
    }

    /// The same for a whole batch of `rows` rows.
    public func step<R>(rows: Int, _ body: (M, Range<Int>) -> R) -> [R] { step(rows: 0..<rows, body) }
    public func step<R>(rows: Int, _ body: (M, Range<Int>) throws -> R) throws -> [R] { try step(rows: 0..<rows, body) }
}

extension Optional {
    /// One training step's backward passes over the batch rows `rows` (all of a batch, or an MPI
    /// rank's part of it): on the data-parallel shards when there are some (`self`), else on
    /// `model` as one batch. Leaves the mean gradient over `rows`; returns each shard's rows and
    /// result, in row order.
    public func step<M: Module, R>(model: M, rows: Range<Int>, _ body: (M, Range<Int>) throws -> R) throws
        -> [(rows: Range<Int>, result: R)] where Wrapped == DataParallel<M> {
        guard let dataParallel = self else { return [(rows, try body(model, rows))] }
        return try dataParallel.step(rows: rows, body).enumerated().map { (dataParallel.shardRange($0.offset, rows: rows), $0.element) }
    }
}

