import Foundation
import VQDiffusion

/// What the quality study chose on val for each family — its training recipe (at the study's
/// middle budget, seed 0) and its sampling setting — and its largest budget, as the study logs
/// them on its run (the choices when its tuning ends). The other studies that build on the tuned
/// recipes (reparameterization, mask, inpainting) read them here, so the choice is made once, by
/// the quality study's protocol.
public struct QualityChoices: Sendable {
    public struct Choice: Sendable {
        public var recipe: GeneratorRecipe
        public var sampling: SamplingChoice

        /// The recipe with a budget of `steps`, its warm-up scaled in proportion, and `seed`.
        public func recipe(steps: Int, seed: Int) -> GeneratorRecipe {
            var r = recipe
            let fraction = Double(r.settings.warmupSteps) / Double(max(1, r.settings.steps))
            r.settings.steps = steps
            r.settings.warmupSteps = max(1, Int((fraction * Double(steps)).rounded()))
            r.settings.seed = UInt64(seed)
            return r
        }
    }

    /// The quality study run that made the choices.
    public var run: String
    public var diffusion: Choice
    public var ar: Choice
    /// The quality study's largest budget in steps (its seed-0 models there are the committed
    /// ones); nil for a run recorded before the study logged it.
    public var largestSteps: Int?

    public subscript(family: GeneratorFamily) -> Choice { family == .diffusion ? diffusion : ar }

    /// The run parameter holding a family's chosen recipe (as a recipe file's JSON).
    public static func recipeParam(_ family: GeneratorFamily) -> String { "middle_\(family.rawValue)_recipe" }
    /// The run parameter holding a family's chosen sampling (as `SamplingChoice` JSON).
    public static func samplingParam(_ family: GeneratorFamily) -> String { "chosen_\(family.rawValue)_sampling_json" }
    /// The run parameter holding the largest budget in steps.
    public static let largestStepsParam = "largest_steps"

    /// `steps` when given, else the quality study's largest budget — the budget of the models the
    /// studies built on the tuned recipes read unless told otherwise. `key` names the override
    /// that sets `steps`, for the error.
    public func budget(_ steps: Int?, key: String) throws -> Int {
        if let steps { return steps }
        guard let largestSteps else {
            throw ConfigurationError("quality study run \(run) predates the record of its largest budget: rerun the quality study "
                                     + "(it recalls what is recorded), or pass --\(key) with the budget in steps")
        }
        return largestSteps
    }

    /// The choices of the latest quality study run of `profile` that has made them. The run need
    /// not have finished: the choices are logged when its tuning ends. Nil when no run has.
    public static func latest(in database: ResultsDatabase, profile: StudyProfile) throws -> QualityChoices? {
        guard let run = try database.latestStudyRun("quality", profile: profile.rawValue, withParam: recipeParam(.ar),
                                                     finishedOnly: false) else { return nil }
        let params = Dictionary(try database.params(runID: run).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        func choice(_ family: GeneratorFamily) throws -> Choice {
            guard let json = params[recipeParam(family)], let sampling = params[samplingParam(family)],
                  let recipe = try RecipeFile(json: json).recipe as? GeneratorRecipe else {
                throw ConfigurationError("quality study run \(run) lacks its chosen \(family.rawValue) recipe or sampling")
            }
            return Choice(recipe: recipe, sampling: try JSONDecoder().decode(SamplingChoice.self, from: Data(sampling.utf8)))
        }
        return QualityChoices(run: run, diffusion: try choice(.diffusion), ar: try choice(.ar),
                              largestSteps: params[largestStepsParam].flatMap { Int($0) })
    }

    /// `latest`, or an error saying how to make the choices.
    public static func required(in database: ResultsDatabase, profile: StudyProfile, by study: String) throws -> QualityChoices {
        guard let choices = try latest(in: database, profile: profile) else {
            throw ConfigurationError("study-\(study) uses the quality study's tuned recipes, and the database holds none for the "
                                     + "\(profile.rawValue) profile: run `make study-quality PROFILE=\(profile.rawValue)` first "
                                     + "(its choices are recorded once its tuning stage ends), or use the same --db")
        }
        return choices
    }
}
