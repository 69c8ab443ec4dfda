import ArgumentParser
import Foundation
import Experiments
import VQDiffusion

// Claim (paper, ablation on Oxford-102): mask-and-replace beats mask-only (γ̄_T = 1) and
// replace-only (γ̄_T = 0) corruption, and the final mask rate γ̄_T ≈ 0.9 is best.
//
// The protocol, fixed before the runs (the configuration below holds every number of it):
//
// - One VQ-Diffusion model per γ̄_T ∈ {0, 0.3, 0.5, 0.7, 0.9, 1} and seed ∈ {0, 1, 2}, 2,500
//   steps of 32 (80,000 images) each, everything else identical: the quality study's tuned
//   recipe (learning rate, λ, caption dropout, warm-up fraction) and sampling (guidance,
//   truncation), which it chose on val at γ̄_T = 0.9. The study reads them from the database, so
//   the quality study's tuning runs first; the γ̄_T = 0.9 models are then the quality study's own.
// - Every model is evaluated on the same first 1,000 test captions against the same 1,000 real
//   test images, sampling from its own q(x_T) (γ̄_T [MASK], the rest uniform codes): FID
//   (evaluator features) with the real-data floor, and colour-and-shape alignment.
// - For each γ̄_T a bootstrap 95 % interval (1,000 replicates) of the difference of its
//   seed-mean FID from γ̄_T = 0.9's, paired: a replicate draws one set of caption indices for all
//   six models and one draw of the real set.
// - Verdicts: a γ̄_T is better or worse than 0.9 only where its interval excludes 0; otherwise
//   the two are not distinguishable at this scale.
//
// The preview profile is the same design at 800 steps with two seeds and 500 captions: a first
// look, labelled as such, not a verdict.

struct MaskStudy: Study {
    struct Configuration: Codable, Equatable {
        var gammas: [Double]
        var seeds: [Int]
        /// Every model's training budget in optimizer steps.
        var steps: Int
        /// The final mask rate the others are compared with (the one the recipe was tuned at).
        var referenceGamma: Double
        /// true: the quality study's tuned VQ-Diffusion recipe and sampling, from the database;
        /// false: `generator` and `sampling` below.
        var tuned: Bool
        var generator: GeneratorSettings
        var sampling: SamplingChoice
        var shapes: DatasetModels
        var eval: EvalSettings
        /// Bootstrap replicates of the difference intervals.
        var bootstrapReplicates: Int
        /// Printed above the claims table ("" for the paper profile).
        var label: String
    }

    static let name = "mask"
    static let profiles: [StudyProfile] = [.quick, .preview, .paper]

    static func configuration(_ profile: StudyProfile) -> Configuration {
        var eval = EvalSettings.standard(profile)
        eval.throughputBatches = []
        var c = Configuration(gammas: [0, 0.3, 0.5, 0.7, 0.9, 1], seeds: [0, 1, 2], steps: 2500, referenceGamma: 0.9, tuned: true,
                              generator: GeneratorSettings.main(profile), sampling: SamplingChoice(guidance: 1, truncation: 0.86),
                              shapes: .standard(.shapes, profile: profile), eval: eval, bootstrapReplicates: 1000, label: "")
        switch profile {
        case .paper: break
        case .preview:
            (c.steps, c.seeds, c.eval.count, c.bootstrapReplicates) = (800, [0, 1], 500, 200)
            c.label = "Preview: 800 training steps, two seeds — a first look, not a verdict."
        case .quick:
            (c.gammas, c.seeds, c.steps, c.bootstrapReplicates) = ([0, 0.9, 1], [0, 1], 30, 50)
        }
        return c
    }

