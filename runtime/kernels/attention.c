/* Multi-head self-attention (PyTorch nn.MultiheadAttention, batch_first, q = k = v = x),
 * forward and backward (contract in seq_kernels.h).
 *
 * The in and out projections are one sgemm each over all B·T rows. Heads are never copied
 * out: head h of q, k or v is the column window [h·D, (h+1)·D) of the qkv rows, so each
 * per-(b, h) product reads it in place with leading dimension 3E (and writes o_h into o with
 * leading dimension E). Softmax subtracts the row maximum. Dropout on the attention weights
 * keeps no mask: it is recomputed from mtk_dropout_keep with the element index
 * ((b·NH + h)·T + i)·T + j, so forward and backward agree by construction.
 * Deliberately not here: masks (key padding, causal), separate k/v inputs, bias_kv, add_zero_attn,
 * averaged attention-weight outputs, and any allocation.
 */
#include "seq_kernels.h"

#include "mtl_kernels.h"
#include "mtk_colsum.h"
#include "mtk_math.h"

#include <cblas.h>
#include <math.h>

/* Forward needs one [T, T] buffer for the dropped-out weights P' (probs keeps P itself, which
 * backward needs for the softmax gradient). Backward needs dO [B, T, E] and dqkv [B, T, 3E] for
 * the projection products after the head loop, plus P' and dP [T, T] reused across heads. */
MtkScratch mtk_attention_scratch(int64_t T, int64_t E, int64_t NH) {
    (void)NH;
    MtkScratch s = {4 * T * E, 2 * T * T};
    return s;
}

/* P' [T, T] = P ⊙ keep / (1 − p) for head (b, h), given bh = b·NH + h */
static void attention_dropout(float *restrict pd, const float *restrict P, int64_t bh, int64_t T, float p,
                              uint64_t seed, uint32_t site) {
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; /* p = 1 drops everything */
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            uint64_t idx = (uint64_t)((bh * T + i) * T + j);
            pd[i * T + j] = mtk_dropout_keep(seed, site, idx, p) ? P[i * T + j] * scale : 0.0f;
        }
}

void mtk_attention_forward(float *restrict y,          /* [B, T, E] */
                           float *restrict qkv,        /* [B, T, 3E] saved: q | k | v */
                           float *restrict probs,      /* [B, NH, T, T] saved: softmax P before dropout */
                           float *restrict o,          /* [B, T, E] saved: heads concatenated, before out_proj */
                           float *restrict scratch,    /* mtk_attention_scratch(T, E, NH) */
                           const float *restrict x,    /* [B, T, E] */
                           const float *restrict w_in, /* [3E, E] in_proj_weight */
                           const float *restrict b_in, /* [3E] or NULL */
                           const float *restrict w_out, /* [E, E] out_proj.weight */
                           const float *restrict b_out, /* [E] or NULL */
                           int64_t B, int64_t T, int64_t E, int64_t NH, float p, uint64_t seed, uint32_t site,
                           int64_t training) {
    const int64_t R = B * T, E3 = 3 * E, D = E / NH;
    const float scale = 1.0f / sqrtf((float)D);
    const int drop = training && p > 0.0f;
    float *pd = scratch + 4 * T * E * B; /* fixed part: P' [T, T] */

    /* qkv [R, 3E] = b_in + x [R, E] · w_inᵀ */
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < E3; j++) qkv[r * E3 + j] = b_in ? b_in[j] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)E3, (int)E, 1.0f, x, (int)E, w_in, (int)E,
                1.0f, qkv, (int)E3);

    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            const float *q = qkv + b * T * E3 + h * D, *k = q + E, *v = q + 2 * E;
            float *P = probs + (b * NH + h) * T * T;
            /* S [T, T] = q_h [T, D] · k_hᵀ / sqrt(D), written where P goes and normalised in place */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)D, scale, q, (int)E3, k,
                        (int)E3, 0.0f, P, (int)T);
            for (int64_t i = 0; i < T; i++) {
                float *row = P + i * T;
                float mx = row[0];
                for (int64_t j = 1; j < T; j++) mx = row[j] > mx ? row[j] : mx;
                float sum = 0.0f;
                for (int64_t j = 0; j < T; j++) {
                    row[j] = mtk_expf(row[j] - mx);
                    sum += row[j];
                }
                const float inv = 1.0f / sum;
                for (int64_t j = 0; j < T; j++) row[j] *= inv;
            }
            const float *Pa = P; /* the weights actually applied to v */
            if (drop) {
                attention_dropout(pd, P, b * NH + h, T, p, seed, site);
                Pa = pd;
            }
            /* o_h [T, D] = P' [T, T] · v_h [T, D] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)D, (int)T, 1.0f, Pa, (int)T, v,
                        (int)E3, 0.0f, o + b * T * E + h * D, (int)E);
        }

    /* y [R, E] = b_out + o [R, E] · w_outᵀ */
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < E; j++) y[r * E + j] = b_out ? b_out[j] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)E, (int)E, 1.0f, o, (int)E, w_out, (int)E,
                1.0f, y, (int)E);
}

