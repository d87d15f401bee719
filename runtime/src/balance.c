/* Task-balancing arithmetic (mtl_balance.h): fixed weights, GABA / GRACE, AMNL's weighted MSE,
 * uncertainty weighting, GradNorm, DWA, PCGrad and gradient diagnostics.
 *
 * Everything scalar is done in double and every reduction over a gradient vector accumulates in
 * double: the shared trunk has millions of parameters, and a float sum of that many squares loses
 * several digits. The struct holds no pointers, so a balancer can be copied, and its state can be
 * listed as doubles for a checkpoint without any loss.
 */
#include "mtl_balance.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const method_names[] = {"fixed", "gaba", "grace", "uncertainty",
                                           "gradnorm", "dwa", "pcgrad"};
#define N_METHODS ((int)(sizeof method_names / sizeof method_names[0]))

const char *mtl_balance_method_name(MtlBalanceMethod m) {
    if ((int)m < 0 || (int)m >= N_METHODS) return "unknown";
    return method_names[m];
}

int mtl_balance_method_parse(const char *name, MtlBalanceMethod *out) {
    for (int i = 0; i < N_METHODS; i++)
        if (name && strcmp(name, method_names[i]) == 0) {
            *out = (MtlBalanceMethod)i;
            return 0;
        }
    return -1;
}

bool mtl_balance_needs_norms(MtlBalanceMethod m) {
    return m == MTL_BALANCE_GABA || m == MTL_BALANCE_GRACE || m == MTL_BALANCE_GRADNORM;
}

bool mtl_balance_needs_task_grads(MtlBalanceMethod m) { return m == MTL_BALANCE_PCGRAD; }

static void set_err(char *err, size_t err_size, const char *msg) {
    if (err && err_size > 0) snprintf(err, err_size, "%s", msg);
}

int mtl_balancer_init(MtlBalancer *b, MtlBalanceMethod method, int k, char *err,
                      size_t err_size) {
    if ((int)method < 0 || (int)method >= N_METHODS) {
        set_err(err, err_size, "unknown balancing method");
        return -1;
    }
    if (k < 1 || k > MTL_BALANCE_MAX_TASKS) {
        if (err && err_size > 0)
            snprintf(err, err_size, "balancing needs 1 to %d tasks, got %d", MTL_BALANCE_MAX_TASKS,
                     k);
        return -1;
    }
    memset(b, 0, sizeof *b);
    b->method = method;
    b->k = k;
    b->gaba_beta = 0.99;
    b->gaba_floor = 0.05;
    b->gaba_warmup_steps = 100;
    b->gaba_ema_in_warmup = true;
    b->gradnorm_alpha = 1.5;
    b->gradnorm_optimizer = MTL_GRADNORM_ADAM;
    b->gradnorm_lr = 1e-3;
    b->gradnorm_beta1 = 0.9;
    b->gradnorm_beta2 = 0.999;
    b->gradnorm_eps = 1e-8;
    b->gradnorm_min_weight = 1e-4;
    b->dwa_temperature = 2.0;
    bool uniform = method == MTL_BALANCE_GABA || method == MTL_BALANCE_GRACE;
    for (int i = 0; i < k; i++) {
        b->fixed[i] = 1.0;
        b->ema[i] = 1.0 / k;
        b->weight[i] = uniform ? 1.0 / k : 1.0;
    }
    return 0;
}

static void copy_weights(const MtlBalancer *b, double *out) {
    if (out) memcpy(out, b->weight, (size_t)b->k * sizeof *out);
}

/* Norms and losses must be usable numbers: NaN fails both comparisons. */
static bool all_finite_nonneg(const double *x, int k) {
    for (int i = 0; i < k; i++)
        if (!(x[i] >= 0.0 && x[i] < INFINITY)) return false;
    return true;
}

int mtl_balancer_step(MtlBalancer *b, const double *losses, const double *norms,
                      double *weights_out) {
    switch (b->method) {
    case MTL_BALANCE_GABA:
    case MTL_BALANCE_GRACE:
        if (!norms) return MTL_BALANCE_EINVAL;
        return mtl_gaba_step(b, norms, weights_out);
    case MTL_BALANCE_GRADNORM:
        if (!norms || !losses) return MTL_BALANCE_EINVAL;
        return mtl_gradnorm_step(b, losses, norms, weights_out);
    case MTL_BALANCE_FIXED:
    case MTL_BALANCE_PCGRAD:
        /* re-read every step so that a spec's weights set after init take effect */
        memcpy(b->weight, b->fixed, (size_t)b->k * sizeof b->weight[0]);
        b->step++;
        copy_weights(b, weights_out);
        return MTL_BALANCE_OK;
    case MTL_BALANCE_DWA:
        b->step++;
        copy_weights(b, weights_out);
        return MTL_BALANCE_OK;
    default:
        return MTL_BALANCE_EINVAL; /* uncertainty: the s_k live in the model, see mtl_uncertainty */
    }
}

