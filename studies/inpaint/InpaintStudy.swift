import ArgumentParser
import Engine
import Foundation
import Experiments
import VQDiffusion

// Claim (paper, abstract and §1): VQ-Diffusion "eliminates the unidirectional bias" of
// autoregressive models — every token is predicted with the whole grid in view, so the model can
// fill any region given context on all sides, while a raster-order model conditions only on what
// came before.
//
// The protocol, fixed before the runs (the configuration below holds every number of it):
//
// - Models: both families' tuned recipes as the quality study chose them on val (read from the
//   database), at the quality study's largest budget (320,000 images), seed 0; each family
//   sampled with its chosen sampling setting.
// - Images: the first 500 test images showing two objects. Three regions on each: the object
//   that comes first in raster order (so the other object, the kept context, lies after it), the
//   top half, and the centre square. Each model redraws the region from the full caption once
//   per image (`vqd edit`'s code: VQ-Diffusion holds every other token through its reverse
//   process; VQ-AR keeps the tokens before the region's first token and draws the rest).
// - Measures: the evaluator's reading of the redrawn object against the caption (its colour,
//   shape, size and its relation to the kept object; "object" is all of them right) for the
//   first-object region, the whole caption's alignment for the others; kept-token agreement (the
//   tokens outside the region that come back unchanged); FID (evaluator features) of the edited
//   images against the next 500 two-object test images, with the floor (the originals against
//   the same set); images per second.
// - Verdict on "no unidirectional bias": a paired bootstrap over the images (1,000 replicates)
//   of the difference in the redrawn object's "object" fraction, VQ-Diffusion minus VQ-AR.
//   Reproduced when VQ-Diffusion keeps the context (kept-token agreement ≥ 99 %) and the interval
//   lies above 0; not reproduced when it lies below 0; otherwise not distinguishable at this scale.

struct InpaintStudy: Study {
    struct Configuration: Codable, Equatable {
        var shapes: DatasetModels
        /// Two-object test images edited (the next as many are FID's reference).
        var count: Int
        /// The models' training budget in steps (unset: the quality study's largest, as it
        /// recorded it) and seed.
        var steps: Int?
        var seed: Int
        var masks: [InpaintMask]
        /// Diffusion sampling steps.
        var sampleSteps: Int
        var batchSize: Int
        /// Seed of the draws.
        var drawSeed: UInt64
        var bootstrapReplicates: Int
    }

    static let name = "inpaint"

    static func configuration(_ profile: StudyProfile) -> Configuration {
        switch profile {
        case .paper, .preview:
            return Configuration(shapes: .standard(.shapes, profile: profile), count: 500, steps: nil, seed: 0,
                                 masks: InpaintMask.allCases, sampleSteps: 25, batchSize: 16, drawSeed: 0, bootstrapReplicates: 1000)
        case .quick:
            return Configuration(shapes: .standard(.shapes, profile: profile), count: 24, steps: nil, seed: 0,
                                 masks: InpaintMask.allCases, sampleSteps: 10, batchSize: 8, drawSeed: 0, bootstrapReplicates: 50)
        }
    }

    /// Each family's recipe and sampling.
    static func models(_ c: Configuration, context: StudyContext) throws -> [(family: GeneratorFamily, recipe: GeneratorRecipe, sampling: SamplingChoice)] {
        let choices = try QualityChoices.required(in: context.database, profile: context.profile.tuningSource, by: name)
        let steps = try choices.budget(c.steps, key: "steps")
        return GeneratorFamily.allCases.map { ($0, choices[$0].recipe(steps: steps, seed: c.seed), choices[$0].sampling) }
    }

    static func prerequisites(_ c: Configuration, context: StudyContext) throws -> [StudyPrerequisite] {
        [StudyPrerequisite(c.shapes.vqvae), StudyPrerequisite(c.shapes.evaluator)]
            + (try models(c, context: context)).map { StudyPrerequisite($0.recipe) }
    }

    /// What one family measured on one region.
    struct Outcome {
        var family: GeneratorFamily
        var mask: InpaintMask
        /// The redrawn object's reading (first-object region) or the whole caption's.
        var scores: AttributeScores
        /// Per image: the redrawn object all right (first-object region) or the caption all right.
        var right: [Bool]
        var keptAgreement: Double
        var fid: Double
        var imagesPerSecond: Double
    }

