#ifndef VQD_CLIBS_SHIM_H
#define VQD_CLIBS_SHIM_H

#include <cblas.h>
#include <sqlite3.h>
#include <png.h>
#include <zlib.h>
#ifdef __linux__
#include <malloc.h>
#endif

/* LAPACK (Fortran interface, shipped inside OpenBLAS). Column-major, arguments by pointer. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
void dgesv_(const int *n, const int *nrhs, double *a, const int *lda, int *ipiv, double *b, const int *ldb,
            int *info);

#endif