    /// The recipe every model starts from (before γ̄_T and seed) and the sampling setting.
    static func base(_ c: Configuration, context: StudyContext) throws -> (recipe: (Double, Int) -> GeneratorRecipe, sampling: SamplingChoice, source: String) {
        if c.tuned {
            let choices = try QualityChoices.required(in: context.database, profile: context.profile.tuningSource, by: name)
            let choice = choices.diffusion
            if choice.recipe.settings.gammaFinal != c.referenceGamma {
                print("note: the quality study tuned its recipe at γ̄_T = \(choice.recipe.settings.gammaFinal), not at the reference \(c.referenceGamma)")
            }
            return ({ gamma, seed in
                var r = choice.recipe(steps: c.steps, seed: seed)
                r.settings.gammaFinal = gamma
                return r
            }, choice.sampling, "the quality study's tuned recipe (run \(choices.run)): \(choice.recipe.summary), \(choice.sampling.label(.diffusion))")
        }
        return ({ gamma, seed in
            var s = c.generator
            (s.steps, s.gammaFinal, s.seed) = (c.steps, gamma, UInt64(seed))
            return GeneratorRecipe(family: .diffusion, vqvae: c.shapes.vqvae, settings: s)
        }, c.sampling, "the configuration's recipe")
    }

    /// What the study needs before it measures: the VQ-VAE and the evaluator. The generators are
    /// trained by `StudyContext.measure`, --jobs at a time, each group evaluated as soon as it is
    /// trained (those whose evaluations the database records are not trained at all).
    static func prerequisites(_ c: Configuration, context: StudyContext) throws -> [StudyPrerequisite] {
        [StudyPrerequisite(c.shapes.vqvae), StudyPrerequisite(c.shapes.evaluator)]
    }

    /// Every evaluation, one per γ̄_T and seed, on the test captions; the first also measures the
    /// real-data floor. Every model starts from its own q(x_T): all [MASK] only makes sense for
    /// γ̄_T = 1.
    static func plan(_ c: Configuration, recipe: (Double, Int) -> GeneratorRecipe, choice: SamplingChoice) -> [GeneratorMeasurement] {
        var sampling = choice.options(steps: c.eval.sampleSteps)
        sampling.startFromPrior = true
        var plan: [GeneratorMeasurement] = []
        for gamma in c.gammas {
            for seed in c.seeds {
                let r = recipe(gamma, seed)
                plan.append(GeneratorMeasurement(
                    name: String(format: "gamma %.2f seed %d", gamma, seed), recipe: r, dataset: c.shapes, eval: c.eval,
                    sampling: sampling, floor: plan.isEmpty,
                    notes: ["gamma_final": String(gamma), "training_seed": String(seed), "family": "diffusion",
                            "training_steps": String(r.settings.steps)]))
            }
        }
        return plan
    }

    struct Point {
        var gamma: Double
        var fid: [Double]
        var alignment: [Double]
        /// Seed-mean FID minus the reference γ̄_T's, with its paired bootstrap interval.
        var difference = FIDDifference.unknown
        var meanFID: Double { fid.reduce(0, +) / Double(fid.count) }
        var meanAlignment: Double { alignment.reduce(0, +) / Double(alignment.count) }
        /// +1: worse than the reference outside the noise, −1: better, 0: not distinguishable.
        var standing: Int { difference.low > 0 ? 1 : (difference.high < 0 ? -1 : 0) }
    }

