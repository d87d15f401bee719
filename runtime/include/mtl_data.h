/* Data sets for the trainer: C-MAPSS text files, generic CSV, and the built-in synthetic fleet.
 *
 * Every loader turns rows into samples: inputs [n, input_size] (normalised with statistics
 * fitted on training rows only) and one target array per task. Errors in a data file are
 * printed to stderr as "path:line: error: reason" and the function returns -1; nothing
 * here exits the process.
 *
 * Windows (window W > 1, a model input [W, F]): a sample is W consecutive rows of one engine
 * (C-MAPSS) or group (CSV group column; without one, the whole file is one sequence), oldest
 * first, each row the F normalised features, so input_size = W * F; its targets are those of the
 * window's last row. Which windows are taken:
 *   training / validation  every full window, starting at the engine's first row and then every
 *                          window_stride rows; an engine shorter than W gives none (skipped,
 *                          counted in n_skipped and in the source text)
 *   C-MAPSS test set       one window per engine ending at its last cycle
 *   CSV test set           every full window (stride 1); a group shorter than W gives one window
 *                          ending at its last row
 *   inputs (predict)       one window ending at every row
 * A window that would start before the engine's first row is padded at the front by repeating
 * that first row (pad[i] rows); test engines / groups shorter than W are counted in n_padded.
 * Normalisation statistics are per feature over the training part's rows (also those of
 * skipped engines). With W = 1 every path gives exactly one sample per row as before (the
 * C-MAPSS test set: the last cycle of each engine).
 *
 * Operating conditions (C-MAPSS only, conditions = k > 1): the training part's rows are
 * clustered by their three operating settings (setting1..setting3, whether or not they are
 * features) with k-means (data_conditions.c), and the statistics are per condition and feature.
 * Every other row (validation, test, predict inputs) is assigned to the nearest centroid and
 * normalised with that condition's training statistics; in a window each row (cycle) is
 * normalised by its own condition, as FD002's conditions change from cycle to cycle. CSV data
 * always use one condition.
 */
#ifndef MTL_DATA_H
#define MTL_DATA_H

#include "mtl_abi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTL_CMAPSS_COLUMNS 26 /* engine, cycle, setting1..3, s1..s21 */
#define MTL_MAX_THRESHOLDS 8
#define MTL_MAX_CONDITIONS 64       /* k of the per-condition normalisation */
#define MTL_SYNTH_MAX_CONDITIONS 6  /* operating points of the synthetic fleet */
#define MTL_SYNTH_MAX_FAULT_MODES 2

/* Where samples come from; filled by the trainer from the model info "data" and its command line. */
typedef struct MtlDataConfig {
    MtlDataKind kind;
    const char *train_path;  /* NULL: the built-in synthetic fleet (cmapss kind only) */
    const char *test_path;   /* NULL with synthetic train: the synthetic test fleet */
    const char *rul_path;    /* C-MAPSS RUL_FD00x file for test_path */
    /* C-MAPSS */
    float rul_cap;           /* 125 */
    int n_thresholds;        /* 2 */
    float thresholds[MTL_MAX_THRESHOLDS]; /* descending, {80, 30}: class i if RUL <= thr[i-1] ... */
    int n_features;          /* columns to use as inputs, by name: "setting1".."setting3", "s1".."s21" */
    const char *const *features;
    bool cap_test_rul;       /* cap the true test RUL at rul_cap (default true; stated in output) */
    /* CSV */
    int n_input_columns;
    const char *const *input_columns;
    const char *group_column;  /* NULL: every row its own group */
    /* targets, one per task, in task order */
    int n_targets;
    const char *const *target_binds;   /* cmapss: "rul" or "health"; csv: column name */
    const MtlTargetKind *target_kinds;
    const int64_t *target_classes;     /* class targets: K */
    /* windows (see above); 0 counts as 1 */
    int64_t window;          /* rows per sample, 1 = no windows */
    int64_t window_stride;   /* training windows start every window_stride rows */
    /* split */
    float validation;        /* fraction of engines/groups held out, 0 = none */
    uint64_t seed;           /* split seed (and synthetic fleet and k-means seed) */
    /* normalisation per operating condition (C-MAPSS only; see above): k-means with k =
     * conditions on the training settings; 0 counts as 1, plain per-feature z-score */
    int conditions;
    /* the synthetic fleet (train_path NULL): operating points 1..6 drawn per cycle, fault
     * modes 1..2 drawn per engine; 0 counts as 1, and (1, 1) is the original fleet */
    int synthetic_conditions;
    int synthetic_fault_modes;
} MtlDataConfig;

/* Normalisation fitted on training rows only: z = (x - mean[c, f]) / (std[c, f] + 1e-8)
 * (population std) for a row of operating condition c. A column constant over condition c's
 * training rows has std exactly 0 there and maps to 0 (never a huge value).
 *
 * k <= 1 (0 in a zeroed struct counts as 1): one condition, plain per-feature z-score; no
 * centroids. k > 1: a row's condition is the centroid nearest to its three settings s in the
 * standardised metric sum_j ((s_j - centroid[c, j]) / settings_scale[j])^2, ties to the lower c.
 * centroids are in the file's units, ordered by (setting1, setting2, setting3). */
