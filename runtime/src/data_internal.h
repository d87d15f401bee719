/* Private interface between the data loaders of libmtlrt (data_*.c, shuffle.c).
 *
 * The loaders share one pipeline: a format-specific reader turns a file (or the synthetic
 * fleet's text) into a DataTable of raw double inputs, float targets and a group id per row;
 * data_common.c then splits by group, fits the normalisation on the training part and builds
 * the public MtlDataset. Nothing here is visible to generated code or the trainer.
 */
#ifndef MTL_DATA_INTERNAL_H
#define MTL_DATA_INTERNAL_H

#include "mtl_data.h"
#include "mtl_runtime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- 64-bit generator (shuffle.c): xoshiro256** seeded through splitmix64 ---- */

/* The runtime's one generator (runtime/src/rng.c), seeded the data module's own way. */
typedef MtlRng DataRng;

/* Streams keep independent uses of one user seed from sharing draws. */
enum { DATA_STREAM_SHUFFLE = 1, DATA_STREAM_SPLIT = 2, DATA_STREAM_SYNTH = 3, DATA_STREAM_CONDITIONS = 4 };

void data_rng_seed(DataRng *r, uint64_t seed, uint64_t stream, uint64_t sub);
uint64_t data_rng_next(DataRng *r);
uint64_t data_rng_below(DataRng *r, uint64_t n);  /* uniform in [0, n), n >= 1, unbiased */
double data_rng_uniform(DataRng *r);               /* [0, 1), 53 bits */
double data_rng_normal(DataRng *r);                /* standard normal (Box-Muller) */
void data_permutation(int64_t *perm, int64_t n, DataRng *r);

/* ---- line-oriented text input with checked errors (data_text.c) ---- */

typedef struct DataReader {
    FILE *f;
    const char *path;   /* as given by the user, used in every message */
    char *buf;          /* current line, NUL-terminated, newline removed */
    size_t cap;
    int64_t line;       /* 1-based number of the current line */
    int errors;         /* diagnostics printed so far */
} DataReader;

#define DATA_MAX_ERRORS 10

/* Opens path for reading; prints "PATH: error: cannot open: <strerror>" on failure. */
FILE *data_fopen(const char *path, const char *mode);
/* Reads the next line into r->buf. Returns 1 on a line, 0 at end of file, -1 on a read error
 * (already reported). */
int data_read_line(DataReader *r);
void data_reader_close(DataReader *r);
/* "PATH:LINE: error: ..." and counts it; returns false once too many errors were reported so
 * the caller can stop reading. */
