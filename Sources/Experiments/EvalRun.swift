import Engine
import Foundation
import VQDiffusion

/// The core of `vqd eval`: sample N images for a held-out split's captions, extract evaluator
/// features of them and of the split's real images, and report FID and KID (evaluator features),
/// alignment and throughput, logged as one run of experiment "eval".
public enum EvalRunner {
    /// The name every table and figure gives the FID computed here (docs/design.md §5).
    public static let fidName = "FID (evaluator features)"
    public static let experiment = "eval"

    /// Runs the evaluation. `generator` nil measures only the real floor (`measureFloor` must be
    /// on). `dataset` is the held-out split; `params` are logged with the run (dataset, split,
    /// evaluator file…). With a `database`, the run is logged under `runName` (default the
    /// generator's name, or "real-floor").
    public static func run(generator: (any ImageGenerator)?, evaluator: Evaluator, dataset: any CaptionedDataset,
                           configuration c: EvalConfiguration, database: ResultsDatabase? = nil,
                           runName: String? = nil, params: [String: String] = [:]) throws -> EvalReport {
        let N = c.count
        let e = evaluator.configuration
        guard N >= 2 else { throw MetricError("an evaluation needs at least 2 images (FID fits a covariance), got \(N)") }
        guard c.batchSize >= 1 else { throw MetricError("the generation batch size must be at least 1, got \(c.batchSize)") }
        guard generator != nil || c.measureFloor else {
            throw MetricError("nothing to measure: give a generator, or measure the real floor")
        }
        guard dataset.channels == e.channels, dataset.imageSize == e.imageSize else {
            throw MetricError("the dataset has \(dataset.channels)-channel \(dataset.imageSize)×\(dataset.imageSize) images, "
                + "the evaluator takes \(e.channels)-channel \(e.imageSize)×\(e.imageSize); use the evaluator trained on this dataset")
        }
        let needed = c.measureFloor ? 2 * N : N
        guard dataset.count >= needed else {
            throw MetricError("the split has \(dataset.count) images; \(c.measureFloor ? "the floor needs 2 × N = \(needed) (N reference + N held out)" : "N = \(N) are needed"). "
                + "Lower the count to \(c.measureFloor ? dataset.count / 2 : dataset.count) or less")
        }

        let run = try database?.startRun(experiment: experiment, name: runName ?? generator?.name ?? "real-floor",
                                         threads: BLAS.threads)
        guard let run else {
            return try measure(generator: generator, evaluator: evaluator, dataset: dataset, configuration: c, run: nil, params: params)
        }
        return try run.closing {
            try measure(generator: generator, evaluator: evaluator, dataset: dataset, configuration: c, run: $0, params: params)
        }
    }

    /// The evaluation itself, logging to `run` (which the caller starts and finishes).
    public static func measure(generator: (any ImageGenerator)?, evaluator: Evaluator, dataset: any CaptionedDataset,
                                configuration c: EvalConfiguration, run: Run?, params: [String: String]) throws -> EvalReport {
        let N = c.count
        let task = evaluator.configuration.task
        var allParams = params
        allParams["count"] = String(N)
        allParams["batch_size"] = String(c.batchSize)
        allParams["seed"] = String(c.seed)
        allParams["kid_subsets"] = String(c.kidSubsets)
        allParams["fid_features"] = "\(fidName): evaluator penultimate layer, \(evaluator.configuration.featureDimension)-d"
        allParams["evaluator_task"] = task.rawValue
        allParams["evaluator_feature_scale"] = String(evaluator.configuration.featureScale)
        if let generator {
            allParams["generator"] = generator.name
            allParams["generator_kind"] = generator.kind
        }
        run?.logParams(allParams)

        let loader = BatchLoader(dataset: dataset, batchSize: c.batchSize, shuffle: false, generator: RandomGenerator(seed: 0))
        let reference = try realSet(loader, indices: Array(0..<N), evaluator: evaluator)
        let root = RandomGenerator(seed: c.seed)

        var generated: EvalMetrics?
        var throughput: [ThroughputMeasurement] = []
        var features: [Float] = []
        if let generator {
            var rng = root.derived(1)
            var classes = [[Int]](repeating: [], count: evaluator.configuration.heads.count)
            let progress = c.showProgress ? ProgressBar(total: N, label: "generate") : nil
            var start = 0
            while start < N {
                let captions = Array(reference.captions[start..<min(N, start + c.batchSize)])
                let images = try Autograd.withoutGrad { try generator.generate(captions: captions, using: &rng) }
                try checkGenerated(images, count: captions.count, evaluator: evaluator, generator: generator)
                let (f, k) = evaluator.evaluate(images)
                features.append(contentsOf: f.values)
                for h in k.indices { classes[h].append(contentsOf: k[h]) }
                start += captions.count
                progress?.update(start)
            }
            progress?.finish()
            var kidRng = root.derived(2)
            generated = try metrics(features, classes: classes, captions: reference.captions, against: reference.features,
                                    evaluator: evaluator, configuration: c, using: &kidRng)
            log(generated!, prefix: "", to: run)

            if let meter = c.throughput {
                var timingRng = root.derived(3)
                throughput = try meter.measure { b in
                    let captions = (0..<b).map { reference.captions[$0 % reference.captions.count] }
                    _ = try Autograd.withoutGrad { try generator.generate(captions: captions, using: &timingRng) }
                }
                for t in throughput {
                    run?.logMetric("throughput/batch_\(t.batchSize)/images_per_second", t.imagesPerSecond)
                    run?.logMetric("throughput/batch_\(t.batchSize)/threads", Double(t.threads))
                }
            }
        }

        var floor: EvalMetrics?
        if c.measureFloor {
            let heldOut = try realSet(loader, indices: Array(N..<(2 * N)), evaluator: evaluator)
            var kidRng = root.derived(4)
            floor = try metrics(heldOut.features, classes: heldOut.classes, captions: heldOut.captions,
                                against: reference.features, evaluator: evaluator, configuration: c, using: &kidRng)
            log(floor!, prefix: "floor/", to: run)
        }
        try run?.flush()
        var report = EvalReport(generated: generated, floor: floor, throughput: throughput, runID: run?.id)
        report.generatedFeatures = features
        report.referenceFeatures = reference.features
        return report
    }

