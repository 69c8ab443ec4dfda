import ArgumentParser
import Foundation
import Engine
import Experiments
import VQDiffusion

// Claim (paper Tables 1 and 3): VQ-Diffusion gives better images than an autoregressive model of
// similar size trained on the same tokens (CUB-200 FID 12.97 vs 18.12, S models).
//
// The protocol, fixed before the runs (the configuration below holds every number of it):
//
// - Both families train on the same VQ-VAE tokens and the same frozen MiniLM text features, with
//   parameters within ±2 % (VQ-AR's MLP width is matched to the diffusion model), batch 32,
//   caption dropout 0.1 (so both can use classifier-free guidance), the same optimizer, EMA and
//   cosine schedule; the warm-up is a fixed fraction of each model's steps.
// - Budgets in images seen: 80,000, 160,000 and 320,000 (2,500 / 5,000 / 10,000 steps). Every
//   model's training FLOPs and CPU-seconds are recorded beside it.
// - Tuning, the same effort for both, at the smallest budget, seed 0, on the first 300 Shapes
//   val captions against 300 real val images, selecting on FID (evaluator features):
//   1. six training trials per family: learning rate {5e-4, 1e-3, 2e-3} × the family's main
//      knob (VQ-Diffusion: auxiliary weight λ {0.1, 1}; VQ-AR: EMA decay {0.999, 0.995}), each
//      sampled with the same reference setting (guidance 2, truncation 0.86);
//   2. six sampling settings per family on the chosen trial: guidance {1, 2, 3} × (VQ-Diffusion:
//      truncation {0.86, 1}; VQ-AR: truncation 0.86, or temperature 0.9 with top-k 32).
// - The chosen recipe of each family is trained at every budget with seeds {0, 1} and evaluated
//   once on the first 1,000 test captions against 1,000 real test images, with the real-data
//   floor (FID of 1,000 other real images). At each budget a bootstrap (1,000 replicates,
//   resampling every model's generated features and the real features) gives a 95 % interval
//   for the difference of the families' seed-mean FIDs.
// - Also reported: the paper's own recipe (λ = 5e-4, learning rate 5e-4, no caption dropout, no
//   guidance) for both families at 160,000 images, and Fashion-MNIST at 160,000 images with the
//   tuned recipes (seed 0). Beyond the paper, reported apart: both tuned recipes with a 3×3
//   depthwise convolution over the token grid in every MLP (VQ-AR's causal, reading only the row
//   above and the left neighbour) at 320,000 images, seed 0. An engine check: the tuned
//   VQ-Diffusion recipe at 160,000 images, seed 0, trained and sampled with bf16 operands, against
//   the spread of its fp32 seeds (left out where the machine cannot run bf16). And compositional
//   generalization: the largest budget's seed-0 models of both families on the Shapes novel
//   split (colour–shape pairs never seen in training), alignment beside the test split's.
// - Verdict: reproduced when VQ-Diffusion's FID is lower at the largest budget with the interval
//   excluding 0; partly when the families cross (each is ahead, outside the noise, at some
//   budget); not reproduced otherwise.

struct QualityStudy: Study {
    static let name = "quality"

    struct Configuration: Codable, Equatable {
        var shapes: DatasetModels, fashion: DatasetModels
        /// What every model of both families shares; learning rate, the family's knob, steps,
        /// warm-up and seed are set per model (the diffusion-only fields do not apply to VQ-AR).
        var generator: GeneratorSettings
        var budgets: QualityBudgets
        var tuning: QualityTuning
        /// The test evaluation.
        var eval: EvalSettings

        /// The tuning evaluation: the test's settings on the first `tuning.valCount` val captions.
        var validation: EvalSettings {
            var val = eval
            (val.count, val.split) = (tuning.valCount, .val)
            return val
        }
    }

    static func configuration(_ profile: StudyProfile) -> Configuration {
        var generator = GeneratorSettings.main(profile)
        generator.captionDropout = 0.1
        var eval = EvalSettings.standard(profile)
        eval.throughputBatches = []
        switch profile {
        case .paper, .preview:
            return Configuration(shapes: .standard(.shapes, profile: profile), fashion: .standard(.fashion, profile: profile),
                                 generator: generator, budgets: QualityBudgets(), tuning: QualityTuning(), eval: eval)
        case .quick:
            var tuning = QualityTuning()
            tuning.steps = 30
            tuning.valCount = 32
            tuning.learningRates = [1e-3, 2e-3]
            tuning.auxiliaryWeights = [0.1]
            tuning.emaDecays = [0.99]
            tuning.guidanceScales = [1, 2]
            tuning.diffusionTruncations = [0.86]
            tuning.arDraws = [ARDraw(truncation: 0.86)]
            let budgets = QualityBudgets(steps: [30, 60], warmupFraction: 0.1, bootstrapReplicates: 50, paper: 60, fashion: 30,
                                         grid: 30, bf16: 60)
            return Configuration(shapes: .standard(.shapes, profile: profile), fashion: .standard(.fashion, profile: profile),
                                 generator: generator, budgets: budgets, tuning: tuning, eval: eval)
        }
    }

