/* Task balancing inside a training step (mtl_balance_step.h): per-task backward passes after one
 * forward pass, the method's weights from their norms, and the combined gradient. */
#include "mtl_balance_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { STREAM_PCGRAD = 3 }; /* mtl_seed_derive streams 1 and 2 are init and dropout */

static bool uses_every(MtlBalanceMethod m) {
    return m == MTL_BALANCE_GABA || m == MTL_BALANCE_GRACE || m == MTL_BALANCE_GRADNORM;
}

static int popcount32(uint32_t x) {
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

int mtl_balance_run_init(MtlBalanceRun *r, const MtlModelInfo *m, bool diagnostics, uint64_t seed,
                         char *err, size_t err_size) {
    memset(r, 0, sizeof *r);
    r->m = m;
    r->k = m->n_tasks;
    r->method = (MtlBalanceMethod)m->balance.method;
    r->every = 1;
    r->diagnostics = diagnostics;
    r->cosine = NAN;
    if (mtl_balancer_init(&r->b, r->method, r->k, err, err_size) != 0) return -1;
    for (int k = 0; k < r->k; k++) r->b.fixed[k] = m->tasks[k].weight;
    float u_lr = m->n_groups > 0 ? m->groups[0].lr : 1e-3f, u_wd = 0;
    for (int i = 0; i < m->balance.n_options; i++) {
        const char *o = m->balance.option[i];
        double v = m->balance.value[i];
        if (!strcmp(o, "beta")) r->b.gaba_beta = v;
        else if (!strcmp(o, "floor")) r->b.gaba_floor = v;
        else if (!strcmp(o, "warmup")) r->b.gaba_warmup_steps = (int64_t)v;
        else if (!strcmp(o, "every")) r->every = (int64_t)v;
        else if (!strcmp(o, "alpha")) r->b.gradnorm_alpha = v;
        else if (!strcmp(o, "temperature")) r->b.dwa_temperature = v;
        else if (!strcmp(o, "lr") && r->method == MTL_BALANCE_GRADNORM) r->b.gradnorm_lr = v;
        else if (!strcmp(o, "lr")) u_lr = (float)v;
        else if (!strcmp(o, "weight_decay")) u_wd = (float)v;
        else {
            mtl_errf(err, err_size, "balance: unknown option \"%s\"", o);
            return -1;
        }
    }
    if (r->every < 1) r->every = 1;
    /* measuring every N steps, the EMA gets one update per N steps: beta^N per update keeps its
     * time constant in steps (about 100 at beta 0.99) what it is when measuring every step */
    if (r->every > 1 && (r->method == MTL_BALANCE_GABA || r->method == MTL_BALANCE_GRACE))
        r->b.gaba_beta = pow(r->b.gaba_beta, (double)r->every);

    /* the shared parameters: every tensor more than one task reaches; the compiler lays the
     * trunk out first, so they form one range */
    int64_t lo = -1, hi = -1;
    for (int i = 0; i < m->n_tensors; i++) {
        const MtlTensorInfo *t = &m->tensors[i];
        if (popcount32(t->task_mask) < 2) continue;
        if (lo < 0 || t->offset < lo) lo = t->offset;
        if (t->offset + t->count > hi) hi = t->offset + t->count;
    }
    if (lo < 0) lo = hi = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const MtlTensorInfo *t = &m->tensors[i];
        bool inside = t->offset < hi && t->offset + t->count > lo;
        if (inside && popcount32(t->task_mask) < 2) {
            mtl_errf(err, err_size, "internal: the shared parameters of model %s are not contiguous "
                     "(tensor %s lies among them)", m->name, t->name);
            return -1;
        }
    }
    r->shared_begin = lo;
    r->shared_end = hi;

    bool measure = diagnostics || mtl_balance_needs_norms(r->method) ||
                   mtl_balance_needs_task_grads(r->method);
    r->on_output = m->balance.norms_on_output && uses_every(r->method);
    if (r->on_output && m->trunk_grad_offset < 0) {
        mtl_errf(err, err_size, "balance: norms on the trunk output, but model %s has no trunk output "
                 "gradient", m->name);
        return -1;
    }
    if (measure && r->k > 0 && !r->on_output) {
        r->task_grads = calloc((size_t)r->k, sizeof *r->task_grads);
        if (!r->task_grads) goto oom;
        for (int k = 0; k < r->k; k++) {
            r->task_grads[k] = calloc((size_t)(m->n_params > 0 ? m->n_params : 1), sizeof(float));
            if (!r->task_grads[k]) goto oom;
        }
    }
    if (r->method == MTL_BALANCE_UNCERTAINTY) {
        r->uncertainty_group = (MtlGroupInfo){.name = "balance", .offset = 0, .count = r->k,
                                              .lr = u_lr, .weight_decay = u_wd, .beta1 = 0.9f,
                                              .beta2 = 0.999f, .eps = 1e-8f};
        if (mtl_adamw_init(&r->uncertainty_opt, &r->uncertainty_group, 1, r->k, NULL, 0) != 0) goto oom;
        r->has_uncertainty_opt = true;
    }
    r->seed = seed;
    for (int k = 0; k < r->k; k++) r->weights[k] = (float)r->b.weight[k];
    if (r->method == MTL_BALANCE_FIXED)
        for (int k = 0; k < r->k; k++) r->weights[k] = m->tasks[k].weight;
    return 0;
oom:
    mtl_errf(err, err_size, "trainer: error: out of memory for the per-task gradients (%d x %lld floats)",
             r->k, (long long)m->n_params);
    mtl_balance_run_free(r);
    return -1;
}

