import ArgumentParser
import Engine
import Experiments
import VQDiffusion

@main
struct VQD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vqd",
        abstract: "VQ-Diffusion in Swift: train, sample, evaluate, inspect and query results.",
        discussion: """
            A reproducible research suite for "Vector Quantized Diffusion Model for Text-to-Image \
            Synthesis" (Gu et al., CVPR 2022): a VQ-VAE tokenizer, a mask-and-replace discrete \
            diffusion model conditioned on text, an autoregressive baseline, and the metrics that \
            compare them. Every run is logged to the results database (results/results.sqlite).
            """,
        version: VQDiffusionInfo.version,
        subcommands: [
            InfoCommand.self,
            DatasetCommand.self,
            ResultsCommand.self,
            InspectCommand.self,
            FIDCommand.self,
            TrainCommand.self,
            SampleCommand.self,
            EditCommand.self,
            EmbedTextCommand.self,
            EvaluatorCommand.self,
            EvalCommand.self,
            VQVAECommand.self,
            ModelsCommand.self,
        ])

    /// ArgumentParser's main, joining the MPI job first when mpirun started this process.
    static func main() { mainJoiningMPI() }
}

struct InfoCommand: DistributedCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the version, the matrix backend and precision, the thread count, and whether it runs under MPI.")

    func run() throws {
        print("vqd \(VQDiffusionInfo.version)")
        print("BLAS threads: \(BLAS.threads)")
        print("BLAS kernels: OpenBLAS \(BLASKernels.coreName)\(BLASKernels.cpuHasAVX512 ? " (CPU with AVX-512)" : "")")
        if let advice = BLASKernels.advice { print("note: " + advice) }
        for line in ComputePolicy.summary { print(line) }
        print(ProcessGroup.summary())
    }
}
