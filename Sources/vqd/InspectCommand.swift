import ArgumentParser
import VQDiffusion

/// `vqd inspect …`: print internal quantities as JSON, for checking against other implementations.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print internal quantities (noise schedules) as JSON.",
        subcommands: [InspectSchedule.self])
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

    func run() throws {
        var c = DiffusionConfiguration(classes: classes, steps: steps, alphaStart: alphaStart, alphaEnd: alphaEnd,
                                       gammaStart: gammaStart, gammaEnd: gammaEnd)
        if let g = gammaFinal { c = try c.withGammaFinal(g) }
        print(try DiffusionSchedule(c).json())
    }
}
