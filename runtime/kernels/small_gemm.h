/* Which dense-layer matrix products runtime/kernels/small_gemm.c takes instead of BLAS.
 *
 * Shared by the kernels and the code generator (compiler/codegen/emit_ops.c), which calls
 * mtk_small_gemm_nt/_nn/_tn for a product only when mtk_small_gemm_fits says so and cblas_sgemm
 * otherwise. Header-only so that mtlc needs no kernel object code.
 *
 * The three forms, for a weight W [N, K] (N outputs, K inputs) and M rows (batch × time):
 *   MTK_SG_NT  y  [M,N] = act(x [M,K] · Wᵀ + b)   (forward, with the dense layer's epilogue)
 *   MTK_SG_NN  dx [M,K] = dz [M,N] · W      (gradient of the input)
 *   MTK_SG_TN  dW [N,K] = dzᵀ [N,M] · x     (gradient of the weight)
 * The forward product of fewer than 8 outputs is a dot product per output instead.
 * Limits: the vectorised size at most 64 (four 16-float vectors, with four rows that is 16
 * accumulators, inside the 32 registers of AVX-512), and the packed weight copy at most 8192
 * floats of stack.
 */
#ifndef MTL_SMALL_GEMM_H
#define MTL_SMALL_GEMM_H

#include <stdint.h>

enum { MTK_SG_NT = 0, MTK_SG_NN = 1, MTK_SG_TN = 2 };
enum { MTK_SG_LANES = 16, MTK_SG_MAX_VECS = 4, MTK_SG_ROWS = 4, MTK_SG_PACK_MAX = 8192, MTK_SG_DOT_N = 8 };

static inline int64_t mtk_sg_vecs(int64_t d) { return (d + MTK_SG_LANES - 1) / MTK_SG_LANES; }

static inline int mtk_small_gemm_fits(int64_t N, int64_t K, int form) {
    if (N <= 0 || K <= 0) return 0;
    switch (form) {
    case MTK_SG_NT: /* fewer than 8 outputs: packed W, N rows of K; else packed Wᵀ, K rows of N */
        if (N < MTK_SG_DOT_N) return N * mtk_sg_vecs(K) * MTK_SG_LANES <= MTK_SG_PACK_MAX;
        return mtk_sg_vecs(N) <= MTK_SG_MAX_VECS && K * mtk_sg_vecs(N) * MTK_SG_LANES <= MTK_SG_PACK_MAX;
    case MTK_SG_NN: /* packed W: N rows of K */
        return mtk_sg_vecs(K) <= MTK_SG_MAX_VECS && N * mtk_sg_vecs(K) * MTK_SG_LANES <= MTK_SG_PACK_MAX;
    case MTK_SG_TN: /* no packing; one of the two sizes is vectorised */
        return (mtk_sg_vecs(N) <= MTK_SG_MAX_VECS || mtk_sg_vecs(K) <= MTK_SG_MAX_VECS) &&
               N * K <= MTK_SG_PACK_MAX;
    default:
        return 0;
    }
}

#endif