typedef struct MtlNorm {
    int n;                    /* features per row */
    float *mean, *std;        /* [k * n]: condition c's statistics at [c * n, (c + 1) * n) */
    int k;                    /* operating conditions */
    float *centroids;         /* [k * 3] (k > 1 only, else NULL) */
    float settings_mean[3];   /* the standardisation the clustering ran in (k > 1 only) */
    float settings_scale[3];  /* population std of each setting, 1 for a constant one */
} MtlNorm;

typedef struct MtlDataset {
    int64_t n;            /* samples */
    int64_t input_size;   /* floats per sample */
    float *x;             /* [n, input_size] normalised */
    int n_targets;
    float **y;            /* y[k]: [n] target k per sample (class labels as floats) */
    int32_t *group;       /* [n] engine / group id of each sample (of its last row) */
    int64_t n_groups;     /* distinct groups (engines) */
    int64_t window;       /* rows per sample (1: no windows) */
    int64_t n_features;   /* floats per row: input_size = window * n_features */
    int64_t *cycle;       /* [n] of the sample's last row: the C-MAPSS cycle, or the 1-based data
                             row of a CSV file (blank lines and the header not counted) */
    int32_t *pad;         /* [n] leading rows that repeat the engine's first row (0: full window) */
    int32_t *condition;   /* [n] operating condition (0..k-1) of the sample's last row; all 0
                             with one condition */
    int64_t n_padded;     /* engines / groups shorter than the window whose samples were padded */
    int64_t n_skipped;    /* training engines / groups shorter than the window (no sample) */
    char *source;         /* human description, e.g. "train_FD001.txt (rows 1-20631)" or
                             "synthetic fleet (seed 0, not real data)" */
    bool synthetic;
} MtlDataset;

/* Loads training data, fits the normalisation on the training part only, splits off a
 * validation part by engine/group (seeded). val may be left empty (n = 0). */
int mtl_data_load_train(const MtlDataConfig *cfg, MtlDataset *train, MtlDataset *val, MtlNorm *norm);

/* Loads the test set: one sample per engine from its last cycle (or its last window), targets
 * from the RUL file (C-MAPSS), or every row / window with targets from the file's own columns
 * (CSV). Uses the training normalisation. */
int mtl_data_load_test(const MtlDataConfig *cfg, const MtlNorm *norm, MtlDataset *test);

/* Inputs only, for `predict`: C-MAPSS rows or CSV rows, one sample per row (with windows, the
 * window ending at that row, padded at the start of each engine). */
int mtl_data_load_inputs(const MtlDataConfig *cfg, const char *path, const MtlNorm *norm, MtlDataset *out);

void mtl_dataset_free(MtlDataset *d);
/* Frees everything a loaded or parsed MtlNorm holds and zeroes it. */
void mtl_norm_free(MtlNorm *n);

/* The normalisation as compact JSON (malloc'd, NULL on allocation failure), everything needed
 * to normalise new data, e.g. for a checkpoint's metadata:
 *   {"version":1,"features":F,"conditions":K,"mean":[[F floats] x K],"std":[[...] x K]}
 * plus, when K > 1, "settings_mean":[3],"settings_scale":[3],"centroids":[[3 floats] x K].
 * Floats are printed with "%.9g", so parsing gives back the identical float32 values. */
char *mtl_norm_to_json(const MtlNorm *n);
/* Parses and validates mtl_norm_to_json's format into out: version 1, F == n_features (when
 * n_features > 0), 1 <= K <= MTL_MAX_CONDITIONS, every array of the right size, every value a
 * finite float32, std >= 0, settings_scale > 0, the settings keys present exactly when K > 1,
 * no other keys. Returns 0, or -1 with the reason in err (out left empty). */
int mtl_norm_from_json(const char *json, int n_features, MtlNorm *out, char *err, size_t err_size);
/* Same features, conditions and bit-identical values (k 0 and 1 are the same). */
bool mtl_norm_equal(const MtlNorm *a, const MtlNorm *b);

/* The project defaults: cmapss kind, synthetic fleet (train_path NULL), rul_cap 125, thresholds
 * {80, 30}, the 17 default features, cap_test_rul true, window 1 (stride 1), validation 0.2,
 * seed 0, no targets, one operating condition, the one-condition one-fault-mode synthetic fleet. */
void mtl_data_config_defaults(MtlDataConfig *cfg);

/* Writes the synthetic fleet of this seed as C-MAPSS text files DIR/train_synth.txt,
 * DIR/test_synth.txt and DIR/RUL_synth.txt (byte-identical to what the loaders read when
 * train_path is NULL). Returns 0, or -1 after printing "PATH: error: reason". */
int mtl_synth_write(const char *dir, uint64_t seed);
/* The same for a fleet with 1..6 operating conditions and 1..2 fault modes (as
 * synthetic_conditions / synthetic_fault_modes; 0 counts as 1): (1, 1) is mtl_synth_write. */
int mtl_synth_write_fleet(const char *dir, uint64_t seed, int conditions, int fault_modes);

/* The 17 default C-MAPSS feature names (3 settings + 14 sensors), for configs and tests. */
extern const char *const mtl_cmapss_default_features[17];
/* True for a C-MAPSS feature name: setting1..setting3 or s1..s21. */
bool mtl_cmapss_feature_known(const char *name);

/* Seeded shuffling and batching: a permutation of [0, n) for an epoch (Fisher-Yates on a
 * 64-bit generator seeded from (seed, epoch)). Batches are consecutive slices of it, the last
 * one partial: every sample exactly once per epoch. */
void mtl_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch);

#endif
