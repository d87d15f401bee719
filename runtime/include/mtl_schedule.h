/* The training protocol's pieces, each small, pure and tested on its own (tests/runtime/
 * test_schedule.c): learning-rate warm-up by epoch, reduce-on-plateau, global gradient-norm
 * clipping, an exponential moving average of the weights, and early stopping. The trainer
 * (trainer.c) combines them; the book's section 5 (../shared/reference/BOOK.md) gives the defaults
 * (mtl_protocol_defaults).
 *
 * Every state struct is plain data: the trainer saves its fields in a checkpoint's metadata and
 * restores them on --resume, so a resumed run takes the same decisions as an uninterrupted one.
 */
#ifndef MTL_SCHEDULE_H
#define MTL_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

/* The protocol settings (spec `train { ... }` or the trainer's command line). A value of 0
 * turns a feature off where noted. */
typedef struct MtlProtocol {
    int64_t warmup_epochs;  /* linear warm-up over the first N epochs (0: off) */
    float warmup_start;     /* multiplier at epoch 0 */
    float plateau_factor;   /* multiply the lr by this after plateau_patience bad epochs (1: off) */
    int64_t plateau_patience;
    float min_lr;           /* floor of the plateau reductions */
    float clip_norm;        /* global gradient-norm clipping (0: off) */
    float ema_decay;        /* weight averaging (0: off; evaluation uses the live weights) */
    int64_t patience;       /* early stopping after N epochs without improvement (0: off) */
    bool select_on_test;    /* the book's protocol: select on the test set (labelled) */
    int64_t max_bad_steps;  /* consecutive non-finite steps before the run stops */
} MtlProtocol;

/* BOOK.md section 5: warm-up 10 epochs from 0.1x; plateau 0.5 / 30 / 5e-6; clipping at 1.0;
 * EMA 0.999; early stopping (patience 60 is mtlc's default, the book does not state one);
 * selection on validation; stop after 10 consecutive non-finite steps. */
void mtl_protocol_defaults(MtlProtocol *p);

/* Warm-up multiplier of the lr in epoch e (0-based): start + (1 - start) * e / W for e < W,
 * then 1. With W = 10, start = 0.1: 0.1, 0.19, ..., 0.91, 1, 1, ... (BOOK.md: 0.1 + 0.9 e/10). */
double mtl_warmup_multiplier(int64_t epoch, int64_t warmup_epochs, float warmup_start);

/* Reduce-on-plateau as PyTorch's ReduceLROnPlateau(mode="min", threshold=1e-4,
 * threshold_mode="rel", cooldown=0, eps=1e-8): an epoch improves when score < best * (1 - 1e-4);
 * after more than `patience` epochs without improvement every group's lr becomes
 * max(lr * factor, min_lr) (unchanged if that changes it by no more than 1e-8) and the count
 * restarts. The lrs live in the caller's array (one per optimizer group). */
typedef struct MtlPlateau {
    double best;        /* +inf before the first score */
    int64_t bad_epochs;
    int64_t reductions; /* how many times the lrs were reduced */
} MtlPlateau;

void mtl_plateau_init(MtlPlateau *p);
/* Feeds one epoch's score (non-finite scores count as bad epochs). Returns true when the lrs
 * were reduced. */
bool mtl_plateau_step(MtlPlateau *p, double score, float factor, int64_t patience, float min_lr,
                      float *lrs, int n_lrs);

/* Global gradient-norm clipping as PyTorch's clip_grad_norm_(max_norm, norm_type=2): the norm
 * of all gradients together (accumulated in double); when it exceeds max_norm the gradients are
 * scaled by max_norm / (norm + 1e-6). Returns the norm before clipping (non-finite when a
 * gradient is; then nothing is scaled). max_norm <= 0 only measures. */
double mtl_clip_grad_norm(float *grads, int64_t n, float max_norm);

/* Exponential moving average of the weights, updated after every optimizer step:
 * avg_t = decay * avg_(t-1) + (1 - decay) * w_t, avg_0 = 0, and the weights used for
 * evaluation are avg_t / (1 - decay^t) — the bias correction makes the average an exact
 * weighted mean of the weights seen so far (early in training, of the recent ones) instead of
 * being pulled towards zero or the initial weights. */
typedef struct MtlEma {
    float decay;
    int64_t n;     /* floats averaged */
    int64_t updates;
    float *avg;    /* [n] */
} MtlEma;

int mtl_ema_init(MtlEma *e, float decay, int64_t n); /* 0, or -1 when out of memory */
void mtl_ema_free(MtlEma *e);
void mtl_ema_update(MtlEma *e, const float *w);
/* out[i] = avg[i] / (1 - decay^updates); with no update yet, out = w. */
void mtl_ema_weights(const MtlEma *e, const float *w, float *out);

/* Early stopping on a score to minimise: an epoch is better when its score is lower than every
 * earlier one; the run stops after `patience` epochs in a row that are not. */
typedef struct MtlEarlyStop {
    double best;       /* +inf before the first score */
    int64_t best_epoch; /* 1-based epoch of the best score, 0 before any */
    int64_t bad_epochs;
} MtlEarlyStop;

void mtl_early_stop_init(MtlEarlyStop *s);
/* Records epoch `epoch`'s score. Returns true if it is the new best. */
bool mtl_early_stop_update(MtlEarlyStop *s, int64_t epoch, double score);
/* True when patience > 0 and the last `patience` epochs brought no improvement. */
bool mtl_early_stop_should_stop(const MtlEarlyStop *s, int64_t patience);

#endif
