import CLibs
import Foundation

/// Which GEMM kernels OpenBLAS runs, and a fix for CPUs it does not recognise.
///
/// OpenBLAS picks its kernel family (AVX2 "Haswell", AVX-512 "SkylakeX", …) once, when the library
/// loads, from the CPU model — or from the `OPENBLAS_CORETYPE` environment variable when set.
/// Releases before 0.3.22 do not know AMD Zen 4 and Zen 5 and fall back to the AVX2 kernels,
/// although these CPUs run the AVX-512 kernels about twice as fast (and later OpenBLAS releases
/// choose them there).
public enum BLASKernels {
    /// The kernel family OpenBLAS chose ("Haswell", "SkylakeX", …).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// When OpenBLAS fell back to its AVX2 kernels on a CPU with AVX-512 (F, BW, DQ, VL) and
    /// `OPENBLAS_CORETYPE` is unset, sets `OPENBLAS_CORETYPE=SKYLAKEX` and re-executes this
    /// program with the same arguments; otherwise (or if re-executing fails) returns and nothing
    /// changes. Call it first thing in `main`, before any output. Set `OPENBLAS_CORETYPE` yourself
    /// to choose the kernels, or to opt out.
    public static func relaunchWithAVX512KernelsIfMisdetected() {
        #if os(Linux)
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              coreName.lowercased() == "haswell" || coreName.lowercased() == "zen",
              cpuHasAVX512() else { return }
        setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")   // exec failed: carry on with the kernels already loaded
        #endif
    }

    /// Whether /proc/cpuinfo lists the AVX-512 subsets the SkylakeX kernels use. (Read line by
    /// line with stdio: proc files report size 0, so whole-file reads come back empty.)
    static func cpuHasAVX512() -> Bool {
        guard let file = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("flags") else { continue }
            let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init))
            return ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        }
        return false
    }
}
