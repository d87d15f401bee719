/* The trainer core of the mtl runtime: model info table, seeded RNG and initialisation, grouped
 * AdamW, safetensors checkpoints, JSON Lines logs, progress display, OpenBLAS kernel selection and
 * the train / eval / predict commands.
 *
 * Data loading (mtl_data.h) and metrics (mtl_metrics.h) are separate modules; this header only
 * names what the trainer itself owns. Functions that can fail on user input (files, checkpoints)
 * return -1 and fill a caller-provided message buffer; a malformed model info table is a compiler
 * bug and is reported as an internal error by the caller.
 */
#ifndef MTL_RUNTIME_H
#define MTL_RUNTIME_H

#include "mtl_abi.h"
#include "mtl_schedule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MTL_MAX_DIMS 8
#define MTL_ERR_SIZE 512

/* ---- model info (model_info.c) ------------------------------------------------------------ */

typedef struct MtlTensorInfo {
    char *name;            /* PyTorch-style dotted path, e.g. "shared.0.weight" */
    int ndim;
    int64_t shape[MTL_MAX_DIMS];
    int64_t offset, count; /* floats, into params/grads/moments */
    int group;             /* index into MtlModelInfo.groups */
    bool trainable;
    MtlInit init;
    float bound;           /* uniform init: U(-bound, bound) */
    uint32_t task_mask;    /* bit k: task k's gradient reaches it ("tasks" in the table) */
} MtlTensorInfo;

/* Non-trainable state (batchnorm running statistics): saved in checkpoints under its name,
 * never updated by the optimizer; generated code updates it in training mode. */
typedef struct MtlBufferInfo {
    char *name;            /* e.g. "trunk.1.running_mean" */
    int ndim;
    int64_t shape[MTL_MAX_DIMS];
    int64_t offset, count; /* floats, into the buffers region */
    MtlInit init;          /* zeros or ones */
} MtlBufferInfo;

typedef struct MtlGroupInfo {
    char *name;
    int64_t offset, count; /* one contiguous range of the parameter layout */
    float lr, weight_decay, beta1, beta2, eps;
    bool frozen;
} MtlGroupInfo;

typedef struct MtlTaskInfo {
    char *name;
    MtlTargetKind target;
    int64_t target_size, classes;
    MtlLoss loss;
    float huber_delta, weight;
    float amnl_cap;                   /* mse with AMNL weighting (RUL cap), 0 = off; the compiled
                                         loss applies it, test metrics stay unweighted */
    int64_t out_width, output_offset; /* head output at acts + output_offset * batch */
    char *bind;                       /* cmapss: "rul" / "health"; csv: column name */
} MtlTaskInfo;

typedef struct MtlModelInfo {
    int abi;
    char *name;
    char *input_name;
    int input_ndim;
    int64_t input_shape[MTL_MAX_DIMS];
    int64_t input_size;
    int64_t n_params, acts_per_sample;
    int64_t acts_fixed;      /* acts holds acts_per_sample * batch + acts_fixed floats */
    int64_t n_buffer_floats; /* size of the buffers region */
    int n_tensors, n_groups, n_tasks, n_buffers;
    MtlTensorInfo *tensors;
    MtlBufferInfo *buffers;  /* sorted by offset; may be empty */
    MtlGroupInfo *groups;
    MtlTaskInfo *tasks;
    int64_t trunk_size;        /* floats per sample of the trunk output, 0 when unknown */
    int64_t trunk_grad_offset; /* its gradient at acts + trunk_grad_offset * batch; -1: none */
    struct {
        int method;          /* MtlBalanceMethod (mtl_balance.h); 0 = fixed */
        bool norms_on_output; /* "norms": "trunk_output" (default "shared_params") */
        int n_options;       /* the options the spec gave, e.g. beta, floor, every */
        char *option[8];
        double value[8];
    } balance;
    struct {
        int64_t epochs, batch;
        uint64_t seed;
        bool has_lr; /* "lr": null -> false (each group keeps its own lr) */
        float lr;
        MtlProtocol protocol; /* warm-up, plateau, clipping, EMA, early stopping, selection */
        int64_t seeds;        /* a sweep over seeds seed .. seed + seeds - 1 (1: one run) */
    } train;
    struct {
        MtlDataKind kind;
        char *train, *test, *rul; /* NULL when null in the table */
        float rul_cap;
        int n_thresholds;
        float thresholds[8];
        float validation;
        int n_features; /* 0: the runtime's default feature list */
        char **features;
        int n_inputs;   /* csv */
        char **inputs;
        char *group;    /* csv group column or NULL */
        int64_t window; /* rows per sample (input [window, F]); 1 when absent */
        int64_t window_stride; /* training windows start every window_stride rows; 1 when absent */
        /* cmapss: k of the per-condition normalisation (1..64) and the synthetic fleet's
         * operating conditions (1..6) and fault modes (1..2); 1 when absent (and for csv) */
        int conditions;
        int synthetic_conditions;
        int synthetic_fault_modes;
    } data;
} MtlModelInfo;

