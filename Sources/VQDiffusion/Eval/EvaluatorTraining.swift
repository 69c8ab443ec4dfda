import Engine
import Foundation

/// Trains an evaluator on labelled real images: the sum over heads of the cross-entropy of each
/// head against its targets (heads that do not apply to an image are ignored for it).
///
/// Resumable like every trainer: a checkpoint holds the weights, the optimizer's moments, the
/// generator and the step; the data stream is a pure function of the seed and the step.
public final class EvaluatorTrainer: Trainer {
    public static let checkpointKind = "evaluator-training"
    public let evaluator: Evaluator
    public let configuration: TrainingRunSettings
    public let optimizer: AdamW
    public let schedule: WarmupCosineSchedule
    /// Steps taken so far.
    public private(set) var step = 0
    /// The generator left after initialisation (saved with the evaluator).
    public private(set) var generator: RandomGenerator
    private var batches: BatchStream
    /// The processes training the model together (`ProcessGroup.world`): each takes its rows of every batch.
    public let group: ProcessGroup = .world

    /// A fresh evaluator for `dataset` (which must carry Shapes scenes or class labels) with its
    /// optimizer and data stream.
    public init(_ evaluatorConfiguration: EvaluatorConfiguration, training configuration: TrainingRunSettings,
                dataset: any CaptionedDataset) throws {
        try configuration.validate()
        guard dataset.channels == evaluatorConfiguration.channels, dataset.imageSize == evaluatorConfiguration.imageSize else {
            throw MetricError("the dataset has \(dataset.channels)-channel \(dataset.imageSize)×\(dataset.imageSize) images, the evaluator takes \(evaluatorConfiguration.channels)-channel \(evaluatorConfiguration.imageSize)×\(evaluatorConfiguration.imageSize)")
        }
        guard dataset.count >= configuration.batchSize else {
            throw MetricError("the training set has \(dataset.count) images, fewer than one batch of \(configuration.batchSize)")
        }
        if let problem = ProcessGroup.world.batchProblem(configuration.batchSize) { throw MetricError(problem) }
        var rng = RandomGenerator(seed: configuration.seed)
        evaluator = try Evaluator(evaluatorConfiguration, using: &rng)
        self.configuration = configuration
        optimizer = AdamW(named: evaluator.namedParameters,
                          configuration: AdamWConfiguration(learningRate: configuration.learningRate,
                                                            weightDecay: configuration.weightDecay))
        schedule = configuration.schedule(floor: 0)
        let loader = BatchLoader(dataset: dataset, batchSize: configuration.batchSize, shuffle: true, dropLast: true,
                                 generator: rng.derived(0xDA7A))
        batches = loader.stream()
        generator = rng
    }

    /// Continues from a checkpoint written by `saveCheckpoint(to:)` for the same settings.
    public func resume(from url: URL) throws {
        let loaded = try TrainingCheckpoint.read(url, expectingKind: Self.checkpointKind)
        let stored = try loaded.configuration(as: EvaluatorConfiguration.self)
        guard stored == evaluator.configuration, loaded.metadata["training"] == (try Self.json(configuration)) else {
            throw MetricError("\(url.path) was saved by a run with other settings; resume with the settings it was started with")
        }
        try loaded.loadModel(into: evaluator.namedParameters)
        try loaded.loadOptimizer(optimizer)
        generator = try loaded.generator
        step = try loaded.step
        let perEpoch = batches.loader.batchesPerEpoch
        batches = batches.loader.stream(epoch: step / perEpoch, step: step % perEpoch)
    }

    /// Everything needed to resume.
    public func checkpointContents() throws -> TrainingCheckpoint.Contents {
        try .init(kind: Self.checkpointKind, configuration: evaluator.configuration, model: evaluator.namedParameters,
                  optimizer: optimizer, generator: generator, step: step, extra: ["training": try Self.json(configuration)])
    }

    private static func json(_ settings: TrainingRunSettings) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(settings), as: UTF8.self)
    }

    /// The step's figures for the training loop.
    public func advance() throws -> TrainingStepReport {
        let start = MonotonicClock.seconds()
        let rate = schedule.learningRate(at: step)
        let loss = Double(try trainStep())
        return TrainingStepReport(averaged: [("train/loss", loss)], latest: [("train/lr", Double(rate))],
                                  shown: [("loss", loss)], seconds: MonotonicClock.seconds() - start)
    }

    /// One optimizer step on the next batch; returns the loss (sum over heads). Under MPI each rank
    /// takes its rows of the batch: a head's mean over the targets it has is the sum over ranks of
    /// each rank's mean weighed by its count of those targets, so the ranks' gradients are summed
    /// as they are.
    @discardableResult
    public func trainStep() throws -> Float {
        let indices = batches.nextIndices()
        let batch = batches.loader.batch(indices: Array(indices[group.rows(ofBatch: indices.count)]))
        let targets = try headTargets(batch.attributes, task: evaluator.configuration.task)
        optimizer.learningRate = schedule.learningRate(at: step)
        optimizer.zeroGrad()
        var weights: [Float]?
        if group.isDistributed {
            let counts = targets.map { Double($0.filter { $0 >= 0 }.count) }
            weights = zip(counts, group.sum(counts)).map { $1 > 0 ? Float($0 / $1) : 0 }
        }
        let loss = evaluatorLoss(evaluator(batch.images), targets: targets, headWeights: weights)
        loss.backward()
        group.sumGradients(optimizer.parameters, weight: 1)
        optimizer.step()
        step += 1
        return Float(group.sum([Double(loss.item)])[0])
    }
}