/* ---- GABA ----------------------------------------------------------------------------------- */

int mtl_gaba_step(MtlBalancer *b, const double *norms, double *weights_out) {
    if (b->method != MTL_BALANCE_GABA && b->method != MTL_BALANCE_GRACE) return MTL_BALANCE_EINVAL;
    int k = b->k;
    b->step++;
    memcpy(b->last_norm, norms, (size_t)k * sizeof *norms);
    if (k == 1) {
        b->weight[0] = 1.0;
        copy_weights(b, weights_out);
        return MTL_BALANCE_OK;
    }
    bool warm = b->step <= b->gaba_warmup_steps;
    double s = 0.0;
    for (int i = 0; i < k; i++) s += norms[i];
    /* S = 0 leaves the raw weights 0/0; a bad norm would poison the EMA for good. */
    int status = (all_finite_nonneg(norms, k) && s > 0.0 && s < INFINITY) ? MTL_BALANCE_OK
                                                                          : MTL_BALANCE_DEGENERATE;
    if (status == MTL_BALANCE_OK) {
        for (int i = 0; i < k; i++) b->last_raw[i] = (s - norms[i]) / ((double)(k - 1) * s);
        if (!warm || b->gaba_ema_in_warmup)
            for (int i = 0; i < k; i++)
                b->ema[i] = b->gaba_beta * b->ema[i] + (1.0 - b->gaba_beta) * b->last_raw[i];
    }
    if (warm) {
        for (int i = 0; i < k; i++) b->weight[i] = 1.0 / k;
    } else if (status == MTL_BALANCE_OK) {
        double sum = 0.0;
        for (int i = 0; i < k; i++) {
            b->weight[i] = b->ema[i] > b->gaba_floor ? b->ema[i] : b->gaba_floor;
            sum += b->weight[i];
        }
        for (int i = 0; i < k; i++) b->weight[i] /= sum;
    }
    copy_weights(b, weights_out);
    return status;
}

int mtl_gaba_step_grads(MtlBalancer *b, int64_t n, const float *const *grads,
                        double *weights_out) {
    double norms[MTL_BALANCE_MAX_TASKS];
    mtl_task_norms(b->k, n, grads, norms);
    return mtl_gaba_step(b, norms, weights_out);
}

/* ---- AMNL ----------------------------------------------------------------------------------- */

double mtl_amnl_weight(double y, double rul_cap) {
    double c = 1.0 - y / rul_cap;
    if (c < 0.0) c = 0.0;
    if (c > 1.0) c = 1.0;
    return 1.0 + c;
}

double mtl_amnl_mse(const float *pred, const float *target, int64_t batch, double rul_cap,
                    float *dpred) {
    if (batch <= 0) return 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < batch; i++) {
        double w = mtl_amnl_weight(target[i], rul_cap);
        double d = (double)pred[i] - (double)target[i];
        sum += w * d * d;
        if (dpred) dpred[i] = (float)(2.0 * w * d / (double)batch);
    }
    return sum / (double)batch;
}

/* ---- uncertainty ---------------------------------------------------------------------------- */

double mtl_uncertainty(int k, const double *s, const double *losses, double *weights_out,
                       double *dtotal_ds) {
    double total = 0.0;
    for (int i = 0; i < k; i++) {
        double w = exp(-s[i]);
        total += w * losses[i] + s[i];
        if (weights_out) weights_out[i] = w;
        if (dtotal_ds) dtotal_ds[i] = 1.0 - w * losses[i];
    }
    return total;
}

/* ---- GradNorm ------------------------------------------------------------------------------- */

