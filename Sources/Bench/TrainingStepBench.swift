import Engine
import Experiments
import Foundation
import VQDiffusion

/// The small preset's training step at batch 32 on synthetic tokens (K = 512, 8×8 tokens, random
/// 32 × 384 text features, the `vqd train --synthetic` setting), for VQ-Diffusion and VQ-AR: a
/// fresh trainer per precision, 2 untimed steps, then the median of 5.
func trainingStepCase(_ family: GeneratorFamily, precision: Precision) throws -> (name: String, stepsPerSecond: Double) {
    var settings = GeneratorSettings()
    (settings.preset, settings.synthetic, settings.batchSize, settings.steps, settings.warmupSteps) = ("small", true, 32, 100, 10)
    settings.precision = precision
    let recipe = GeneratorRecipe(family: family, vqvae: .defaults, settings: settings)
    let store = ModelStore(database: nil, profile: nil, showProgress: false, log: { _ in })
    let seconds = try BLAS.withPrecision(precision) { () throws -> Double in
        let trainer = try recipe.prepareTrainer(store: store).trainer
        return median(try (0..<7).map { _ in
            let t0 = now()
            _ = try trainer.advance()
            return now() - t0
        }.dropFirst(2).map { $0 })
    }
    return ("train step \(family.rawValue) small b32 synthetic", 1 / seconds)
}
