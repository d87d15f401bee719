/* Forward/backward kernels for generated code (see mtl_kernels.h for the legend and contract).
 *
 * Written for clarity with constant-folding in mind: every loop bound and the activation kind
 * become constants after mtlc inlines these into a model, so the switch statements disappear.
 * Reductions accumulate in double where a sum runs over the batch (losses, bias gradients),
 * which keeps results independent of batch size to float rounding.
 * Deliberately not here: matrix products (BLAS), optimizer updates (runtime/src/adamw.c).
 */
#include "mtl_kernels.h"

#include "mtl_abi.h"
#include "mtk_colsum.h"
#include "mtk_math.h"

#include <math.h>

/* With a constant N after inlining, LLVM fully unrolls short inner loops (N = 16 … 64) inside
 * the batch loop, and LoopLoadElimination/SLP then spend ~25 s on a 3.5 M-parameter model for
 * no speed-up; vectorising the inner loop without full unrolling is what pays. */
#ifdef __clang__
#define MTK_NO_FULL_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define MTK_NO_FULL_UNROLL
#endif

float mtk_act(float x, int act) {
    switch (act) {
    case MTL_ACT_RELU: return x < 0.0f ? 0.0f : x; /* NaN passes through, as in PyTorch */
    case MTL_ACT_TANH: return mtk_tanhf(x);
    case MTL_ACT_SIGMOID: return mtk_sigmoidf(x);
    case MTL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case MTL_ACT_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x)); /* PyTorch threshold 20 */
    default: return x;
    }
}

float mtk_act_grad(float x, float y, int act) {
    switch (act) {
    case MTL_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f; /* PyTorch: relu'(0) = 0 */
    case MTL_ACT_TANH: return 1.0f - y * y;
    case MTL_ACT_SIGMOID: return y * (1.0f - y);
    case MTL_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * mtk_expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case MTL_ACT_SOFTPLUS: return x > 20.0f ? 1.0f : mtk_sigmoidf(x);
    default: return 1.0f;
    }
}

int mtk_act_needs_input(int act) { return act == MTL_ACT_GELU || act == MTL_ACT_SOFTPLUS; }

void mtk_bias_act_forward(float *restrict y, float *restrict z_save, const float *restrict b, int64_t B,
                          int64_t N, int act) {
    for (int64_t i = 0; i < B; i++) {
        float *row = y + i * N;
        MTK_NO_FULL_UNROLL
        for (int64_t j = 0; j < N; j++) {
            float z = row[j] + (b ? b[j] : 0.0f);
            if (z_save) z_save[i * N + j] = z;
            row[j] = mtk_act(z, act);
        }
    }
}

void mtk_bias_act_backward(float *restrict dz, float *restrict db, const float *restrict dy,
                           const float *restrict y, const float *restrict z, int64_t B, int64_t N, int act,
                           int accumulate_db) {
    for (int64_t i = 0; i < B; i++) {
        MTK_NO_FULL_UNROLL
        for (int64_t j = 0; j < N; j++) {
            int64_t k = i * N + j;
            dz[k] = dy[k] * mtk_act_grad(z ? z[k] : 0.0f, y[k], act);
        }
    }
    if (db) mtk_colsum(db, dz, NULL, B, N, accumulate_db);
}

void mtk_act_forward(float *restrict y, const float *restrict x, int64_t n, int act) {
    for (int64_t i = 0; i < n; i++) y[i] = mtk_act(x[i], act);
}

