import Engine
import Foundation
import Testing
@testable import Experiments

/// The rules of `ComputePolicy`, with the environment variables set and restored around each case.
@Suite(.serialized) struct ComputePolicyTests {
    func with(_ variables: [String: String?], _ body: () throws -> Void) rethrows {
        let saved = variables.keys.map { ($0, getenv($0).map { String(cString: $0) }) }
        for (name, value) in variables {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        defer { for (name, value) in saved { if let value { setenv(name, value, 1) } else { unsetenv(name) } } }
        try body()
    }

    func message(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    @Test func badRequestsSayWhatIsWrong() {
        with(["VQD_BACKEND": "fast", "VQD_BF16_EMULATION": nil]) {
            #expect(message { try ComputePolicy.check(.fp32) }?.contains("VQD_BACKEND=fast is not a backend") == true)
        }
        with(["VQD_BACKEND": "openblas", "VQD_BF16_EMULATION": "1"]) {
            #expect(message { try ComputePolicy.check(.bf16) }?.contains("forces OpenBLAS") == true)
            #expect(message { try ComputePolicy.check(.fp32) } == nil)
        }
        with(["VQD_BACKEND": nil, "VQD_BF16_EMULATION": nil]) {
            let refusal = message { try ComputePolicy.check(.bf16) }
            // Only a CPU without AVX512_BF16 refuses, naming the instruction set and the way out.
            if OneDNN.cpuHasBF16 {
                #expect(refusal == nil)
            } else {
                #expect(refusal?.contains("AVX512_BF16") == true && refusal?.contains("--precision fp32") == true, "\(refusal ?? "")")
            }
        }
        with(["VQD_BACKEND": nil, "VQD_BF16_EMULATION": "1"]) {
            #expect(message { try ComputePolicy.check(.bf16) } == nil)
        }
    }

    /// Generator training defaults to bf16 exactly where the CPU runs it natively and OpenBLAS is
    /// not forced; emulation never makes it the default; everything else defaults to fp32.
    @Test func generatorTrainingDefaultsToNativeBF16Only() throws {
        #expect(ComputePolicy.defaultPrecision == .fp32)
        try with(["VQD_BACKEND": nil, "VQD_BF16_EMULATION": "1"]) {
            #expect(ComputePolicy.defaultGeneratorTrainingPrecision == (OneDNN.cpuHasBF16 ? .bf16 : .fp32))
            let unset = try PrecisionOption.parse([])
            #expect(unset.forGeneratorRecipe == ComputePolicy.defaultGeneratorTrainingPrecision)
            #expect(unset.forRecipe == .fp32)
            #expect(try PrecisionOption.parse(["--precision", "fp32"]).forGeneratorRecipe == .fp32)
        }
        with(["VQD_BACKEND": "openblas", "VQD_BF16_EMULATION": "1"]) {
            #expect(ComputePolicy.defaultGeneratorTrainingPrecision == .fp32)
        }
    }

    /// `use` sets the process's precision (the default when none is asked for) and every run's tags say it.
    @Test func theChosenPrecisionIsRecorded() throws {
        defer { BLAS.precision = .fp32 }
        try with(["VQD_BACKEND": nil, "VQD_BF16_EMULATION": "1"]) {
            #expect(try ComputePolicy.use(nil) == ComputePolicy.defaultPrecision)
            try ComputePolicy.use(.bf16)
            let tags = Dictionary(uniqueKeysWithValues: ComputePolicy.tags)
            #expect(tags["sys.precision"] == "bf16")
            #expect(tags["sys.backend"] == (BLAS.usesOneDNN ? "onednn" : "openblas"))
        }
    }
}
