/* Task balancing: the arithmetic of the methods of BOOK.md section 4, independent of any model.
 *
 * The interface is "K tasks, each with a gradient vector over the shared parameters (float arrays
 * of length n, all in the same layout) and a scalar loss". Whoever produces the per-task gradients
 * (the compiler's per-task backward passes) passes them in, or only their L2 norms; the functions
 * here return task weights, combined gradients and diagnostics. Nothing here allocates.
 *
 * Scalars (losses, norms, weights, s_k) are doubles; the caller converts the weights to the
 * float task_weights the generated code reads. Vectors are floats; every dot product and norm over
 * them is accumulated in double, because they span millions of parameters.
 *
 * Return codes of the step functions: MTL_BALANCE_OK; MTL_BALANCE_DEGENERATE when the inputs
 * cannot define new weights (all norms zero, a NaN / infinite / negative norm or loss, ...): the
 * weights and the method's state are then left unchanged (never NaN) and the step still counts;
 * MTL_BALANCE_EINVAL for a caller bug (wrong method for the function, K out of range, a bad order).
 *
 * Which weights apply when (the integrator must follow this):
 *   fixed       the spec's weights, every step.
 *   GABA/GRACE  weights computed from THIS step's per-task norms multiply this step's losses /
 *               gradients (the book backpropagates sum λ_k L_k once, λ constant).
 *   GradNorm    this step's losses are weighted with the weights from BEFORE the call (returned in
 *               weights_out); the call then moves the learnable weights for the next step.
 *   DWA         weights change only at mtl_dwa_end_epoch and hold for the whole next epoch.
 *   uncertainty the s_k are model parameters (own group, trained by AdamW); mtl_uncertainty gives
 *               the total, the per-task weights exp(-s_k) and d total / d s_k.
 *   PCGrad      the per-task loss weights are the fixed weights (default 1); mtl_pcgrad combines
 *               the per-task gradients on the shared parameters. Task-specific parameters keep
 *               their own task's gradient.
 * GRACE is GABA's weights with AMNL's weighted MSE as the RUL loss, and the book's AMNL is the
 * fixed 0.5 / 0.5 weights with that loss: the loss choice belongs to the task, so this module
 * only provides mtl_amnl_weight / mtl_amnl_mse.
 */
#ifndef MTL_BALANCE_H
#define MTL_BALANCE_H

#include "mtl_runtime.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed upper bound so that the whole balancer is one plain struct (copyable, no free). */
#define MTL_BALANCE_MAX_TASKS 16

enum { MTL_BALANCE_OK = 0, MTL_BALANCE_DEGENERATE = 1, MTL_BALANCE_EINVAL = -1 };

typedef enum MtlBalanceMethod {
    MTL_BALANCE_FIXED = 0,
    MTL_BALANCE_GABA = 1,
    MTL_BALANCE_GRACE = 2, /* GABA's weights; the RUL task uses mtl_amnl_mse */
    MTL_BALANCE_UNCERTAINTY = 3,
    MTL_BALANCE_GRADNORM = 4,
    MTL_BALANCE_DWA = 5,
    MTL_BALANCE_PCGRAD = 6,
} MtlBalanceMethod;

typedef enum MtlGradNormOptimizer {
    MTL_GRADNORM_ADAM = 0, /* default: Adam (no weight decay) with its own moments and step */
    MTL_GRADNORM_SGD = 1,  /* w -= lr * grad */
} MtlGradNormOptimizer;

