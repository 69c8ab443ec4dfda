import ArgumentParser
import Foundation
import Experiments
import VQDiffusion

// Claim (paper Table 3): predicting x0 (the reparameterization) lets VQ-Diffusion skip steps —
// 100, 50 or 25 network evaluations from a model trained with T = 100 — and so run about 15×
// faster than VQ-AR at a better FID. Here the reparameterized model is sampled with 100, 50, 25
// and 10 steps (exact skip posterior and the reference code's approximation), the directly
// parameterized model with its 100 steps, and VQ-AR for the reference.
//
// The speed claim is also reread with the quality study's tuned models (both families with their
// chosen guidance and sampling, as the quality study recorded them), seed 0 at its middle budget
// (160,000 images) by default: the fewest diffusion steps whose FID is at or below VQ-AR's, and
// its images/s against VQ-AR's with and without the key/value cache at batch 1 and 16.
//
// Every evaluation keeps its evaluator features beside the database; one recorded that way is
// recalled rather than repeated (its FID and images/s included), so the study reruns after
// cloning without its models. Images/s are compared within one study run's measurements, which
// come from one machine unless a study stopped on one machine was continued on another.

struct ReparamStudy: Study {
    struct Configuration: Codable, Equatable {
        var steps: [Int]
        var shapes: DatasetModels
        /// Training of the three models (T = diffusionSteps; parameterization is set per model).
        var generator: GeneratorSettings
        var eval: EvalSettings
        /// Batch sizes of the tuned models' throughput (empty: the tuned comparison is left out).
        var tunedBatches: [Int]
        /// The tuned models' training budget in steps, seed 0 (unset: the budget the quality study
        /// made its choices at, its middle one).
        var tunedSteps: Int?
    }

    static let name = "reparam"

    static func configuration(_ profile: StudyProfile) -> Configuration {
        var eval = EvalSettings.standard(profile)
        eval.throughputBatches = profile == .paper ? [16] : [4]
        if profile == .paper { eval.count = 500 }
        return Configuration(steps: profile == .paper ? [100, 50, 25, 10] : [20, 10, 5],
                             shapes: .standard(.shapes, profile: profile),
                             generator: {
                                 var g = GeneratorSettings.main(profile)
                                 if profile == .quick { g.diffusionSteps = 20 }
                                 return g
                             }(), eval: eval, tunedBatches: profile == .paper ? [1, 16] : [1, 4],
                             tunedSteps: nil)
    }

    struct Point {
        var label: String
        var steps: Int
        var fid: Double
        var imagesPerSecond: Double
    }

    /// The reparameterized, the directly parameterized and the AR model.
    static func recipes(_ c: Configuration) -> (reparam: GeneratorRecipe, direct: GeneratorRecipe, ar: GeneratorRecipe) {
        var reparamSettings = c.generator
        reparamSettings.parameterization = .reparameterized
        var directSettings = c.generator
        directSettings.parameterization = .direct
        return (GeneratorRecipe(family: .diffusion, vqvae: c.shapes.vqvae, settings: reparamSettings),
                GeneratorRecipe(family: .diffusion, vqvae: c.shapes.vqvae, settings: directSettings),
                GeneratorRecipe(family: .ar, vqvae: c.shapes.vqvae, settings: c.generator))
    }

    /// What the study needs before it measures: the VQ-VAE and the evaluator. The generators are
    /// trained by `StudyContext.measure`, --jobs at a time, each group evaluated as soon as it is
    /// trained (those whose evaluations the database records with their features are not trained).
    static func prerequisites(_ c: Configuration, context: StudyContext) -> [StudyPrerequisite] {
        [StudyPrerequisite(c.shapes.vqvae), StudyPrerequisite(c.shapes.evaluator)]
    }

    /// How a skip posterior is named in the rows' labels: "exact" or "reference". (The runs'
    /// `skipping` and `kv_cache` params come from the sampling options, with the evaluation's
    /// identity.)
    static func skipName(_ skipping: StepSkipping) -> String { skipping == .exact ? "exact" : "reference" }

    /// One evaluation of the study: its row's label (the run's `method` param) and sampling steps.
    struct Row {
        var label: String
        var steps: Int
        var measurement: GeneratorMeasurement
    }

