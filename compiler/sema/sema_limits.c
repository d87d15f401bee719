/* Model size limits: the totals that no single size check sees.
 *
 * Every size in a spec is bounded on its own (SEMA_MAX_SIZE), yet layers within those bounds can
 * still multiply into a model no machine holds: dense(1000000) dense(1000000) is 10^12 parameters
 * (3.6 TiB of float32), and a [1000, 1000000] input at batch 32 is 3.2·10^10 floats of
 * activations. They are refused here, once the blocks and the train defaults are built, so that
 * the check, --report, every --emit stage after the AST and the trainer build all stop with the
 * same error before anything of that size is planned or allocated:
 *
 *   - at most SEMA_MAX_PARAMS parameters, reported at the layer whose parameters take the
 *     running total (in declaration order) past the limit;
 *   - one training step at the spec's batch needs at most SEMA_MAX_STEP_FLOATS floats of
 *     activations, their gradients and kernel scratch, counted by the report's memory rules
 *     (report_step_floats), reported at the input or the top-level layer that takes the running
 *     total past the limit, with a note at the batch setting.
 *
 * It does not bound what the trainer allocates for another batch given on its command line.
 */
#include "report/report.h"
#include "sema/sema_internal.h"

#include <string.h>

/* 1000020000001 -> "1,000,020,000,001" (v >= 0) */
/* The size of n floats, as the report prints sizes: "3.6 TiB". */
static const char *float_bytes(int64_t n, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = 4.0 * (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}

/* The `batch = N` setting that set the batch, or NULL when the batch is the default. */
static const Ast *batch_setting(const Sema *s, int64_t batch)
{
    if (!s->train)
        return NULL;
    for (int i = 0; i < s->train->n_kids; i++) {
        const Ast *st = s->train->kids[i];
        if (st->name && !strcmp(st->name, "batch") && st->a && st->a->kind == AST_NUMBER && st->a->num == (double)batch)
            return st;
    }
    return NULL;
}

void sema_check_size(Sema *s)
{
    const Model *m = s->m;
    char total[32], total_b[32], max[32], max_b[32], own[32];
    if (s->params_over) {
        const Layer *L = s->params_over;
        int64_t n = 0;
        for (int i = 0; i < L->n_params; i++)
            if (__builtin_add_overflow(n, m->params[L->first_param + i].count, &n))
                n = INT64_MAX;
        diag_error(s->d, L->span,
                   "the model has %s parameters (%s of float32), more than the limit of %s (%s); "
                   "this layer, with %s, takes it over",
                   report_thousands(s->total_params, total, sizeof total), float_bytes(s->total_params, total_b, sizeof total_b),
                   report_thousands(SEMA_MAX_PARAMS, max, sizeof max), float_bytes(SEMA_MAX_PARAMS, max_b, sizeof max_b),
                   report_thousands(n, own, sizeof own));
    }
    int64_t batch = m->train.batch;
    int bi, li;
    int64_t floats = report_step_floats(m, batch, SEMA_MAX_STEP_FLOATS, &bi, &li);
    if (floats <= SEMA_MAX_STEP_FLOATS)
        return;
    const Ast *set = batch_setting(s, batch);
    Span at = bi >= 0 ? m->blocks[bi].layers[li].span : s->input ? s->input->span : m->span;
    diag_error(s->d, at,
               "one training step at %sbatch %lld needs %s floats (%s) of activations, their gradients and "
               "kernel scratch, more than the limit of %s (%s); %s takes it over",
               set ? "" : "the default ", (long long)batch, report_thousands(floats, total, sizeof total),
               float_bytes(floats, total_b, sizeof total_b), report_thousands(SEMA_MAX_STEP_FLOATS, max, sizeof max),
               float_bytes(SEMA_MAX_STEP_FLOATS, max_b, sizeof max_b), bi >= 0 ? "this layer" : "the input alone");
    if (set)
        diag_note(s->d, set->span, "the batch is set here");
}