    static func run(_ c: Configuration, context: StudyContext) throws -> ClaimsTable {
        guard c.count >= 2, !c.masks.isEmpty, c.batchSize >= 1 else {
            throw ConfigurationError("count must be at least 2, masks not empty and batchSize at least 1")
        }
        let models = try models(c, context: context)
        try context.prepare(try prerequisites(c, context: context))
        let evaluator = try Evaluator.load(try context.store.model(c.shapes.evaluator))
        let vqvaeURL = try context.store.model(c.shapes.vqvae)
        let S = c.shapes.vqvae.imageSize
        let test = try DatasetSelection(source: .shapes, split: .test, imageSize: S).open()
        // The first 2·count two-object test images: the edited ones, then FID's reference.
        var chosen: [Int] = []
        for i in 0..<test.count where chosen.count < 2 * c.count {
            if case .shapes(let scene)? = test.sample(at: i).attributes, scene.objects.count == 2 { chosen.append(i) }
        }
        guard chosen.count == 2 * c.count else {
            throw ConfigurationError("the test split has \(chosen.count) two-object images; the study needs \(2 * c.count) (lower count)")
        }
        let loader = BatchLoader(dataset: test, batchSize: c.batchSize, shuffle: false, generator: RandomGenerator(seed: 0))
        let originals = loader.batch(indices: Array(chosen[..<c.count]))
        let referenceImages = loader.batch(indices: Array(chosen[c.count...]))
        let scenes: [ShapesScene] = originals.attributes.map { if case .shapes(let s)? = $0 { return s } else { fatalError("Shapes scene expected") } }
        let F = evaluator.configuration.featureDimension
        let reference = evaluator.evaluate(referenceImages.images).features.values
        let floor = try FID.compute(evaluator.evaluate(originals.images).features.values, shape: [c.count, F], reference, shape: [c.count, F]).fid
        context.studyRun.logMetric("floor/fid", floor)

        var outcomes: [Outcome] = []
        for (family, recipe, choice) in models {
            let url = try context.store.model(recipe)
            let generator = try CheckpointGenerator(model: url, vqvae: vqvaeURL, options: choice.options(steps: c.sampleSteps),
                                                    cacheDirectory: context.store.textFeatureCache)
            let f = try generator.downsampling()
            let tokens = try generator.encode(originals.images)
            let N = generator.gridHeight * generator.gridWidth
            for mask in c.masks {
                let params = ["family": family.rawValue, "mask": mask.rawValue, "recipe": recipe.key, "count": String(c.count),
                              "sampling": choice.label(family), "sample_steps": String(c.sampleSteps), "model": portablePath(url)]
                let outcome = try context.measure("\(family.rawValue) \(mask.rawValue)", params: params, seed: c.drawSeed) { run in
                    let redrawn = try scenes.map { scene in
                        try mask.region(scene: scene, size: S).tokens(downsampling: f, margin: EditRegion.defaultMargin(downsampling: f))
                    }
                    let edit = TokenEdit(tokens: tokens, kept: redrawn.flatMap { $0.map { !$0 } })
                    var rng = RandomGenerator(seed: c.drawSeed)
                    var result: [Int32] = [], features: [Float] = []
                    var classes = [[Int]](repeating: [], count: evaluator.configuration.heads.count)
                    let progress = context.showProgress ? ProgressBar(total: c.count, label: "\(family.rawValue) \(mask.rawValue)") : nil
                    var seconds = 0.0
                    for first in stride(from: 0, to: c.count, by: c.batchSize) {
                        let range = first..<min(c.count, first + c.batchSize)
                        let part = TokenEdit(tokens: Array(edit.tokens[(range.lowerBound * N)..<(range.upperBound * N)]),
                                             kept: Array(edit.kept[(range.lowerBound * N)..<(range.upperBound * N)]))
                        let t0 = Run.monotonicSeconds()
                        let drawn = try Autograd.withoutGrad { try generator.edit(captions: Array(originals.captions[range]), part, using: &rng) }
                        let images = try generator.decode(drawn, count: range.count)
                        seconds += Run.monotonicSeconds() - t0
                        result += drawn
                        let (feat, k) = evaluator.evaluate(images)
                        features += feat.values
                        for h in k.indices { classes[h] += k[h] }
                        progress?.update(range.upperBound)
                    }
                    progress?.finish()
                    let keptCount = edit.kept.filter { $0 }.count
                    let unchanged = zip(zip(result, edit.tokens), edit.kept).filter { $0.1 && $0.0.0 == $0.0.1 }.count
                    let predictions = ShapesTargets.predictions(fromHeadClasses: classes)
                    var scores = AttributeScores(names: mask == .firstObject ? ShapesAlignment.objectAttributeNames : ShapesAlignment.attributeNames)
                    var right: [Bool] = []
                    for (i, (p, scene)) in zip(predictions, scenes).enumerated() {
                        guard let caption = ShapesCaption.parse(originals.captions[i]) else {
                            throw ConfigurationError("test caption \(i) does not parse: \(originals.captions[i])")
                        }
                        if let k = mask.object(in: scene) {
                            right.append(ShapesAlignment.scoreObject(p, against: caption, object: k, into: &scores))
                        } else {
                            var one = AttributeScores(names: ShapesAlignment.attributeNames)
                            ShapesAlignment.score(p, against: caption, into: &one)
                            scores.merge(one)
                            right.append(one.fraction("caption") == 1)
                        }
                    }
                    let fid = try FID.compute(features, shape: [c.count, F], reference, shape: [c.count, F]).fid
                    let o = Outcome(family: family, mask: mask, scores: scores, right: right,
                                    keptAgreement: Double(unchanged) / Double(max(1, keptCount)), fid: fid,
                                    imagesPerSecond: Double(c.count) / max(seconds, 1e-9))
                    run.logMetric("fid", o.fid)
                    run.logMetric("floor/fid", floor)
                    run.logMetric("kept_token_agreement", o.keptAgreement)
                    run.logMetric("images_per_second", o.imagesPerSecond)
                    run.logMetric("redrawn_tokens", Double(edit.kept.count - keptCount) / Double(c.count))
                    for (name, fraction) in scores.scoredFractions { run.logMetric("alignment/" + name, fraction) }
                    print("\(family.label), \(mask.rawValue): \(mask == .firstObject ? "object" : "caption") right "
                          + "\(formatPercent(Double(right.filter { $0 }.count) / Double(c.count))), kept tokens unchanged "
                          + "\(formatPercent(o.keptAgreement)), FID \(formatNumber(fid)), \(formatNumber(o.imagesPerSecond)) img/s")
                    return o
                }
                outcomes.append(outcome)
            }
        }
        var differences: [InpaintMask: (estimate: Double, low: Double, high: Double)] = [:]
        for mask in c.masks {
            guard let d = outcomes.first(where: { $0.family == .diffusion && $0.mask == mask }),
                  let a = outcomes.first(where: { $0.family == .ar && $0.mask == mask }) else { continue }
            differences[mask] = pairedDifference(d.right, a.right, replicates: c.bootstrapReplicates, seed: c.drawSeed)
            context.studyRun.logMetric("right_difference/\(mask.rawValue)", differences[mask]!.estimate)
            context.studyRun.logMetric("right_difference_low/\(mask.rawValue)", differences[mask]!.low)
            context.studyRun.logMetric("right_difference_high/\(mask.rawValue)", differences[mask]!.high)
        }
        return claims(outcomes, differences: differences, floor: floor, models: models, c)
    }