bool data_error_at(DataReader *r, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Splits s in place at any of the separator characters; returns the token count (tokens past
 * max are counted but not stored). Whitespace mode skips empty tokens; comma mode keeps them. */
int data_split_ws(char *s, char **tok, int max);
int data_split_commas(char *s, char **tok, int max);
/* Whole-token conversion of a data value: decimal notation only (no hex, inf or nan), finite and
 * within the float32 range (|x| <= FLT_MAX). */
typedef enum DataNum { DATA_NUM_OK, DATA_NUM_BAD, DATA_NUM_RANGE } DataNum;
DataNum data_parse_value(const char *s, double *out);
/* Message for a rejected value: "is not a number" / "is out of the float32 range". */
const char *data_num_problem(DataNum r);
/* Whole-token conversions: false if the token is not a value as above / not an integer. */
bool data_parse_double(const char *s, double *out);
bool data_parse_int64(const char *s, int64_t *out);
bool data_is_blank(const char *s);
char *data_strdup(const char *s);
char *data_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the common table every reader produces (data_common.c) ---- */

/* Rows, not yet samples: data_common.c turns them into samples (one per row, or windows). */
typedef struct DataTable {
    int64_t n;          /* rows */
    int n_inputs;
    double *x;          /* [n, n_inputs] raw, un-normalised */
    int n_targets;
    float **y;          /* y[k]: [n] target of a sample ending at this row; NULL when n_targets == 0 */
    int32_t *group;     /* [n] engine / group id (the unit of the validation split) */
    int64_t *cycle;     /* [n] C-MAPSS cycle, or CSV 1-based data row */
    double *settings;   /* [n, 3] C-MAPSS setting1..setting3 of each row (for the operating
                           conditions, whatever the features); NULL for CSV */
    bool one_sequence;  /* windows run over all rows in file order (CSV without a group column);
                           otherwise over the rows of each group, in file order */
    char *name;         /* the file as named by the user, or the synthetic fleet's label */
    char *source;       /* description of where the rows came from */
    bool synthetic;
} DataTable;

int data_table_alloc(DataTable *t, int64_t n, int n_inputs, int n_targets);
void data_table_free(DataTable *t);

/* ---- C-MAPSS rows (data_cmapss_rows.c) ---- */

typedef struct DataRows {
    int64_t n, cap;
    double *v;          /* [n, MTL_CMAPSS_COLUMNS] as written in the file */
    int64_t *line;      /* [n] source line of each row */
} DataRows;

/* Parses 26-column rows and checks engine/cycle structure (engines contiguous, cycles
 * increasing). Every malformed line is reported; returns -1 if any was. */
int data_cmapss_read_rows(FILE *f, const char *path, DataRows *rows);
/* One non-negative integer per non-blank line. *last_line is the line of the last value. */
int data_cmapss_read_rul(FILE *f, const char *path, int64_t **vals, int64_t *n, int64_t *last_line);
void data_rows_free(DataRows *rows);

/* ---- synthetic fleet (data_synth.c) ---- */

typedef enum SynthPart { SYNTH_TRAIN = 0, SYNTH_TEST = 1, SYNTH_RUL = 2 } SynthPart;

/* Which fleet: operating conditions 1..MTL_SYNTH_MAX_CONDITIONS and fault modes
 * 1..MTL_SYNTH_MAX_FAULT_MODES (0 counts as 1). {1, 1} is the original one-condition fleet. */
typedef struct SynthFleet {
    int conditions, fault_modes;
} SynthFleet;

/* What the generator drew, for tests: the true operating condition (0-based) of every row
 * written, in file order, and the fault mode of every engine. Filled only when asked for. */
typedef struct SynthTruth {
    int64_t n_rows;
    int32_t *condition;   /* [n_rows] */
    int n_engines;
    int32_t *fault_mode;  /* [n_engines] */
} SynthTruth;

/* The synthetic fleet as the exact text of a C-MAPSS file (malloc'd, NUL-terminated), so the
 * loaders parse it with the same code as a real file. NULL on allocation failure or a fleet
 * outside the ranges above. truth may be NULL; otherwise it is filled (free with
 * synth_truth_free) for the train and test parts. */
char *synth_fleet_text(uint64_t seed, SynthPart part, SynthFleet fleet, size_t *len, SynthTruth *truth);
void synth_truth_free(SynthTruth *t);
extern const int synth_n_engines;

/* ---- operating conditions (data_conditions.c) ---- */

/* Fits k > 1 operating conditions on the settings ([n, 3]) of the rows with skip[i] false
 * (skip NULL: every row): k-means, seeded from seed, in the settings standardised over those
 * rows. Fills norm->k, centroids, settings_mean and settings_scale (not the per-feature
 * statistics). Returns 0, or -1 after printing "NAME: error: reason" (fewer distinct settings
 * than k, out of memory). */
int data_conditions_fit(const double *settings, int64_t n, const bool *skip, int k, uint64_t seed,
                        const char *name, MtlNorm *norm);
/* The condition of each row: the nearest of norm's centroids (0 for every row when k <= 1). */
void data_conditions_assign(const MtlNorm *norm, const double *settings, int64_t n, int32_t *cond);
int data_condition_of(const MtlNorm *norm, const double *s);

/* ---- per-format readers into a DataTable ---- */

/* Every reader returns every row of the file; for a C-MAPSS test file each row carries its
 * engine's targets from the RUL file, and data_common.c picks the last cycle / last window. */
typedef enum DataWhich { DATA_WHICH_TRAIN, DATA_WHICH_TEST, DATA_WHICH_INPUTS } DataWhich;

int data_cmapss_table(const MtlDataConfig *cfg, DataWhich which, const char *path, DataTable *t);
int data_csv_table(const MtlDataConfig *cfg, DataWhich which, const char *path, DataTable *t);

#endif