    // MARK: Recipes

    /// `settings` with a budget of `steps`, its warm-up scaled to it, and `seed`.
    static func scaled(_ settings: GeneratorSettings, steps: Int, seed: Int, _ c: Configuration) -> GeneratorSettings {
        var s = settings
        s.steps = steps
        s.warmupSteps = max(1, Int((c.budgets.warmupFraction * Double(steps)).rounded()))
        s.seed = UInt64(seed)
        return s
    }

    /// The training trials of `family` at the tuning budget, seed `seeds[0]`.
    static func trials(_ family: GeneratorFamily, _ c: Configuration) -> [Trial] {
        c.tuning.learningRates.flatMap { lr in
            family == .diffusion
                ? c.tuning.auxiliaryWeights.map { Trial(learningRate: lr, auxiliaryWeight: $0) }
                : c.tuning.emaDecays.map { Trial(learningRate: lr, emaDecay: $0) }
        }
    }

    static func recipe(_ family: GeneratorFamily, _ trial: Trial, steps: Int, seed: Int, dataset: DatasetModels,
                       _ c: Configuration) -> GeneratorRecipe {
        GeneratorRecipe(family: family, vqvae: dataset.vqvae,
                        settings: scaled(trial.applied(to: c.generator), steps: steps, seed: seed, c))
    }

    /// The paper's recipe: the shared settings with the library's paper defaults for learning
    /// rate, λ and EMA, and no caption dropout.
    static func paperRecipe(_ family: GeneratorFamily, _ c: Configuration) -> GeneratorRecipe {
        let paper = GeneratorSettings()
        var s = c.generator
        (s.learningRate, s.auxiliaryWeight, s.emaDecay, s.captionDropout) = (paper.learningRate, paper.auxiliaryWeight,
                                                                            paper.emaDecay, 0)
        return GeneratorRecipe(family: family, vqvae: c.shapes.vqvae,
                               settings: scaled(s, steps: c.budgets.paper, seed: c.budgets.seeds[0], c))
    }

    /// The first stage's models: what `--jobs` can train before the study knows its choices — the
    /// training trials whose val FID is not yet recorded.
    static func prerequisites(_ c: Configuration, context: StudyContext) throws -> [StudyPrerequisite] {
        var trialModels: [StudyPrerequisite] = []
        for family in GeneratorFamily.allCases {
            for trial in trials(family, c) {
                let recipe = recipe(family, trial, steps: c.tuning.steps, seed: c.budgets.seeds[0], dataset: c.shapes, c)
                if try recordedTuningFID(context, recipe, sampling: c.tuning.reference, eval: c.validation, stage: "tune-training") == nil {
                    trialModels.append(StudyPrerequisite(recipe))
                }
            }
        }
        return [StudyPrerequisite(c.shapes.vqvae), StudyPrerequisite(c.shapes.evaluator)] + trialModels
    }

    // MARK: Run