/* Parses and validates a model info table. Returns 0, or -1 with a reason in err. */
int mtl_model_info_parse(const char *json, MtlModelInfo *out, char *err, size_t err_size);
void mtl_model_info_free(MtlModelInfo *m);
/* Index of the task / group with that name, or -1. */
int mtl_model_find_task(const MtlModelInfo *m, const char *name);

/* ---- RNG and initialisation (rng.c, init.c) ------------------------------------------------ */

/* xoshiro256** seeded through splitmix64: every random draw of a run comes from one seed. */
typedef struct MtlRng {
    uint64_t s[4];
} MtlRng;

uint64_t mtl_splitmix64(uint64_t *state);
void mtl_rng_seed(MtlRng *r, uint64_t seed);
uint64_t mtl_rng_next(MtlRng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float mtl_rng_uniform(MtlRng *r);
/* A seed for a sub-stream (init, dropout at a step, ...) derived from the run seed. */
uint64_t mtl_seed_derive(uint64_t seed, uint64_t stream, uint64_t index);

/* Stream ids for mtl_seed_derive. */
enum { MTL_STREAM_INIT = 1, MTL_STREAM_DROPOUT = 2 };

/* Initialises every tensor of params from its "init" entry, in table order, from one seed. */
void mtl_init_params(const MtlModelInfo *m, float *params, uint64_t seed);
/* Sets every buffer to its "init" (zeros / ones); floats between buffers become 0. */
void mtl_init_buffers(const MtlModelInfo *m, float *buffers);

/* ---- AdamW (adamw.c) ----------------------------------------------------------------------- */

/* A contiguous run of trainable parameters inside one non-frozen group. */
typedef struct MtlAdamRange {
    int64_t offset, count;
    int group;
} MtlAdamRange;

typedef struct MtlAdamW {
    int n_groups;
    int64_t n_params;
    MtlGroupInfo *groups;  /* copies (names not owned): lr may be overridden per run */
    int64_t *step;         /* [n_groups] PyTorch's state['step'] per group */
    float *m, *v;          /* [n_params] first and second moments, parameter layout */
    float lr_mult;         /* schedule hook: effective lr = groups[g].lr * lr_mult */
    int n_ranges;
    MtlAdamRange *ranges;
} MtlAdamW;

/* Groups as in the model (or hand-made); tensors decide which parts are trainable. tensors may be
 * NULL: then every non-frozen group is updated over its whole range. Returns 0 or -1 (no memory). */
int mtl_adamw_init(MtlAdamW *opt, const MtlGroupInfo *groups, int n_groups, int64_t n_params,
                   const MtlTensorInfo *tensors, int n_tensors);
void mtl_adamw_free(MtlAdamW *opt);
/* One step of AdamW (PyTorch semantics) on every non-frozen group. */
void mtl_adamw_step(MtlAdamW *opt, float *params, const float *grads);

/* ---- checkpoints (checkpoint.c) ------------------------------------------------------------ */

/* String -> string metadata, insertion ordered. */
typedef struct MtlMeta {
    int n, cap;
    char **key, **value;
} MtlMeta;

void mtl_meta_set(MtlMeta *meta, const char *key, const char *value);
const char *mtl_meta_get(const MtlMeta *meta, const char *key);
void mtl_meta_free(MtlMeta *meta);

typedef struct MtlNamedTensor {
    const char *name;
    int ndim;
    int64_t shape[MTL_MAX_DIMS];
    const float *data;
} MtlNamedTensor;

/* Writes a safetensors file atomically (path.tmp, fsync, rename). On failure the previous file at
 * path is untouched, the temporary is removed, and err says "PATH: error: reason". */
int mtl_safetensors_write(const char *path, const MtlNamedTensor *tensors, int n,
                          const MtlMeta *meta, char *err, size_t err_size);

typedef struct MtlStTensor {
    char *name;
    int ndim;
    int64_t shape[MTL_MAX_DIMS];
    int64_t begin, end; /* byte offsets into data */
} MtlStTensor;

typedef struct MtlSafetensors {
    int n;
    MtlStTensor *tensors;
    MtlMeta meta;
    unsigned char *file; /* whole file */
    const unsigned char *data;
    int64_t data_size;
} MtlSafetensors;

/* Reads and validates a safetensors file (F32 only). */
int mtl_safetensors_read(const char *path, MtlSafetensors *st, char *err, size_t err_size);
void mtl_safetensors_free(MtlSafetensors *st);
const MtlStTensor *mtl_safetensors_find(const MtlSafetensors *st, const char *name);

/* The model's parameters (named as in the table), then its buffers (by their names, e.g.
 * trunk.1.running_mean; buffers may be NULL only for a model without buffers) and, if opt is not
 * NULL, the AdamW moments as optimizer.exp_avg.<name> / optimizer.exp_avg_sq.<name> and step
 * counts as metadata optimizer.step.<group>. meta holds the run's own metadata (format "pt" is
 * added). */
int mtl_checkpoint_save(const char *path, const MtlModelInfo *m, const float *params,
                        const float *buffers, const MtlAdamW *opt, const MtlMeta *meta, char *err,
                        size_t err_size);
/* Loads parameters and buffers (every model tensor and buffer must be present with its shape;
 * unknown tensors and tensors holding NaN or infinity are an error), the optimizer state if opt is not NULL and the file has it, and
 * the metadata if meta_out is not NULL. buffers may be NULL: they are then checked but not
 * copied. params/buffers/opt are only written once the whole file has been validated. */
int mtl_checkpoint_load(const char *path, const MtlModelInfo *m, float *params, float *buffers,
                        MtlAdamW *opt, MtlMeta *meta_out, char *err, size_t err_size);

/* Extra copies of the model's weights in the same file (the weight average, the best epoch's
 * weights): saved as PREFIX + name for every parameter tensor and, when buffers is not NULL,
 * every buffer ("ema.trunk.0.weight", "best.trunk.1.running_mean"). */
typedef struct MtlTensorCopy {
    const char *prefix;  /* e.g. "ema." */
    float *params;       /* [n_params] */
    float *buffers;      /* [n_buffer_floats] or NULL (not saved / not loaded) */
    bool present;        /* set by the load: the file held this copy, complete */
} MtlTensorCopy;

/* mtl_checkpoint_save / _load with copies. A file may lack a copy (present = false) but not
 * hold part of one. Before anything else the load compares the model's tensors with the file's,
 * in the model's order, and names the first that is missing or has another shape, with both
 * shapes: a checkpoint made by a different spec fails on that line. */
int mtl_checkpoint_save_full(const char *path, const MtlModelInfo *m, const float *params,
                             const float *buffers, const MtlAdamW *opt, const MtlTensorCopy *copies,
                             int n_copies, const MtlMeta *meta, char *err, size_t err_size);
/* The model's tensors and buffers against a file's table, in the model's order: 0, or -1 with
 * the first missing or differently shaped one and both shapes in err. */
int mtl_checkpoint_first_mismatch(const char *path, const MtlModelInfo *m, const MtlSafetensors *st,
                                  char *err, size_t err_size);
int mtl_checkpoint_load_full(const char *path, const MtlModelInfo *m, float *params, float *buffers,
                             MtlAdamW *opt, MtlTensorCopy *copies, int n_copies, MtlMeta *meta_out,
                             char *err, size_t err_size);

/* ---- logs and I/O helpers (log.c) ---------------------------------------------------------- */

/* printf into err (truncating), for the err/err_size convention above. */
void mtl_errf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* mkdir -p; returns 0 or -1 with "PATH: error: reason". */
int mtl_mkdir_p(const char *path, char *err, size_t err_size);
/* Takes DIR/.trainer.lock exclusively (flock) and returns its descriptor, held until closed;
 * -1 with a message in err when another process holds it or it cannot be opened. check_parent:
 * also refuse when the folder around DIR is locked by another process (a live sweep's OUT, DIR
 * being one of its seed folders); a sweep's own seeds do not check it. */
int mtl_dir_lock(const char *dir, bool check_parent, char *err, size_t err_size);
/* A JSON Lines log: one compact JSON object per line, flushed after each line. */
typedef struct MtlLog {
    FILE *f;
    char *path;
    uint64_t hash;   /* FNV-1a 64 of everything written (the resumed part included) */
    int64_t bytes;   /* bytes written */
} MtlLog;
int mtl_log_open(MtlLog *log, const char *path, char *err, size_t err_size);
/* Continues the log of a resumed run: the first of path and sources[] whose first keep_bytes
 * hash to keep_hash (the run's own log: its in-progress log.jsonl.tmp, or log.jsonl once it had
 * finished, possibly in another folder) is copied to path if it is not path, cut to keep_bytes
 * and opened for appending. Another run's log is never continued. */
int mtl_log_resume(MtlLog *log, const char *path, const char *const *sources, int n_sources,
                   int64_t keep_bytes, uint64_t keep_hash, char *err, size_t err_size);
/* Bytes written to the log so far. */
int64_t mtl_log_size(const MtlLog *log);
/* Writes line (no newline) + "\n" to the log and, if echo is not NULL, to echo too. */
int mtl_log_write(MtlLog *log, const char *line, FILE *echo, char *err, size_t err_size);
/* errno of the first failed write to an echo stream (0: none): stdout is checked at exit. */
int mtl_echo_errno(void);
/* Flushes, fsyncs and closes; -1 with "trainer: error: cannot write PATH: reason" if any write
 * of the log failed. */
int mtl_log_close(MtlLog *log, char *err, size_t err_size);
/* Seconds on a monotonic clock. */
double mtl_now(void);

/* ---- progress (progress.c) ----------------------------------------------------------------- */

typedef struct MtlProgress {
    bool enabled; /* only on a terminal */
    int64_t total, done;
    double start, last_draw;
    char label[64];
} MtlProgress;

void mtl_progress_begin(MtlProgress *p, bool enabled, const char *label, int64_t total);
void mtl_progress_update(MtlProgress *p, int64_t done);
void mtl_progress_end(MtlProgress *p);

/* ---- OpenBLAS (blas_select.c) -------------------------------------------------------------- */

/* If OpenBLAS picked a generic kernel and the CPU can run a better one, sets OPENBLAS_CORETYPE
 * and re-executes /proc/self/exe once. Returns only if no re-exec happened (or it failed). */
void mtl_blas_select(int argc, char **argv);
/* Kernel OpenBLAS is using, e.g. "Haswell". */
const char *mtl_blas_corename(void);
/* The kernel the CPU supports best among those we know ("SkylakeX", "Haswell") or NULL. */
const char *mtl_blas_best_core(void);
/* True for OpenBLAS's generic / pre-AVX2 fallbacks. */
bool mtl_blas_core_is_generic(const char *name);
/* n <= 0: all cores. Returns the thread count in effect. */
int mtl_blas_set_threads(int n);

/* ---- commands (trainer.c) ------------------------------------------------------------------ */

/* Largest batch accepted on the command line; the batch is also capped at the number of training
 * samples, and batch x time steps must fit an int (generated code passes rows to BLAS as int). */
#define MTL_MAX_BATCH 1000000

/* Protocol settings given on the command line (each has_ flag says the value is set). */
typedef struct MtlProtocolOptions {
    bool has_warmup_epochs, has_warmup_start, has_plateau_factor, has_plateau_patience,
        has_min_lr, has_clip_norm, has_ema, has_patience, has_select, has_max_bad_steps;
    MtlProtocol v;
} MtlProtocolOptions;

#define MTL_MAX_SEEDS 1000

typedef struct MtlTrainOptions {
    const char *train, *test, *rul; /* NULL: from the model's data table */
    int64_t epochs, batch;           /* < 0: from the model's train table */
    bool has_seed;
    uint64_t seed;
    bool has_lr;
    float lr;
    const char *out;                 /* NULL: runs/<model name> (resume: the state file's folder) */
    bool has_validation;
    float validation;
    bool cap_test_rul;
    bool quiet;
    int threads;
    MtlProtocolOptions protocol;
    /* seed sweep: n_seeds > 0 runs each of seeds[0..n_seeds) into OUT/seed-S */
    int n_seeds;
    uint64_t seeds[MTL_MAX_SEEDS];
    const char *resume;              /* a state checkpoint (OUT/state.safetensors) to continue */
    int64_t save_every;              /* < 0: default 1 (every epoch); 0: only at the end */
    int64_t save_every_steps;        /* <= 0: off */
    int diagnostics;                 /* per-task gradient diagnostics: 0 off, 1 per epoch, 2 per step */
    bool in_sweep;                   /* one seed of a sweep (set by the sweep): a stopped run advises
                                        running the sweep's command again, not --resume */
} MtlTrainOptions;

/* What one training run ended with (for the seed sweep's table). */
typedef struct MtlRunResult {
    uint64_t seed;
    int64_t epochs_run, best_epoch;
    bool stopped_early, have_test, have_val;
    double best_score;     /* the selection score at best_epoch (validation or test RMSE) */
    double rmse, nasa, mae, accuracy, macro_f1; /* test, with the selected weights */
    double seconds_per_epoch;
    const char *selected_on; /* static text: "validation", "the TEST set ...", "none (last epoch)" */
    /* the book's protocol on the same run: the epoch with the lowest test RMSE (weights as
     * evaluated that epoch) - optimistic, reported beside the honest numbers */
    int64_t test_best_epoch;
    double test_best_rmse, test_best_nasa;
    bool diverged; /* set (with seed) when the run stopped because training diverged: too many
                      non-finite steps in a row; nothing else is filled in then */
} MtlRunResult;

typedef struct MtlEvalOptions {
    const char *checkpoint; /* NULL: runs/<model name>/model.safetensors */
    const char *test, *rul;
    bool json;
    bool cap_test_rul;
} MtlEvalOptions;

typedef struct MtlPredictOptions {
    const char *checkpoint;
    const char *input;
    const char *output; /* NULL: stdout */
} MtlPredictOptions;

/* Each returns the process exit status: 0 success, 1 user error (message already printed). */
int mtl_train(const MtlModelInfo *m, const MtlTrainOptions *o);
/* One run (no sweep); fills *res when not NULL. Same return values as mtl_train, plus 130 / 143
 * after SIGINT / SIGTERM (state saved). */
int mtl_train_run(const MtlModelInfo *m, const MtlTrainOptions *o, MtlRunResult *res);
/* What a state checkpoint at path is to a run with options o: none there, a run of these very
 * settings (finished or not), or something else (other settings, another spec, unreadable). */
enum { MTL_STATE_NONE, MTL_STATE_FINISHED, MTL_STATE_UNFINISHED, MTL_STATE_OTHER };
int mtl_train_state_status(const MtlModelInfo *m, const MtlTrainOptions *o, const char *path);
int mtl_eval(const MtlModelInfo *m, const MtlEvalOptions *o);
int mtl_predict(const MtlModelInfo *m, const MtlPredictOptions *o);

/* Parses mtl_model_json; a bad table is a compiler bug: prints an internal error and aborts. */
void mtl_model_info_load_or_die(MtlModelInfo *m);

#endif
