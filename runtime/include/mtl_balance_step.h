/* Task balancing inside a training step: the forward pass once, then either one backward pass of
 * the weighted total loss or - when a method (or the diagnostics) needs each task's gradient on
 * the shared parameters - one backward pass per task, reusing that forward pass's activations,
 * after which the combined gradient is formed from the per-task gradients already computed (no
 * further backward pass). The compiled backward is a pure function of the saved activations and
 * the task weights, so calling it K times after one forward gives exactly the per-task gradients
 * (tests/runtime/test_balance_step.c checks sum_k w_k g_k against one backward of the weighted
 * loss).
 *
 * Cost per step for K tasks: 1 forward + K backward passes when measured, against 1 + 1 for a
 * plain step; `every = N` measures every N-th step and reuses the weights in between.
 */
#ifndef MTL_BALANCE_STEP_H
#define MTL_BALANCE_STEP_H

#include "mtl_balance.h"
#include "mtl_runtime.h"

typedef void (*MtlPassFn)(MtlStep *);

typedef struct MtlBalanceRun {
    const MtlModelInfo *m;
    MtlBalancer b;
    MtlBalanceMethod method;
    int k;
    int64_t every;          /* measure the per-task gradients every N steps (GABA, GRACE, GradNorm) */
    bool diagnostics;       /* measure every step, also for methods that do not need it */
    int64_t shared_begin, shared_end; /* the shared parameters: a contiguous range (trunk first) */
    float **task_grads;     /* [k][n_params] when measuring on the parameters; NULL otherwise */
    /* norms = trunk_output: each task's gradient norm at the trunk output, from the heads'
     * backward pass alone (mtl_model_backward_heads) with one-hot weights */
    bool on_output;
    float *out_grad0;       /* task 0's trunk-output gradient, kept for the cosine */
    int64_t out_grad0_cap;
    float weights[MTL_BALANCE_MAX_TASKS];      /* what the last step applied to each task loss */
    /* uncertainty weighting: s_k = log sigma_k^2 trained by AdamW (group "balance") */
    float log_var[MTL_BALANCE_MAX_TASKS], log_var_grad[MTL_BALANCE_MAX_TASKS];
    MtlGroupInfo uncertainty_group;
    MtlAdamW uncertainty_opt;
    bool has_uncertainty_opt;
    uint64_t seed;          /* PCGrad's projection order: drawn from (seed, step) */
    /* the last measured step's diagnostics */
    bool measured;
    double norm[MTL_BALANCE_MAX_TASKS];        /* ||grad_shared L_k|| of the unweighted losses (on
                                                  the trunk output when on_output) */
    double cosine;                             /* between tasks 0 and 1 (NaN for K < 2) */
} MtlBalanceRun;

/* Sets up the spec's method with its options (m->balance) and the book's defaults. Returns 0, or
 * -1 with the reason in err. */
int mtl_balance_run_init(MtlBalanceRun *r, const MtlModelInfo *m, bool diagnostics, uint64_t seed,
                         char *err, size_t err_size);
void mtl_balance_run_free(MtlBalanceRun *r);

/* Forward and backward pass(es) of step `step` (1-based): s->grads receives the gradient the
 * optimizer applies, s->losses the task losses, r->weights the task weights used. Returns 1 when
 * the per-task gradients were measured (r->norm, r->cosine valid), 0 otherwise, -1 when out of
 * memory. backward_heads (the heads' part of the backward pass) is needed only when
 * r->on_output. */
int mtl_balance_step(MtlBalanceRun *r, MtlStep *s, MtlPassFn forward, MtlPassFn backward,
                     MtlPassFn backward_heads, int64_t step);
/* After the optimizer step: trains the uncertainty log-variances on this step's losses. */
void mtl_balance_after_step(MtlBalanceRun *r, const float *losses);
/* End of an epoch with its mean task losses (DWA's weights for the next epoch). */
void mtl_balance_end_epoch(MtlBalanceRun *r, const double *mean_losses);

/* The state as doubles (balancer state, then for uncertainty: s_k, its AdamW m, v and step) for
 * a checkpoint; the count from mtl_balance_state_size. set returns -1 with err on a mismatch. */
int mtl_balance_state_size(const MtlBalanceRun *r);
void mtl_balance_state_get(const MtlBalanceRun *r, double *out);
int mtl_balance_state_set(MtlBalanceRun *r, const double *in, int count, char *err, size_t err_size);

#endif