    /// The evaluations of the three models the study trains: the reparameterized model at every
    /// step count with the exact and (below T) the reference skip posterior, the directly
    /// parameterized model at T, and VQ-AR. The first also measures the real-data floor.
    static func untunedRows(_ c: Configuration) -> [Row] {
        let T = c.generator.diffusionSteps
        let (reparam, direct, ar) = recipes(c)
        var rows: [Row] = []
        func add(_ label: String, _ recipe: GeneratorRecipe, steps: Int, skipping: StepSkipping, notes: [String: String]) {
            let sampling = GeneratorSamplingOptions(steps: steps, truncation: c.eval.truncation, skipping: skipping)
            rows.append(Row(label: label, steps: steps, measurement: GeneratorMeasurement(
                name: "\(label) \(steps) steps", recipe: recipe, dataset: c.shapes, eval: c.eval, sampling: sampling,
                floor: rows.isEmpty, notes: notes.merging(["method": label]) { $1 })))
        }
        // With Δt = 1 the reference approximation is the exact posterior: only fewer steps differ.
        for skipping in [StepSkipping.exact, .referenceApproximation] {
            for steps in c.steps where skipping == .exact || steps < T {
                add("reparameterized, \(skipName(skipping)) skip", reparam, steps: steps, skipping: skipping,
                    notes: ["family": "diffusion", "parameterization": "reparameterized"])
            }
        }
        add("direct", direct, steps: T, skipping: .exact, notes: ["family": "diffusion", "parameterization": "direct"])
        add("VQ-AR", ar, steps: T, skipping: .exact, notes: ["family": "ar"])
        return rows
    }

    static func run(_ c: Configuration, context: StudyContext) throws -> ClaimsTable {
        let T = c.generator.diffusionSteps
        guard c.steps.allSatisfy({ $0 >= 1 && $0 <= T }) else {
            throw ConfigurationError("steps must lie in 1…\(T) (generator.diffusionSteps), got \(c.steps)")
        }
        let batch = c.eval.throughputBatches.last ?? c.eval.batchSize
        // The tuned models' budget is settled before the long evaluations, so a missing choice
        // stops the study at once.
        let tuned = c.tunedBatches.isEmpty ? nil : try tunedModels(c, context: context)
        let untuned = untunedRows(c)
        let tunedList = tuned.map { tunedRows($0.choices, steps: $0.steps, c) } ?? []
        // Trains the missing models --jobs at a time, evaluating each group as soon as it is
        // trained (the models on this machine first); evaluations the database records (with their
        // features) are recalled.
        let measured = try context.measure((untuned + tunedList).map(\.measurement))
        for (row, m) in zip(untuned + tunedList, measured) {
            print("\(row.measurement.name): FID \(formatNumber(m.scores.fid)), "
                  + m.scores.imagesPerSecond.sorted { $0.key < $1.key }.map { "\(formatNumber($0.value)) img/s (batch \($0.key))" }
                      .joined(separator: ", "))
        }
        let points = zip(untuned, measured).map { row, m in
            Point(label: row.label, steps: row.steps, fid: m.scores.fid, imagesPerSecond: m.scores.imagesPerSecond[batch] ?? .nan)
        }
        var table = claims(Array(points.dropLast()), ar: points.last!, T: T, batch: batch, configuration: c)
        if !c.tunedBatches.isEmpty {
            tunedComparison(tuned, rows: tunedList, scores: measured.suffix(tunedList.count).map(\.scores), c, into: &table)
        }
        return table
    }

    // MARK: The tuned models

    /// The quality study's choices and the tuned models' budget (`tunedSteps`, by default the
    /// budget the choices were made at: the quality study's middle one); nil when no quality
    /// study has made its choices.
    static func tunedModels(_ c: Configuration, context: StudyContext) throws -> (choices: QualityChoices, steps: Int)? {
        guard let chosen = try QualityChoices.latest(in: context.database, profile: context.profile.tuningSource) else { return nil }
        return (chosen, c.tunedSteps ?? chosen.diffusion.recipe.settings.steps)
    }