typedef struct MtlBalancer {
    MtlBalanceMethod method;
    int k;

    /* Hyper-parameters: book defaults set by mtl_balancer_init; change them before the first
     * step. They are configuration from the spec, not state (mtl_balancer_state_set keeps them). */
    double fixed[MTL_BALANCE_MAX_TASKS]; /* FIXED and PCGRAD loss weights; default 1 each */
    double gaba_beta;           /* EMA factor, 0.99 */
    double gaba_floor;          /* 0.05, applied to the EMA before renormalising to sum 1 */
    int64_t gaba_warmup_steps;  /* 100: steps 1..100 use 1/K */
    bool gaba_ema_in_warmup;    /* true: the EMA is updated during warm-up (see mtl_gaba_step) */
    double gradnorm_alpha;      /* 1.5 */
    MtlGradNormOptimizer gradnorm_optimizer; /* MTL_GRADNORM_ADAM */
    double gradnorm_lr;         /* 1e-3, the book's model lr (the paper: the model's optimizer) */
    double gradnorm_beta1, gradnorm_beta2, gradnorm_eps; /* Adam: 0.9, 0.999, 1e-8 */
    double gradnorm_min_weight; /* 1e-4: weights are clamped to at least this, then renormalised */
    double dwa_temperature;     /* T = 2 */

    /* State (all of it is in mtl_balancer_state_get). */
    int64_t step;          /* calls of the per-step functions (mtl_balancer_step, ...) */
    int64_t epoch;         /* DWA: epochs recorded by mtl_dwa_end_epoch */
    double weight[MTL_BALANCE_MAX_TASKS]; /* weights to apply now (GradNorm: the learnable w_k) */
    double ema[MTL_BALANCE_MAX_TASKS];    /* GABA: EMA of the raw weights, starts at 1/K */
    bool has_loss0;                       /* GradNorm: loss0 recorded */
    double loss0[MTL_BALANCE_MAX_TASKS];  /* GradNorm: L_k(0), the losses of the first step */
    int64_t adam_t;                       /* GradNorm Adam: step count */
    double adam_m[MTL_BALANCE_MAX_TASKS], adam_v[MTL_BALANCE_MAX_TASKS];
    double loss_prev1[MTL_BALANCE_MAX_TASKS]; /* DWA: mean loss of the last recorded epoch */
    double loss_prev2[MTL_BALANCE_MAX_TASKS]; /* DWA: and of the one before */

    /* Diagnostics of the last step (for logs; not state, the next step overwrites them). */
    double last_norm[MTL_BALANCE_MAX_TASKS]; /* norms passed to the last GABA / GradNorm step */
    double last_raw[MTL_BALANCE_MAX_TASKS];  /* GABA: raw λ_k of the last valid step */
    double last_gradnorm_loss;               /* GradNorm: L_grad = sum |G_k - T_k| */
} MtlBalancer;

/* "fixed", "gaba", "grace", "uncertainty", "gradnorm", "dwa", "pcgrad". */
const char *mtl_balance_method_name(MtlBalanceMethod m);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int mtl_balance_method_parse(const char *name, MtlBalanceMethod *out);

/* Sets the defaults above, weight = fixed = 1 (GABA/GRACE: 1/K; DWA, GradNorm: 1), ema = 1/K,
 * counters 0. 1 <= k <= MTL_BALANCE_MAX_TASKS. Returns 0, or -1 with a reason in err. */
int mtl_balancer_init(MtlBalancer *b, MtlBalanceMethod method, int k, char *err, size_t err_size);

/* True if the method needs per-task gradient norms each step (GABA, GRACE, GradNorm) / the
 * per-task shared gradients themselves (PCGrad). */
bool mtl_balance_needs_norms(MtlBalanceMethod m);
bool mtl_balance_needs_task_grads(MtlBalanceMethod m);

/* One training step for any method except UNCERTAINTY (EINVAL: use mtl_uncertainty): counts the
 * step and writes the K weights for this step's losses to weights_out. losses may be NULL except
 * for GradNorm, norms may be NULL except for GABA / GRACE / GradNorm. FIXED, PCGRAD: b->fixed;
 * DWA: the current epoch's weights. */
int mtl_balancer_step(MtlBalancer *b, const double *losses, const double *norms,
                      double *weights_out);

/* ---- GABA / GRACE ------------------------------------------------------------------------- */