    static func run(_ c: Configuration, context: StudyContext) throws -> ClaimsTable {
        guard !c.budgets.steps.isEmpty, !c.budgets.seeds.isEmpty else { throw ConfigurationError("budgets and seeds must not be empty") }
        try context.prepare(try prerequisites(c, context: context))
        let val = c.validation

        // The budget of the largest models, which the studies built on the choices read by default.
        context.studyRun.logParams([QualityChoices.largestStepsParam: String(c.budgets.steps.last!)])

        // 1. Training trials, 2. sampling settings: each family alike, on val.
        var chosen: [GeneratorFamily: (trial: Trial, sampling: SamplingChoice)] = [:]
        var tuningRows: [String] = []
        for family in GeneratorFamily.allCases {
            var best: (trial: Trial, fid: Double)?
            for trial in trials(family, c) {
                let recipe = recipe(family, trial, steps: c.tuning.steps, seed: c.budgets.seeds[0], dataset: c.shapes, c)
                let fid = try tuningFID(context, recipe, sampling: c.tuning.reference, eval: val, stage: "tune-training",
                                        extra: trial.logged, c)
                tuningRows.append("| \(family.label) | training | \(trial.label(family)) | \(c.tuning.reference.label(family)) | \(formatNumber(fid)) |")
                if best == nil || fid < best!.fid { best = (trial, fid) }
            }
            let trial = best!.trial
            let recipe = recipe(family, trial, steps: c.tuning.steps, seed: c.budgets.seeds[0], dataset: c.shapes, c)
            var bestSampling: (choice: SamplingChoice, fid: Double)?
            for choice in c.tuning.samplingGrid(family) {
                let fid = try tuningFID(context, recipe, sampling: choice, eval: val, stage: "tune-sampling", extra: trial.logged, c)
                tuningRows.append("| \(family.label) | sampling | \(trial.label(family)) | \(choice.label(family)) | \(formatNumber(fid)) |")
                if bestSampling == nil || fid < bestSampling!.fid { bestSampling = (choice, fid) }
            }
            chosen[family] = (trial, bestSampling!.choice)
            // What other studies reuse (QualityChoices reads them).
            let middle = Self.recipe(family, trial, steps: c.budgets.steps[c.budgets.steps.count / 2], seed: c.budgets.seeds[0],
                                dataset: c.shapes, c)
            context.studyRun.logParams(["chosen_\(family.rawValue)_training": trial.label(family),
                                        "chosen_\(family.rawValue)_sampling": bestSampling!.choice.label(family),
                                        QualityChoices.samplingParam(family): try sortedJSON(bestSampling!.choice),
                                        QualityChoices.recipeParam(family): try RecipeFile(middle).json()])
        }

        // 3. The chosen recipes at every budget and seed, on test.
        var budgetModels: [GeneratorRecipe] = []
        for steps in c.budgets.steps { for seed in c.budgets.seeds { for family in GeneratorFamily.allCases {
            budgetModels.append(recipe(family, chosen[family]!.trial, steps: steps, seed: seed, dataset: c.shapes, c))
        } } }
        let fashionModels = c.budgets.fashion > 0
            ? GeneratorFamily.allCases.map { recipe($0, chosen[$0]!.trial, steps: c.budgets.fashion, seed: c.budgets.seeds[0], dataset: c.fashion, c) }
            : []
        let gridModels: [GeneratorRecipe] = c.budgets.grid > 0 ? GeneratorFamily.allCases.map { family in
            var r = recipe(family, chosen[family]!.trial, steps: c.budgets.grid, seed: c.budgets.seeds[0], dataset: c.shapes, c)
            r.settings.gridConvolution = true
            return r
        } : []
        let bf16Model: GeneratorRecipe? = {
            guard c.budgets.bf16 > 0 else { return nil }
            do { try ComputePolicy.check(.bf16) } catch {
                print("the bf16 check is left out: \(error)")
                return nil
            }
            var r = recipe(.diffusion, chosen[.diffusion]!.trial, steps: c.budgets.bf16, seed: c.budgets.seeds[0], dataset: c.shapes, c)
            r.settings.precision = .bf16
            return r
        }()
        let paperModels = c.budgets.paper > 0 ? GeneratorFamily.allCases.map { paperRecipe($0, c) } : []
        let novelModels = c.budgets.novel
            ? GeneratorFamily.allCases.map { recipe($0, chosen[$0]!.trial, steps: c.budgets.steps.last!, seed: c.budgets.seeds[0], dataset: c.shapes, c) }
            : []
        var novelEval = c.eval
        novelEval.split = .novel

        // Every evaluation, in the order the models train: each group of --jobs models is
        // evaluated as soon as it is trained, and what the database records is recalled.
        var plan: [GeneratorMeasurement] = []
        func add(_ recipe: GeneratorRecipe, _ sampling: SamplingChoice, eval: EvalSettings, dataset: DatasetModels, stage: String,
                 floor: Bool = false, precision: Precision? = nil) {
            plan.append(measurement(recipe, sampling: sampling, eval: eval, dataset: dataset, stage: stage, floor: floor,
                                    precision: precision))
        }
        for (i, recipe) in budgetModels.enumerated() {
            add(recipe, chosen[recipe.family]!.sampling, eval: c.eval, dataset: c.shapes, stage: "test", floor: i == 0)
            if novelModels.contains(recipe) {
                add(recipe, chosen[recipe.family]!.sampling, eval: novelEval, dataset: c.shapes, stage: "novel")
            }
        }
        for recipe in paperModels {
            add(recipe, SamplingChoice(guidance: 1, truncation: c.eval.truncation), eval: c.eval, dataset: c.shapes, stage: "paper-recipe")
        }
        for recipe in fashionModels {
            add(recipe, chosen[recipe.family]!.sampling, eval: c.eval, dataset: c.fashion, stage: "fashion", floor: recipe.family == .diffusion)
        }
        for recipe in gridModels {
            add(recipe, chosen[recipe.family]!.sampling, eval: c.eval, dataset: c.shapes, stage: "grid-convolution")
        }
        if let bf16Model {
            add(bf16Model, chosen[.diffusion]!.sampling, eval: c.eval, dataset: c.shapes, stage: "bf16", precision: .bf16)
        }
        var measured = try zip(plan, context.measure(plan)).map { m, result in
            (stage: m.params["stage"]!, family: m.recipe.family, recipe: m.recipe,
             measured: Measured(scores: result.scores, generatedFeatures: result.generatedFeatures,
                                referenceFeatures: result.referenceFeatures, compute: try context.trainingCompute(of: m.recipe)))
        }[...]
        func next(_ stage: String) -> Measured {
            let i = measured.firstIndex { $0.stage == stage }!
            return measured.remove(at: i).measured
        }

        var points: [BudgetPoint] = []
        var floor = Double.nan
        for steps in c.budgets.steps {
            var point = BudgetPoint(steps: steps, images: steps * c.generator.batchSize)
            for _ in c.budgets.seeds { for family in GeneratorFamily.allCases {
                let m = next("test")
                if let f = m.scores.floorFID { floor = f }
                point.models[family, default: []].append(m)
            } }
            point.difference = try familyDifference(point.models[.diffusion]!, point.models[.ar]!, c)
            context.studyRun.logMetric("fid_difference/\(steps)", point.difference.estimate)
            context.studyRun.logMetric("fid_difference_low/\(steps)", point.difference.low)
            context.studyRun.logMetric("fid_difference_high/\(steps)", point.difference.high)
            points.append(point)
        }
        var novel: [GeneratorFamily: Measured] = [:], paper: [GeneratorFamily: Measured] = [:]
        var fashion: [GeneratorFamily: Measured] = [:], grid: [GeneratorFamily: Measured] = [:]
        var bf16: [GeneratorFamily: Measured] = [:]
        for recipe in novelModels { novel[recipe.family] = next("novel") }
        for recipe in paperModels { paper[recipe.family] = next("paper-recipe") }
        for recipe in fashionModels { fashion[recipe.family] = next("fashion") }
        for recipe in gridModels { grid[recipe.family] = next("grid-convolution") }
        if bf16Model != nil { bf16[.diffusion] = next("bf16") }
        var table = claims(points, floor: floor, extra: [("paper's recipe", c.budgets.paper, paper, "colour_and_shape"),
                                                         ("Fashion-MNIST", c.budgets.fashion, fashion, "class"),
                                                         ("grid convolution (not in the paper)", c.budgets.grid, grid, "colour_and_shape"),
                                                         ("bf16 operands (engine check)", c.budgets.bf16, bf16, "colour_and_shape"),
                                                         ("novel colour–shape pairs", points.last!.steps, novel, "colour_and_shape")],
                           chosen: chosen, tuningRows: tuningRows, c)
        if !novel.isEmpty, let largest = points.last {
            table.notes.append(novelNote(novel, test: largest))
        }
        if grid.count == GeneratorFamily.allCases.count {
            table.notes.append(gridNote(grid, plain: points.first { $0.steps == c.budgets.grid }, images: c.budgets.grid * c.generator.batchSize,
                                        difference: try familyDifference([grid[.diffusion]!], [grid[.ar]!], c)))
        }
        if let half = bf16[.diffusion], let point = points.first(where: { $0.steps == c.budgets.bf16 }) {
            table.notes.append(bf16Note(half, fp32: point.models[.diffusion]!, images: point.images))
        }
        return table
    }