    /// The tuned models' evaluations (seed 0 of each family at `steps`, each with its chosen
    /// guidance and sampling): VQ-Diffusion at every step count up to its T with both skip
    /// posteriors, then VQ-AR with and without its key/value cache; images/s at `tunedBatches`.
    static func tunedRows(_ chosen: QualityChoices, steps tunedSteps: Int, _ c: Configuration) -> [Row] {
        var eval = c.eval
        eval.throughputBatches = c.tunedBatches
        let diffusion = chosen.diffusion.recipe(steps: tunedSteps, seed: 0)
        let ar = chosen.ar.recipe(steps: tunedSteps, seed: 0)
        let dSampling = chosen.diffusion.sampling.options(steps: GeneratorSamplingOptions().steps)
        let arSampling = chosen.ar.sampling.options(steps: GeneratorSamplingOptions().steps)
        func row(_ label: String, steps: Int, _ recipe: GeneratorRecipe, _ sampling: GeneratorSamplingOptions,
                 notes: [String: String]) -> Row {
            Row(label: label, steps: steps, measurement: GeneratorMeasurement(
                name: "tuned \(label) \(steps) steps", recipe: recipe, dataset: c.shapes, eval: eval, sampling: sampling,
                notes: notes.merging(["method": "tuned " + label, "tuned": "true", "quality_study_run": chosen.run]) { $1 }))
        }
        let T = diffusion.settings.diffusionSteps
        var rows: [Row] = []
        for steps in c.steps where steps <= T {
            for skipping in steps < T ? [StepSkipping.exact, .referenceApproximation] : [.exact] {
                var sampling = dSampling
                (sampling.steps, sampling.skipping) = (steps, skipping)
                rows.append(row("VQ-Diffusion, \(skipName(skipping)) skip", steps: steps, diffusion, sampling,
                                notes: ["family": "diffusion"]))
            }
        }
        rows.append(row("VQ-AR, key/value cache", steps: T, ar, arSampling, notes: ["family": "ar"]))
        var uncached = arSampling
        uncached.useCache = false
        rows.append(row("VQ-AR, no cache", steps: T, ar, uncached, notes: ["family": "ar"]))
        return rows
    }

    static func tunedComparison(_ tuned: (choices: QualityChoices, steps: Int)?, rows: [Row], scores: [GeneratorScores],
                                _ c: Configuration, into table: inout ClaimsTable) {
        let claim = "Faster than VQ-AR at a better FID, both tuned"
        let paper = "about 15× (VQ-Diffusion-S 1.25 img/s at 25 steps vs VQ-AR-S 0.08 img/s, V100)"
        guard let tuned, rows.count >= 2 else {
            table.notes.append("The tuned comparison needs the quality study's choices: run `make study-quality` first.")
            return
        }
        let (chosen, tunedSteps) = tuned
        let cached = scores[scores.count - 2], uncached = scores[scores.count - 1]
        let diffusionRows = zip(rows.dropLast(2), scores).map {
            (label: "VQ-Diffusion \($0.steps) steps, \(skipName($0.measurement.sampling.skipping)) skip", steps: $0.steps, scores: $1)
        }
        let qualifying = diffusionRows.filter { $0.scores.fid <= cached.fid }.sorted { ($0.steps, $0.scores.fid) < ($1.steps, $1.scores.fid) }
        let rate = { (s: GeneratorScores, b: Int) in s.imagesPerSecond[b] ?? .nan }
        let ours: String, verdict: Verdict, reason: String
        if let best = qualifying.first {
            let ratios = c.tunedBatches.map { b in
                String(format: "batch %d: %.1f× cached, %.1f× uncached", b, rate(best.scores, b) / rate(cached, b),
                       rate(best.scores, b) / rate(uncached, b))
            }
            let speedUp = c.tunedBatches.map { rate(best.scores, $0) / rate(cached, $0) }.max() ?? .nan
            ours = "\(best.label) (FID \(formatNumber(best.scores.fid)) vs VQ-AR \(formatNumber(cached.fid))): " + ratios.joined(separator: "; ")
            verdict = speedUp >= 10 ? .reproduced : (speedUp > 1 ? .partly : .not)
            reason = verdict == .reproduced ? "The fewest steps at VQ-AR's FID run ≥ 10× faster than cached VQ-AR."
                : "Against VQ-AR with its key/value cache the speed-up is \(formatNumber(speedUp, digits: 1))× at most."
        } else {
            ours = "no step count reaches VQ-AR's FID \(formatNumber(cached.fid)) (best \(formatNumber(diffusionRows.map(\.scores.fid).min() ?? .nan)))"
            (verdict, reason) = (.not, "Every diffusion setting has a worse FID than the tuned VQ-AR.")
        }
        table.add(claim, paper: paper, ours: ours, verdict: verdict, reason: reason)
        var lines = ["", "Tuned models (quality study run \(chosen.run), \(formatNumber(Double(tunedSteps * chosen.diffusion.recipe.settings.batchSize), digits: 0)) images):", "",
                     "| model | FID | " + c.tunedBatches.map { "img/s (batch \($0))" }.joined(separator: " | ") + " |",
                     "|---|---|" + c.tunedBatches.map { _ in "---|" }.joined()]
        for (label, scores) in diffusionRows.map({ ($0.label, $0.scores) }) + [("VQ-AR, key/value cache", cached), ("VQ-AR, no cache", uncached)] {
            lines.append("| \(label) | \(formatNumber(scores.fid)) | " + c.tunedBatches.map { formatNumber(rate(scores, $0)) }.joined(separator: " | ") + " |")
        }
        table.details += "\n" + lines.joined(separator: "\n")
    }

