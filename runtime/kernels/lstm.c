/* One LSTM layer in one direction, forward and backward (contract in seq_kernels.h).
 *
 * Forward: one sgemm projects every (b, t) row of x into the gates at once; then each time step
 * adds h_{t−1}·W_hhᵀ for all B rows in one sgemm that reads h_{t−1} straight out of y and writes
 * straight into the gate rows (the rows of one step are T rows apart, hence lda/ldc strides
 * instead of copies), and the biases, gate nonlinearities and cell update run in a plain loop.
 * Backward walks the steps in the opposite order of the forward pass (one sgemm per step for the
 * recurrence dh_{t−1} = dgates_t·W_hh), keeps dgates for every step in scratch and finishes with
 * one sgemm each for dW_hh, dW_ih and dx over all B·T rows.
 * A bidirectional layer's two directions are independent until they meet in dx: the _bidir entry
 * points run them at the same time, the reverse direction on a second thread, each with a
 * single-threaded BLAS (OpenBLAS's own threads would otherwise split every small recurrent
 * product of one direction while the gate loops ran on one core), then form dx from both
 * directions' dgates with the full BLAS thread count. The two directions' products always run on
 * one thread each, in turn or not, so the results do not depend on the way they were run.
 * Deliberately not here: stacking layers, initial states other than zero, projections
 * (proj_size), and any allocation of arrays (the second thread is the only resource taken).
 */
#include "seq_kernels.h"

#include "mtk_colsum.h"
#include "mtk_math.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* OpenBLAS's cblas.h pulls in <complex.h>, whose macro I (the imaginary unit) would replace the
 * input-width argument I of the legend; nothing here uses complex numbers. */
#undef I

/* The gate nonlinearities and cell update of one row at one step, the biases added on the way
 * (b_ih + b_hh, when has_bias). has_prev and has_bias are constants at each call site, so each
 * inlined copy has a loop without conditional loads, which the loop vectoriser needs (a load of
 * cp[k] under "cp != NULL" cannot be made unconditional). */
static inline void lstm_cell_forward(float *restrict g,        /* [G] pre-activations in, activations out */
                                     float *restrict c,        /* [H] c_t */
                                     float *restrict h,        /* [H] h_t */
                                     const float *restrict cp, /* [H] c_{t-1}, NULL when !has_prev */
                                     const float *restrict bi, /* [G] b_ih, NULL when !has_bias */
                                     const float *restrict bh, /* [G] b_hh, NULL when !has_bias */
                                     int64_t H, int has_prev, int has_bias) {
    for (int64_t k = 0; k < H; k++) {
        float pi = g[k], pf = g[H + k], pg = g[2 * H + k], po = g[3 * H + k];
        if (has_bias) {
            pi += bi[k] + bh[k];
            pf += bi[H + k] + bh[H + k];
            pg += bi[2 * H + k] + bh[2 * H + k];
            po += bi[3 * H + k] + bh[3 * H + k];
        }
        float gi = mtk_sigmoidf(pi);
        float gf = mtk_sigmoidf(pf);
        float gg = mtk_tanhf(pg);
        float go = mtk_sigmoidf(po);
        g[k] = gi, g[H + k] = gf, g[2 * H + k] = gg, g[3 * H + k] = go;
        float cv = has_prev ? gi * gg + gf * cp[k] : gi * gg;
        c[k] = cv;
        h[k] = go * mtk_tanhf(cv);
    }
}

