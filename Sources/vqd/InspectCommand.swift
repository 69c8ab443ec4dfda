import ArgumentParser
import Engine
import Experiments
import Foundation
import VQDiffusion

/// `vqd inspect …`: print internal quantities as JSON, for checking against other implementations.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print internal quantities (noise schedules) as JSON; compute posteriors of given arrays; probe a trained model's denoising.",
        subcommands: [InspectSchedule.self, InspectPosterior.self, InspectDenoise.self])
}

struct InspectSchedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Print the mask-and-replace schedule for t = 1…T as JSON.",
        discussion: """
            Prints {"at","bt","ct","att","btt","ctt"}: the one-step α_t, β_t, γ_t and the \
            cumulative ᾱ_t, β̄_t, γ̄_t, each an array of T Float64 numbers for t = 1…T. \
            β is per real code: K·β̄_t = 1 − ᾱ_t − γ̄_t.
            """)

    @OptionGroup var schedule: ScheduleOptions

    func run() throws {
        print(try DiffusionSchedule(schedule.configuration()).json())
    }
}

struct InspectPosterior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "posterior",
        abstract: "Compute log p(x_{t−1} | x_t) for arrays in .npy files, in the reference code's layout.",
        discussion: """
            Reads x_t (--x-t, int64 [B, N], values 0…K with K = [MASK]) and log p̃(x0 | x_t) \
            (--log-x0, float32 [B, K, N], log-probabilities over the K real codes; −inf allowed) and \
            writes float32 [B, K+1, N] = log p(x_{t−1} | x_t) to --out: the closed-form posterior \
            normalised over the K+1 classes and floored at −70. t is 1-based (1…T); the reference \
            code's 0-based step index is t − 1. At t = 1 the result is log p̃(x0) itself with −70 for \
            [MASK]. The schedule options are those of `vqd inspect schedule`.
            """)

    @OptionGroup var schedule: ScheduleOptions
    @Option(name: .customLong("t"), help: "The step t of x_t, from 1 to T.")
    var t: Int
    @Option(name: .customLong("x-t"), help: "x_t: a .npy file, int64 [B, N], values 0…K.")
    var xt: String
    @Option(name: .customLong("log-x0"), help: "log p̃(x0 | x_t): a .npy file, float32 [B, K, N].")
    var logX0: String
    @Option(help: "The output .npy file, float32 [B, K+1, N].")
    var out: String

    func run() throws {
        let shape = try PosteriorInspection.run(schedule: try DiffusionSchedule(schedule.configuration()), t: t, xt: URL(fileURLWithPath: xt),
                                                logX0: URL(fileURLWithPath: logX0), out: URL(fileURLWithPath: out))
        print("wrote \(out): float32 \(shape)")
    }
}

/// The schedule options shared by the `inspect` commands.
struct ScheduleOptions: ParsableArguments {
    @Option(help: "K, the number of real codes (the codebook size); [MASK] is index K.")
    var classes: Int
    @Option(help: "T, the number of diffusion steps.")
    var steps: Int = 100
    @Option(help: "ᾱ_1, the probability a token is untouched after step 1.")
    var alphaStart: Double = 0.99999
    @Option(help: "ᾱ_T, the probability a token is untouched after step T.")
    var alphaEnd: Double = 0.000009
    @Option(help: "γ̄_1, the mask rate after step 1.")
    var gammaStart: Double = 0.000009
    @Option(help: "γ̄_T, the final mask rate (0.9 in the paper; 0.99999 in the released code).")
    var gammaEnd: Double = 0.9
    @Option(help: "Set γ̄_T for the mask-rate ablation (0 = replace-only, 1 = mask-only), clamping the end points so every probability stays valid; overrides --gamma-end.")
    var gammaFinal: Double?

    /// The schedule these options describe (γ̄_T from --gamma-final when given).
    func configuration() throws -> DiffusionConfiguration {
        let c = DiffusionConfiguration(classes: classes, steps: steps, alphaStart: alphaStart, alphaEnd: alphaEnd,
                                       gammaStart: gammaStart, gammaEnd: gammaEnd)
        return try gammaFinal.map { try c.withGammaFinal($0) } ?? c
    }
}

