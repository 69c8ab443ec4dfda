import ArgumentParser
import Experiments
import Foundation
import VQDiffusion

/// `vqd fid`: the Fréchet distance (and optionally KID) between two feature sets in .npy files.
struct FIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fid",
        abstract: "Print the FID (and KID with --kid) between two [N, D] feature arrays in .npy files.",
        discussion: """
            Each file holds a 2-D float32 or float64 array [N, D], N ≥ 2, the same D in both. The \
            features can come from anywhere, so the label is plain FID; everything is computed in \
            Float64. KID uses the cubic polynomial kernel over --subsets random pairs of subsets of \
            --subset-size samples (default min(1000, N1, N2)), drawn with --seed, and prints mean ± std.
            """)

    @Option(help: "The reference feature set, a .npy file [N1, D].")
    var real: String

    @Option(help: "The feature set to compare, a .npy file [N2, D].")
    var fake: String

    @Flag(help: "Also print KID mean ± std over random subsets.")
    var kid = false

    @Option(help: "KID: number of subset pairs.")
    var subsets: Int = 100

    @Option(help: "KID: samples per subset (default min(1000, N1, N2)).")
    var subsetSize: Int?

    @Option(help: "KID: seed of the subset draws.")
    var seed: UInt64 = 0

    func validate() throws {
        if subsets < 1 { throw ValidationError("--subsets must be at least 1, got \(subsets).") }
        if let subsetSize, subsetSize < 2 { throw ValidationError("--subset-size must be at least 2, got \(subsetSize).") }
        if !kid && (subsetSize != nil) { throw ValidationError("--subset-size applies with --kid only.") }
    }

    func run() throws {
        let options = kid ? FeatureFileComparison.KIDOptions(subsets: subsets, subsetSize: subsetSize, seed: seed) : nil
        let result = try FeatureFileComparison(real: URL(fileURLWithPath: real), fake: URL(fileURLWithPath: fake), kid: options)
        print(result.report)
    }
}
