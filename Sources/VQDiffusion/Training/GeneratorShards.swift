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

/// What the two generators' trainers set up alike: the checks of the data and text features against
/// the model, the parameters trained (a trainable text encoder's under `textEncoder.`), the
/// optimisation state and the data-parallel replicas, all from the same seed streams
/// (1: initialisation, 2: data order, 3: noise).
enum GeneratorTrainingSetup {
    /// Why `dataset` and `textEncoder` cannot train a model of this shape, or nil when they can.
    static func problem(dataset: TokenizedDataset, classes: Int, gridHeight: Int, gridWidth: Int, textWidth: Int,
                        textEncoder: TextEncoder, batchSize: Int) -> String? {
        guard dataset.codes == classes, dataset.height == gridHeight, dataset.width == gridWidth else {
            return "the dataset holds \(dataset.height)×\(dataset.width) grids of \(dataset.codes) codes, "
                + "the model expects \(gridHeight)×\(gridWidth) grids of \(classes) codes; tokenize with the matching VQ-VAE"
        }
        guard textEncoder.width == textWidth else {
            return "the text encoder gives \(textEncoder.width)-wide features, the model reads \(textWidth)"
        }
        guard dataset.count >= 1, batchSize >= 1 else { return "need a non-empty dataset and a batch size ≥ 1" }
        return nil
    }

    /// The model made from the seed's initialisation stream, its training state and its replicas.
    static func make<M: Module>(_ training: GeneratorTrainingConfiguration, textEncoder: TextEncoder, shards: Int?,
                                model make: (inout RandomGenerator) -> M) throws
        -> (model: M, state: TrainingState, dataParallel: DataParallel<M>?) {
        let root = RandomGenerator(seed: training.seed)
        var initGenerator = root.derived(1)
        let model = make(&initGenerator)
        var named = model.namedParameters
        if textEncoder.isTrainable, let encoder = textEncoder as? Module {
            named += encoder.namedParameters.map { (name: "textEncoder." + $0.name, tensor: $0.tensor) }
        }
        let state = TrainingState(parameters: named, settings: training.optimization, dataOrder: root.derived(2),
                                  generator: root.derived(3))
        let count = shards ?? GeneratorShards.automatic(batchSize: training.batchSize, textEncoder: textEncoder)
        if let problem = GeneratorShards.problem(count, batchSize: training.batchSize, textEncoder: textEncoder) {
            throw ConfigurationError(problem)
        }
        return (model, state, GeneratorShards.dataParallel(count, master: model, make: make))
    }
}