    /// Alignment on novel captions against the same models on test captions, per family.
    static func novelNote(_ novel: [GeneratorFamily: Measured], test point: BudgetPoint) -> String {
        let parts = GeneratorFamily.allCases.compactMap { family -> String? in
            guard let n = novel[family], let t = point.models[family]?.first else { return nil }
            let (onNovel, onTest) = (n.colourAndShape, t.colourAndShape)
            return "\(family.label) \(formatPercent(onNovel)) (test \(formatPercent(onTest)), FID \(formatNumber(n.scores.fid)))"
        }
        return "Compositional generalization (not in the paper): at \(formatThousands(point.images)) images, seed 0, colour and "
            + "shape matched on captions with colour–shape pairs never seen in training: " + parts.joined(separator: "; ") + "."
    }

    /// Beyond the paper: the grid-convolution pair's FIDs and alignments, their difference with a
    /// bootstrap interval, and each beside the plain seed-0 model of its family at the same budget
    /// (when the budget is one of the study's).
    static func gridNote(_ grid: [GeneratorFamily: Measured], plain: BudgetPoint?, images: Int, difference: FIDDifference) -> String {
        let parts = GeneratorFamily.allCases.map { family -> String in
            let g = grid[family]!
            var part = "\(family.label) FID \(formatNumber(g.scores.fid)), colour and shape "
                + formatPercent(g.colourAndShape)
            if let p = plain?.models[family]?.first {
                part += " (plain MLP, seed 0: \(formatNumber(p.scores.fid)), \(formatPercent(p.colourAndShape)))"
            }
            return part
        }
        return "Grid convolution (not in the paper; VQ-AR's causal): at \(formatThousands(images)) images, seed 0: "
            + parts.joined(separator: "; ") + "; " + describe(difference) + "."
    }