/* One row of the backward step: dgates from the saved activations, and the carried dh/dc */
static inline void lstm_cell_backward(float *restrict dg,        /* [G] out */
                                      const float *restrict dhb, /* [H] dL/dh_t from the later step */
                                      float *restrict dcb,       /* [H] dL/dc_t in, dL/dc_{t-1} out */
                                      const float *restrict g,   /* [G] saved activations */
                                      const float *restrict c,   /* [H] c_t */
                                      const float *restrict cp,  /* [H] c_{t-1}, NULL when !has_prev */
                                      const float *restrict dyt, /* [H] dL/dh_t from the output */
                                      int64_t H, int has_prev) {
    for (int64_t k = 0; k < H; k++) {
        float gi = g[k], gf = g[H + k], gg = g[2 * H + k], go = g[3 * H + k];
        float tc = mtk_tanhf(c[k]);
        float dhv = dyt[k] + dhb[k];
        float dcv = dcb[k] + dhv * go * (1.0f - tc * tc);
        float cprev = has_prev ? cp[k] : 0.0f;
        /* chain through each nonlinearity using its saved output */
        dg[k] = dcv * gg * gi * (1.0f - gi);
        dg[H + k] = dcv * cprev * gf * (1.0f - gf);
        dg[2 * H + k] = dcv * gi * (1.0f - gg * gg);
        dg[3 * H + k] = dhv * tc * go * (1.0f - go);
        dcb[k] = dcv * gf;
    }
}

/* Only backward needs scratch: dgates [B, T, G] for the weight products after the loop, the
 * carried dh [B, H] and dc [B, H] between steps, and the bias gradient [G]. Forward needs none
 * (gates and cell hold all of its state). */
MtkScratch mtk_lstm_scratch(int64_t T, int64_t I, int64_t H) {
    (void)I;
    MtkScratch s = {T * 4 * H + 2 * H, 4 * H};
    return s;
}

/* Both directions at once: each its own dgates, dh, dc and bias sums. */
MtkScratch mtk_lstm_bidir_scratch(int64_t T, int64_t I, int64_t H) {
    MtkScratch one = mtk_lstm_scratch(T, I, H), s = {2 * one.per_sample, 2 * one.fixed};
    return s;
}

typedef struct Job {
    void (*fn)(void *);
    void *arg;
} Job;

static void *job_main(void *p) {
    Job *j = p;
    j->fn(j->arg);
    return NULL;
}

/* Runs fn(a0) and fn(a1) with OpenBLAS at one thread per call: at the same time when the BLAS may
 * use two or more threads (a1 on a new thread, a0 on this one, so the two callers use the two
 * cores, not four threads), else one after the other. MTL_LSTM_PARALLEL=0 in the environment runs
 * them in turn (for comparing the two ways). Either way each direction's products run on one
 * thread: OpenBLAS's results can differ in the last bit between one and two threads (the
 * partial blocks of the weight-gradient products), and the layer's results must not depend on
 * the way they were run. (Across thread counts they can still differ, through dx's products,
 * as every other product of the model can.) */
static void run_both(void (*fn)(void *), void *a0, void *a1) {
    int threads = openblas_get_num_threads();
    const char *env = getenv("MTL_LSTM_PARALLEL");
    if (threads > 1) openblas_set_num_threads(1);
    pthread_t th;
    Job job = {fn, a1};
    if (threads < 2 || (env && env[0] == '0') || pthread_create(&th, NULL, job_main, &job) != 0) {
        fn(a0); /* in turn (also when no thread could be started) */
        fn(a1);
    } else {
        fn(a0);
        pthread_join(th, NULL);
    }
    if (threads > 1) openblas_set_num_threads(threads);
}

