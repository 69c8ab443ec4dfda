#ifndef VQD_CDNNL_SHIM_H
#define VQD_CDNNL_SHIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
// oneDNN (Debian's libdnnl-dev), the second matrix backend beside OpenBLAS: its matmul and
// convolution primitives, with bfloat16 operands on CPUs that have AVX512_BF16.
#include <oneapi/dnnl/dnnl.h>
#include <dlfcn.h>

/// Whether this CPU runs AVX512_BF16 (bf16 dot products with fp32 accumulation).
static inline int vqd_cpu_has_avx512_bf16(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/// Sets the OpenMP thread count of the calling thread's next parallel regions (oneDNN's primitives
/// run on OpenMP here). Looked up at run time in the OpenMP runtime oneDNN loaded, so nothing here
/// links against it directly; does nothing when no OpenMP runtime is loaded. (Two threads racing
/// on the first lookup both store the same pointer.)
static inline void vqd_omp_set_num_threads(int n) {
    typedef void (*setter_t)(int);
    static setter_t setter = 0;
    static int looked = 0;
    if (!looked) {
        setter = (setter_t)dlsym(RTLD_DEFAULT, "omp_set_num_threads");
        looked = 1;
    }
    if (setter) setter(n);
}

#endif
