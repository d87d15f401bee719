/* OpenBLAS kernel selection. Debian 12's OpenBLAS 0.3.21 (built with DYNAMIC_ARCH) does not
 * recognise recent AMD EPYC CPUs and falls back to a generic pre-AVX kernel, about 5x slower for
 * sgemm. OPENBLAS_CORETYPE is only read when the library loads, so when the chosen kernel is a
 * generic one we set it and re-execute ourselves once, picking only a kernel whose instructions
 * the CPU reports (avx2+fma for Haswell, plus avx512f/bw/vl/dq for SkylakeX).
 *
 * Never overrides a user's OPENBLAS_CORETYPE; MTL_NO_BLAS_SELECT=1 turns it off; MTL_BLAS_REEXEC
 * guards against loops. Not a CPU database: anything newer than SkylakeX maps to one of the two.
 */
#include "mtl_runtime.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *mtl_blas_corename(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}

bool mtl_blas_core_is_generic(const char *name) {
    static const char *const generic[] = {"prescott", "core2", "katmai", "coppermine", "northwood",
                                          "penryn", "dunnington", "athlon", "opteron",
                                          "opteron_sse3", "barcelona", "unknown", "generic", NULL};
    for (int i = 0; generic[i]; i++)
        if (!strcasecmp(name, generic[i])) return true;
    return false;
}

const char *mtl_blas_best_core(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool hsw = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (hsw && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (hsw) return "Haswell";
#endif
    return NULL;
}

void mtl_blas_select(int argc, char **argv) {
    (void)argc;
    const char *off = getenv("MTL_NO_BLAS_SELECT");
    if (off && strcmp(off, "0") != 0 && off[0]) return;
    if (getenv("OPENBLAS_CORETYPE")) return; /* the user's (or our re-exec's) choice */
    if (getenv("MTL_BLAS_REEXEC")) return;   /* already re-executed once: never loop */
    if (!mtl_blas_core_is_generic(mtl_blas_corename())) return;
    const char *best = mtl_blas_best_core();
    if (!best) return;
    if (setenv("OPENBLAS_CORETYPE", best, 1) != 0 || setenv("MTL_BLAS_REEXEC", "1", 1) != 0)
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): carry on with the generic kernel, undoing the variables so child
     * processes are not misled */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("MTL_BLAS_REEXEC");
}

int mtl_blas_set_threads(int n) {
    if (n <= 0) n = openblas_get_num_procs();
    if (n < 1) n = 1;
    openblas_set_num_threads(n);
    return openblas_get_num_threads();
}