    /// The bootstrap difference of the families' mean FIDs (VQ-Diffusion − VQ-AR), every model
    /// scored against the same real set.
    static func familyDifference(_ diffusion: [Measured], _ ar: [Measured], _ c: Configuration) throws -> FIDDifference {
        try FIDDifference.bootstrap(diffusion.map(\.generatedFeatures), ar.map(\.generatedFeatures),
                                    reference: diffusion[0].referenceFeatures,
                                    dimension: diffusion[0].referenceFeatures.count / c.eval.count,
                                    replicates: c.budgets.bootstrapReplicates, seed: c.eval.seed)
    }

    /// "difference 5.70, 95 % interval [3.89, 7.30]".
    static func describe(_ difference: FIDDifference) -> String {
        "difference \(formatNumber(difference.estimate)), 95 % interval "
            + "[\(formatNumber(difference.low)), \(formatNumber(difference.high))]"
    }

    /// Whether the bf16 model's FID and alignment lie within the spread of the fp32 seeds, or are
    /// no worse than the worse of them (both evaluated with the fp32 evaluator).
    static func bf16Note(_ half: Measured, fp32: [Measured], images: Int) -> String {
        func range(_ xs: [Double]) -> ClosedRange<Double> { xs.min()!...xs.max()! }
        let fids = range(fp32.map(\.scores.fid))
        let alignments = range(fp32.map { $0.colourAndShape })
        let (fid, alignment) = (half.scores.fid, half.colourAndShape)
        let within = fids.contains(fid) && alignments.contains(alignment)
        let noWorse = fid <= fids.upperBound && alignment >= alignments.lowerBound
        return "Engine check, bf16 operands: VQ-Diffusion at \(formatThousands(images)) images trained and sampled in bf16 reads "
            + "FID \(formatNumber(fid)) and alignment \(formatPercent(alignment)) against \(formatNumber(fids.lowerBound))–"
            + "\(formatNumber(fids.upperBound)) and \(formatPercent(alignments.lowerBound))–\(formatPercent(alignments.upperBound)) "
            + "for its fp32 seeds: " + (within ? "within their spread, no quality lost."
                : noWorse ? "no worse than the worse fp32 seed on either, no quality lost."
                : "worse than both fp32 seeds on FID or alignment: quality lost.")
    }

    /// A generator's evaluation with what the study needs of it.
    struct Measured {
        var scores: GeneratorScores
        var generatedFeatures: [Float]
        var referenceFeatures: [Float]
        var compute: TrainingCompute

        /// The fraction of stated objects whose colour and shape the evaluator reads right.
        var colourAndShape: Double { scores.alignment["colour_and_shape"] ?? .nan }
    }

    /// The evaluation of `recipe`'s model at `stage`: identified by the stage (and the recipe and
    /// settings), described by the training and sampling it was given; sampled in `precision`
    /// (nil: the process's).
    static func measurement(_ recipe: GeneratorRecipe, sampling: SamplingChoice, eval: EvalSettings, dataset: DatasetModels,
                            stage: String, floor: Bool = false, precision: Precision? = nil,
                            notes extra: [String: String] = [:]) -> GeneratorMeasurement {
        let family = recipe.family
        var m = GeneratorMeasurement(name: "\(family.rawValue) \(stage) \(recipe.settings.steps) steps seed \(recipe.settings.seed)",
                                     recipe: recipe, dataset: dataset, eval: eval, sampling: sampling.options(steps: eval.sampleSteps),
                                     floor: floor, params: ["stage": stage], precision: precision)
        m.notes = ["family": family.rawValue, "training_steps": String(recipe.settings.steps),
                   "images_seen": String(recipe.settings.steps * recipe.settings.batchSize),
                   "training_seed": String(recipe.settings.seed), "learning_rate": String(recipe.settings.learningRate),
                   "sampling": sampling.label(family)]
        if m.precision != .fp32 { m.notes["precision"] = m.precision.rawValue }
        m.notes.merge(extra) { $1 }
        return m
    }

