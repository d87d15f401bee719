/* Internals shared by the sema files (not for use outside compiler/sema). */
#ifndef MTLC_SEMA_INTERNAL_H
#define MTLC_SEMA_INTERNAL_H

#include "frontend/ast.h"
#include "sema/model.h"

/* Every size (units, channels, kernel, padding, stride, heads, input dimensions, target widths,
 * class counts, windows, batch) is at most this: far below INT32_MAX, so the 32-bit sizes of
 * cblas_sgemm calls and the kernels' loops never see a truncated value. */
#define SEMA_MAX_SIZE 1000000
#define MTL_SEED_SWEEP_MAX 1000 /* the trainer's MTL_MAX_SEEDS */
/* The whole model holds at most this many parameters (8 GiB of float32; training adds their
 * gradients and two AdamW moments), and one training step at the spec's batch at most this many
 * floats of activations, their gradients and kernel scratch: every tensor then has a 32-bit
 * element count, and an absurd spec is refused instead of failing to allocate (sema_limits.c). */
#define SEMA_MAX_PARAMS ((int64_t)INT32_MAX)
#define SEMA_MAX_STEP_FLOATS ((int64_t)INT32_MAX)
/* Whole numbers beyond this magnitude are read as ±(SEMA_INT_LIMIT + 1), which every caller's
 * range check refuses (doubles are exact up to 2^53, so the literal is not silently rounded). */
#define SEMA_INT_LIMIT ((int64_t)1000000000000000)

typedef struct Sema {
    Diags *d;
    Model *m;
    const Ast *root;
    const Ast *input, *trunk, *balance, *optimizer, *data, *train;
    const Ast **targets; /* target declarations */
    int n_targets;
    const Ast **task_decls; /* task declarations, in task order */
    Span *param_span;       /* per parameter: the layer that declares it */
    int cap_params;         /* allocated length of m->params and param_span */
    int cap_buffers;        /* allocated length of m->buffers */
    int64_t total_params;   /* running count (saturating), checked by sema_check_size */
    const Layer *params_over; /* the layer whose parameters took total_params past SEMA_MAX_PARAMS */
    bool too_many_tensors;    /* more than MAX_TENSORS parameter tensors was reported */
    int n_selectors;          /* parameter selectors read so far (sema_groups.c, MAX_SELECTORS) */
    bool rank_faked;        /* a layer's rank error was reported and it went on as if [1, C] */
    Span *block_width_from; /* per block: where its output width was last set */
    bool *block_missing;    /* per block: its trunk/head declaration is missing (already reported) */
    bool *target_bad;       /* per task: its target's type was reported; skip checks that use it */
    bool input_bad;         /* the input declaration was reported; skip checks that depend on it */
} Sema;

/* Refuses a model too large to train (sema_limits.c): SEMA_MAX_PARAMS, SEMA_MAX_STEP_FLOATS.
 * Runs after the blocks and the train defaults are built. */
void sema_check_size(Sema *s);

/* Builds m->groups and assigns every parameter to exactly one group. */
void sema_groups(Sema *s);

/* Builds block bi's layers (sema_layers.c) from its layer list (NULL when the declaration is
 * missing), starting from shape in, which was last set at `from`. Sets the block's layers and
 * output shape, and s->block_width_from[bi] to where its output shape was last set. */
void sema_build_block(Sema *s, int bi, const Ast *layers, Shape in, Span from);

/* Small helpers shared by the checks. */
char *sema_strdup(const char *s);
char *sema_path(const char *a, const char *b); /* "a.b", newly allocated */
/* A whole number; one past ±SEMA_INT_LIMIT when larger, so the caller's range check reports it. */
bool sema_int(Sema *s, const Ast *v, const char *what, int64_t *out);
/* "[30, 17]" into buf; returns buf. */
const char *sema_shape_str(const Shape *shape, char *buf, size_t cap);
const char *sema_suggest(const char *word, const char *const *choices);
bool sema_glob(const char *pattern, const char *text);
bool sema_number(Sema *s, const Ast *v, const char *what, double *out);
/* x in [0, 1) as the trainer reads it, in float32: 0.99999999 rounds to 1 and is out */
static inline bool sema_below_one(double x) { return x >= 0 && (float)x < 1.0f; }
bool sema_bool(Sema *s, const Ast *v, const char *what, bool *out);
/* Reports a second setting of the same key; returns true if key was already seen. */
bool sema_seen(Sema *s, const Ast **seen, int n_seen, const Ast *setting);

#endif
