#ifndef VQD_CLIBS_SHIM_H
#define VQD_CLIBS_SHIM_H

#include <cblas.h>
#include <png.h>
#include <zlib.h>

/* LAPACK (Fortran interface, shipped inside OpenBLAS). Column-major, arguments by pointer. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
void dgesv_(const int *n, const int *nrhs, double *a, const int *lda, int *ipiv, double *b, const int *ldb,
            int *info);

/* Whether the CPU (and the OS, which must save the wider registers) supports the AVX-512 subsets
   that OpenBLAS's SkylakeX kernels use: F, BW, DQ and VL. Always 0 off x86-64. */
static inline int vqd_cpu_has_avx512(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

#endif
