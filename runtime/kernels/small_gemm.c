/* Matrix products of dense layers whose weight is small (a few thousand values at most), done
 * here instead of in BLAS. The generated code calls these with the layer's two feature sizes as
 * constants (only the row count, batch × time, is a run-time value), so after inlining every
 * loop bound below is known and the loops unroll into straight vector code.
 *
 * Why: for the dual-task MLP (17 → 32, heads of 1 and 3 outputs, batch 256) each product is
 * 0.01–0.3 MFLOP, and OpenBLAS's per-call work (argument checks, choosing a kernel, packing
 * both operands, deciding on threads) took about half of the whole training step.
 *
 * Scheme. Every product here is C (=|+=) Σ_q A[m, q] · Bm[q, p] with the p dimension in 16-float
 * vectors (GCC/Clang vector extensions; LLVM lowers a 16-float vector to one AVX-512 register or
 * two AVX ones, whatever the host has), and up to four rows of C at a time in registers:
 *   y  = x · Wᵀ   (forward)        Bm = Wᵀ, packed once per call into a zero-padded stack copy
 *   dx = dz · W   (input gradient) Bm = W,  packed the same way
 *   dW = dzᵀ · x  (weight gradient) a sum over the rows: vectorised over whichever of W's two
 *                 sizes wastes fewer lanes in its last vector, stored transposed if need be.
 * Each output is a sum in a fixed order (q ascending, or rows ascending for dW), so results are
 * deterministic; they differ from BLAS's in rounding only. Callers (the code generator) use these
 * only within the limits of mtk_small_gemm_fits, which keep the packed copy under 32 KB of stack
 * and the accumulators within the registers.
 */
#include "small_gemm.h"

#include "mtl_kernels.h"

#include "mtl_abi.h"

#include <string.h>

typedef float mtk_v16 __attribute__((vector_size(64)));

/* The kernels are always inlined where they are called (in the bitcode built by clang; the
 * native build for tests keeps them plain functions): LLVM's inliner would otherwise leave them
 * out of line, where the sizes are not constants and nothing unrolls. The generated code calls
 * them from small wrappers, one per layer shape, that pass the sizes as constants
 * (cg_call_specialised in compiler/codegen/codegen.c), so each is specialised once per shape
 * and the forward and backward passes stay small. */
#if defined(__clang__)
#define SG_KERNEL __attribute__((always_inline))
#else
#define SG_KERNEL
#endif

/* Loops over a layer's features (the sum over q, the packing, the blocks of dW) stay loops:
 * fully unrolled with constant sizes up to 128 they only add code for LLVM to optimise; the
 * short loops over rows and vectors inside them still unroll, which is what keeps the
 * accumulators in registers. */
#if defined(__clang__)
#define SG_NO_FULL_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define SG_NO_FULL_UNROLL
#endif

static inline __attribute__((always_inline)) int64_t sg_vecs(int64_t p) { return mtk_sg_vecs(p); }

static inline __attribute__((always_inline)) mtk_v16 sg_splat(float a) {
    mtk_v16 v = {a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a};
    return v;
}