/* norms[k] = ||grad_shared L_k||_2 of the unweighted task losses. Counts the step (step t = b->step
 * after the call), then with S = sum g_j:
 *   raw λ_k = (S - g_k) / ((K - 1) S)     (K = 2: λ_1 = g_2 / (g_1 + g_2))
 *   ema_k <- β ema_k + (1 - β) λ_k        (ema starts at 1/K)
 *   w_k = max(ema_k, floor) / sum_j max(ema_j, floor)
 * and weights_out = 1/K for t <= warmup_steps, w otherwise. The EMA is updated during warm-up too
 * (gaba_ema_in_warmup, default true), so that the first weights after warm-up already reflect about
 * 100 steps of norms instead of starting a second, slower warm-up from 1/K; with false the EMA
 * stays at 1/K until step warmup_steps + 1. The floor is a clamp on the output: the EMA state
 * itself is never floored, and after renormalisation a floored weight ends slightly below the floor
 * (e.g. 0.05 / 1.0327). The EMA state always sums to 1 (the raw weights do).
 * Degenerate (S = 0, a non-finite or negative norm): EMA and weights unchanged, MTL_BALANCE_
 * DEGENERATE (during warm-up weights_out is still 1/K). K = 1: weight 1 always. */
int mtl_gaba_step(MtlBalancer *b, const double *norms, double *weights_out);
/* The same with the norms computed from the K per-task shared gradients grads[k][0..n). */
int mtl_gaba_step_grads(MtlBalancer *b, int64_t n, const float *const *grads,
                        double *weights_out);

/* ---- AMNL weighted MSE (GRACE's and AMNL's RUL loss) -------------------------------------- */

/* w = 1 + clip(1 - y / rul_cap, 0, 1): 2 at y = 0, 1 at y >= rul_cap (book: rul_cap 125). */
double mtl_amnl_weight(double y, double rul_cap);
/* loss = (1/B) sum_i w(y_i) (p_i - y_i)^2: a plain mean over the batch, NOT divided by sum w.
 * If dpred is not NULL it receives d loss / d p_i = 2 w(y_i) (p_i - y_i) / B. B = 0: returns 0. */
double mtl_amnl_mse(const float *pred, const float *target, int64_t batch, double rul_cap,
                    float *dpred);

/* ---- uncertainty weighting (Kendall et al.) ----------------------------------------------- */

/* s_k = log σ_k^2 (model parameters, initialised to 0). Returns total = sum exp(-s_k) L_k + s_k;
 * weights_out[k] = exp(-s_k) (the seeds for the task losses' backward passes) and
 * dtotal_ds[k] = 1 - exp(-s_k) L_k (the s_k's gradient); either output may be NULL. */
double mtl_uncertainty(int k, const double *s, const double *losses, double *weights_out,
                       double *dtotal_ds);

/* ---- GradNorm (Chen et al. 2018) ---------------------------------------------------------- */

/* losses[k] = L_k(t); norms[k] = ||grad_W L_k|| of the UNWEIGHTED task loss on the shared
 * parameters W the method measures on (divide by w_k if the gradient was computed with the weight
 * as seed). weights_out receives the weights w(t) for this step's losses. Then, with the first
 * valid call's losses recorded as L_k(0):
 *   G_k = w_k ||grad_W L_k||, Ḡ = mean G, L̃_k = L_k / L_k(0), r_k = L̃_k / mean L̃,
 *   T_k = Ḡ r_k^α (constant), L_grad = sum |G_k - T_k|,
 *   dL_grad/dw_k = sign(G_k - T_k) ||grad_W L_k||
 * and one optimizer step on w (Adam with bias correction and its own moments, or SGD: see
 * gradnorm_optimizer / gradnorm_lr), then w_k = max(w_k, min_weight), then w <- K w / sum w.
 * Degenerate (non-finite or negative norm or loss, L_k(0) <= 0, mean L̃ = 0): weights unchanged. */
int mtl_gradnorm_step(MtlBalancer *b, const double *losses, const double *norms,
                      double *weights_out);

/* ---- DWA (Liu et al.) --------------------------------------------------------------------- */

