import Engine
import Foundation
import VQDiffusion

/// Where the matrix products and convolutions run and with what operands: the one rule the tool,
/// the studies and the benchmarks share.
///
/// - Backend: OpenBLAS (im2col convolutions) unless `VQD_BACKEND=onednn`; bf16 always runs on
///   oneDNN, and `VQD_BACKEND=openblas` forbids it (the old path, exactly).
/// - Precision: bf16 (bf16 operands, fp32 accumulation, fp32 master weights, optimizer state,
///   norms, softmax and losses) or fp32, asked for with `--precision` or a recipe's `precision`.
///   `vqd train` trains generators in bf16 by default where the CPU runs it natively
///   (AVX512_BF16, and `VQD_BACKEND` not forcing OpenBLAS): a bf16 generator measured as good as
///   its fp32 seeds, and trains 1.3–1.45× faster. Everything else defaults to fp32: sampling and
///   evaluation (AR's cached decoding is slower in bf16), the studies (their protocols and
///   recorded evaluations are fp32), the VQ-VAE and the evaluator (not checked in bf16). On CPUs
///   without AVX512_BF16, `VQD_BF16_EMULATION=1` runs bf16's numerics (operands rounded to bf16,
///   fp32 sums) on the fp32 kernels at fp32 speed, to train and check bf16 models on such machines.
public enum ComputePolicy {
    /// The precision used when none is asked for, except by generator training: fp32
    /// (docs/engine.md says why).
    public static let defaultPrecision: Precision = .fp32

    /// The precision `vqd train` trains a generator in when none is asked for: bf16 where this
    /// CPU runs bf16 products natively and `VQD_BACKEND` does not force OpenBLAS, else fp32.
    public static var defaultGeneratorTrainingPrecision: Precision {
        OneDNN.cpuHasBF16 && MatrixBackend.fromEnvironment != .openblas ? .bf16 : .fp32
    }

    /// The environment variable that allows bf16's numerics on the fp32 kernels on CPUs without AVX512_BF16.
    public static let emulationVariable = "VQD_BF16_EMULATION"

    static var emulationAllowed: Bool { ProcessInfo.processInfo.environment[emulationVariable] == "1" }

    /// Throws, naming what is wrong and how to fix it, when `VQD_BACKEND` is not a backend or
    /// `precision` cannot run on this machine.
    public static func check(_ precision: Precision) throws {
        if let value = ProcessInfo.processInfo.environment[MatrixBackend.environmentVariable], MatrixBackend.fromEnvironment == nil {
            throw ConfigurationError("\(MatrixBackend.environmentVariable)=\(value) is not a backend: use "
                                     + MatrixBackend.allCases.map(\.rawValue).joined(separator: " or ") + ", or unset it")
        }
        guard precision == .bf16 else { return }
        if MatrixBackend.fromEnvironment == .openblas {
            throw ConfigurationError("bf16 runs on oneDNN, and \(MatrixBackend.environmentVariable)=openblas forces OpenBLAS: "
                                     + "unset it, or use --precision fp32")
        }
        if !OneDNN.cpuHasBF16 && !emulationAllowed {
            throw ConfigurationError("bf16 needs the AVX512_BF16 instruction set, which this CPU (\(Machine.cpuModel ?? "unknown")) "
                                     + "lacks: use --precision fp32 (or set \(emulationVariable)=1 for bf16's numerics on the fp32 "
                                     + "kernels, at fp32 speed)")
        }
    }

    /// Checks `requested` (nil: the default) and makes it the precision of this process's products.
    @discardableResult
    public static func use(_ requested: Precision?) throws -> Precision {
        let precision = requested ?? defaultPrecision
        try check(precision)
        BLAS.precision = precision
        return precision
    }

    /// The backend running the products now.
    public static var backend: MatrixBackend { BLAS.usesOneDNN ? .onednn : .openblas }

    /// What every run records: `sys.precision`, `sys.backend`, and `sys.onednn_isa` when oneDNN runs.
    public static var tags: [(String, String)] {
        var tags = [("sys.precision", BLAS.precision.rawValue), ("sys.backend", backend.rawValue)]
        if BLAS.usesOneDNN { tags.append(("sys.onednn_isa", OneDNN.isa)) }
        return tags
    }

    /// Lines for `vqd info`: the backend, the ISA oneDNN dispatches to, and what bf16 would do here.
    public static var summary: [String] {
        let bf16 = OneDNN.cpuHasBF16 ? "native (AVX512_BF16)"
            : "not native (the CPU has no AVX512_BF16; \(emulationVariable)=1 runs bf16's numerics on the fp32 kernels)"
        return ["matrix backend: \(backend.rawValue)" + (MatrixBackend.fromEnvironment != nil ? " (from \(MatrixBackend.environmentVariable))" : ""),
                "precision: \(BLAS.precision.rawValue) (default \(defaultPrecision.rawValue); generator training by default "
                    + "\(defaultGeneratorTrainingPrecision.rawValue) here; --precision asks for either)",
                "oneDNN \(OneDNN.version), dispatching to \(OneDNN.isa); bf16 products: \(bf16)"]
    }
}