    static func run(_ c: Configuration, context: StudyContext) throws -> ClaimsTable {
        guard !c.gammas.isEmpty, !c.seeds.isEmpty, c.gammas.contains(c.referenceGamma) else {
            throw ConfigurationError("gammas and seeds must not be empty, and gammas must contain referenceGamma (\(c.referenceGamma))")
        }
        guard c.gammas.allSatisfy({ (0...1).contains($0) }), c.steps >= 1 else {
            throw ConfigurationError("every γ̄_T must lie in 0…1 and steps must be at least 1")
        }
        let (recipe, choice, source) = try base(c, context: context)
        print("recipe: \(source)")
        context.studyRun.logParams(["recipe_source": source, "sampling": choice.label(.diffusion)])
        let plan = Self.plan(c, recipe: recipe, choice: choice)
        // Trains the missing models --jobs at a time, evaluating each group as soon as it is
        // trained; evaluations the database records (with their features) are recalled.
        var results = try context.measure(plan)[...]
        var points: [Point] = []
        var features: [Double: [[Float]]] = [:]
        let reference = results.first!.referenceFeatures
        let dimension = reference.count / c.eval.count
        let floor = results.first!.scores.floorFID
        for gamma in c.gammas {
            var point = Point(gamma: gamma, fid: [], alignment: [])
            for _ in c.seeds {
                let m = results.removeFirst()
                point.fid.append(m.scores.fid)
                point.alignment.append(m.scores.alignment["colour_and_shape"] ?? .nan)
                features[gamma, default: []].append(m.generatedFeatures)
            }
            points.append(point)
        }
        for i in points.indices where points[i].gamma != c.referenceGamma {
            points[i].difference = try FIDDifference.bootstrap(
                features[points[i].gamma]!, features[c.referenceGamma]!, reference: reference, dimension: dimension,
                replicates: c.bootstrapReplicates, seed: c.eval.seed, paired: true)
            let key = String(format: "%.2f", points[i].gamma)
            context.studyRun.logMetric("fid_difference/\(key)", points[i].difference.estimate)
            context.studyRun.logMetric("fid_difference_low/\(key)", points[i].difference.low)
            context.studyRun.logMetric("fid_difference_high/\(key)", points[i].difference.high)
        }
        return claims(points, floor: floor, source: source, configuration: c)
    }

    // MARK: Claims

    /// "24.10 (+0.23, 95 % interval [-0.40, 0.85])", prefixed "0.7: " when `gamma`.
    static func describe(_ p: Point, gamma: Bool = true) -> String {
        (gamma ? String(format: "%.1f: ", p.gamma) : "")
            + "\(formatNumber(p.meanFID)) (\(p.difference.estimate >= 0 ? "+" : "")\(formatNumber(p.difference.estimate)), "
            + "95 % interval [\(formatNumber(p.difference.low)), \(formatNumber(p.difference.high))])"
    }

    static func gammaList(_ points: [Point]) -> String {
        points.map { String(format: "%.1f", $0.gamma) }.joined(separator: ", ")
    }