/* Records one epoch's mean training losses (computed by the caller over the epoch) and sets the
 * weights for the next epoch: 1 each until two epochs are recorded, then with the last two
 * recorded epochs r_k = L_k(e-1) / L_k(e-2) and w_k = K softmax(r / T)_k. Degenerate: a
 * non-finite or negative mean (nothing recorded, b->epoch unchanged) or L_k(e-2) = 0 (recorded,
 * weights unchanged). weights_out (may be NULL) receives the weights for the next epoch. */
int mtl_dwa_end_epoch(MtlBalancer *b, const double *epoch_mean_losses, double *weights_out);

/* ---- PCGrad (Yu et al. 2020) -------------------------------------------------------------- */

/* For each task i, in a random order of the other tasks j (self excluded): if g_i . g_j < 0,
 * g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j, where g_i is the vector as projected so far and g_j the
 * ORIGINAL task gradient (as the paper's reference code). combined = SUM of the projected gradients
 * (not the mean: the reference code sums; divide by K yourself for a mean).
 * The order for task i is a Fisher-Yates shuffle of the other tasks in ascending order, drawn from
 * rng for i = 0..K-1 in turn (K = 2 draws nothing). Implementation: the K x K Gram matrix of the
 * original gradients (double) gives every projection coefficient exactly as the sequential
 * projection would, and each output is a linear combination of the originals; so projected[i]
 * and combined may alias any grads[j] (each element is read before it is written). projected
 * (an array of K pointers) and combined may each be NULL. A zero gradient is never projected onto.
 * Degenerate (a non-finite dot product): no projection at all (projected = originals, combined =
 * plain sum, which then carries the NaN), MTL_BALANCE_DEGENERATE. */
int mtl_pcgrad(int k, int64_t n, const float *const *grads, MtlRng *rng, float *const *projected,
               float *combined);
/* order[i * (K - 1) + m]: the m-th task projected onto for task i, as mtl_pcgrad draws it. */
void mtl_pcgrad_draw_order(int k, MtlRng *rng, int *order);
/* mtl_pcgrad with a given order (each row a permutation of the other tasks, else EINVAL). */
int mtl_pcgrad_ordered(int k, int64_t n, const float *const *grads, const int *order,
                       float *const *projected, float *combined);

/* ---- diagnostics -------------------------------------------------------------------------- */

double mtl_vec_dot(const float *a, const float *b, int64_t n); /* double accumulation */
double mtl_vec_norm(const float *a, int64_t n);                /* L2, double accumulation */
/* norms[k] = ||grads[k]||_2 for k < K. */
void mtl_task_norms(int k, int64_t n, const float *const *grads, double *norms);
/* ||a|| / ||b||: +inf if only ||b|| is 0, NaN if both are (log it as null). */
double mtl_grad_norm_ratio(const float *a, const float *b, int64_t n);
/* a . b / (||a|| ||b||) in [-1, 1]; 0 when either vector is zero, NaN if an input holds NaN. */
double mtl_grad_cosine(const float *a, const float *b, int64_t n);

/* ---- checkpoint state --------------------------------------------------------------------- */

/* The whole mutable state as a flat array of doubles (every value is an integer count or a double,
 * so a round trip through get / set is bit-exact; store the doubles losslessly, e.g. as F64 or as
 * "%.17g" metadata, not as F32). Layout, version 1, size 7 + 7K:
 *   [0] 1 (layout version)  [1] method  [2] K  [3] step  [4] epoch  [5] has_loss0  [6] adam_t
 *   then K values each of: weight, ema, loss0, adam_m, adam_v, loss_prev1, loss_prev2.
 * Hyper-parameters and last_* diagnostics are not included. */
int mtl_balancer_state_size(int k);
/* Writes mtl_balancer_state_size(b->k) doubles to out. */
void mtl_balancer_state_get(const MtlBalancer *b, double *out);
/* Restores from count doubles; version, method and K must match b's (init b from the spec first).
 * Returns 0, or -1 with a reason in err (b untouched). */
int mtl_balancer_state_set(MtlBalancer *b, const double *state, int count, char *err,
                           size_t err_size);

#endif