int mtl_gradnorm_step(MtlBalancer *b, const double *losses, const double *norms,
                      double *weights_out) {
    if (b->method != MTL_BALANCE_GRADNORM) return MTL_BALANCE_EINVAL;
    int k = b->k;
    b->step++;
    memcpy(b->last_norm, norms, (size_t)k * sizeof *norms);
    copy_weights(b, weights_out); /* this step's losses use the weights from before the update */
    if (k == 1) return MTL_BALANCE_OK;
    if (!all_finite_nonneg(norms, k) || !all_finite_nonneg(losses, k))
        return MTL_BALANCE_DEGENERATE;
    if (!b->has_loss0) {
        for (int i = 0; i < k; i++)
            if (!(losses[i] > 0.0)) return MTL_BALANCE_DEGENERATE; /* L(0) divides later */
        memcpy(b->loss0, losses, (size_t)k * sizeof *losses);
        b->has_loss0 = true;
    }
    double ratio[MTL_BALANCE_MAX_TASKS], g[MTL_BALANCE_MAX_TASKS];
    double mean_ratio = 0.0, mean_g = 0.0;
    for (int i = 0; i < k; i++) {
        ratio[i] = losses[i] / b->loss0[i];
        mean_ratio += ratio[i];
        g[i] = b->weight[i] * norms[i];
        mean_g += g[i];
    }
    mean_ratio /= k;
    mean_g /= k;
    if (!(mean_ratio > 0.0 && mean_ratio < INFINITY)) return MTL_BALANCE_DEGENERATE;

    double grad[MTL_BALANCE_MAX_TASKS], lgrad = 0.0;
    for (int i = 0; i < k; i++) {
        double target = mean_g * pow(ratio[i] / mean_ratio, b->gradnorm_alpha);
        double diff = g[i] - target;
        lgrad += fabs(diff);
        /* the target is a constant, so only G_k = w_k ||grad L_k|| depends on w_k */
        grad[i] = (diff > 0.0 ? 1.0 : diff < 0.0 ? -1.0 : 0.0) * norms[i];
    }
    b->last_gradnorm_loss = lgrad;

    double w[MTL_BALANCE_MAX_TASKS], sum = 0.0;
    if (b->gradnorm_optimizer == MTL_GRADNORM_SGD) {
        for (int i = 0; i < k; i++) w[i] = b->weight[i] - b->gradnorm_lr * grad[i];
    } else {
        int64_t t = b->adam_t + 1;
        double c1 = 1.0 - pow(b->gradnorm_beta1, (double)t);
        double c2 = 1.0 - pow(b->gradnorm_beta2, (double)t);
        for (int i = 0; i < k; i++) {
            b->adam_m[i] = b->gradnorm_beta1 * b->adam_m[i] + (1.0 - b->gradnorm_beta1) * grad[i];
            b->adam_v[i] =
                b->gradnorm_beta2 * b->adam_v[i] + (1.0 - b->gradnorm_beta2) * grad[i] * grad[i];
            double mhat = b->adam_m[i] / c1, vhat = b->adam_v[i] / c2;
            w[i] = b->weight[i] - b->gradnorm_lr * mhat / (sqrt(vhat) + b->gradnorm_eps);
        }
        b->adam_t = t;
    }
    for (int i = 0; i < k; i++) {
        /* "!(w >= min)" also catches a NaN from an absurd lr */
        if (!(w[i] >= b->gradnorm_min_weight)) w[i] = b->gradnorm_min_weight;
        sum += w[i];
    }
    for (int i = 0; i < k; i++) b->weight[i] = (double)k * w[i] / sum;
    return MTL_BALANCE_OK;
}

/* ---- DWA ------------------------------------------------------------------------------------ */

int mtl_dwa_end_epoch(MtlBalancer *b, const double *epoch_mean_losses, double *weights_out) {
    if (b->method != MTL_BALANCE_DWA) return MTL_BALANCE_EINVAL;
    int k = b->k;
    if (!all_finite_nonneg(epoch_mean_losses, k)) {
        copy_weights(b, weights_out);
        return MTL_BALANCE_DEGENERATE;
    }
    memcpy(b->loss_prev2, b->loss_prev1, (size_t)k * sizeof *epoch_mean_losses);
    memcpy(b->loss_prev1, epoch_mean_losses, (size_t)k * sizeof *epoch_mean_losses);
    b->epoch++;
    int status = MTL_BALANCE_OK;
    if (b->epoch >= 2) {
        double x[MTL_BALANCE_MAX_TASKS], mx = -INFINITY;
        for (int i = 0; i < k; i++) {
            if (!(b->loss_prev2[i] > 0.0)) {
                status = MTL_BALANCE_DEGENERATE;
                break;
            }
            x[i] = b->loss_prev1[i] / b->loss_prev2[i] / b->dwa_temperature;
            if (x[i] > mx) mx = x[i];
        }
        if (status == MTL_BALANCE_OK && mx < INFINITY) {
            /* subtracting the largest exponent keeps exp() finite; the softmax is unchanged */
            double sum = 0.0;
            for (int i = 0; i < k; i++) {
                x[i] = exp(x[i] - mx);
                sum += x[i];
            }
            for (int i = 0; i < k; i++) b->weight[i] = (double)k * x[i] / sum;
        } else {
            status = MTL_BALANCE_DEGENERATE;
        }
    }
    copy_weights(b, weights_out);
    return status;
}