void mtk_attention_backward(float *restrict dx,           /* [B, T, E] or NULL */
                            float *restrict dw_in,        /* [3E, E] or NULL */
                            float *restrict db_in,        /* [3E] or NULL */
                            float *restrict dw_out,       /* [E, E] or NULL */
                            float *restrict db_out,       /* [E] or NULL */
                            float *restrict scratch,      /* mtk_attention_scratch(T, E, NH) */
                            const float *restrict dy,     /* [B, T, E] */
                            const float *restrict qkv,    /* [B, T, 3E] saved */
                            const float *restrict probs,  /* [B, NH, T, T] saved P (before dropout) */
                            const float *restrict o,      /* [B, T, E] saved */
                            const float *restrict x,      /* [B, T, E] */
                            const float *restrict w_in,   /* [3E, E] */
                            const float *restrict w_out,  /* [E, E] */
                            int64_t B, int64_t T, int64_t E, int64_t NH, float p, uint64_t seed, uint32_t site,
                            int64_t training, int accumulate_dx, int accumulate_params) {
    const int64_t R = B * T, E3 = 3 * E, D = E / NH;
    const float scale = 1.0f / sqrtf((float)D);
    const int drop = training && p > 0.0f;
    const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    const float beta_p = accumulate_params ? 1.0f : 0.0f;
    float *dO = scratch;              /* [R, E] gradient w.r.t. o */
    float *dqkv = dO + R * E;         /* [R, 3E] gradient w.r.t. qkv */
    float *pd = scratch + 4 * T * E * B; /* [T, T] P' of the current head */
    float *dP = pd + T * T;           /* [T, T] dL/dP', then dL/dP, then dL/dS */

    /* out_proj: dW_out [E, E] (+)= dyᵀ [E, R] · o [R, E]; db_out = Σ_r dy */
    if (dw_out)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)E, (int)E, (int)R, 1.0f, dy, (int)E, o, (int)E,
                    beta_p, dw_out, (int)E);
    if (db_out) mtk_colsum(db_out, dy, NULL, R, E, accumulate_params);
    if (!dx && !dw_in && !db_in) return; /* nothing below the out projection is wanted */
    /* dO [R, E] = dy [R, E] · w_out [E, E] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)E, (int)E, 1.0f, dy, (int)E, w_out, (int)E,
                0.0f, dO, (int)E);

    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            const int64_t bh = b * NH + h;
            const float *q = qkv + b * T * E3 + h * D, *k = q + E, *v = q + 2 * E;
            float *dq = dqkv + b * T * E3 + h * D, *dk = dq + E, *dv = dq + 2 * E;
            const float *dOh = dO + b * T * E + h * D;
            const float *P = probs + bh * T * T;
            const float *Pa = P;
            if (drop) {
                attention_dropout(pd, P, bh, T, p, seed, site);
                Pa = pd;
            }
            /* dP' [T, T] = dO_h [T, D] · v_hᵀ ; dv_h [T, D] = P'ᵀ [T, T] · dO_h [T, D] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)D, 1.0f, dOh, (int)E, v,
                        (int)E3, 0.0f, dP, (int)T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)D, (int)T, 1.0f, Pa, (int)T, dOh,
                        (int)E, 0.0f, dv, (int)E3);
            /* through dropout (the same mask, recomputed), then through softmax row by row:
             * dS = P ⊙ (dP − Σ_j dP ⊙ P) */
            for (int64_t i = 0; i < T; i++) {
                float *restrict drow = dP + i * T;
                const float *restrict prow = P + i * T;
                if (drop)
                    for (int64_t j = 0; j < T; j++)
                        drow[j] = mtk_dropout_keep(seed, site, (uint64_t)((bh * T + i) * T + j), p)
                                      ? drow[j] * keep_scale
                                      : 0.0f;
                float dot = 0.0f;
                for (int64_t j = 0; j < T; j++) dot += drow[j] * prow[j];
                for (int64_t j = 0; j < T; j++) drow[j] = prow[j] * (drow[j] - dot);
            }
            /* dq_h [T, D] = dS · k_h / sqrt(D) ; dk_h [T, D] = dSᵀ · q_h / sqrt(D) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)D, (int)T, scale, dP, (int)T, k,
                        (int)E3, 0.0f, dq, (int)E3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)D, (int)T, scale, dP, (int)T, q,
                        (int)E3, 0.0f, dk, (int)E3);
        }

    /* in_proj: dW_in [3E, E] (+)= dqkvᵀ [3E, R] · x [R, E]; db_in = Σ_r dqkv; dx (+)= dqkv · w_in */
    if (dw_in)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)E3, (int)E, (int)R, 1.0f, dqkv, (int)E3, x, (int)E,
                    beta_p, dw_in, (int)E);
    if (db_in) mtk_colsum(db_in, dqkv, NULL, R, E3, accumulate_params);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)E, (int)E3, 1.0f, dqkv, (int)E3, w_in,
                    (int)E, accumulate_dx ? 1.0f : 0.0f, dx, (int)E);
}

