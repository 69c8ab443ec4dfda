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
}