void mtl_balance_run_free(MtlBalanceRun *r) {
    if (r->task_grads)
        for (int k = 0; k < r->k; k++) free(r->task_grads[k]);
    free(r->task_grads);
    r->task_grads = NULL;
    free(r->out_grad0);
    r->out_grad0 = NULL;
    r->out_grad0_cap = 0;
    if (r->has_uncertainty_opt) mtl_adamw_free(&r->uncertainty_opt);
    r->has_uncertainty_opt = false;
}

/* The weights a step that does not measure applies. */
static void current_weights(MtlBalanceRun *r, float *w) {
    for (int k = 0; k < r->k; k++) {
        switch (r->method) {
        case MTL_BALANCE_FIXED:
        case MTL_BALANCE_PCGRAD: w[k] = r->m->tasks[k].weight; break;
        case MTL_BALANCE_UNCERTAINTY: w[k] = expf(-r->log_var[k]); break;
        case MTL_BALANCE_DWA: w[k] = (float)r->b.weight[k]; break;
        default: w[k] = r->weights[k]; break; /* GABA / GradNorm: the last measured weights */
        }
    }
}

/* The weights of GABA / GRACE / GradNorm from the norms just measured (r->norm). */
static void weights_from_norms(MtlBalanceRun *r, const MtlStep *s, float *w) {
    double losses[MTL_BALANCE_MAX_TASKS], wd[MTL_BALANCE_MAX_TASKS];
    for (int k = 0; k < r->k; k++) losses[k] = s->losses[k];
    switch (r->method) {
    case MTL_BALANCE_GABA:
    case MTL_BALANCE_GRACE:
        mtl_gaba_step(&r->b, r->norm, wd);
        for (int k = 0; k < r->k; k++) w[k] = (float)wd[k];
        break;
    case MTL_BALANCE_GRADNORM:
        mtl_gradnorm_step(&r->b, losses, r->norm, wd);
        for (int k = 0; k < r->k; k++) w[k] = (float)wd[k];
        break;
    default: current_weights(r, w); break;
    }
}

/* A measured step with norms on the trunk output: per task, the heads' backward pass alone with
 * one-hot weights leaves that task's gradient at the trunk output; the norms give the weights,
 * and one full backward pass of the weighted loss gives the update. */
