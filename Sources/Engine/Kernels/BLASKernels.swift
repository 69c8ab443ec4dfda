import CLibs

/// Which GEMM kernels OpenBLAS runs.
///
/// OpenBLAS picks its kernel family (AVX2 "Haswell", AVX-512 "SkylakeX"/"Cooperlake", …) once,
/// when the library loads, from the CPU's features — or from the `OPENBLAS_CORETYPE` environment
/// variable when it is set. On CPUs with AVX-512 the AVX-512 kernels are about twice as fast as
/// the AVX2 ones, so benchmarks report which family ran.
///
/// `OPENBLAS_CORETYPE=SkylakeX` asks for the AVX-512 kernels by name; where the environment pins
/// a family (some machines set `OPENBLAS_CORETYPE=Haswell`, since older OpenBLAS builds misdetect
/// their CPU), that is the family every program here runs unless the user says otherwise.
public enum BLASKernels {
    /// The kernel family OpenBLAS chose ("Haswell", "SkylakeX", "Cooperlake", …).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Whether this CPU and OS run AVX-512 (F, BW, DQ and VL).
    public static var cpuHasAVX512: Bool { vqd_cpu_has_avx512() != 0 }

    /// The families with AVX-512 GEMM kernels.
    static let avx512Families: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]

    /// A warning when the CPU has AVX-512 but OpenBLAS runs kernels without it (a CPU newer than
    /// the OpenBLAS build, detected as an older one, or a pinned family): matrix products then
    /// run several times slower (on one such machine, detected as "Prescott", a training step
    /// took 5× longer). Nil when the choice is right.
    public static var advice: String? {
        guard cpuHasAVX512, !avx512Families.contains(coreName) else { return nil }
        return "OpenBLAS runs its \(coreName) kernels on a CPU with AVX-512; matrix products would run several times "
            + "faster with OPENBLAS_CORETYPE=SkylakeX set in the environment of the command."
    }
}
