import ArgumentParser
import Foundation
import VQDiffusion

/// `vqd inspect …`: print internal quantities as JSON, for checking against other implementations.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print internal quantities (noise schedules) as JSON; compute posteriors of given arrays.",
        subcommands: [InspectSchedule.self, InspectPosterior.self])
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
