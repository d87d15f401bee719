/* Warm-up, reduce-on-plateau, gradient clipping, weight averaging and early stopping: see
 * mtl_schedule.h for the exact definitions (PyTorch's where one exists). */
#include "mtl_schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mtl_protocol_defaults(MtlProtocol *p) {
    p->warmup_epochs = 10;
    p->warmup_start = 0.1f;
    p->plateau_factor = 0.5f;
    p->plateau_patience = 30;
    p->min_lr = 5e-6f;
    p->clip_norm = 1.0f;
    p->ema_decay = 0.999f;
    p->patience = 60;
    p->select_on_test = false;
    p->max_bad_steps = 10;
}

double mtl_warmup_multiplier(int64_t epoch, int64_t warmup_epochs, float warmup_start) {
    if (warmup_epochs <= 0 || epoch >= warmup_epochs) return 1.0;
    if (epoch < 0) epoch = 0;
    return (double)warmup_start + (1.0 - (double)warmup_start) * (double)epoch / (double)warmup_epochs;
}

void mtl_plateau_init(MtlPlateau *p) {
    p->best = INFINITY;
    p->bad_epochs = 0;
    p->reductions = 0;
}

bool mtl_plateau_step(MtlPlateau *p, double score, float factor, int64_t patience, float min_lr,
                      float *lrs, int n_lrs) {
    /* PyTorch: relative threshold 1e-4 in "min" mode; a NaN score is never better */
    if (isfinite(score) && score < p->best * (1.0 - 1e-4)) {
        p->best = score;
        p->bad_epochs = 0;
    } else {
        p->bad_epochs++;
    }
    if (p->bad_epochs <= patience || factor >= 1.0f) return false;
    bool changed = false;
    for (int g = 0; g < n_lrs; g++) {
        float old = lrs[g];
        float nw = old * factor > min_lr ? old * factor : min_lr;
        if ((double)old - (double)nw > 1e-8) {
            lrs[g] = nw;
            changed = true;
        }
    }
    p->bad_epochs = 0;
    if (changed) p->reductions++;
    return changed;
}

double mtl_clip_grad_norm(float *grads, int64_t n, float max_norm) {
    double sq = 0;
    for (int64_t i = 0; i < n; i++) sq += (double)grads[i] * (double)grads[i];
    double norm = sqrt(sq);
    if (!isfinite(norm) || max_norm <= 0) return norm;
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        float c = (float)coef;
        for (int64_t i = 0; i < n; i++) grads[i] *= c;
    }
    return norm;
}

int mtl_ema_init(MtlEma *e, float decay, int64_t n) {
    memset(e, 0, sizeof *e);
    e->decay = decay;
    e->n = n;
    e->avg = calloc((size_t)(n > 0 ? n : 1), sizeof *e->avg);
    return e->avg ? 0 : -1;
}

void mtl_ema_free(MtlEma *e) {
    free(e->avg);
    e->avg = NULL;
}

void mtl_ema_update(MtlEma *e, const float *w) {
    float d = e->decay, c = 1.0f - e->decay;
    for (int64_t i = 0; i < e->n; i++) e->avg[i] = d * e->avg[i] + c * w[i];
    e->updates++;
}

void mtl_ema_weights(const MtlEma *e, const float *w, float *out) {
    if (e->updates == 0) {
        memcpy(out, w, (size_t)e->n * sizeof *out);
        return;
    }
    /* 1 - decay^t in double: for t in the thousands the float power would lose the digits */
    double corr = 1.0 - pow((double)e->decay, (double)e->updates);
    float inv = (float)(1.0 / corr);
    for (int64_t i = 0; i < e->n; i++) out[i] = e->avg[i] * inv;
}

void mtl_early_stop_init(MtlEarlyStop *s) {
    s->best = INFINITY;
    s->best_epoch = 0;
    s->bad_epochs = 0;
}

bool mtl_early_stop_update(MtlEarlyStop *s, int64_t epoch, double score) {
    if (isfinite(score) && score < s->best) {
        s->best = score;
        s->best_epoch = epoch;
        s->bad_epochs = 0;
        return true;
    }
    s->bad_epochs++;
    return false;
}

bool mtl_early_stop_should_stop(const MtlEarlyStop *s, int64_t patience) {
    return patience > 0 && s->bad_epochs >= patience;
}