/* ---- last query only ----
 * Keys and values for all T rows, everything else for row L = T − 1 (see seq_kernels.h). The
 * per-(b, h) work is a T × D matrix-vector product each way, done in plain loops: a BLAS call
 * would cost more than its 2·T·D flops. The dropout index of (b, h, j) is the full kernel's
 * ((b·NH + h)·T + L)·T + j, so the kept weights are the same. */
void mtk_attention_last_forward(float *restrict y,          /* [B, E] */
                                float *restrict qkv,        /* [B, T, 3E] saved */
                                float *restrict probs,      /* [B, NH, T] saved: last row of P */
                                float *restrict o,          /* [B, E] saved: heads of the last row */
                                float *restrict scratch,    /* unused here */
                                const float *restrict x,    /* [B, T, E] */
                                const float *restrict w_in, /* [3E, E] */
                                const float *restrict b_in, /* [3E] or NULL */
                                const float *restrict w_out, /* [E, E] */
                                const float *restrict b_out, /* [E] or NULL */
                                int64_t B, int64_t T, int64_t E, int64_t NH, float p, uint64_t seed, uint32_t site,
                                int64_t training) {
    (void)scratch;
    const int64_t R = B * T, E3 = 3 * E, D = E / NH, L = T - 1;
    const float scale = 1.0f / sqrtf((float)D);
    const int drop = training && p > 0.0f;
    const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;

    /* k | v [R, 2E] = b_in[E, 3E) + x · w_in[E, 3E)ᵀ */
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = E; j < E3; j++) qkv[r * E3 + j] = b_in ? b_in[j] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)(2 * E), (int)E, 1.0f, x, (int)E, w_in + E * E,
                (int)E, 1.0f, qkv + E, (int)E3);
    /* q of row L [B, E] = b_in[0, E) + x[:, L] · w_in[0, E)ᵀ */
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < E; j++) qkv[(b * T + L) * E3 + j] = b_in ? b_in[j] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)E, (int)E, 1.0f, x + L * E, (int)(T * E), w_in,
                (int)E, 1.0f, qkv + L * E3, (int)(T * E3));

    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            const int64_t bh = b * NH + h;
            const float *q = qkv + (b * T + L) * E3 + h * D, *k = qkv + b * T * E3 + E + h * D, *v = k + E;
            float *P = probs + bh * T, *oh = o + b * E + h * D;
            float mx = -INFINITY;
            for (int64_t j = 0; j < T; j++) {
                float sdot = 0.0f;
                for (int64_t d = 0; d < D; d++) sdot += q[d] * k[j * E3 + d];
                P[j] = sdot * scale;
                mx = P[j] > mx ? P[j] : mx;
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < T; j++) {
                P[j] = mtk_expf(P[j] - mx);
                sum += P[j];
            }
            const float inv = 1.0f / sum;
            for (int64_t j = 0; j < T; j++) P[j] *= inv;
            for (int64_t d = 0; d < D; d++) oh[d] = 0.0f;
            for (int64_t j = 0; j < T; j++) {
                float w = P[j];
                if (drop)
                    w = mtk_dropout_keep(seed, site, (uint64_t)((bh * T + L) * T + j), p) ? w * keep_scale : 0.0f;
                for (int64_t d = 0; d < D; d++) oh[d] += w * v[j * E3 + d];
            }
        }

    /* y [B, E] = b_out + o · w_outᵀ */
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < E; j++) y[b * E + j] = b_out ? b_out[j] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)E, (int)E, 1.0f, o, (int)E, w_out, (int)E, 1.0f,
                y, (int)E);
}