void mtk_lstm_forward(float *restrict y,           /* [B, T, Dout], writes columns [col, col + H) */
                      float *restrict gates,       /* [B, T, G] saved: σ(i), σ(f), tanh(g), σ(o) */
                      float *restrict cell,        /* [B, T, H] saved: c_t */
                      float *restrict scratch,     /* unused (mtk_lstm_scratch covers backward) */
                      const float *restrict x,     /* [B, T, I] */
                      const float *restrict w_ih,  /* [G, I] */
                      const float *restrict w_hh,  /* [G, H] */
                      const float *restrict b_ih,  /* [G] or NULL */
                      const float *restrict b_hh,  /* [G] or NULL */
                      int64_t B, int64_t T, int64_t I, int64_t H, int64_t Dout, int64_t col, int reverse) {
    (void)scratch;
    const int64_t G = 4 * H, R = B * T;

    /* gates = x·W_ihᵀ for all rows (the input path has no recurrence); the biases are added in
     * the cell loop, which reads the gates anyway, instead of in a pass of their own over the
     * [B, T, G] array before the product. A layer with one bias only (not made by mtlc) takes it
     * in that pass. */
    const int has_bias = b_ih && b_hh;
    if ((b_ih != NULL) != (b_hh != NULL)) {
        const float *b = b_ih ? b_ih : b_hh;
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < G; j++) gates[r * G + j] = b[j];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)G, (int)I, 1.0f, x, (int)I, w_ih, (int)I,
                has_bias || !(b_ih || b_hh) ? 0.0f : 1.0f, gates, (int)G);

    for (int64_t s = 0; s < T; s++) {
        const int64_t t = reverse ? T - 1 - s : s;
        const int64_t tp = reverse ? t + 1 : t - 1; /* the step processed just before (valid if s > 0) */
        if (s > 0) /* gates[:, t] += h_{tp}·W_hhᵀ; h_0 = 0 contributes nothing at s = 0 */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)G, (int)H, 1.0f, y + tp * Dout + col,
                        (int)(T * Dout), w_hh, (int)H, 1.0f, gates + t * G, (int)(T * G));
        for (int64_t b = 0; b < B; b++) {
            float *g = gates + (b * T + t) * G, *c = cell + (b * T + t) * H, *h = y + (b * T + t) * Dout + col;
            /* c_{tp}; at the first step there is none (c_0 = 0), and forming cell + (b·T − 1)·H would
             * point outside the array */
            if (has_bias) {
                if (s > 0) lstm_cell_forward(g, c, h, cell + (b * T + tp) * H, b_ih, b_hh, H, 1, 1);
                else lstm_cell_forward(g, c, h, NULL, b_ih, b_hh, H, 0, 1);
            } else {
                if (s > 0) lstm_cell_forward(g, c, h, cell + (b * T + tp) * H, NULL, NULL, H, 1, 0);
                else lstm_cell_forward(g, c, h, NULL, NULL, NULL, H, 0, 0);
            }
        }
    }
}