    static func claims(_ points: [Point], floor: Double?, source: String, configuration c: Configuration) -> ClaimsTable {
        var table = ClaimsTable()
        guard let reference = points.first(where: { $0.gamma == c.referenceGamma }) else { return table }
        let others = points.filter { $0.gamma != c.referenceGamma }
        let better = others.filter { $0.standing == -1 }, worse = others.filter { $0.standing == 1 }
        let tied = others.filter { $0.standing == 0 }
        let ref = String(format: "%.1f", c.referenceGamma)
        let ours = "γ̄_T = \(ref): FID \(formatNumber(reference.meanFID)); others (difference from \(ref)): "
            + others.map { describe($0) }.joined(separator: "; ")
        let bestVerdict: Verdict, bestReason: String
        if !better.isEmpty {
            (bestVerdict, bestReason) = (.not, "γ̄_T = \(gammaList(better)) has a lower FID than \(ref), outside the noise.")
        } else if tied.isEmpty {
            (bestVerdict, bestReason) = (.reproduced, "Every other γ̄_T has a higher FID than \(ref), each interval excluding 0.")
        } else if !worse.isEmpty {
            (bestVerdict, bestReason) = (.partly, "γ̄_T = \(ref) is ahead of \(gammaList(worse)) outside the noise; "
                                         + "\(gammaList(tied)) are not distinguishable from it at this scale.")
        } else {
            (bestVerdict, bestReason) = (.indistinguishable, "Every interval contains 0: no γ̄_T is told apart from \(ref).")
        }
        table.add("The best final mask rate is γ̄_T ≈ 0.9", paper: "FID lowest at γ̄_T = 0.9 (Oxford-102 ablation)",
                  ours: ours, verdict: bestVerdict, reason: bestReason)

        if let maskOnly = points.first(where: { $0.gamma == 1 }), let replaceOnly = points.first(where: { $0.gamma == 0 }) {
            let ends = [maskOnly, replaceOnly]
            let v: Verdict, reason: String
            if ends.contains(where: { $0.standing == -1 }) {
                (v, reason) = (.not, "A pure corruption has a lower FID than γ̄_T = \(ref), outside the noise.")
            } else if ends.allSatisfy({ $0.standing == 1 }) {
                (v, reason) = (.reproduced, "Both pure corruptions have a higher FID than γ̄_T = \(ref), each interval excluding 0.")
            } else if let beaten = ends.first(where: { $0.standing == 1 }) {
                let other = ends.first { $0.standing == 0 }!
                (v, reason) = (.partly, "γ̄_T = \(ref) beats \(beaten.gamma == 1 ? "mask-only" : "replace-only") outside the noise; "
                               + "\(other.gamma == 1 ? "mask-only" : "replace-only") is not distinguishable from it at this scale.")
            } else {
                (v, reason) = (.indistinguishable, "Both intervals contain 0.")
            }
            table.add("Mask-and-replace beats mask-only and replace-only",
                      paper: "both ends worse than intermediate γ̄_T",
                      ours: "γ̄_T = \(ref) \(formatNumber(reference.meanFID)); mask-only " + describe(maskOnly, gamma: false)
                          + "; replace-only " + describe(replaceOnly, gamma: false),
                      verdict: v, reason: reason)
        }
        var lines = ["| γ̄_T | FID (seed mean) | FID per seed | difference from \(ref) [95 % interval] | colour and shape match (mean) | per seed |",
                     "|---|---|---|---|---|---|"]
        for p in points {
            let difference = p.gamma == c.referenceGamma ? "—"
                : "\(formatNumber(p.difference.estimate)) [\(formatNumber(p.difference.low)), \(formatNumber(p.difference.high))]"
            lines.append(String(format: "| %.1f | %@ | %@ | %@ | %@ | %@ |", p.gamma, formatNumber(p.meanFID) as NSString,
                                p.fid.map { formatNumber($0) }.joined(separator: ", ") as NSString, difference as NSString,
                                formatPercent(p.meanAlignment) as NSString,
                                p.alignment.map { formatPercent($0) }.joined(separator: ", ") as NSString))
        }
        table.details = lines.joined(separator: "\n")
        table.notes = (c.label.isEmpty ? [] : [c.label]) + [
            "Recipe: \(source); \(c.steps) training steps each (\(formatNumber(Double(c.steps * c.generator.batchSize), digits: 0)) "
                + "images at batch \(c.generator.batchSize)), seeds \(c.seeds.map(String.init).joined(separator: ", ")); γ̄_T the only difference.",
            "\(c.eval.count) \(c.eval.split.rawValue) captions, \(c.eval.sampleSteps) sampling steps, each model sampled from its own q(x_T) "
                + "(γ̄_T [MASK], the rest uniform codes). Intervals: paired bootstrap over the captions and the real set, "
                + "\(c.bootstrapReplicates) replicates.",
            "Real-data floor FID at this N: \(formatNumber(floor ?? .nan)).",
        ]
        return table
    }
}

@main
struct MaskStudyCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "study-mask",
        abstract: "The final mask rate γ̄_T from replace-only (0) to mask-only (1) (paper ablation).",
        discussion: """
            Trains (or reuses) one VQ-Diffusion model per γ̄_T and seed with the quality study's \
            tuned recipe (run `make study-quality` first: its choices are read from the database), \
            everything else identical; measures FID (evaluator features) and caption alignment of \
            each on the same test captions, with a paired bootstrap interval for each γ̄_T's \
            difference from 0.9; logs them to the results database (experiment study-mask) and \
            prints the claims table (also results/claims-mask.md). --profile preview runs the same \
            design at 800 steps as a first look. --jobs N trains N models at a time, each group \
            evaluated as soon as it is trained; evaluations recorded with their features are \
            recalled, not repeated (--remeasure repeats them).
            """)

    @OptionGroup var options: StudyOptions

    func run() throws { try options.run(MaskStudy.self) }

    /// Joins the MPI job first when mpirun started this process (a --mpi-ranks training child).
    static func main() { mainJoiningMPI() }
}