static inline __attribute__((always_inline)) mtk_v16 sg_load(const float *p) {
    mtk_v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* the first n (< 16) floats at p, the other lanes zero */
static inline __attribute__((always_inline)) mtk_v16 sg_load_part(const float *p, int64_t n) {
    mtk_v16 v = sg_splat(0.0f);
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}

/* lanes [0, n) of v into p (n ≤ 16), added to what is there when accumulate */
static inline __attribute__((always_inline)) void sg_store(float *p, mtk_v16 v, int64_t n, int accumulate) {
    if (n == MTK_SG_LANES) {
        if (accumulate) v += sg_load(p);
        memcpy(p, &v, sizeof v);
        return;
    }
    float t[MTK_SG_LANES];
    memcpy(t, &v, sizeof v);
    for (int64_t i = 0; i < n; i++) p[i] = accumulate ? p[i] + t[i] : t[i];
}

/* v with the activation applied to each lane (constant act: the switch folds away) */
static inline __attribute__((always_inline)) mtk_v16 sg_act(mtk_v16 v, int act) {
    if (act == MTL_ACT_IDENTITY) return v;
    float t[MTK_SG_LANES];
    memcpy(t, &v, sizeof v);
    for (int i = 0; i < MTK_SG_LANES; i++) t[i] = mtk_act(t[i], act);
    memcpy(&v, t, sizeof v);
    return v;
}

/* The epilogue of a forward product: z_save (when non-NULL) gets the pre-activation, C the
 * activation of it; plain products pass act = identity and no z_save. */
static inline __attribute__((always_inline)) void sg_store_out(float *C, float *z_save, int64_t off, mtk_v16 v,
                                                               int64_t n, int accumulate, int act) {
    if (z_save) sg_store(z_save + off, v, n, 0);
    sg_store(C + off, sg_act(v, act), n, accumulate);
}

/* (The helpers are always inlined: only inlined into a call with constant sizes do their loops
 * unroll and their accumulators stay in registers.)
 *
 * C [M,P] (+)= A [M,Q] · Bp, Bp the packed [Q, PV·16] right operand (zero lanes past P), each
 * sum started from bias [P] when it is non-NULL, then the epilogue (sg_store_out). R rows of C
 * at a time (R = MTK_SG_ROWS, then single rows for the rest). */
static inline __attribute__((always_inline)) void sg_rows_block(float *restrict C, float *restrict z_save,
                                                                const float *restrict A, int64_t lda,
                                                                const float *restrict Bp, const float *restrict bias,
                                                                int64_t m, int R, int64_t Q, int64_t P,
                                                                int accumulate, int act) {
    const int64_t PV = sg_vecs(P), tail = P - (PV - 1) * MTK_SG_LANES;
    mtk_v16 acc[MTK_SG_ROWS][MTK_SG_MAX_VECS];
    for (int64_t v = 0; v < PV; v++) {
        mtk_v16 init = sg_splat(0.0f);
        if (bias) init = v == PV - 1 && tail < MTK_SG_LANES ? sg_load_part(bias + v * MTK_SG_LANES, tail)
                                                             : sg_load(bias + v * MTK_SG_LANES);
        for (int r = 0; r < R; r++) acc[r][v] = init;
    }
    SG_NO_FULL_UNROLL
    for (int64_t q = 0; q < Q; q++) {
        const float *b = Bp + q * PV * MTK_SG_LANES;
        for (int r = 0; r < R; r++) {
            mtk_v16 a = sg_splat(A[(m + r) * lda + q]);
            for (int64_t v = 0; v < PV; v++) acc[r][v] += a * sg_load(b + v * MTK_SG_LANES);
        }
    }
    for (int r = 0; r < R; r++)
        for (int64_t v = 0; v < PV; v++)
            sg_store_out(C, z_save, (m + r) * P + v * MTK_SG_LANES, acc[r][v], v == PV - 1 ? tail : MTK_SG_LANES,
                         accumulate, act);
}

static inline __attribute__((always_inline)) void sg_rows(float *restrict C, float *restrict z_save,
                                                          const float *restrict A, int64_t lda,
                                                          const float *restrict Bp, const float *restrict bias,
                                                          int64_t M, int64_t Q, int64_t P, int accumulate, int act) {
    int64_t m = 0;
    for (; m + MTK_SG_ROWS <= M; m += MTK_SG_ROWS)
        sg_rows_block(C, z_save, A, lda, Bp, bias, m, MTK_SG_ROWS, Q, P, accumulate, act);
    for (; m < M; m++) sg_rows_block(C, z_save, A, lda, Bp, bias, m, 1, Q, P, accumulate, act);
}

/* The sum of v's lanes, halves first (a fixed order): four shuffle-and-add steps */
typedef float mtk_v8 __attribute__((vector_size(32)));
typedef float mtk_v4 __attribute__((vector_size(16)));
typedef float mtk_v2 __attribute__((vector_size(8)));
static inline __attribute__((always_inline)) float sg_hsum(mtk_v16 v) {
    mtk_v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    mtk_v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    mtk_v2 c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
    return c[0] + c[1];
}

/* y [M,N] = act(x [M,K] · Wᵀ + b) for N < MTK_SG_DOT_N outputs: one dot product per output,
 * vectorised over k (W packed into zero-padded rows of KV·16), its lanes summed at the end. */
static inline __attribute__((always_inline)) void sg_dense_dot(float *restrict y, float *restrict z_save,
                                                               const float *restrict x, const float *restrict w,
                                                               const float *restrict b, int64_t M, int64_t N,
                                                               int64_t K, int act) {
    const int64_t KV = sg_vecs(K), tail = K - (KV - 1) * MTK_SG_LANES;
    float wp[MTK_SG_PACK_MAX];
    SG_NO_FULL_UNROLL
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < KV * MTK_SG_LANES; j++) wp[n * KV * MTK_SG_LANES + j] = j < K ? w[n * K + j] : 0.0f;
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        mtk_v16 acc[MTK_SG_DOT_N];
        for (int64_t n = 0; n < N; n++) acc[n] = sg_splat(0.0f);
        SG_NO_FULL_UNROLL
        for (int64_t kv = 0; kv < KV; kv++) {
            mtk_v16 xv = kv == KV - 1 && tail < MTK_SG_LANES ? sg_load_part(xr + kv * MTK_SG_LANES, tail)
                                                              : sg_load(xr + kv * MTK_SG_LANES);
            for (int64_t n = 0; n < N; n++) acc[n] += xv * sg_load(wp + (n * KV + kv) * MTK_SG_LANES);
        }
        for (int64_t n = 0; n < N; n++) {
            float s = sg_hsum(acc[n]) + (b ? b[n] : 0.0f);
            if (z_save) z_save[m * N + n] = s;
            y[m * N + n] = mtk_act(s, act);
        }
    }
}

