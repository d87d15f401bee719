/* What a training run must remember to continue exactly after --resume: its settings (fixed
 * for the whole run) and its progress (epoch, step and position inside the epoch, the running
 * sums of the epoch, the schedules' and early stopping's state). Both travel as JSON in a
 * checkpoint's metadata ("train_settings", "train_progress"); weights, optimizer moments and
 * the weight average travel as tensors (see mtl_checkpoint_save_full). Doubles are written so
 * that they read back bit for bit. */
#ifndef MTL_TRAIN_STATE_H
#define MTL_TRAIN_STATE_H

#include "mtl_schedule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct TrainSettings {
    int64_t epochs, batch;
    uint64_t seed;
    bool has_lr;
    float lr;              /* with has_lr: every group's lr */
    float validation;
    MtlProtocol protocol;
    int64_t save_every;       /* state checkpoint every N epochs (0: only at the end) */
    int64_t save_every_steps; /* and every N steps (0: off) */
    int64_t threads;          /* OpenBLAS threads (results depend on it; a resume warns on a change) */
} TrainSettings;

typedef struct TrainProgress {
    int n_tasks, n_groups;
    int64_t epoch;         /* epochs completed */
    int64_t step;          /* steps taken, skipped ones included (dropout seeds follow it) */
    int64_t epoch_step;    /* steps done inside epoch `epoch + 1` (0 at an epoch boundary) */
    int64_t epoch_samples; /* samples of those steps that updated the model */
    double *loss_sum;      /* [n_tasks] sum of loss x batch over those steps */
    double norm_sum;       /* sum of the gradient norms (before clipping) this epoch */
    int64_t norm_count, clipped;
    float *plateau_lr;     /* [n_groups] the lrs the plateau schedule manages (warm-up scales them) */
    MtlPlateau plateau;
    MtlEarlyStop early;
    int64_t skipped;       /* non-finite steps skipped in the whole run */
    int64_t bad_in_row;
    bool stopped_early;
    int64_t ema_updates;
    int64_t log_bytes;     /* length of the log that belongs to this state */
    uint64_t log_hash;     /* FNV-1a 64 of those bytes (which log is this run's) */
    double train_seconds;  /* wall time spent in epochs so far */
} TrainProgress;

void train_progress_alloc(TrainProgress *p, int n_tasks, int n_groups);
void train_progress_free(TrainProgress *p);

/* malloc'd compact JSON */
char *train_settings_json(const TrainSettings *s);
char *train_progress_json(const TrainProgress *p);
/* 0, or -1 with a reason in err (p must be allocated with the model's task and group counts) */
int train_settings_parse(const char *json, TrainSettings *s, char *err, size_t err_size);
int train_progress_parse(const char *json, TrainProgress *p, char *err, size_t err_size);

#endif
