import Engine
import Foundation
import VQDiffusion

// The settings the studies share, with each profile's values. A study's configuration embeds
// these, so two studies asking for the same model build the same recipe and the model store
// trains it once.

/// The VQ-VAE and evaluator of one dataset.
public struct DatasetModels: Codable, Equatable, Sendable {
    public var vqvae: VQVAERecipe
    public var evaluator: EvaluatorRecipe

    public init(vqvae: VQVAERecipe, evaluator: EvaluatorRecipe) {
        self.vqvae = vqvae
        self.evaluator = evaluator
    }

    /// The profile's models of `dataset`.
    public static func standard(_ dataset: DatasetSelection.Source, profile: StudyProfile) -> DatasetModels {
        switch profile {
        case .paper, .preview:
            // Shapes: a 64-code book; with 512 codes most codes spell out the background's noise
            // and colour, which the generators then have to model token by token.
            return DatasetModels(vqvae: VQVAERecipe(dataset: dataset, codes: dataset == .shapes ? 64 : 512),
                                 evaluator: EvaluatorRecipe(dataset: dataset))
        case .quick:
            return DatasetModels(vqvae: VQVAERecipe(dataset: dataset, codes: 32, steps: 120, batchSize: 16),
                                 evaluator: EvaluatorRecipe(dataset: dataset, steps: 120, batchSize: 32, calibrationCount: 256))
        }
    }
}

extension GeneratorSettings {
    /// The main generators' training settings of a profile (VQ-Diffusion and VQ-AR alike).
    public static func main(_ profile: StudyProfile) -> GeneratorSettings {
        var s = GeneratorSettings()
        switch profile {
        case .paper, .preview:
            s.preset = "small"
            s.textEncoder = .minilm
            s.steps = 5000
            s.batchSize = 32
            s.warmupSteps = 300
            // λ = 0.1 rather than the paper's 5e-4: within 5,000 steps the auxiliary cross-entropy
            // on p(x0 | x_t) is what teaches the caption (Shapes, 1,000 test captions: FID 13.7
            // vs 18.0, colour 82 % vs 76 %, position 86 % vs 82 %).
            s.auxiliaryWeight = 0.1
        case .quick:
            s.preset = "tiny"
            s.textEncoder = .tiny
            s.trainCount = 512
            s.steps = 60
            s.batchSize = 16
            s.warmupSteps = 10
            s.learningRate = 1e-3
        }
        return s
    }
}

/// How generated images are measured.
public struct EvalSettings: Codable, Equatable, Sendable {
    /// Generated images (and as many real ones for the reference statistics; the floor uses
    /// another N real images).
    public var count: Int = 1000
    /// Generation batch size.
    public var batchSize: Int = 16
    /// Diffusion sampling steps and truncation.
    public var sampleSteps: Int = 25
    public var truncation: Double = 0.86
    /// The held-out split the captions and reference images come from.
    public var split: DatasetSplit = .test
    public var seed: UInt64 = 0
    /// Throughput measured at these batch sizes (empty: not measured).
    public var throughputBatches: [Int] = [1, 16]
    /// Seconds each throughput point is timed for (at least).
    public var throughputSeconds: Double = 2

    public init() {}

    public static func standard(_ profile: StudyProfile) -> EvalSettings {
        var e = EvalSettings()
        if profile == .quick {
            e.count = 48
            e.sampleSteps = 10
            e.throughputBatches = [4]
            e.throughputSeconds = 0.2
        }
        return e
    }
}

/// One sampling setting of a study's tuning grid: guidance, truncation and (VQ-AR) temperature and
/// top-k. The quality study records its choices as this JSON; the reparameterization study reads them.
public struct SamplingChoice: Codable, Equatable, Sendable {
    public var guidance: Double
    public var truncation: Double
    public var temperature: Float = 1
    public var topK: Int? = nil

    public init(guidance: Double, truncation: Double, temperature: Float = 1, topK: Int? = nil) {
        (self.guidance, self.truncation, self.temperature, self.topK) = (guidance, truncation, temperature, topK)
    }