SG_KERNEL void mtk_small_dense_forward(float *restrict y, float *restrict z_save, const float *restrict x,
                                       const float *restrict w, const float *restrict b, int64_t M, int64_t N,
                                       int64_t K, int act) {
    if (N < MTK_SG_DOT_N) {
        sg_dense_dot(y, z_save, x, w, b, M, N, K, act);
        return;
    }
    const int64_t PV = sg_vecs(N);
    float bp[MTK_SG_PACK_MAX];
    SG_NO_FULL_UNROLL
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < PV * MTK_SG_LANES; j++) bp[k * PV * MTK_SG_LANES + j] = j < N ? w[j * K + k] : 0.0f;
    sg_rows(y, z_save, x, K, bp, b, M, K, N, 0, act);
}

SG_KERNEL void mtk_small_gemm_nn(float *restrict dx, const float *restrict dz, const float *restrict w, int64_t M, int64_t N,
                       int64_t K, int accumulate) {
    const int64_t PV = sg_vecs(K);
    float bp[MTK_SG_PACK_MAX];
    SG_NO_FULL_UNROLL
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < PV * MTK_SG_LANES; j++) bp[n * PV * MTK_SG_LANES + j] = j < K ? w[n * K + j] : 0.0f;
    sg_rows(dx, NULL, dz, N, bp, NULL, M, N, K, accumulate, MTL_ACT_IDENTITY);
}