    /// Mean of a − b over paired per-image outcomes, with a bootstrap 95 % interval (images drawn
    /// with replacement, the same draw for both).
    static func pairedDifference(_ a: [Bool], _ b: [Bool], replicates: Int, seed: UInt64) -> (estimate: Double, low: Double, high: Double) {
        precondition(a.count == b.count && !a.isEmpty, "pairedDifference: \(a.count) and \(b.count) outcomes")
        let d = zip(a, b).map { Double($0 ? 1 : 0) - Double($1 ? 1 : 0) }
        let mean = d.reduce(0, +) / Double(d.count)
        var rng = RandomGenerator(seed: seed)
        var values: [Double] = []
        for _ in 0..<max(0, replicates) {
            var total = 0.0
            for _ in d.indices { total += d[rng.int(below: d.count)] }
            values.append(total / Double(d.count))
        }
        let (low, high) = percentileInterval(values)
        return (mean, low, high)
    }

    // MARK: Claims

    static func claims(_ outcomes: [Outcome], differences: [InpaintMask: (estimate: Double, low: Double, high: Double)], floor: Double,
                       models: [(family: GeneratorFamily, recipe: GeneratorRecipe, sampling: SamplingChoice)], _ c: Configuration) -> ClaimsTable {
        var table = ClaimsTable()
        func outcome(_ family: GeneratorFamily, _ mask: InpaintMask) -> Outcome? {
            outcomes.first { $0.family == family && $0.mask == mask }
        }
        func fraction(_ o: Outcome) -> Double { Double(o.right.filter { $0 }.count) / Double(max(1, o.right.count)) }
        if let d = outcome(.diffusion, .firstObject), let a = outcome(.ar, .firstObject), let diff = differences[.firstObject] {
            let keeps = d.keptAgreement >= 0.99
            let verdict: Verdict = diff.low > 0 && keeps ? .reproduced : (diff.high < 0 ? .not : .indistinguishable)
            let interval = "difference \(formatNumber(100 * diff.estimate, digits: 1)) points, 95 % interval "
                + "[\(formatNumber(100 * diff.low, digits: 1)), \(formatNumber(100 * diff.high, digits: 1))]"
            table.add("No unidirectional bias: VQ-Diffusion fills a region using context on every side",
                      paper: "argued (abstract, §1); no number",
                      ours: "redrawing the first object of two from the caption: colour, shape, size and relation all right "
                          + "\(formatPercent(fraction(d))) (VQ-Diffusion) vs \(formatPercent(fraction(a))) (VQ-AR), \(interval); "
                          + "kept tokens unchanged \(formatPercent(d.keptAgreement)) vs \(formatPercent(a.keptAgreement))",
                      verdict: verdict,
                      reason: verdict == .reproduced ? "VQ-Diffusion keeps the context and redraws the object right more often, the interval above 0."
                          : verdict == .not ? "VQ-AR redraws the object right more often, outside the noise."
                          : keeps ? "The interval contains 0: at this scale the families redraw the object equally well."
                          : "VQ-Diffusion changed kept tokens (agreement below 99 %).")
        }
        for mask in c.masks where mask != .firstObject {
            guard let d = outcome(.diffusion, mask), let a = outcome(.ar, mask), let diff = differences[mask] else { continue }
            let verdict: Verdict = diff.low > 0 ? .reproduced : (diff.high < 0 ? .not : .indistinguishable)
            table.add("Fills the \(mask == .topHalf ? "top half (all context below it)" : "centre (context on every side)") to match the caption",
                      paper: "argued; no number",
                      ours: "whole caption right \(formatPercent(fraction(d))) vs \(formatPercent(fraction(a))) "
                          + "(difference \(formatNumber(100 * diff.estimate, digits: 1)) points, 95 % interval "
                          + "[\(formatNumber(100 * diff.low, digits: 1)), \(formatNumber(100 * diff.high, digits: 1))]); "
                          + "kept tokens unchanged \(formatPercent(d.keptAgreement)) vs \(formatPercent(a.keptAgreement))",
                      verdict: verdict,
                      reason: verdict == .reproduced ? "VQ-Diffusion's edits match the caption more often, the interval above 0."
                          : verdict == .not ? "VQ-AR's edits match the caption more often, outside the noise."
                          : "The interval contains 0.")
        }
        var lines = ["| region | model | object or caption right | colour and shape | size | relation | kept tokens unchanged | FID | images/s |",
                     "|---|---|---|---|---|---|---|---|---|"]
        for o in outcomes {
            lines.append("| \(o.mask.rawValue) | \(o.family.label) | \(formatPercent(fraction(o))) | "
                         + "\(formatPercent(o.scores.fraction("colour_and_shape"))) | \(formatPercent(o.scores.fraction("size"))) | "
                         + "\(formatPercent(o.scores.fraction("relation"))) | \(formatPercent(o.keptAgreement)) | \(formatNumber(o.fid)) | "
                         + "\(formatNumber(o.imagesPerSecond)) |")
        }
        table.details = lines.joined(separator: "\n")
        table.notes = [
            "Models: " + models.map { "\($0.family.label) \($0.recipe.summary), \($0.sampling.label($0.family))" }.joined(separator: "; ") + ".",
            "\(c.count) two-object test images; first-object region: the redrawn object's colour, shape, size (when stated) and "
                + "relation all right; other regions: every attribute of the caption right. VQ-AR keeps only the tokens before the "
                + "region's first token. Intervals: paired bootstrap over the images, \(c.bootstrapReplicates) replicates.",
            "FID (evaluator features) against the next \(c.count) two-object test images; the floor (the unedited originals "
                + "against the same set) is \(formatNumber(floor)). Diffusion: \(c.sampleSteps) sampling steps.",
        ]
        return table
    }
}

@main
struct InpaintStudyCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "study-inpaint",
        abstract: "Redrawing a region with context on every side: VQ-Diffusion against VQ-AR (the paper's unidirectional-bias argument).",
        discussion: """
            Edits two-object test images with both families' tuned models from the quality study \
            (run `make study-quality` first: its choices are read from the database): the object \
            first in raster order, the top half and the centre are redrawn from the full caption. \
            Measures the evaluator's reading of the redrawn object, kept-token agreement, FID and \
            images/s; logs them to the results database (experiment study-inpaint) and prints the \
            claims table (also results/claims-inpaint.md).
            """)

    @OptionGroup var options: StudyOptions

    func run() throws { try options.run(InpaintStudy.self) }

    /// Joins the MPI job first when mpirun started this process (a --mpi-ranks training child).
    static func main() { mainJoiningMPI() }
}
