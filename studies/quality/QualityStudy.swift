import ArgumentParser
import Foundation
import Experiments
import VQDiffusion

// Claim (paper Tables 1 and 3): VQ-Diffusion gives better images than an autoregressive model of
// the same size trained on the same tokens. Both are trained for the same steps on each dataset
// and measured the same way: FID and KID in evaluator features, caption alignment, throughput,
// next to the real-data floor FID at the same sample size.

struct QualityStudy: Study {
    struct Configuration: Codable, Equatable {
        /// "shapes", "fashion" or both.
        var datasets: [String]
        var shapes: DatasetModels
        var fashion: DatasetModels
        /// Training of both generators (the diffusion-only fields do not apply to VQ-AR).
        var generator: GeneratorSettings
        var eval: EvalSettings
    }

    static let name = "quality"

    static func configuration(_ profile: StudyProfile) -> Configuration {
        Configuration(datasets: ["shapes", "fashion"], shapes: .standard(.shapes, profile: profile),
                      fashion: .standard(.fashion, profile: profile), generator: .main(profile), eval: .standard(profile))
    }

    struct Result {
        var dataset: String
        var diffusion: GeneratorScores
        var ar: GeneratorScores
    }

    static func prerequisites(_ c: Configuration) -> [StudyPrerequisite] {
        c.datasets.flatMap { name -> [StudyPrerequisite] in
            guard let models = name == "shapes" ? c.shapes : name == "fashion" ? c.fashion : nil else { return [] }
            return [StudyPrerequisite(models.vqvae), StudyPrerequisite(models.evaluator)]
                + GeneratorFamily.allCases.map { StudyPrerequisite(GeneratorRecipe(family: $0, vqvae: models.vqvae, settings: c.generator)) }
        }
    }

    static func run(_ c: Configuration, context: StudyContext) throws -> ClaimsTable {
        var results: [Result] = []
        for name in c.datasets {
            let models: DatasetModels
            switch name {
            case "shapes": models = c.shapes
            case "fashion": models = c.fashion
            default: throw ConfigurationError("unknown dataset '\(name)' in datasets: use shapes, fashion or both")
            }
            var scores: [GeneratorFamily: GeneratorScores] = [:]
            for family in GeneratorFamily.allCases {
                let recipe = GeneratorRecipe(family: family, vqvae: models.vqvae, settings: c.generator)
                let url = try context.store.model(recipe)
                let sampling = GeneratorSamplingOptions(steps: c.eval.sampleSteps, truncation: c.eval.truncation)
                scores[family] = try context.evaluate(
                    "\(family.rawValue) \(name)", generator: url, dataset: models, eval: c.eval, sampling: sampling,
                    floor: family == .diffusion,
                    params: ["family": family.rawValue, "training_steps": String(c.generator.steps), "recipe": recipe.key])
            }
            results.append(Result(dataset: name, diffusion: scores[.diffusion]!, ar: scores[.ar]!))
        }
        return claims(results, configuration: c)
    }

    static func claims(_ results: [Result], configuration c: Configuration) -> ClaimsTable {
        var table = ClaimsTable()
        let better = results.filter { $0.diffusion.fid < $0.ar.fid }
        let ours = results.map { "\($0.dataset): \(formatNumber($0.diffusion.fid)) vs \(formatNumber($0.ar.fid))" }
            .joined(separator: "; ")
        let verdict: Verdict = better.count == results.count ? .reproduced : (better.isEmpty ? .not : .partly)
        let reason: String
        switch verdict {
        case .reproduced: reason = "VQ-Diffusion has the lower FID on every dataset at matched size and training steps."
        case .partly: reason = "VQ-Diffusion has the lower FID on \(better.map(\.dataset).joined(separator: ", ")) only."
        case .not: reason = "VQ-AR has the lower FID on every dataset at this scale."
        }
        table.add("VQ-Diffusion has better FID than VQ-AR of similar size",
                  paper: "CUB-200: 12.97 vs 18.12 (S), 11.94 vs 17.76 (B)", ours: "FID (evaluator features) " + ours,
                  verdict: verdict, reason: reason)
        if let shapes = results.first(where: { $0.dataset == "shapes" }) {
            let d = shapes.diffusion.alignment["colour_and_shape"] ?? .nan
            let a = shapes.ar.alignment["colour_and_shape"] ?? .nan
            let v: Verdict = d >= a ? .reproduced : .not
            table.add("Images follow the text at least as well as VQ-AR's",
                      paper: "qualitative (Figs. 4–5); no number", ours: "Shapes colour and shape match: \(formatPercent(d)) vs \(formatPercent(a))",
                      verdict: v, reason: v == .reproduced ? "The diffusion samples match the captions' objects as often or more often."
                                                           : "The AR samples match the captions' objects more often.")
        }
        var lines = ["| dataset | model | parameters | FID | KID | alignment | img/s (batch 1) | img/s (batch 16) | real floor FID |",
                     "|---|---|---|---|---|---|---|---|---|"]
        for r in results {
            for (label, s) in [("VQ-Diffusion", r.diffusion), ("VQ-AR", r.ar)] {
                let key = r.dataset == "shapes" ? "colour_and_shape" : "class"
                let b1 = s.imagesPerSecond[1].map { formatNumber($0) } ?? "–"
                let b16 = s.imagesPerSecond[16].map { formatNumber($0) } ?? "–"
                lines.append("| \(r.dataset) | \(label) | \(s.parameters) | \(formatNumber(s.fid)) | \(formatNumber(s.kid, digits: 4)) | "
                             + "\(key) \(formatPercent(s.alignment[key] ?? .nan)) | \(b1) | \(b16) | "
                             + "\(formatNumber(r.diffusion.floorFID ?? .nan)) |")
            }
        }
        table.details = lines.joined(separator: "\n")
        table.notes = [
            "FID and KID in evaluator features on \(c.eval.count) generated vs \(c.eval.count) real \(c.eval.split.rawValue) images; "
                + "the floor is FID between two disjoint sets of \(c.eval.count) real images.",
            "Both generators: \(c.generator.preset) preset, \(c.generator.steps) training steps of \(c.generator.batchSize), "
                + "\(c.generator.textEncoder.rawValue) text features; diffusion sampled with \(c.eval.sampleSteps) steps, "
                + "truncation \(c.eval.truncation); AR with the key/value cache and the same truncation.",
        ]
        return table
    }
}

@main
struct QualityStudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study-quality",
        abstract: "VQ-Diffusion against VQ-AR at matched size and training steps (paper Tables 1 and 3).",
        discussion: """
            Trains (or reuses) the VQ-VAE, evaluator and both generators of each dataset, samples the \
            test captions, and logs FID and KID (evaluator features), caption alignment, throughput \
            and the real-data floor to the results database (experiment study-quality). Ends with \
            the claims table, also written to results/claims-quality.md. `make figures` draws the \
            bar chart from the database.
            """)

    @OptionGroup var options: StudyOptions

    func run() throws { try options.run(QualityStudy.self) }
}