    /// A tuning evaluation's val FID: the one an earlier run of the study recorded in the database
    /// when there is one (the trial's model is then not needed, so a study stopped after its
    /// tuning continues on another machine without retraining the trials), else measured now.
    static func tuningFID(_ context: StudyContext, _ recipe: GeneratorRecipe, sampling: SamplingChoice, eval: EvalSettings,
                          stage: String, extra: [String: String], _ c: Configuration) throws -> Double {
        let family = recipe.family
        if let fid = try recordedTuningFID(context, recipe, sampling: sampling, eval: eval, stage: stage) {
            print("\(family.rawValue) \(stage) \(extra.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), "
                  + "\(sampling.label(family)): val FID \(formatNumber(fid)), recorded by an earlier run of the study")
            return fid
        }
        let m = measurement(recipe, sampling: sampling, eval: eval, dataset: c.shapes, stage: stage, notes: extra)
        return try context.measure([m])[0].scores.fid
    }

    /// The val FID of a tuning evaluation recorded in the database, if any.
    static func recordedTuningFID(_ context: StudyContext, _ recipe: GeneratorRecipe, sampling: SamplingChoice,
                                  eval: EvalSettings, stage: String) throws -> Double? {
        try context.recordedMetric("fid", params: [
            "stage": stage, "recipe": recipe.key, "sampling": sampling.label(recipe.family), "split": eval.split.rawValue,
            "count": String(eval.count), "seed": String(eval.seed), "sample_steps": String(eval.sampleSteps)])
    }

    // MARK: Claims

    struct BudgetPoint {
        var steps: Int
        var images: Int
        var models: [GeneratorFamily: [Measured]] = [:]
        var difference = FIDDifference.unknown

        func meanFID(_ family: GeneratorFamily) -> Double {
            let fids = models[family]!.map(\.scores.fid)
            return fids.reduce(0, +) / Double(fids.count)
        }

        func meanAlignment(_ family: GeneratorFamily) -> Double {
            let a = models[family]!.map { $0.colourAndShape }
            return a.reduce(0, +) / Double(a.count)
        }

        /// −1: VQ-Diffusion ahead outside the noise, +1: VQ-AR ahead, 0: inside the noise.
        var leader: Int { difference.high < 0 ? -1 : (difference.low > 0 ? 1 : 0) }
    }