/* ---- PCGrad --------------------------------------------------------------------------------- */

/* Uniform integer in [0, n), n >= 1: rejecting the incomplete top block keeps it unbiased. */
static uint64_t rng_below(MtlRng *rng, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = mtl_rng_next(rng);
    while (v >= limit);
    return v % n;
}

void mtl_pcgrad_draw_order(int k, MtlRng *rng, int *order) {
    for (int i = 0; i < k; i++) {
        int *row = order + (size_t)i * (size_t)(k - 1);
        int m = 0;
        for (int j = 0; j < k; j++)
            if (j != i) row[m++] = j;
        for (int a = k - 2; a > 0; a--) {
            int r = (int)rng_below(rng, (uint64_t)a + 1);
            int tmp = row[a];
            row[a] = row[r];
            row[r] = tmp;
        }
    }
}

int mtl_pcgrad_ordered(int k, int64_t n, const float *const *grads, const int *order,
                       float *const *projected, float *combined) {
    if (k < 1 || k > MTL_BALANCE_MAX_TASKS || n < 0) return MTL_BALANCE_EINVAL;
    for (int i = 0; i < k; i++) {
        bool seen[MTL_BALANCE_MAX_TASKS] = {false};
        for (int m = 0; m < k - 1; m++) {
            int j = order[i * (k - 1) + m];
            if (j < 0 || j >= k || j == i || seen[j]) return MTL_BALANCE_EINVAL;
            seen[j] = true;
        }
    }

    double gram[MTL_BALANCE_MAX_TASKS][MTL_BALANCE_MAX_TASKS];
    bool finite = true;
    for (int i = 0; i < k; i++)
        for (int j = i; j < k; j++) {
            gram[i][j] = gram[j][i] = mtl_vec_dot(grads[i], grads[j], n);
            if (!isfinite(gram[i][j])) finite = false;
        }

    /* coef[i][j]: how much of the original g_j has been removed from g_i. The current projected
     * g_i is g_i - sum_l coef[i][l] g_l, so its dot product with g_j follows from the Gram
     * matrix alone, and no intermediate vector has to be stored. */
    double coef[MTL_BALANCE_MAX_TASKS][MTL_BALANCE_MAX_TASKS];
    memset(coef, 0, sizeof coef);
    if (finite)
        for (int i = 0; i < k; i++)
            for (int m = 0; m < k - 1; m++) {
                int j = order[i * (k - 1) + m];
                double d = gram[i][j];
                for (int l = 0; l < k; l++) d -= coef[i][l] * gram[l][j];
                if (d < 0.0 && gram[j][j] > 0.0) coef[i][j] += d / gram[j][j];
            }

    /* sum_i projected_i = sum_j (1 - sum_i coef[i][j]) g_j */
    double comb[MTL_BALANCE_MAX_TASKS];
    for (int j = 0; j < k; j++) {
        comb[j] = 1.0;
        for (int i = 0; i < k; i++) comb[j] -= coef[i][j];
    }

    for (int64_t e = 0; e < n; e++) {
        double x[MTL_BALANCE_MAX_TASKS];
        for (int j = 0; j < k; j++) x[j] = grads[j][e];
        if (projected)
            for (int i = 0; i < k; i++) {
                double v = x[i];
                /* skipping zero coefficients keeps a NaN in g_j out of an unprojected g_i */
                for (int j = 0; j < k; j++)
                    if (coef[i][j] != 0.0) v -= coef[i][j] * x[j];
                projected[i][e] = (float)v;
            }
        if (combined) {
            double v = 0.0;
            for (int j = 0; j < k; j++) v += comb[j] * x[j];
            combined[e] = (float)v;
        }
    }
    return finite ? MTL_BALANCE_OK : MTL_BALANCE_DEGENERATE;
}

int mtl_pcgrad(int k, int64_t n, const float *const *grads, MtlRng *rng, float *const *projected,
               float *combined) {
    if (k < 1 || k > MTL_BALANCE_MAX_TASKS) return MTL_BALANCE_EINVAL;
    int order[MTL_BALANCE_MAX_TASKS * MTL_BALANCE_MAX_TASKS];
    mtl_pcgrad_draw_order(k, rng, order);
    return mtl_pcgrad_ordered(k, n, grads, order, projected, combined);
}