    public func options(steps: Int) -> GeneratorSamplingOptions {
        var o = GeneratorSamplingOptions(steps: steps, truncation: truncation < 1 ? truncation : nil, temperature: temperature,
                                         topK: topK)
        o.guidance = guidance
        return o
    }

    public func label(_ family: GeneratorFamily) -> String {
        "guidance \(formatNumber(guidance, digits: 1)), " + (truncation < 1 ? "truncation \(truncation)" : "no truncation")
            + (family == .ar && temperature != 1 ? ", temperature \(temperature)" : "")
            + (family == .ar ? (topK.map { ", top-k \($0)" } ?? "") : "")
    }
}

/// What one evaluation of a generator measured (the numbers the studies compare).
public struct GeneratorScores: Sendable {
    public var fid: Double
    public var kid: Double
    public var floorFID: Double?
    /// Alignment fractions by name ("colour_and_shape", "class", …).
    public var alignment: [String: Double]
    /// Images per second by batch size.
    public var imagesPerSecond: [Int: Double]
    /// Parameters of the generator network.
    public var parameters: Int
}

extension StudyContext {
    /// Evaluates a trained generator file on `dataset`'s held-out split inside a measurement run
    /// named `name`: FID and KID in evaluator features, alignment, throughput, and (when
    /// `floor`) the real-data floor at the same N. Everything is logged to the run.
    public func evaluate(_ name: String, generator model: URL, dataset: DatasetModels, eval e: EvalSettings,
                         sampling: GeneratorSamplingOptions, floor: Bool, params: [String: String] = [:]) throws -> GeneratorScores {
        try evaluateWithReport(name, generator: model, dataset: dataset, eval: e, sampling: sampling, floor: floor,
                               params: params).scores
    }

    /// The params an evaluation logs of its data, evaluation and sampling settings: everything
    /// besides the model that decides the generated images and their scores (a recorded
    /// evaluation is matched on them, `GeneratorMeasurement.identity`).
    public static func evaluationParams(dataset: DatasetModels, eval e: EvalSettings,
                                        sampling: GeneratorSamplingOptions) -> [String: String] {
        ["dataset": dataset.vqvae.dataset.rawValue, "split": e.split.rawValue, "count": String(e.count),
         "seed": String(e.seed), "batch_size": String(e.batchSize), "sample_steps": String(sampling.steps),
         "truncation": sampling.truncation.map { String($0) } ?? "none", "skipping": sampling.skipping.rawValue,
         "start": sampling.startFromPrior ? "prior" : "all-mask", "guidance": String(sampling.guidance),
         "order": sampling.order.rawValue, "temperature": String(sampling.temperature),
         "top_k": sampling.topK.map(String.init) ?? "none", "kv_cache": String(sampling.useCache),
         "ema": String(sampling.useEMA)]
    }