void mtk_lstm_backward(float *restrict dx,           /* [B, T, I] or NULL */
                       float *restrict dw_ih,        /* [G, I] or NULL */
                       float *restrict dw_hh,        /* [G, H] or NULL */
                       float *restrict db_ih,        /* [G] or NULL */
                       float *restrict db_hh,        /* [G] or NULL */
                       float *restrict scratch,      /* mtk_lstm_scratch(T, I, H) */
                       const float *restrict dy,     /* [B, T, Dout], this direction's columns [col, col + H) */
                       const float *restrict y,      /* [B, T, Dout] forward output (h_{t−1} source) */
                       const float *restrict gates,  /* [B, T, G] saved, after nonlinearities */
                       const float *restrict cell,   /* [B, T, H] saved */
                       const float *restrict x,      /* [B, T, I] */
                       const float *restrict w_ih,   /* [G, I] */
                       const float *restrict w_hh,   /* [G, H] */
                       int64_t B, int64_t T, int64_t I, int64_t H, int64_t Dout, int64_t col, int reverse,
                       int accumulate_dx, int accumulate_params) {
    const int64_t G = 4 * H, R = B * T;
    float *dgates = scratch;       /* [B, T, G] gradient w.r.t. the pre-activation gates */
    float *dh = dgates + R * G;    /* [B, H] dL/dh_t arriving from the next processed step */
    float *dc = dh + B * H;        /* [B, H] dL/dc_t arriving from the next processed step */
    float *dbias = dc + B * H;     /* [G] the bias gradient, the same for both biases */
    for (int64_t j = 0; j < B * H; j++) dh[j] = dc[j] = 0.0f;
    /* t0: the step processed first in the forward pass (no h_{tp}, no c_{tp}) */
    const int64_t t0 = reverse ? T - 1 : 0;

    /* steps processed after t0 in the forward pass, in the opposite order: the recurrence
     * dh_{tp} = dgates_t · W_hh has to run step by step */
    for (int64_t s = T - 1; s >= 1; s--) {
        const int64_t t = reverse ? T - 1 - s : s;
        const int64_t tp = reverse ? t + 1 : t - 1;
        for (int64_t b = 0; b < B; b++)
            lstm_cell_backward(dgates + (b * T + t) * G, dh + b * H, dc + b * H, gates + (b * T + t) * G,
                               cell + (b * T + t) * H, cell + (b * T + tp) * H, dy + (b * T + t) * Dout + col, H, 1);
        /* dh_{tp} [B, H] = dgates_t [B, G] · W_hh [G, H]; overwrites: dy of tp is added in the loop */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H, (int)G, 1.0f, dgates + t * G,
                    (int)(T * G), w_hh, (int)H, 0.0f, dh, (int)H);
    }

    /* dW_hh [G, H] = Σ_t dgates_tᵀ · h_{tp} as one product over all rows instead of one per step:
     * row (b, t) of dgates pairs with row (b, t − 1) of y going forward, (b, t + 1) in reverse, so
     * with dgates shifted one row against y the only unwanted pairs are those of t0 with the
     * neighbouring sample's row. Those dgates rows are still unwritten: zeroed, they add nothing,
     * and the step t0 below fills them afterwards. */
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < G; j++) dgates[(b * T + t0) * G + j] = 0.0f;
    if (dw_hh) {
        if (R > 1)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G, (int)H, (int)(R - 1), 1.0f,
                        reverse ? dgates : dgates + G, (int)G, reverse ? y + Dout + col : y + col, (int)Dout,
                        accumulate_params ? 1.0f : 0.0f, dw_hh, (int)H);
        else if (!accumulate_params) /* one row, one step: no pair at all */
            for (int64_t j = 0; j < G * H; j++) dw_hh[j] = 0.0f;
    }

    /* the step t0: c_{tp} = 0 */
    for (int64_t b = 0; b < B; b++)
        lstm_cell_backward(dgates + (b * T + t0) * G, dh + b * H, dc + b * H, gates + (b * T + t0) * G,
                           cell + (b * T + t0) * H, NULL, dy + (b * T + t0) * Dout + col, H, 0);

    /* both biases enter the pre-activation alike: both get the column sums of dgates */
    if (db_ih || db_hh) {
        mtk_colsum(dbias, dgates, NULL, R, G, 0);
        for (int64_t j = 0; j < G; j++) {
            if (db_ih) db_ih[j] = accumulate_params ? db_ih[j] + dbias[j] : dbias[j];
            if (db_hh) db_hh[j] = accumulate_params ? db_hh[j] + dbias[j] : dbias[j];
        }
    }
    /* dW_ih [G, I] (+)= dgatesᵀ [G, R] · x [R, I] */
    if (dw_ih)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G, (int)I, (int)R, 1.0f, dgates, (int)G, x, (int)I,
                    accumulate_params ? 1.0f : 0.0f, dw_ih, (int)I);
    /* dx [R, I] (+)= dgates [R, G] · W_ih [G, I] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)I, (int)G, 1.0f, dgates, (int)G, w_ih,
                    (int)I, accumulate_dx ? 1.0f : 0.0f, dx, (int)I);
}

/* ---- both directions of a bidirectional layer at once ---- */

typedef struct LstmDir { /* one direction's arguments of mtk_lstm_forward / mtk_lstm_backward */
    float *dw_ih, *dw_hh, *db_ih, *db_hh, *scratch, *gates, *cell, *y;
    const float *dy, *x, *w_ih, *w_hh, *b_ih, *b_hh;
    int64_t B, T, I, H, col;
    int reverse, accumulate_params;
} LstmDir;

static void forward_dir(void *p) {
    const LstmDir *a = p;
    mtk_lstm_forward(a->y, a->gates, a->cell, NULL, a->x, a->w_ih, a->w_hh, a->b_ih, a->b_hh, a->B, a->T, a->I, a->H,
                     2 * a->H, a->col, a->reverse);
}

