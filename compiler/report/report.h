/* Compile-time parameter report (`--report`, `--report=json`).
 *
 * Like torchinfo / Keras summary() plus what they lack: per tensor its group, trainable or
 * frozen, and which tasks' gradients reach it; per group, block and task totals; shared (trunk)
 * vs task-specific totals with the shared percentage; estimated FLOPs per sample and the memory
 * one training step needs at the spec's batch size. Text has thousands separators; JSON (cJSON)
 * carries the same content for tools.
 */
#ifndef MTLC_REPORT_H
#define MTLC_REPORT_H

#include "sema/model.h"

#include <stdio.h>

void report_text(const Model *m, FILE *out);
void report_json(const Model *m, FILE *out);

/* The numbers both forms print (exposed for tests and for the driver). */
typedef struct ReportTotals {
    int64_t total, trainable, frozen;
    int64_t shared, task_specific;     /* trunk vs heads */
    double shared_percent;             /* 100 * shared / total, 0 when total is 0 */
    int64_t forward_flops;             /* per sample */
    int64_t train_flops;               /* per sample, forward + backward */
    int64_t acts_per_sample;           /* floats: input + every layer output + saved state */
    int64_t grads_per_sample;          /* floats: the gradient of every layer output */
    int64_t scratch_per_sample, scratch_fixed; /* floats: the shared kernel scratch (largest op) */
    int64_t mem_params, mem_grads, mem_optimizer, mem_acts, mem_targets; /* bytes */
    int64_t mem_scratch;               /* bytes: scratch_per_sample * batch + scratch_fixed floats */
    int64_t mem_total;                 /* bytes: all of the above + buffers */
} ReportTotals;

void report_totals(const Model *m, ReportTotals *t);

/* Floats of one training step at `batch` (activations, their gradients and the kernel scratch:
 * (mem_acts + mem_scratch) / 4 of report_totals), saturating. Also where, counting the input and
 * then each block's top-level layers in order, that running total first exceeds `limit`:
 * *block = *layer = -1 at the input, -2 never; else the block and its layer. */
int64_t report_step_floats(const Model *m, int64_t batch, int64_t limit, int *block, int *layer);

/* v with thousands separators ("1,000,020"), into buf; returns buf. */
const char *report_thousands(int64_t v, char *buf, size_t cap);

#endif