static int output_norm_step(MtlBalanceRun *r, MtlStep *s, MtlPassFn backward, MtlPassFn backward_heads) {
    const MtlModelInfo *m = r->m;
    const float *keep_w = s->task_weights;
    int64_t n = s->batch * m->trunk_size;
    const float *dz = s->acts + m->trunk_grad_offset * s->batch;
    if (r->k >= 2 && n > r->out_grad0_cap) {
        float *p = realloc(r->out_grad0, sizeof(float) * (size_t)n);
        if (!p) return -1;
        r->out_grad0 = p;
        r->out_grad0_cap = n;
    }
    float one[MTL_BALANCE_MAX_TASKS], w[MTL_BALANCE_MAX_TASKS];
    r->cosine = NAN;
    for (int j = 0; j < r->k; j++) {
        for (int k = 0; k < r->k; k++) one[k] = k == j ? 1.0f : 0.0f;
        s->task_weights = one;
        backward_heads(s);
        mtl_task_norms(1, n, &dz, &r->norm[j]);
        if (j == 0 && r->k >= 2) memcpy(r->out_grad0, dz, sizeof(float) * (size_t)n);
        if (j == 1) r->cosine = mtl_grad_cosine(r->out_grad0, dz, n);
    }
    weights_from_norms(r, s, w);
    memcpy(r->weights, w, sizeof(float) * (size_t)r->k);
    s->task_weights = w;
    backward(s);
    s->task_weights = keep_w;
    return 1;
}

int mtl_balance_step(MtlBalanceRun *r, MtlStep *s, MtlPassFn forward, MtlPassFn backward,
                     MtlPassFn backward_heads, int64_t step) {
    const MtlModelInfo *m = r->m;
    float *out = s->grads;
    const float *keep_w = s->task_weights;
    float w[MTL_BALANCE_MAX_TASKS];
    bool measure = (r->task_grads || r->on_output) &&
                   (r->diagnostics || r->method == MTL_BALANCE_PCGRAD ||
                    (uses_every(r->method) && (step - 1) % r->every == 0));
    forward(s);
    if (measure && r->on_output) {
        r->measured = true;
        return output_norm_step(r, s, backward, backward_heads);
    }
    r->measured = measure;
    if (!measure) {
        current_weights(r, w);
        if (r->method == MTL_BALANCE_GABA || r->method == MTL_BALANCE_GRACE ||
            r->method == MTL_BALANCE_GRADNORM)
            r->b.step++; /* the warm-up counts steps, measured or not */
        s->task_weights = w;
        backward(s);
        s->task_weights = keep_w;
        memcpy(r->weights, w, sizeof(float) * (size_t)r->k);
        return 0;
    }
    /* one backward pass per task, each of the unweighted task loss */
    float one[MTL_BALANCE_MAX_TASKS];
    for (int j = 0; j < r->k; j++) {
        for (int k = 0; k < r->k; k++) one[k] = k == j ? 1.0f : 0.0f;
        s->task_weights = one;
        s->grads = r->task_grads[j];
        backward(s);
    }
    s->task_weights = keep_w;
    s->grads = out;
    int64_t n_sh = r->shared_end - r->shared_begin;
    const float *sh[MTL_BALANCE_MAX_TASKS];
    for (int k = 0; k < r->k; k++) sh[k] = r->task_grads[k] + r->shared_begin;
    mtl_task_norms(r->k, n_sh, sh, r->norm);
    r->cosine = r->k >= 2 ? mtl_grad_cosine(sh[0], sh[1], n_sh) : NAN;
    weights_from_norms(r, s, w);
    memcpy(r->weights, w, sizeof(float) * (size_t)r->k);
    int64_t n = m->n_params;
    if (r->method == MTL_BALANCE_PCGRAD) {
        /* the task losses' weighted gradients, conflicts on the shared part projected away; the
         * heads each get their own task's gradient */
        for (int k = 0; k < r->k; k++)
            if (w[k] != 1.0f)
                for (int64_t i = 0; i < n; i++) r->task_grads[k][i] *= w[k];
        for (int64_t i = 0; i < n; i++) {
            if (i == r->shared_begin) i = r->shared_end;
            if (i >= n) break;
            float g = 0;
            for (int k = 0; k < r->k; k++) g += r->task_grads[k][i];
            out[i] = g;
        }
        /* the projection order of each step comes from (seed, step): nothing to save for resume */
        MtlRng rng;
        mtl_rng_seed(&rng, mtl_seed_derive(r->seed, STREAM_PCGRAD, (uint64_t)step));
        mtl_pcgrad(r->k, n_sh, sh, &rng, NULL, out + r->shared_begin);
        return 1;
    }
    /* the weighted sum: the gradient of sum_k w_k L_k, from the gradients already computed */
    for (int64_t i = 0; i < n; i++) {
        float g = 0;
        for (int k = 0; k < r->k; k++) g += w[k] * r->task_grads[k][i];
        out[i] = g;
    }
    return 1;
}