    /// The claims table. `extra` are the rows beside the budgets: a label, their budget, each
    /// family's evaluation and the alignment figure shown.
    static func claims(_ points: [BudgetPoint], floor: Double,
                       extra: [(label: String, steps: Int, models: [GeneratorFamily: Measured], alignment: String)],
                       chosen: [GeneratorFamily: (trial: Trial, sampling: SamplingChoice)],
                       tuningRows: [String], _ c: Configuration) -> ClaimsTable {
        var table = ClaimsTable()
        let largest = points.last!
        let leaders = Set(points.map(\.leader))
        let verdict: Verdict = largest.leader == -1 ? .reproduced : (leaders.contains(-1) && leaders.contains(1) ? .partly : .not)
        let ours = points.map {
            "\(formatThousands($0.images)) images: \(formatNumber($0.meanFID(.diffusion))) vs \(formatNumber($0.meanFID(.ar))) "
                + "(" + describe($0.difference) + ")"
        }.joined(separator: "; ")
        let crossing = zip(points, points.dropFirst()).first { $0.leader != 0 && $1.leader != 0 && $0.leader != $1.leader }
        let reason: String
        switch verdict {
        case .reproduced:
            reason = "At \(formatThousands(largest.images)) images VQ-Diffusion's FID is lower and the interval excludes 0."
        case .partly:
            reason = "The families cross" + (crossing.map { " between \(formatThousands($0.0.images)) and \(formatThousands($0.1.images)) images" } ?? "")
                + ": each is ahead, outside the noise, at some budget."
        case .not, .indistinguishable:
            reason = largest.leader == 1 ? "VQ-AR's FID is lower at \(formatThousands(largest.images)) images, outside the noise."
                : "At \(formatThousands(largest.images)) images the difference is inside the noise (the interval contains 0)."
        }
        table.add("VQ-Diffusion has better FID than VQ-AR of similar size, at equal training compute and tuning",
                  paper: "CUB-200: 12.97 vs 18.12 (S), 11.94 vs 17.76 (B)", ours: "Shapes, FID (evaluator features), seed means: " + ours,
                  verdict: verdict, reason: reason)
        let d = largest.meanAlignment(.diffusion), a = largest.meanAlignment(.ar)
        table.add("Images follow the text at least as well as VQ-AR's",
                  paper: "qualitative (Figs. 4–5); no number",
                  ours: "Shapes colour and shape match at \(formatThousands(largest.images)) images: \(formatPercent(d)) vs \(formatPercent(a))",
                  verdict: d >= a ? .reproduced : .not,
                  reason: d >= a ? "The diffusion samples match the captions' objects as often or more often."
                                 : "The AR samples match the captions' objects more often.")

        var lines = ["| images seen | model | seed | parameters | FID | alignment | training GFLOP | training CPU-s |",
                     "|---|---|---|---|---|---|---|---|"]
        for p in points {
            for family in GeneratorFamily.allCases {
                for (seed, m) in zip(c.budgets.seeds, p.models[family]!) {
                    lines.append("| \(formatThousands(p.images)) | \(family.label) | \(seed) | \(m.scores.parameters) | \(formatNumber(m.scores.fid)) | "
                                 + "\(formatPercent(m.colourAndShape)) | \(formatNumber(m.compute.gflop, digits: 0)) | "
                                 + "\(formatNumber(m.compute.cpuSeconds, digits: 0)) |")
                }
            }
        }
        for row in extra {
            for (family, m) in row.models.sorted(by: { $0.key.rawValue > $1.key.rawValue }) {
                let alignment = (row.alignment == "class" ? "class " : "") + formatPercent(m.scores.alignment[row.alignment] ?? .nan)
                lines.append("| \(formatThousands(row.steps * c.generator.batchSize)) | \(family.label), \(row.label) | \(c.budgets.seeds[0]) | "
                             + "\(m.scores.parameters) | \(formatNumber(m.scores.fid)) | \(alignment) | "
                             + "\(formatNumber(m.compute.gflop, digits: 0)) | \(formatNumber(m.compute.cpuSeconds, digits: 0)) |")
            }
        }
        let missing = extra.filter { $0.models.isEmpty }.map(\.label)
        if !missing.isEmpty {
            lines += ["", "Not measured in this run (left out by the configuration, or bf16 where the CPU lacks it): " + missing.joined(separator: "; ") + "."]
        }
        lines += ["", "Tuning on the first \(c.tuning.valCount) val captions (FID against as many real val images; lower is better):", "",
                  "| family | stage | training | sampling | val FID |", "|---|---|---|---|---|"] + tuningRows
        table.details = lines.joined(separator: "\n")
        table.notes = [
            "FID (evaluator features) on \(c.eval.count) generated vs \(c.eval.count) real \(c.eval.split.rawValue) images; "
                + "the real-data floor (FID of \(c.eval.count) other real images) is \(formatNumber(floor)). "
                + "Intervals: bootstrap 95 %, \(c.budgets.bootstrapReplicates) replicates resampling every model's generated features and the real features.",
            "Chosen on val: VQ-Diffusion \(chosen[.diffusion]!.trial.label(.diffusion)), \(chosen[.diffusion]!.sampling.label(.diffusion)); "
                + "VQ-AR \(chosen[.ar]!.trial.label(.ar)), \(chosen[.ar]!.sampling.label(.ar)). "
                + "Both: \(c.generator.preset) preset, \(c.generator.textEncoder.rawValue) text features, batch \(c.generator.batchSize), "
                + "caption dropout \(c.generator.captionDropout), warm-up \(formatPercent(c.budgets.warmupFraction)) of the steps; "
                + "diffusion sampled with \(c.eval.sampleSteps) steps, VQ-AR with the key/value cache.",
        ]
        return table
    }
}

/// One training trial: a learning rate and the family's knob.
struct Trial: Equatable {
    var learningRate: Float
    var auxiliaryWeight: Double?
    var emaDecay: Float?

    func applied(to settings: GeneratorSettings) -> GeneratorSettings {
        var s = settings
        s.learningRate = learningRate
        if let auxiliaryWeight { s.auxiliaryWeight = auxiliaryWeight }
        if let emaDecay { s.emaDecay = emaDecay }
        return s
    }

    func label(_ family: GeneratorFamily) -> String {
        "lr \(learningRate)" + (auxiliaryWeight.map { ", λ \($0)" } ?? "") + (emaDecay.map { ", EMA \($0)" } ?? "")
    }