void mtk_attention_last_backward(float *restrict dx,          /* [B, T, E] or NULL */
                                 float *restrict dw_in,       /* [3E, E] or NULL */
                                 float *restrict db_in,       /* [3E] or NULL */
                                 float *restrict dw_out,      /* [E, E] or NULL */
                                 float *restrict db_out,      /* [E] or NULL */
                                 float *restrict scratch,     /* mtk_attention_scratch(T, E, NH) */
                                 const float *restrict dy,    /* [B, E] */
                                 const float *restrict qkv,   /* [B, T, 3E] saved */
                                 const float *restrict probs, /* [B, NH, T] saved */
                                 const float *restrict o,     /* [B, E] saved */
                                 const float *restrict x,     /* [B, T, E] */
                                 const float *restrict w_in,  /* [3E, E] */
                                 const float *restrict w_out, /* [E, E] */
                                 int64_t B, int64_t T, int64_t E, int64_t NH, float p, uint64_t seed, uint32_t site,
                                 int64_t training, int accumulate_dx, int accumulate_params) {
    const int64_t R = B * T, E3 = 3 * E, D = E / NH, L = T - 1;
    const float scale = 1.0f / sqrtf((float)D);
    const int drop = training && p > 0.0f;
    const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    const float beta_p = accumulate_params ? 1.0f : 0.0f;
    float *dO = scratch;                 /* [B, E] gradient w.r.t. o */
    float *dqkv = dO + B * E;            /* [R, 3E]: dq at rows L only, dk and dv everywhere */
    float *dP = scratch + 4 * T * E * B; /* [T] dL/dP', then dL/dS, of the current head */

    /* out_proj over the B last rows */
    if (dw_out)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)E, (int)E, (int)B, 1.0f, dy, (int)E, o, (int)E,
                    beta_p, dw_out, (int)E);
    if (db_out) mtk_colsum(db_out, dy, NULL, B, E, accumulate_params);
    if (!dx && !dw_in && !db_in) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)E, (int)E, 1.0f, dy, (int)E, w_out, (int)E,
                0.0f, dO, (int)E);

    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            const int64_t bh = b * NH + h;
            const float *q = qkv + (b * T + L) * E3 + h * D, *k = qkv + b * T * E3 + E + h * D, *v = k + E;
            float *dq = dqkv + (b * T + L) * E3 + h * D, *dk = dqkv + b * T * E3 + E + h * D, *dv = dk + E;
            const float *dOh = dO + b * E + h * D, *P = probs + bh * T;
            /* dv_j = P'_j · dO_h; dP'_j = dO_h · v_j; through the dropout mask back to dP */
            for (int64_t j = 0; j < T; j++) {
                const int keep = drop ? mtk_dropout_keep(seed, site, (uint64_t)((bh * T + L) * T + j), p) : 1;
                const float f = drop ? (keep ? keep_scale : 0.0f) : 1.0f;
                const float pa = P[j] * f;
                float dpa = 0.0f;
                for (int64_t d = 0; d < D; d++) {
                    dv[j * E3 + d] = pa * dOh[d];
                    dpa += dOh[d] * v[j * E3 + d];
                }
                dP[j] = dpa * f;
            }
            /* softmax: dS = P ⊙ (dP − Σ_j dP ⊙ P) */
            float dot = 0.0f;
            for (int64_t j = 0; j < T; j++) dot += dP[j] * P[j];
            for (int64_t j = 0; j < T; j++) dP[j] = P[j] * (dP[j] - dot) * scale;
            /* dq_h = Σ_j dS_j k_j / sqrt(D); dk_j = dS_j q_h / sqrt(D) */
            for (int64_t d = 0; d < D; d++) dq[d] = 0.0f;
            for (int64_t j = 0; j < T; j++)
                for (int64_t d = 0; d < D; d++) {
                    dq[d] += dP[j] * k[j * E3 + d];
                    dk[j * E3 + d] = dP[j] * q[d];
                }
        }

    /* in_proj, q part over the B last rows, k | v part over all R rows */
    if (dw_in) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)E, (int)E, (int)B, 1.0f, dqkv + L * E3,
                    (int)(T * E3), x + L * E, (int)(T * E), beta_p, dw_in, (int)E);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(2 * E), (int)E, (int)R, 1.0f, dqkv + E, (int)E3, x,
                    (int)E, beta_p, dw_in + E * E, (int)E);
    }
    if (db_in) {
        mtk_colsum_ld(db_in, dqkv + L * E3, NULL, B, E, T * E3, accumulate_params);
        mtk_colsum_ld(db_in + E, dqkv + E, NULL, R, 2 * E, E3, accumulate_params);
    }
    if (dx) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)E, (int)(2 * E), 1.0f, dqkv + E, (int)E3,
                    w_in + E * E, (int)E, accumulate_dx ? 1.0f : 0.0f, dx, (int)E);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)E, (int)E, 1.0f, dqkv + L * E3,
                    (int)(T * E3), w_in, (int)E, 1.0f, dx + L * E, (int)(T * E));
    }
}