void mtl_balance_after_step(MtlBalanceRun *r, const float *losses) {
    if (r->method != MTL_BALANCE_UNCERTAINTY) return;
    double s[MTL_BALANCE_MAX_TASKS], l[MTL_BALANCE_MAX_TASKS], d[MTL_BALANCE_MAX_TASKS];
    for (int k = 0; k < r->k; k++) {
        s[k] = r->log_var[k];
        l[k] = losses[k];
    }
    mtl_uncertainty(r->k, s, l, NULL, d);
    for (int k = 0; k < r->k; k++) r->log_var_grad[k] = (float)d[k];
    mtl_adamw_step(&r->uncertainty_opt, r->log_var, r->log_var_grad);
}

void mtl_balance_end_epoch(MtlBalanceRun *r, const double *mean_losses) {
    if (r->method == MTL_BALANCE_DWA) mtl_dwa_end_epoch(&r->b, mean_losses, NULL);
}

int mtl_balance_state_size(const MtlBalanceRun *r) {
    int n = mtl_balancer_state_size(r->k);
    if (r->method == MTL_BALANCE_UNCERTAINTY) n += 3 * r->k + 1;
    return n + r->k; /* + the weights the last step applied */
}

void mtl_balance_state_get(const MtlBalanceRun *r, double *out) {
    int n = mtl_balancer_state_size(r->k);
    mtl_balancer_state_get(&r->b, out);
    if (r->method == MTL_BALANCE_UNCERTAINTY) {
        for (int k = 0; k < r->k; k++) {
            out[n++] = r->log_var[k];
            out[n++] = r->uncertainty_opt.m[k];
            out[n++] = r->uncertainty_opt.v[k];
        }
        out[n++] = (double)r->uncertainty_opt.step[0];
    }
    for (int k = 0; k < r->k; k++) out[n++] = r->weights[k];
}

int mtl_balance_state_set(MtlBalanceRun *r, const double *in, int count, char *err, size_t err_size) {
    if (count != mtl_balance_state_size(r)) {
        mtl_errf(err, err_size, "balance state has %d values, the method %s with %d tasks needs %d",
                 count, mtl_balance_method_name(r->method), r->k, mtl_balance_state_size(r));
        return -1;
    }
    int n = mtl_balancer_state_size(r->k);
    if (mtl_balancer_state_set(&r->b, in, n, err, err_size) != 0) return -1;
    if (r->method == MTL_BALANCE_UNCERTAINTY) {
        for (int k = 0; k < r->k; k++) {
            r->log_var[k] = (float)in[n++];
            r->uncertainty_opt.m[k] = (float)in[n++];
            r->uncertainty_opt.v[k] = (float)in[n++];
        }
        r->uncertainty_opt.step[0] = (int64_t)in[n++];
    }
    for (int k = 0; k < r->k; k++) r->weights[k] = (float)in[n++];
    return 0;
}
