#ifndef VQD_CDNNL_SHIM_H
#define VQD_CDNNL_SHIM_H

// oneDNN (Debian's libdnnl-dev), the second matrix backend beside OpenBLAS: its matmul and
// convolution primitives, with bfloat16 operands on CPUs that have AVX512_BF16.
#include <oneapi/dnnl/dnnl.h>

/// Whether this CPU runs AVX512_BF16 (bf16 dot products with fp32 accumulation).
static inline int vqd_cpu_has_avx512_bf16(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

#endif