/// Σ over heads of the mean cross-entropy of the head's logits against its targets, each mean
/// multiplied by `headWeights[h]` when given. `targets[h]` holds one target per image for head h
/// (negative: ignored).
public func evaluatorLoss(_ output: EvaluatorOutput, targets: [[Int32]], headWeights: [Float]? = nil) -> Tensor {
    precondition(targets.count == output.logits.count,
                 "evaluatorLoss: \(targets.count) target lists for \(output.logits.count) heads")
    var total: Tensor?
    for (h, (logits, t)) in zip(output.logits, targets).enumerated() where t.contains(where: { $0 >= 0 }) {
        var term = crossEntropy(logits: logits, targets: t)
        if let headWeights { term = term * headWeights[h] }
        total = total.map { $0 + term } ?? term
    }
    return total ?? Tensor(scalar: 0)
}

/// Per-head targets (head-major: `[head][image]`) for the attributes of a batch.
public func headTargets(_ attributes: [SampleAttributes?], task: EvaluatorTask) throws -> [[Int32]] {
    let heads = task == .shapes ? ShapesTargets.heads.count : 1
    var out = [[Int32]](repeating: [], count: heads)
    for (i, a) in attributes.enumerated() {
        switch (task, a) {
        case (.shapes, .shapes(let scene)?):
            for (h, t) in ShapesTargets.targets(scene).enumerated() { out[h].append(t) }
        case (.fashion, .classLabel(let label)?):
            out[0].append(Int32(label))
        default:
            throw MetricError("sample \(i) carries \(a.map { "\($0)" } ?? "no attributes"), not what a \(task.rawValue) evaluator learns from; "
                + "train the \(task.rawValue) evaluator on the \(task.rawValue) dataset")
        }
    }
    return out
}

/// Per-attribute accuracy of an evaluator against known attributes.
public enum EvaluatorAccuracy {
    /// Shapes: objects, position, relation (axis), shape, colour, size (over every object), and
    /// caption (every attribute the image's own caption states read right, as `ShapesAlignment`
    /// scores it). Fashion-MNIST: class.
    public static func score(headClasses: [[Int]], attributes: [SampleAttributes], task: EvaluatorTask) throws -> AttributeScores {
        let targets = try headTargets(attributes, task: task)
        precondition(headClasses.count == targets.count && headClasses.allSatisfy({ $0.count == attributes.count }),
                     "EvaluatorAccuracy: \(headClasses.count) heads × \(headClasses.first?.count ?? 0) predictions for \(targets.count) heads × \(attributes.count) samples")
        switch task {
        case .fashion:
            var scores = AttributeScores(names: ["class"])
            for (p, t) in zip(headClasses[0], targets[0]) { scores.add("class", correct: p == Int(t)) }
            return scores
        case .shapes:
            var scores = AttributeScores(names: ["objects", "position", "relation", "shape", "colour", "size", "caption"])
            let names = ["objects", "position", "relation", "shape", "colour", "size", "shape", "colour", "size"]
            for (h, name) in names.enumerated() {
                for (p, t) in zip(headClasses[h], targets[h]) where t >= 0 { scores.add(name, correct: p == Int(t)) }
            }
            let predictions = ShapesTargets.predictions(fromHeadClasses: headClasses)
            var alignment = AttributeScores()
            for (p, a) in zip(predictions, attributes) {
                guard case .shapes(let scene) = a, let caption = ShapesCaption.parse(scene.caption) else { continue }
                ShapesAlignment.score(p, against: caption, into: &alignment)
            }
            if let c = alignment["caption"] { scores.add("caption", correct: c.correct, total: c.total) }
            return scores
        }
    }

    /// Runs `evaluator` over the first `count` samples of `dataset` (all when nil) and scores it.
    public static func measure(_ evaluator: Evaluator, on dataset: any CaptionedDataset, count: Int? = nil,
                               batchSize: Int = 256) throws -> AttributeScores {
        let n = min(count ?? dataset.count, dataset.count)
        let loader = BatchLoader(dataset: dataset, batchSize: batchSize, shuffle: false, generator: RandomGenerator(seed: 0))
        var total = AttributeScores()
        var start = 0
        while start < n {
            let batch = loader.batch(indices: Array(start..<min(n, start + batchSize)))
            let attributes = try batch.attributes.map { a -> SampleAttributes in
                guard let a else { throw MetricError("the dataset's samples carry no attributes to score an evaluator against") }
                return a
            }
            let (_, classes) = evaluator.evaluate(batch.images, batchSize: batchSize)
            total.merge(try score(headClasses: classes, attributes: attributes, task: evaluator.configuration.task))
            start += batch.count
        }
        return total
    }
}