    /// `evaluate`, also returning the report (with the evaluator features of both image sets).
    public func evaluateWithReport(_ name: String, generator model: URL, dataset: DatasetModels, eval e: EvalSettings,
                                   sampling: GeneratorSamplingOptions, floor: Bool, params: [String: String] = [:],
                                   whileOpen: ((Run, EvalReport) throws -> Void)? = nil)
        throws -> (scores: GeneratorScores, report: EvalReport) {
        let evaluatorURL = try store.model(dataset.evaluator)
        let vqvaeURL = try store.model(dataset.vqvae)
        let evaluator = try Evaluator.load(evaluatorURL)
        let heldOut = try DatasetSelection(source: dataset.vqvae.dataset, split: e.split, imageSize: dataset.vqvae.imageSize).open()
        let generator = try CheckpointGenerator(model: model, vqvae: vqvaeURL, options: sampling,
                                                cacheDirectory: store.textFeatureCache)
        var configuration = EvalConfiguration(count: e.count, batchSize: e.batchSize, seed: e.seed, measureFloor: floor)
        configuration.showProgress = showProgress
        configuration.throughput = e.throughputBatches.isEmpty ? nil
            : ThroughputMeter(batchSizes: e.throughputBatches, minimumSeconds: e.throughputSeconds)
        var all = params
        all["model"] = portablePath(model)
        all["evaluator"] = portablePath(evaluatorURL)
        all["vqvae"] = portablePath(vqvaeURL)
        all.merge(Self.evaluationParams(dataset: dataset, eval: e, sampling: sampling)) { $1 }
        all["parameters"] = String(generator.parameterCount)
        let report = try measure(name, params: all, seed: e.seed) { run in
            let report = try EvalRunner.measure(generator: generator, evaluator: evaluator, dataset: heldOut,
                                                configuration: configuration, run: run, params: [:])
            try whileOpen?(run, report)
            return report
        }
        guard let generated = report.generated else { throw MetricError("the evaluation produced no generated-image metrics") }
        var throughput: [Int: Double] = [:]
        for t in report.throughput { throughput[t.batchSize] = t.imagesPerSecond }
        let scores = GeneratorScores(fid: generated.fid.fid, kid: generated.kid.mean, floorFID: report.floor?.fid.fid,
                                     alignment: Dictionary(generated.alignment.scoredFractions.map { ($0.name, $0.fraction) },
                                                           uniquingKeysWith: { $1 }),
                                     imagesPerSecond: throughput, parameters: generator.parameterCount)
        return (scores, report)
    }

    /// Metric `key` of this study's latest finished measurement whose params include every one of
    /// `params`, if there is one: what an earlier run of the study (on this machine or another,
    /// the database being committed) measured, so that it need not be measured — nor its model
    /// trained — again.
    public func recordedMetric(_ key: String, params: [String: String]) throws -> Double? {
        guard let run = try recordedRun(params: params, metric: key) else { return nil }
        return try database.metric(runID: run, key: key).last?.value
    }

    /// The compute that trained `recipe`'s model, summed over its last chain of training runs in
    /// the database (a resumed model has several): GFLOP (the run's FLOPs per step × its steps), and the wall and
    /// CPU seconds of its steps. NaN where a run did not record them.
    public func trainingCompute(of recipe: some ModelRecipe) throws -> TrainingCompute {
        let runs = try database.withLock {
            try database.connection.query("""
                SELECT p.run_id FROM params p JOIN runs r ON r.id = p.run_id
                WHERE p.key = 'key' AND p.value = ? AND r.status IN ('FINISHED', 'KILLED', 'FAILED')
                ORDER BY r.start_ms
                """, [.text(recipe.key)]).compactMap { $0[0].text }
        }
        var total = TrainingCompute(gflop: 0, cpuSeconds: 0, wallSeconds: 0)
        guard !runs.isEmpty else { return TrainingCompute(gflop: .nan, cpuSeconds: .nan, wallSeconds: .nan) }
        // The model on disk is the last chain of runs: the latest one that started from step 0 and
        // those that resumed after it (a model trained again, its first copy lost with another
        // machine's cache, counts once).
        let chain = try runs.map { run in
            (run, Dictionary(try database.params(runID: run).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
        }
        let start = chain.lastIndex { (Int($0.1["resumed_from_step"] ?? "") ?? 0) == 0 } ?? 0
        for (run, params) in chain[start...] {
            let cpu = try database.metric(runID: run, key: "compute/cpu_seconds").last
            let wall = try database.metric(runID: run, key: "compute/wall_seconds").last
            let first = Int(params["resumed_from_step"] ?? "") ?? 0
            let steps = (cpu?.step ?? first) - first
            total.gflop += (Double(params["step_gflop"] ?? "") ?? .nan) * Double(steps)
            total.cpuSeconds += cpu?.value ?? .nan
            total.wallSeconds += wall?.value ?? .nan
        }
        return total
    }
}

/// What training a model cost.
public struct TrainingCompute: Sendable {
    public var gflop: Double
    public var cpuSeconds: Double
    public var wallSeconds: Double
}