/* Rows [a0, a0 + RA) of the sum C[a, b] (+)= Σ_m U[m, a] · V[m, b] (see sg_outer). */
static inline __attribute__((always_inline)) void sg_outer_block(float *restrict C, int64_t sa, int64_t sb,
                                                                 const float *restrict U, int64_t ldu,
                                                                 const float *restrict V, int64_t ldv, int64_t M,
                                                                 int64_t a0, int RA, int64_t NB, int accumulate) {
    const int64_t BV = sg_vecs(NB), tail = NB - (BV - 1) * MTK_SG_LANES;
    mtk_v16 acc[MTK_SG_ROWS][MTK_SG_MAX_VECS];
    for (int r = 0; r < RA; r++)
        for (int64_t v = 0; v < BV; v++) acc[r][v] = sg_splat(0.0f);
    for (int64_t m = 0; m < M; m++) {
        const float *vrow = V + m * ldv;
        mtk_v16 vv[MTK_SG_MAX_VECS];
        for (int64_t v = 0; v < BV; v++)
            vv[v] = v == BV - 1 && tail < MTK_SG_LANES ? sg_load_part(vrow + v * MTK_SG_LANES, tail)
                                                       : sg_load(vrow + v * MTK_SG_LANES);
        for (int r = 0; r < RA; r++) {
            mtk_v16 u = sg_splat(U[m * ldu + a0 + r]);
            for (int64_t v = 0; v < BV; v++) acc[r][v] += u * vv[v];
        }
    }
    for (int r = 0; r < RA; r++) {
        float *c = C + (a0 + r) * sa;
        if (sb == 1) {
            for (int64_t v = 0; v < BV; v++)
                sg_store(c + v * MTK_SG_LANES, acc[r][v], v == BV - 1 ? tail : MTK_SG_LANES, accumulate);
        } else {
            float t[MTK_SG_MAX_VECS * MTK_SG_LANES];
            memcpy(t, acc[r], (size_t)BV * sizeof(mtk_v16));
            for (int64_t b = 0; b < NB; b++) c[b * sb] = accumulate ? c[b * sb] + t[b] : t[b];
        }
    }
}

/* C[a, b] (+)= Σ_m U[m, a] · V[m, b] for a < NA, b < NB (b vectorised), stored at
 * C + a·sa + b·sb: (sa, sb) = (NB, 1) stores C as [NA, NB], (1, NA) stores its transpose.
 * Four values of a at a time, then one at a time (so every block's row count is a constant). */
static inline __attribute__((always_inline)) void sg_outer(float *restrict C, int64_t sa, int64_t sb,
                                                           const float *restrict U, int64_t ldu,
                                                           const float *restrict V, int64_t ldv, int64_t M,
                                                           int64_t NA, int64_t NB, int accumulate) {
    int64_t a0 = 0;
    SG_NO_FULL_UNROLL
    for (; a0 + MTK_SG_ROWS <= NA; a0 += MTK_SG_ROWS)
        sg_outer_block(C, sa, sb, U, ldu, V, ldv, M, a0, MTK_SG_ROWS, NB, accumulate);
    SG_NO_FULL_UNROLL
    for (; a0 < NA; a0++) sg_outer_block(C, sa, sb, U, ldu, V, ldv, M, a0, 1, NB, accumulate);
}

/* Lanes left unused in the last vector when d values are vectorised. */
static inline __attribute__((always_inline)) int64_t sg_waste(int64_t d) { return sg_vecs(d) * MTK_SG_LANES - d; }

SG_KERNEL void mtk_small_gemm_tn(float *restrict dw, const float *restrict dz, const float *restrict x, int64_t M, int64_t N,
                       int64_t K, int accumulate) {
    /* dW[n, k] = Σ_m dz[m, n] · x[m, k]: vectorise over k (rows of dW stored directly) unless n
     * fits the vectors better, or k does not fit in the accumulators at all */
    int over_k = sg_vecs(K) <= MTK_SG_MAX_VECS &&
                 (sg_vecs(N) > MTK_SG_MAX_VECS || sg_waste(K) * N <= sg_waste(N) * K);
    if (over_k)
        sg_outer(dw, K, 1, dz, N, x, K, M, N, K, accumulate);
    else /* dWᵀ[k, n] = Σ_m x[m, k] · dz[m, n], stored transposed */
        sg_outer(dw, 1, K, x, K, dz, N, M, K, N, accumulate);
}
