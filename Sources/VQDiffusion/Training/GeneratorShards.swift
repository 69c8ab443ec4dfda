import Engine

/// How a generator's batches are cut into data-parallel shards (`DataParallel` for training,
/// `Parallel.shards` for sampling): the same rules for VQ-Diffusion and VQ-AR, so both are trained
/// and timed alike.
enum GeneratorShards {
    /// Fewest sequences per sampling shard: below it (guided batch 1 is 2 rows) splitting each
    /// kernel over the threads is faster.
    static let inferenceRows = 4

    /// One shard per thread when the text encoder is frozen and the batch fills them, else 1.
    static func automatic(batchSize: Int, textEncoder: TextEncoder) -> Int {
        textEncoder.isTrainable ? 1 : max(1, min(Parallel.workers, batchSize))
    }

    /// Why `count` shards cannot serve, or nil when they can.
    static func problem(_ count: Int, batchSize: Int, textEncoder: TextEncoder) -> String? {
        if count < 1 || count > batchSize { return "cannot cut batches of \(batchSize) into \(count) shards" }
        if count > 1 && textEncoder.isTrainable {
            return "data-parallel shards need a frozen text encoder; a trainable one trains in one batch"
        }
        return nil
    }

    /// `master` with `count − 1` replicas made by `make`, or nil for one shard. The replicas'
    /// weights are copied from the master before every step; they are initialised from a
    /// generator of their own, so the run's streams are untouched.
    static func dataParallel<M: Module>(_ count: Int, master: M, make: (inout RandomGenerator) -> M) -> DataParallel<M>? {
        guard count > 1 else { return nil }
        var scratch = RandomGenerator(seed: 0)
        return DataParallel(master: master, replicas: (1..<count).map { _ in make(&scratch) })
    }
}