void mtk_act_backward(float *restrict dx, const float *restrict dy, const float *restrict x,
                      const float *restrict y, int64_t n, int act, int accumulate) {
    for (int64_t i = 0; i < n; i++) {
        float g = dy[i] * mtk_act_grad(x[i], y[i], act);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

/* splitmix64 finaliser: a counter-based hash, so mask element i needs no state. */
static inline uint64_t mtk_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int mtk_dropout_keep(uint64_t seed, uint32_t site, uint64_t i, float p) {
    uint64_t h = mtk_mix64(seed ^ mtk_mix64(((uint64_t)site << 40) ^ i));
    /* top 24 bits as a uniform in [0, 1) */
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

void mtk_dropout_forward(float *restrict y, const float *restrict x, int64_t n, float p, uint64_t seed,
                         uint32_t site, int64_t training) {
    if (!training || p <= 0.0f) {
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) y[i] = mtk_dropout_keep(seed, site, (uint64_t)i, p) ? x[i] * scale : 0.0f;
}

void mtk_dropout_backward(float *restrict dx, const float *restrict dy, int64_t n, float p, uint64_t seed,
                          uint32_t site, int64_t training, int accumulate) {
    float scale = (!training || p <= 0.0f) ? 1.0f : 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        int keep = (!training || p <= 0.0f) ? 1 : mtk_dropout_keep(seed, site, (uint64_t)i, p);
        float g = keep ? dy[i] * scale : 0.0f;
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

void mtk_mse_forward(float *loss, const float *restrict pred, const float *restrict t, int64_t B, int64_t N) {
    double s = 0.0;
    for (int64_t i = 0; i < B * N; i++) {
        double d = (double)pred[i] - (double)t[i];
        s += d * d;
    }
    *loss = (float)(s / (double)(B * N));
}

void mtk_mse_backward(float *restrict dpred, const float *restrict pred, const float *restrict t, float w,
                      int64_t B, int64_t N, int accumulate) {
    float c = 2.0f * w / (float)(B * N);
    for (int64_t i = 0; i < B * N; i++) {
        float g = c * (pred[i] - t[i]);
        dpred[i] = accumulate ? dpred[i] + g : g;
    }
}

/* The AMNL weight of a sample with target y: 1 + clip(1 - y / cap, 0, 1). The same formula as
 * the runtime's mtl_amnl_weight (runtime/src/balance.c), kept here because kernels are
 * self-contained bitcode. A NaN target fails both comparisons and keeps its NaN, so a damaged
 * target shows in the loss instead of being clipped to a plausible weight. */
static inline double mtk_amnl_weight(double y, double cap) {
    double c = 1.0 - y / cap;
    c = c < 0.0 ? 0.0 : c;
    c = c > 1.0 ? 1.0 : c;
    return 1.0 + c;
}

void mtk_mse_amnl_forward(float *loss, const float *restrict pred, const float *restrict t, float cap, int64_t B) {
    double s = 0.0;
    for (int64_t i = 0; i < B; i++) {
        double d = (double)pred[i] - (double)t[i];
        s += mtk_amnl_weight(t[i], cap) * d * d;
    }
    *loss = (float)(s / (double)B);
}

void mtk_mse_amnl_backward(float *restrict dpred, const float *restrict pred, const float *restrict t, float cap,
                           float w, int64_t B, int accumulate) {
    float c = 2.0f * w / (float)B;
    for (int64_t i = 0; i < B; i++) {
        float g = c * (float)mtk_amnl_weight(t[i], cap) * (pred[i] - t[i]);
        dpred[i] = accumulate ? dpred[i] + g : g;
    }
}

void mtk_mae_forward(float *loss, const float *restrict pred, const float *restrict t, int64_t B, int64_t N) {
    double s = 0.0;
    for (int64_t i = 0; i < B * N; i++) s += fabs((double)pred[i] - (double)t[i]);
    *loss = (float)(s / (double)(B * N));
}

void mtk_mae_backward(float *restrict dpred, const float *restrict pred, const float *restrict t, float w,
                      int64_t B, int64_t N, int accumulate) {
    float c = w / (float)(B * N);
    for (int64_t i = 0; i < B * N; i++) {
        float d = pred[i] - t[i];
        float g = d > 0.0f ? c : (d < 0.0f ? -c : 0.0f);
        dpred[i] = accumulate ? dpred[i] + g : g;
    }
}

void mtk_huber_forward(float *loss, const float *restrict pred, const float *restrict t, float delta,
                       int64_t B, int64_t N) {
    double s = 0.0;
    for (int64_t i = 0; i < B * N; i++) {
        double d = fabs((double)pred[i] - (double)t[i]);
        s += d < delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
    }
    *loss = (float)(s / (double)(B * N));
}

void mtk_huber_backward(float *restrict dpred, const float *restrict pred, const float *restrict t,
                        float delta, float w, int64_t B, int64_t N, int accumulate) {
    float c = w / (float)(B * N);
    for (int64_t i = 0; i < B * N; i++) {
        float d = pred[i] - t[i];
        float g = c * (d < -delta ? -delta : (d > delta ? delta : d));
        dpred[i] = accumulate ? dpred[i] + g : g;
    }
}

static inline int64_t mtk_label(float v, int64_t C) {
    int64_t k = (int64_t)v;
    /* labels are validated by the loaders; clamping keeps a bad one from reading out of bounds */
    return k < 0 ? 0 : (k >= C ? C - 1 : k);
}

/* Cross-entropy works through the batch in chunks of whole rows: the shifted logits z − max of a
 * chunk go to a stack buffer, one contiguous loop takes their exponentials (it vectorises; the
 * per-row loops with a handful of classes do not), and the per-row sums follow. Every value and
 * every sum is the one the row-by-row loop computes, in the same order. */
enum { MTK_CE_CHUNK = 2048 };

static inline int64_t mtk_ce_rows(int64_t C) { return C <= MTK_CE_CHUNK ? MTK_CE_CHUNK / C : 0; }

/* Shifts rows [0, nr) of z into buf (row minus its maximum), writes each maximum to mx, then
 * replaces buf by its exponentials. */
static inline void mtk_ce_exp_chunk(float *restrict buf, float *restrict mx, const float *restrict z, int64_t nr,
                                    int64_t C) {
    for (int64_t r = 0; r < nr; r++) {
        const float *row = z + r * C;
        float m = row[0];
        for (int64_t j = 1; j < C; j++) m = row[j] > m ? row[j] : m;
        mx[r] = m;
        for (int64_t j = 0; j < C; j++) buf[r * C + j] = row[j] - m;
    }
    for (int64_t k = 0; k < nr * C; k++) buf[k] = mtk_expf(buf[k]);
}

void mtk_cross_entropy_forward(float *loss, const float *restrict z, const float *restrict labels, int64_t B,
                               int64_t C) {
    /* Σ_i log e_i as the log of running products: every e_i lies in [1, C] (its largest term is
     * exp(0)), so a product flushed once past 2^900 stays below 2^(900 + 63) and one log serves
     * many rows instead of one libm call per row. */
    double s = 0.0, prod = 1.0;
    int64_t rows = mtk_ce_rows(C);
    if (rows == 0) { /* more classes than a chunk holds: row by row */
        for (int64_t i = 0; i < B; i++) {
            const float *row = z + i * C;
            float m = row[0];
            for (int64_t j = 1; j < C; j++) m = row[j] > m ? row[j] : m;
            double e = 0.0;
            for (int64_t j = 0; j < C; j++) e += (double)mtk_expf(row[j] - m);
            s += (double)m - (double)row[mtk_label(labels[i], C)];
            prod *= e;
            if (prod > 0x1p900) {
                s += log(prod);
                prod = 1.0;
            }
        }
    } else {
        float buf[MTK_CE_CHUNK], mx[MTK_CE_CHUNK];
        for (int64_t i0 = 0; i0 < B; i0 += rows) {
            int64_t nr = B - i0 < rows ? B - i0 : rows;
            mtk_ce_exp_chunk(buf, mx, z + i0 * C, nr, C);
            for (int64_t r = 0; r < nr; r++) {
                double e = 0.0;
                for (int64_t j = 0; j < C; j++) e += (double)buf[r * C + j];
                s += (double)mx[r] - (double)z[(i0 + r) * C + mtk_label(labels[i0 + r], C)];
                prod *= e;
                if (prod > 0x1p900) {
                    s += log(prod);
                    prod = 1.0;
                }
            }
        }
    }
    s += log(prod);
    *loss = (float)(s / (double)B);
}

void mtk_cross_entropy_backward(float *restrict dz, const float *restrict z, const float *restrict labels,
                                float w, int64_t B, int64_t C, int accumulate) {
    float c = w / (float)B;
    int64_t rows = mtk_ce_rows(C);
    if (rows == 0) { /* more classes than a chunk holds: row by row */
        for (int64_t i = 0; i < B; i++) {
            const float *row = z + i * C;
            float *out = dz + i * C;
            float m = row[0];
            for (int64_t j = 1; j < C; j++) m = row[j] > m ? row[j] : m;
            float e = 0.0f;
            for (int64_t j = 0; j < C; j++) e += mtk_expf(row[j] - m);
            float inv = 1.0f / e;
            int64_t y = mtk_label(labels[i], C);
            for (int64_t j = 0; j < C; j++) {
                float p = mtk_expf(row[j] - m) * inv;
                float g = c * (p - (j == y ? 1.0f : 0.0f));
                out[j] = accumulate ? out[j] + g : g;
            }
        }
        return;
    }
    float buf[MTK_CE_CHUNK], mx[MTK_CE_CHUNK];
    for (int64_t i0 = 0; i0 < B; i0 += rows) {
        int64_t nr = B - i0 < rows ? B - i0 : rows;
        mtk_ce_exp_chunk(buf, mx, z + i0 * C, nr, C);
        for (int64_t r = 0; r < nr; r++) {
            const float *ex = buf + r * C;
            float *out = dz + (i0 + r) * C;
            float e = 0.0f;
            for (int64_t j = 0; j < C; j++) e += ex[j];
            float inv = 1.0f / e;
            int64_t y = mtk_label(labels[i0 + r], C);
            for (int64_t j = 0; j < C; j++) {
                float p = ex[j] * inv; /* its own statement: no contraction with the next line */
                float g = c * (p - (j == y ? 1.0f : 0.0f));
                out[j] = accumulate ? out[j] + g : g;
            }
        }
    }
}

void mtk_bias_backward(float *restrict db, const float *restrict dy, int64_t B, int64_t N, int accumulate) {
    mtk_colsum(db, dy, NULL, B, N, accumulate);
}