struct InspectDenoise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "denoise",
        abstract: "How much of a real image a trained VQ-Diffusion model restores, from several noise levels.",
        discussion: """
            Encodes the split's first N images with the model's VQ-VAE, noises their token grids to \
            x_t ~ q(x_t | x0) for each start time t, samples from t down to 0 with their captions \
            (every step, or --steps), and has the evaluator read the restored images against the \
            captions. The first row is the real grids decoded as they are: the tokenizer's ceiling. \
            A low t asks for local completion with almost the whole image in view; t = T is \
            ordinary generation. On Shapes, the shape readings follow (as in vqd eval): for the \
            real grids and each start time, the shape read for every stated object, by stated \
            shape. Shapes or Fashion-MNIST; nothing is written.
            """)

    @Option(help: "The VQ-Diffusion checkpoint (vqd train --model diffusion).")
    var model: String
    @Option(help: "Its VQ-VAE (default: the one it was trained on).")
    var vqvae: String?
    @Option(help: "The dataset: shapes or fashion.")
    var dataset: DatasetName = .shapes
    @Option(help: "The held-out split.")
    var split: DatasetSplit = .test
    @Option(help: "N: real images restored at each start time.")
    var count: Int = 200
    @Option(help: "Start times t, comma-separated, each in 1…T.")
    var times: String = "10,30,50,70,100"
    @Option(help: "Sampling steps from each t (default: every step).")
    var steps: Int?
    @Option(help: "Truncation rate r in (0, 1]; 1 keeps every code.")
    var truncation: Double = 0.86
    @Option(help: "Seed of the noise and the sampling.")
    var seed: UInt64 = 0
    @Option(help: "The evaluator file (default results/models/evaluator-<dataset>-<size>.safetensors).")
    var evaluator: String?

    func parsedTimes() throws -> [Int] { try parseIntegers(times, option: "--times", example: "10,30,50,100") }

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1, got \(count).") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps).") }
        if !(truncation > 0 && truncation <= 1) { throw ValidationError("--truncation must lie in (0, 1], got \(truncation).") }
        _ = try parsedTimes()
    }

    func run() throws {
        let file = try DiffusionModelFile(URL(fileURLWithPath: model))
        guard let vqvaePath = vqvae ?? file.configuration.vqvae else {
            throw CommandError("\(model) does not record the VQ-VAE it was trained on: give --vqvae FILE.")
        }
        let tokenizer = try loadGeneratorVQVAE(vqvaePath)
        let size = file.configuration.model.gridHeight * tokenizer.downsampling
        let net = try loadEvaluator(evaluator, for: dataset, imageSize: size).net
        let data = try openDataset(dataset, split: split, imageSize: size,
                                   count: dataset == .shapes ? count : nil)
        let subset = PrefixDataset(base: data, count: min(count, data.count))
        let tokens = try TokenCache.encode(subset, with: tokenizer)
        let encoder = try sampleTextEncoder(for: file, maxLength: 32)
        var rng = RandomGenerator(seed: seed)
        let startTimes = try parsedTimes()
        let bar = ProgressBar(total: startTimes.count, label: "denoise")
        let (ceiling, results) = try DenoisingProbe.run(
            model: file.model, schedule: file.schedule, textEncoder: encoder, vqvae: tokenizer, evaluator: net,
            data: tokens, times: startTimes, steps: steps, truncation: truncation < 1 ? truncation : nil,
            using: &rng) { done, _ in bar.update(done) }
        bar.finish()
        let names = ceiling.scores.scores.map { $0.name }
        print("\(dataset.rawValue) \(split.rawValue), N = \(tokens.count), truncation \(truncation)\(steps.map { ", \($0) steps" } ?? ", every step")")
        let widths = names.map { max($0.count, 7) + 2 }
        func cells(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined()
        }
        print(["start", "masked", "replaced", "tokens"].map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined()
              + cells(names))
        func row(_ label: String, _ fields: [String], _ scores: AttributeScores) -> String {
            ([label] + fields).map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined()
                + cells(scores.scores.map { String(format: "%.1f %%", 100 * $0.fraction) })
        }
        print(row("real", ["0 %", "0 %", "100 %"], ceiling.scores))
        for r in results {
            print(row("t=\(r.time)", [String(format: "%.0f %%", 100 * r.maskedFraction),
                                     String(format: "%.1f %%", 100 * r.replacedFraction),
                                     String(format: "%.1f %%", 100 * r.tokenAgreement)], r.alignment))
        }
        // Shapes: where the outline goes wrong, for the tokenizer itself and from each start time.
        if let readings = ceiling.shapeReadings {
            print("\nshape readings, real grids decoded (the tokenizer):\n\(readings.table())")
        }
        for r in results {
            if let readings = r.shapeReadings { print("\nshape readings, restored from t = \(r.time):\n\(readings.table())") }
        }
    }
}