/* ---- diagnostics ---------------------------------------------------------------------------- */

double mtl_vec_dot(const float *a, const float *b, int64_t n) {
    /* four independent partial sums: the loop is bound by the adds' latency otherwise */
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)a[i] * b[i];
        s1 += (double)a[i + 1] * b[i + 1];
        s2 += (double)a[i + 2] * b[i + 2];
        s3 += (double)a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += (double)a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

double mtl_vec_norm(const float *a, int64_t n) { return sqrt(mtl_vec_dot(a, a, n)); }

void mtl_task_norms(int k, int64_t n, const float *const *grads, double *norms) {
    for (int i = 0; i < k; i++) norms[i] = mtl_vec_norm(grads[i], n);
}

double mtl_grad_norm_ratio(const float *a, const float *b, int64_t n) {
    double na = mtl_vec_norm(a, n), nb = mtl_vec_norm(b, n);
    return na / nb; /* x/0 = inf, 0/0 = NaN under IEEE, as documented */
}

double mtl_grad_cosine(const float *a, const float *b, int64_t n) {
    double ab = mtl_vec_dot(a, b, n), aa = mtl_vec_dot(a, a, n), bb = mtl_vec_dot(b, b, n);
    if (aa == 0.0 || bb == 0.0) return 0.0;
    double c = ab / (sqrt(aa) * sqrt(bb));
    /* rounding can step just outside [-1, 1] for parallel vectors */
    if (c > 1.0) c = 1.0;
    if (c < -1.0) c = -1.0;
    return c;
}

/* ---- checkpoint state ----------------------------------------------------------------------- */

#define STATE_VERSION 1
#define STATE_HEADER 7
#define STATE_ARRAYS 7

int mtl_balancer_state_size(int k) { return STATE_HEADER + STATE_ARRAYS * k; }

void mtl_balancer_state_get(const MtlBalancer *b, double *out) {
    int k = b->k;
    out[0] = STATE_VERSION;
    out[1] = (double)b->method;
    out[2] = (double)k;
    out[3] = (double)b->step;
    out[4] = (double)b->epoch;
    out[5] = b->has_loss0 ? 1.0 : 0.0;
    out[6] = (double)b->adam_t;
    const double *arrays[STATE_ARRAYS] = {b->weight, b->ema,        b->loss0,     b->adam_m,
                                          b->adam_v, b->loss_prev1, b->loss_prev2};
    for (int a = 0; a < STATE_ARRAYS; a++)
        memcpy(out + STATE_HEADER + a * k, arrays[a], (size_t)k * sizeof(double));
}

/* A counter stored as a double: integral, non-negative, below 2^53 so it converted exactly. */
static bool is_count(double x) { return x >= 0.0 && x < 9007199254740992.0 && x == floor(x); }

int mtl_balancer_state_set(MtlBalancer *b, const double *state, int count, char *err,
                           size_t err_size) {
    int k = b->k;
    if (count != mtl_balancer_state_size(k)) {
        if (err && err_size > 0)
            snprintf(err, err_size, "balancer state has %d values, expected %d for %d tasks",
                     count, mtl_balancer_state_size(k), k);
        return -1;
    }
    if (state[0] != STATE_VERSION) {
        set_err(err, err_size, "unknown balancer state version");
        return -1;
    }
    if (state[1] != (double)b->method || state[2] != (double)k) {
        if (err && err_size > 0)
            snprintf(err, err_size, "balancer state is for another method or task count (%g, %g)",
                     state[1], state[2]);
        return -1;
    }
    if (!is_count(state[3]) || !is_count(state[4]) || !(state[5] == 0.0 || state[5] == 1.0) ||
        !is_count(state[6])) {
        set_err(err, err_size, "balancer state has invalid counters");
        return -1;
    }
    for (int i = STATE_HEADER; i < count; i++)
        if (!isfinite(state[i])) {
            set_err(err, err_size, "balancer state holds NaN or infinity");
            return -1;
        }
    b->step = (int64_t)state[3];
    b->epoch = (int64_t)state[4];
    b->has_loss0 = state[5] == 1.0;
    b->adam_t = (int64_t)state[6];
    double *arrays[STATE_ARRAYS] = {b->weight, b->ema,        b->loss0,     b->adam_m,
                                    b->adam_v, b->loss_prev1, b->loss_prev2};
    for (int a = 0; a < STATE_ARRAYS; a++)
        memcpy(arrays[a], state + STATE_HEADER + a * k, (size_t)k * sizeof(double));
    return 0;
}