    /// Features (N·F), head classes and captions of real images.
    private static func realSet(_ loader: BatchLoader, indices: [Int], evaluator: Evaluator) throws
        -> (features: [Float], classes: [[Int]], captions: [String]) {
        var features: [Float] = []
        var classes = [[Int]](repeating: [], count: evaluator.configuration.heads.count)
        var captions: [String] = []
        let chunk = 256
        var start = 0
        while start < indices.count {
            let batch = loader.batch(indices: Array(indices[start..<min(indices.count, start + chunk)]))
            let (f, k) = evaluator.evaluate(batch.images)
            features.append(contentsOf: f.values)
            for h in k.indices { classes[h].append(contentsOf: k[h]) }
            captions.append(contentsOf: batch.captions)
            start += batch.count
        }
        return (features, classes, captions)
    }

    private static func metrics(_ features: [Float], classes: [[Int]], captions: [String], against reference: [Float],
                                evaluator: Evaluator, configuration c: EvalConfiguration,
                                using rng: inout RandomGenerator) throws -> EvalMetrics {
        let F = evaluator.configuration.featureDimension
        let (n, m) = (features.count / F, reference.count / F)
        let fid = try FID.compute(features, shape: [n, F], reference, shape: [m, F])
        let kid = try KID.compute(features, shape: [n, F], reference, shape: [m, F], subsets: c.kidSubsets,
                                  subsetSize: c.kidSubsetSize ?? max(2, min(1000, min(n, m) / 2)), using: &rng)
        let (scores, readings) = alignment(task: evaluator.configuration.task, headClasses: classes, captions: captions)
        return EvalMetrics(fid: fid, kid: kid, alignment: scores, shapeReadings: readings)
    }

    private static func log(_ m: EvalMetrics, prefix: String, to run: Run?) {
        guard let run else { return }
        run.logMetric(prefix + "fid", m.fid.fid)
        run.logMetric(prefix + "fid/mean_term", m.fid.meanTerm)
        run.logMetric(prefix + "fid/trace_term", m.fid.traceTerm)
        run.logMetric(prefix + "kid", m.kid.mean)
        run.logMetric(prefix + "kid/std", m.kid.std)
        for (name, fraction) in m.alignment.scoredFractions { run.logMetric(prefix + "alignment/" + name, fraction) }
        if let readings = m.shapeReadings {
            for (name, fraction) in readings.byShape.scoredFractions + readings.bySize.scoredFractions {
                run.logMetric(prefix + "alignment/shape/" + name, fraction)
            }
        }
    }

    private static func checkGenerated(_ images: Tensor, count: Int, evaluator: Evaluator, generator: any ImageGenerator) throws {
        let e = evaluator.configuration
        let expected = [count, e.channels, e.imageSize, e.imageSize]
        guard images.shape == expected else {
            throw MetricError("generator \"\(generator.name)\" returned images of shape \(images.shape) for \(count) captions; "
                + "the evaluator needs \(expected) (B, C, S, S)")
        }
        let p = images.pointer
        for i in 0..<images.count where !p[i].isFinite {
            throw MetricError("generator \"\(generator.name)\" returned a non-finite value at flat index \(i); check the sampler")
        }
    }
}