    var logged: [String: String] {
        var p = ["trial_learning_rate": String(learningRate)]
        if let auxiliaryWeight { p["trial_auxiliary_weight"] = String(auxiliaryWeight) }
        if let emaDecay { p["trial_ema_decay"] = String(emaDecay) }
        return p
    }
}

/// VQ-AR's second sampling axis: how each token is drawn besides guidance.
struct ARDraw: Codable, Equatable {
    var truncation: Double = 1
    var temperature: Float = 1
    var topK: Int? = nil
}

/// The budgets, seeds and intervals of the test stage.
struct QualityBudgets: Codable, Equatable {
    /// Training budgets in optimizer steps of `generator.batchSize` images (80k, 160k, 320k images).
    var steps: [Int] = [2500, 5000, 10_000]
    /// Warm-up steps as a fraction of a model's steps.
    var warmupFraction: Double = 0.08
    var seeds: [Int] = [0, 1]
    /// Bootstrap replicates of the FID-difference intervals.
    var bootstrapReplicates: Int = 1000
    /// The paper's recipe for both families at this budget (0: left out).
    var paper: Int = 5000
    /// Fashion-MNIST with the tuned recipes at this budget, seed 0 (0: left out).
    var fashion: Int = 5000
    /// Beyond the paper: the tuned recipes with the grid convolution at this budget, seed 0 (0: left out).
    var grid: Int = 10_000
    /// The engine's check of bf16: the tuned VQ-Diffusion recipe at this budget and seed 0, trained
    /// and sampled with bf16 operands, against the fp32 seeds of the same budget (0: left out; also
    /// left out where the machine cannot run bf16, see `vqd info`).
    var bf16: Int = 5000
    /// Compositional generalization: the tuned recipes of the largest budget, seed 0, evaluated on
    /// the Shapes novel split (colour–shape pairs never seen in training) beside the test split.
    var novel: Bool = true
}

/// The tuning protocol: the grids and the selection split.
struct QualityTuning: Codable, Equatable {
    /// The tuning budget (the smallest), in steps.
    var steps: Int = 2500
    /// The first N val captions and as many real val images.
    var valCount: Int = 300
    var learningRates: [Float] = [5e-4, 1e-3, 2e-3]
    /// VQ-Diffusion's knob: the auxiliary loss weight λ.
    var auxiliaryWeights: [Double] = [0.1, 1]
    /// VQ-AR's knob: the EMA decay of the sampling weights.
    var emaDecays: [Float] = [0.999, 0.995]
    /// The sampling every training trial is compared with.
    var reference = SamplingChoice(guidance: 2, truncation: 0.86)
    var guidanceScales: [Double] = [1, 2, 3]
    /// VQ-Diffusion's second sampling axis.
    var diffusionTruncations: [Double] = [0.86, 1]
    /// VQ-AR's second sampling axis.
    var arDraws: [ARDraw] = [ARDraw(truncation: 0.86), ARDraw(truncation: 1, temperature: 0.9, topK: 32)]

    func samplingGrid(_ family: GeneratorFamily) -> [SamplingChoice] {
        guidanceScales.flatMap { s in
            family == .diffusion
                ? diffusionTruncations.map { SamplingChoice(guidance: s, truncation: $0) }
                : arDraws.map { SamplingChoice(guidance: s, truncation: $0.truncation, temperature: $0.temperature, topK: $0.topK) }
        }
    }
}

/// 80000 → "80,000".
func formatThousands(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return out
}

@main
struct QualityStudyCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "study-quality",
        abstract: "VQ-Diffusion against VQ-AR at equal training compute and equal tuning, over three budgets (paper Tables 1 and 3).",
        discussion: """
            Tunes both families the same way on val (six training trials, then six sampling \
            settings each, at the smallest budget), trains the chosen recipes at every budget with \
            two seeds, and evaluates them once on the test captions: FID (evaluator features) with \
            a bootstrap interval for the difference, caption alignment, training FLOPs and \
            CPU-seconds, the real-data floor; also the paper's recipe and Fashion-MNIST. Logged to \
            the results database (experiment study-quality); the claims table goes to \
            results/claims-quality.md, and `make figures` draws FID against images seen. \
            --jobs N trains N models at a time, in two waves (the trials, then the chosen \
            recipes, each group evaluated as soon as it is trained); --prepare-only trains the \
            first wave and stops. Evaluations recorded with their features are recalled, not \
            repeated (--remeasure repeats them).
            """)

    @OptionGroup var options: StudyOptions

    func run() throws { try options.run(QualityStudy.self) }

    /// Joins the MPI job first when mpirun started this process (a --mpi-ranks training child).
    static func main() { mainJoiningMPI() }
}