void mtk_lstm_forward_bidir(float *y, float *gates0, float *gates1, float *cell0, float *cell1, const float *x,
                            const float *w_ih0, const float *w_hh0, const float *b_ih0, const float *b_hh0,
                            const float *w_ih1, const float *w_hh1, const float *b_ih1, const float *b_hh1,
                            int64_t B, int64_t T, int64_t I, int64_t H) {
    LstmDir d0 = {.y = y, .gates = gates0, .cell = cell0, .x = x, .w_ih = w_ih0, .w_hh = w_hh0, .b_ih = b_ih0,
                  .b_hh = b_hh0, .B = B, .T = T, .I = I, .H = H, .col = 0, .reverse = 0};
    LstmDir d1 = {.y = y, .gates = gates1, .cell = cell1, .x = x, .w_ih = w_ih1, .w_hh = w_hh1, .b_ih = b_ih1,
                  .b_hh = b_hh1, .B = B, .T = T, .I = I, .H = H, .col = H, .reverse = 1};
    run_both(forward_dir, &d0, &d1);
}

static void backward_dir(void *p) { /* everything but dx, which needs both directions */
    const LstmDir *a = p;
    mtk_lstm_backward(NULL, a->dw_ih, a->dw_hh, a->db_ih, a->db_hh, a->scratch, a->dy, a->y, a->gates, a->cell, a->x,
                      a->w_ih, a->w_hh, a->B, a->T, a->I, a->H, 2 * a->H, a->col, a->reverse, 0,
                      a->accumulate_params);
}

void mtk_lstm_backward_bidir(float *dx, float *dw_ih0, float *dw_hh0, float *db_ih0, float *db_hh0, float *dw_ih1,
                             float *dw_hh1, float *db_ih1, float *db_hh1, float *scratch, const float *dy,
                             const float *y, const float *gates0, const float *gates1, const float *cell0,
                             const float *cell1, const float *x, const float *w_ih0, const float *w_hh0,
                             const float *w_ih1, const float *w_hh1, int64_t B, int64_t T, int64_t I, int64_t H,
                             int accumulate_dx, int accumulate_params) {
    const int64_t G = 4 * H, R = B * T;
    MtkScratch one = mtk_lstm_scratch(T, I, H);
    /* mtk_lstm_backward's scratch is dgates [R, G] first, then its other parts: one direction's
     * whole block after the other's */
    float *scratch1 = scratch + B * one.per_sample + one.fixed;
    LstmDir d0 = {.dw_ih = dw_ih0, .dw_hh = dw_hh0, .db_ih = db_ih0, .db_hh = db_hh0, .scratch = scratch,
                  .gates = (float *)gates0, .cell = (float *)cell0, .y = (float *)y, .dy = dy, .x = x,
                  .w_ih = w_ih0, .w_hh = w_hh0, .B = B, .T = T, .I = I, .H = H, .col = 0, .reverse = 0,
                  .accumulate_params = accumulate_params};
    LstmDir d1 = d0;
    d1.dw_ih = dw_ih1, d1.dw_hh = dw_hh1, d1.db_ih = db_ih1, d1.db_hh = db_hh1, d1.scratch = scratch1;
    d1.gates = (float *)gates1, d1.cell = (float *)cell1, d1.w_ih = w_ih1, d1.w_hh = w_hh1, d1.col = H;
    d1.reverse = 1;
    run_both(backward_dir, &d0, &d1);
    /* dx [R, I] (+)= dgates1 · W_ih1 + dgates0 · W_ih0, in the order the one-direction calls add
     * them (reverse first), with all BLAS threads */
    if (dx) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)I, (int)G, 1.0f, scratch1, (int)G, w_ih1,
                    (int)I, accumulate_dx ? 1.0f : 0.0f, dx, (int)I);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)I, (int)G, 1.0f, scratch, (int)G, w_ih0,
                    (int)I, 1.0f, dx, (int)I);
    }
}