    static func claims(_ points: [Point], ar: Point, T: Int, batch: Int, configuration c: Configuration) -> ClaimsTable {
        var table = ClaimsTable()
        let exact = points.filter { $0.label == "reparameterized, exact skip" }
        let atT = exact.first { $0.steps == T }
        let fewer = exact.filter { $0.steps < T }.sorted { $0.steps > $1.steps }
        if let atT, let quarter = fewer.first(where: { $0.steps == T / 4 }) ?? fewer.last {
            let ratio = quarter.fid / atT.fid
            let v: Verdict = ratio <= 1.3 ? .reproduced : (ratio <= 2 ? .partly : .not)
            table.add("Skipping steps costs little FID",
                      paper: "S: 100/50/25 steps → FID 12.97/13.62/15.46 (+19 % at 25)",
                      ours: exact.map { String(format: "%d → %.2f", $0.steps, $0.fid) }.joined(separator: ", "),
                      verdict: v,
                      reason: String(format: "FID at %d steps is %.2f× that at %d steps.", quarter.steps, ratio, T))
        }
        let qualifying = points.filter { $0.label.hasPrefix("reparameterized") && $0.fid <= ar.fid && $0.imagesPerSecond.isFinite }
        let bestSpeedUp = qualifying.map { $0.imagesPerSecond / ar.imagesPerSecond }.max()
        let speedVerdict: Verdict
        if let s = bestSpeedUp { speedVerdict = s >= 10 ? .reproduced : (s > 1 ? .partly : .not) } else { speedVerdict = .not }
        table.add("Faster than VQ-AR at a better FID",
                  paper: "about 15× (VQ-Diffusion-S 1.25 img/s at 25 steps vs VQ-AR-S 0.08 img/s, V100)",
                  ours: bestSpeedUp.map { String(format: "%.1f× (AR FID %.2f at %.2f img/s)", $0, ar.fid, ar.imagesPerSecond) }
                      ?? String(format: "no setting reaches AR's FID %.2f", ar.fid),
                  verdict: speedVerdict,
                  reason: bestSpeedUp == nil ? "Every reparameterized setting has a worse FID than VQ-AR here."
                      : speedVerdict == .reproduced ? "A step count with FID at least as good as AR's runs ≥ 10× faster."
                      : "On a CPU with an 8×8 grid the cached AR decoder is cheap (64 tokens), so the speed-up is smaller.")
        if let d = points.first(where: { $0.label == "direct" }), let atT {
            let v: Verdict = atT.fid <= d.fid ? .reproduced : .not
            table.add("Predicting x0 is at least as good as predicting x_{t−1}",
                      paper: "reparameterization improves FID (Sec. 4.3)",
                      ours: String(format: "%d steps: reparameterized %.2f vs direct %.2f", T, atT.fid, d.fid),
                      verdict: v,
                      reason: v == .reproduced ? "The x0-predicting model has the lower FID at the same steps."
                                               : "The directly parameterized model has the lower FID here.")
        }
        var lines = ["| model | steps | FID | img/s (batch \(batch)) |", "|---|---|---|---|"]
        for p in points + [ar] { lines.append(String(format: "| %@ | %d | %.2f | %.2f |", p.label as NSString, p.steps, p.fid, p.imagesPerSecond)) }
        table.details = lines.joined(separator: "\n")
        table.notes = ["Models trained with T = \(T), \(c.generator.preset) preset, \(c.generator.steps) steps; \(c.eval.count) test captions, "
                       + "truncation \(c.eval.truncation); VQ-AR's row shows its one setting (steps do not apply)."]
        return table
    }
}

@main
struct ReparamStudyCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "study-reparam",
        abstract: "Fast inference with the x0 reparameterization: FID and images/s against steps (paper Table 3).",
        discussion: """
            Trains (or reuses) the reparameterized and the directly parameterized VQ-Diffusion models \
            and VQ-AR, samples with fewer steps (exact and reference skip posteriors), logs FID and \
            images per second of each setting (experiment study-reparam) and prints the claims table \
            (also results/claims-reparam.md). Then rereads the speed claim with the quality study's \
            tuned models (--tunedSteps sets their budget; --tunedBatches [] leaves it out). --jobs N \
            trains N models at a time, each group evaluated as soon as it is trained; evaluations \
            recorded with their features are recalled, not repeated (--remeasure repeats them).
            """)

    @OptionGroup var options: StudyOptions

    func run() throws { try options.run(ReparamStudy.self) }

    /// Joins the MPI job first when mpirun started this process (a --mpi-ranks training child).
    static func main() { mainJoiningMPI() }
}
