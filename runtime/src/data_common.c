/* The format-independent half of data loading: the public mtl_data_load_* entry points, the
 * choice of samples (rows or windows of each engine/group, padded at an engine's start where the
 * mode allows it; rules in mtl_data.h), the seeded validation split by engine/group, the
 * normalisation fitted on training rows only (per operating condition when conditions > 1; the
 * clustering itself is data_conditions.c), and the conversion of a raw DataTable into the
 * public MtlDataset.
 *
 * It does not read files itself (data_cmapss*.c and data_csv.c do) and it never exits; on any
 * failure the outputs are left empty (safe to free) and -1 is returned.
 */
#include "data_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Added so the trainer normalises exactly the same way for a loaded MtlNorm. */
#define DATA_NORM_EPS 1e-8

void mtl_data_config_defaults(MtlDataConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = MTL_DATA_CMAPSS;
    cfg->rul_cap = 125.0f;
    cfg->n_thresholds = 2;
    cfg->thresholds[0] = 80.0f;
    cfg->thresholds[1] = 30.0f;
    cfg->n_features = 17;
    cfg->features = mtl_cmapss_default_features;
    cfg->cap_test_rul = true;
    cfg->window = 1;
    cfg->window_stride = 1;
    cfg->validation = 0.2f;
    cfg->conditions = 1;
    cfg->synthetic_conditions = 1;
    cfg->synthetic_fault_modes = 1;
}

int data_table_alloc(DataTable *t, int64_t n, int n_inputs, int n_targets) {
    memset(t, 0, sizeof *t);
    t->n = n;
    t->n_inputs = n_inputs;
    t->n_targets = n_targets;
    /* At least one element each, so an empty table still has valid pointers. */
    size_t rows = (size_t)(n > 0 ? n : 1);
    t->x = malloc(rows * (size_t)(n_inputs > 0 ? n_inputs : 1) * sizeof *t->x);
    t->group = malloc(rows * sizeof *t->group);
    t->cycle = malloc(rows * sizeof *t->cycle);
    bool ok = t->x && t->group && t->cycle;
    if (n_targets > 0) {
        t->y = calloc((size_t)n_targets, sizeof *t->y);
        ok = ok && t->y;
        for (int k = 0; ok && k < n_targets; k++) ok = (t->y[k] = malloc(rows * sizeof **t->y)) != NULL;
    }
    if (!ok) {
        data_table_free(t);
        return -1;
    }
    return 0;
}

void data_table_free(DataTable *t) {
    if (t->y)
        for (int k = 0; k < t->n_targets; k++) free(t->y[k]);
    free(t->y);
    free(t->x);
    free(t->group);
    free(t->cycle);
    free(t->settings);
    free(t->name);
    free(t->source);
    memset(t, 0, sizeof *t);
}

void mtl_dataset_free(MtlDataset *d) {
    if (!d) return;
    if (d->y)
        for (int k = 0; k < d->n_targets; k++) free(d->y[k]);
    free(d->y);
    free(d->x);
    free(d->group);
    free(d->cycle);
    free(d->pad);
    free(d->condition);
    free(d->source);
    memset(d, 0, sizeof *d);
}

void mtl_norm_free(MtlNorm *n) {
    if (!n) return;
    free(n->mean);
    free(n->std);
    free(n->centroids);
    memset(n, 0, sizeof *n);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct group ids of the rows; returns the count or -1 on allocation failure. */
static int64_t distinct_groups(const int32_t *group, int64_t n, const bool *take, int32_t **out) {
    int32_t *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!ids) return -1;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!take || take[i]) ids[m++] = group[i];
    qsort(ids, (size_t)m, sizeof *ids, cmp_i32);
    int64_t g = 0;
    for (int64_t i = 0; i < m; i++)
        if (g == 0 || ids[i] != ids[g - 1]) ids[g++] = ids[i];
    *out = ids;
    return g;
}

static int64_t group_index(const int32_t *ids, int64_t g, int32_t id) {
    const int32_t *p = bsearch(&id, ids, (size_t)g, sizeof *ids, cmp_i32);
    return p ? p - ids : -1;
}

/* Mean and population std per condition and feature over the selected rows, in double (row i
 * is of condition cond[i]; cond NULL: all of condition 0, norm->k <= 1). A column whose values
 * are all equal within a condition gets std exactly 0 there (checked by min == max, because
 * summing a constant in floating point can leave a tiny non-zero variance that would then be
 * amplified). With one condition the sums run over the rows in the same order as they always
 * did, so the statistics are bit-identical to the plain z-score's. */
static int fit_norm(MtlNorm *norm, const DataTable *t, const bool *is_val, const int32_t *cond) {
    int f_n = t->n_inputs;
    int k = norm->k > 1 ? norm->k : 1;
    norm->n = f_n;
    size_t cells = (size_t)k * (size_t)(f_n > 0 ? f_n : 1);
    norm->mean = malloc(cells * sizeof *norm->mean);
    norm->std = malloc(cells * sizeof *norm->std);
    if (!norm->mean || !norm->std) return -1;
    double sum[MTL_MAX_CONDITIONS], lo[MTL_MAX_CONDITIONS], hi[MTL_MAX_CONDITIONS], var[MTL_MAX_CONDITIONS];
    int64_t m[MTL_MAX_CONDITIONS];
    for (int f = 0; f < f_n; f++) {
        for (int c = 0; c < k; c++) {
            sum[c] = 0;
            lo[c] = INFINITY;
            hi[c] = -INFINITY;
            var[c] = 0;
            m[c] = 0;
        }
        for (int64_t i = 0; i < t->n; i++) {
            if (is_val && is_val[i]) continue;
            int c = cond ? cond[i] : 0;
            double v = t->x[i * f_n + f];
            sum[c] += v;
            lo[c] = fmin(lo[c], v);
            hi[c] = fmax(hi[c], v);
            m[c]++;
        }
        double mean[MTL_MAX_CONDITIONS];
        for (int c = 0; c < k; c++) mean[c] = m[c] > 0 ? (lo[c] == hi[c] ? lo[c] : sum[c] / (double)m[c]) : 0.0;
        for (int64_t i = 0; i < t->n; i++) {
            if (is_val && is_val[i]) continue;
            int c = cond ? cond[i] : 0;
            if (lo[c] == hi[c]) continue;
            double d = t->x[i * f_n + f] - mean[c];
            var[c] += d * d;
        }
        for (int c = 0; c < k; c++) {
            norm->mean[c * f_n + f] = (float)mean[c];
            norm->std[c * f_n + f] = (float)sqrt(var[c] / (double)(m[c] > 0 ? m[c] : 1));
        }
    }
    return 0;
}

/* ---- sequences and windows ---- */

/* The rows of each engine / group in file order: sequence q is order[start[q] .. start[q] +
 * len[q]), ranked by first appearance; row i is number k[i] of its sequence seq[i]. A CSV file
 * without a group column is one sequence. */
typedef struct Seqs {
    int64_t n_seq;
    int64_t *order, *start, *len; /* [n rows], [n_seq], [n_seq] */
    int64_t *seq, *k;             /* [n rows] */
} Seqs;

static void seqs_free(Seqs *q) {
    free(q->order);
    free(q->start);
    free(q->len);
    free(q->seq);
    free(q->k);
    memset(q, 0, sizeof *q);
}

static int seqs_build(Seqs *q, const DataTable *t) {
    memset(q, 0, sizeof *q);
    size_t rows = (size_t)(t->n > 0 ? t->n : 1);
    int32_t *ids = NULL;
    int64_t g = 1;
    if (!t->one_sequence && (g = distinct_groups(t->group, t->n, NULL, &ids)) < 0) return -1;
    size_t gs = (size_t)(g > 0 ? g : 1);
    q->order = malloc(rows * sizeof *q->order);
    q->seq = malloc(rows * sizeof *q->seq);
    q->k = malloc(rows * sizeof *q->k);
    q->start = calloc(gs, sizeof *q->start);
    q->len = calloc(gs, sizeof *q->len);
    int64_t *rank = malloc(gs * sizeof *rank), *fill = malloc(gs * sizeof *fill);
    if (!q->order || !q->seq || !q->k || !q->start || !q->len || !rank || !fill) {
        free(ids);
        free(rank);
        free(fill);
        seqs_free(q);
        return -1;
    }
    for (int64_t j = 0; j < g; j++) rank[j] = -1;
    int64_t next = 0;
    for (int64_t i = 0; i < t->n; i++) {
        int64_t j = t->one_sequence ? 0 : group_index(ids, g, t->group[i]);
        if (rank[j] < 0) rank[j] = next++;
        q->seq[i] = rank[j];
        q->k[i] = q->len[rank[j]]++;
    }
    q->n_seq = next;
    for (int64_t j = 1; j < next; j++) q->start[j] = q->start[j - 1] + q->len[j - 1];
    for (int64_t j = 0; j < next; j++) fill[j] = q->start[j];
    for (int64_t i = 0; i < t->n; i++) q->order[fill[q->seq[i]]++] = i;
    free(ids);
    free(rank);
    free(fill);
    return 0;
}

/* Which rows end a sample (see mtl_data.h). */
typedef enum WinMode {
    WIN_TRAIN,        /* full windows from each sequence's start, every stride rows */
    WIN_LAST,         /* the sequence's last row (padded when the sequence is short) */
    WIN_FULL_OR_LAST, /* every full window; a short sequence: its last row, padded */
    WIN_EVERY,        /* every row (padded near each sequence's start) */
} WinMode;

static bool ends_sample(WinMode mode, int64_t k, int64_t len, int64_t w, int64_t stride) {
    switch (mode) {
    case WIN_TRAIN: return k >= w - 1 && (k - (w - 1)) % stride == 0;
    case WIN_LAST: return k == len - 1;
    case WIN_FULL_OR_LAST: return k >= w - 1 || (len < w && k == len - 1);
    case WIN_EVERY: return true;
    }
    return false;
}

static int64_t cfg_window(const MtlDataConfig *cfg) { return cfg->window > 1 ? cfg->window : 1; }
static int64_t cfg_stride(const MtlDataConfig *cfg) {
    return cfg->window_stride > 1 ? cfg->window_stride : 1;
}

/* Sequences shorter than the window (none when w == 1). */
static int64_t short_seqs(const Seqs *q, int64_t w) {
    int64_t n = 0;
    for (int64_t j = 0; j < q->n_seq; j++) n += q->len[j] < w;
    return n;
}

/* The samples: rows that end one (take[i]) and, when is_val is given, are in the wanted part
 * of the split. Each sample is the window of w rows ending there, each row normalised with the
 * statistics of its own operating condition cond[i] (cond NULL: condition 0); rows before the
 * sequence's start repeat its first row. */
static int build_dataset(MtlDataset *d, const DataTable *t, const Seqs *q, const bool *take,
                         const bool *is_val, bool want_val, int64_t w, const MtlNorm *norm,
                         const int32_t *cond, char *source) {
    memset(d, 0, sizeof *d);
    d->source = source;
    if (!source) return -1;
    int64_t n = 0;
    for (int64_t i = 0; i < t->n; i++)
        if (take[i] && (!is_val || is_val[i] == want_val)) n++;
    int f_n = t->n_inputs;
    size_t row_floats = (size_t)(f_n > 0 ? f_n : 1);
    /* At least one element each, so an empty set still has valid pointers. */
    size_t rows = (size_t)(n > 0 ? n : 1);
    if ((uint64_t)w > SIZE_MAX / sizeof(float) / row_floats / rows) return -1;
    d->n_targets = t->n_targets;
    d->x = malloc(rows * (size_t)w * row_floats * sizeof *d->x);
    d->group = malloc(rows * sizeof *d->group);
    d->cycle = malloc(rows * sizeof *d->cycle);
    d->pad = malloc(rows * sizeof *d->pad);
    d->condition = malloc(rows * sizeof *d->condition);
    /* every row normalised once, then copied into each window that holds it */
    float *z = malloc((size_t)(t->n > 0 ? t->n : 1) * row_floats * sizeof *z);
    if (!d->x || !d->group || !d->cycle || !d->pad || !d->condition || !z) {
        free(z);
        return -1;
    }
    if (t->n_targets > 0) {
        if (!(d->y = calloc((size_t)t->n_targets, sizeof *d->y))) {
            free(z);
            return -1;
        }
        for (int k = 0; k < t->n_targets; k++)
            if (!(d->y[k] = malloc(rows * sizeof **d->y))) {
                free(z);
                return -1;
            }
    }
    for (int64_t i = 0; i < t->n; i++) {
        const float *mean = norm->mean + (size_t)(cond ? cond[i] : 0) * (size_t)f_n;
        const float *std = norm->std + (size_t)(cond ? cond[i] : 0) * (size_t)f_n;
        for (int f = 0; f < f_n; f++) {
            double sd = std[f];
            /* A feature constant in training (within the row's condition) carries no
             * information: 0, never a huge value. */
            z[i * f_n + f] =
                sd == 0 ? 0.0f : (float)((t->x[i * f_n + f] - (double)mean[f]) / (sd + DATA_NORM_EPS));
        }
    }
    int64_t s = 0;
    for (int64_t i = 0; i < t->n; i++) {
        if (!take[i] || (is_val && is_val[i] != want_val)) continue;
        const int64_t *rows_of_seq = q->order + q->start[q->seq[i]];
        float *dst = d->x + s * w * f_n;
        for (int64_t j = 0; j < w; j++) {
            int64_t at = q->k[i] - (w - 1) + j; /* oldest first */
            memcpy(dst + j * f_n, z + rows_of_seq[at > 0 ? at : 0] * f_n, (size_t)f_n * sizeof *dst);
        }
        d->pad[s] = (int32_t)(q->k[i] < w - 1 ? w - 1 - q->k[i] : 0);
        d->condition[s] = cond ? cond[i] : 0;
        for (int k = 0; k < t->n_targets; k++) d->y[k][s] = t->y[k][i];
        d->group[s] = t->group[i];
        d->cycle[s] = t->cycle[i];
        s++;
    }
    free(z);
    int32_t *ids;
    int64_t g = distinct_groups(d->group, n, NULL, &ids);
    if (g < 0) return -1;
    free(ids);
    d->n = n;
    d->window = w;
    d->n_features = f_n;
    d->input_size = w * f_n;
    d->n_groups = g;
    d->synthetic = t->synthetic;
    return 0;
}

static int load_table(const MtlDataConfig *cfg, DataWhich which, const char *path, DataTable *t) {
    if (cfg->kind == MTL_DATA_CMAPSS) return data_cmapss_table(cfg, which, path, t);
    if (cfg->kind == MTL_DATA_CSV) return data_csv_table(cfg, which, path, t);
    fprintf(stderr, "error: unknown data kind %d\n", (int)cfg->kind);
    return -1;
}

int mtl_data_load_train(const MtlDataConfig *cfg, MtlDataset *train, MtlDataset *val, MtlNorm *norm) {
    memset(train, 0, sizeof *train);
    if (val) memset(val, 0, sizeof *val);
    memset(norm, 0, sizeof *norm);
    if (!(cfg->validation >= 0 && cfg->validation < 1)) {
        fprintf(stderr, "error: validation fraction must be in [0, 1), got %g\n", (double)cfg->validation);
        return -1;
    }
    if (cfg->validation > 0 && !val) {
        fprintf(stderr, "internal error: a validation split was requested without a place for it\n");
        return -1;
    }
    if (cfg->window < 0 || cfg->window_stride < 0) {
        fprintf(stderr, "error: window %lld / stride %lld must be positive\n", (long long)cfg->window,
                (long long)cfg->window_stride);
        return -1;
    }
    if (cfg->conditions < 0 || cfg->conditions > MTL_MAX_CONDITIONS) {
        fprintf(stderr, "error: conditions must be between 1 and %d, got %d\n", MTL_MAX_CONDITIONS,
                cfg->conditions);
        return -1;
    }
    /* k of the per-condition normalisation; the operating settings exist in C-MAPSS files only */
    const int n_cond = cfg->conditions > 1 ? cfg->conditions : 1;
    if (n_cond > 1 && cfg->kind != MTL_DATA_CMAPSS) {
        fprintf(stderr, "error: conditions = %d needs C-MAPSS operating settings; CSV data are "
                        "normalised per column over all training rows\n", n_cond);
        return -1;
    }
    DataTable t;
    if (load_table(cfg, DATA_WHICH_TRAIN, cfg->train_path, &t) != 0) return -1;

    int rc = -1;
    int32_t *ids = NULL;
    int64_t *perm = NULL;
    int32_t *cond = NULL;
    bool *is_val = NULL, *take = NULL;
    char *windows_text = NULL;
    Seqs q = {0};
    const bool cmapss = cfg->kind == MTL_DATA_CMAPSS;
    const char *unit = cmapss ? "engines" : "groups";
    const char *unit1 = cmapss ? "engine" : "group";
    const char *rows_word = cmapss ? "cycles" : "rows";
    const int64_t w = cfg_window(cfg), stride = cfg_stride(cfg);
    if (seqs_build(&q, &t) != 0) goto oom;
    take = malloc((size_t)(t.n > 0 ? t.n : 1) * sizeof *take);
    if (!take) goto oom;
    int64_t n_samples = 0;
    for (int64_t i = 0; i < t.n; i++)
        n_samples += take[i] = ends_sample(WIN_TRAIN, q.k[i], q.len[q.seq[i]], w, stride);
    int64_t n_skipped = short_seqs(&q, w);
    if (n_samples == 0) {
        int64_t longest = 0;
        for (int64_t j = 0; j < q.n_seq; j++) longest = q.len[j] > longest ? q.len[j] : longest;
        const char *base = strrchr(t.name, '/') ? strrchr(t.name, '/') + 1 : t.name;
        if (t.one_sequence)
            fprintf(stderr, "%s: error: the file has %lld rows: window %lld is longer than the file\n",
                    t.name, (long long)longest, (long long)w);
        else
            fprintf(stderr, "%s: error: no %s in %s has %lld %s: window %lld is longer than every %s "
                            "(the longest has %lld)\n", t.name, unit1, base, (long long)w, rows_word,
                    (long long)w, unit1, (long long)longest);
        goto done;
    }
    if (w > 1) {
        char skipped[160] = "";
        if (n_skipped > 0)
            snprintf(skipped, sizeof skipped, ", %lld of %lld %s shorter than the window skipped",
                     (long long)n_skipped, (long long)q.n_seq, t.one_sequence ? "sequences" : unit);
        windows_text = data_printf("%s; windows of %lld %s (stride %lld): %lld windows%s", t.source,
                                   (long long)w, rows_word, (long long)stride, (long long)n_samples,
                                   skipped);
    } else {
        windows_text = data_strdup(t.source);
    }
    if (!windows_text) goto oom;

    /* The split is over the groups that have samples (a skipped engine cannot be validated on);
     * rows of every other group are training rows for the normalisation. */
    int64_t g = distinct_groups(t.group, t.n, take, &ids);
    if (g < 0) goto oom;
    /* round(validation x groups), at least one when asked for and possible, and never all. */
    int64_t n_val = (int64_t)llround((double)cfg->validation * (double)g);
    if (cfg->validation > 0 && g >= 2) {
        if (n_val < 1) n_val = 1;
        if (n_val > g - 1) n_val = g - 1;
    } else {
        n_val = 0;
    }
    perm = malloc((size_t)(g > 0 ? g : 1) * sizeof *perm);
    is_val = calloc((size_t)(t.n > 0 ? t.n : 1), sizeof *is_val);
    bool *group_val = calloc((size_t)(g > 0 ? g : 1), sizeof *group_val);
    if (!perm || !is_val || !group_val) {
        free(group_val);
        goto oom;
    }
    DataRng rng;
    data_rng_seed(&rng, cfg->seed, DATA_STREAM_SPLIT, 0);
    data_permutation(perm, g, &rng);
    for (int64_t i = 0; i < n_val; i++) group_val[perm[i]] = true;
    for (int64_t i = 0; i < t.n; i++) {
        int64_t j = group_index(ids, g, t.group[i]);
        is_val[i] = j >= 0 && group_val[j];
    }
    free(group_val);

    /* Operating conditions from the same rows as the statistics: every row outside the
     * validation part. Training rows then get their condition by the stored centroids, exactly
     * as validation, test and predict rows will. */
    if (n_cond > 1) {
        if (data_conditions_fit(t.settings, t.n, is_val, n_cond, cfg->seed, t.name, norm) != 0) goto fail;
        if (!(cond = malloc((size_t)(t.n > 0 ? t.n : 1) * sizeof *cond))) goto oom;
        data_conditions_assign(norm, t.settings, t.n, cond);
        int64_t per[MTL_MAX_CONDITIONS] = {0};
        for (int64_t i = 0; i < t.n; i++) per[cond[i]] += !is_val[i];
        for (int c = 0; c < n_cond; c++)
            if (per[c] == 0) { /* only for degenerate settings: k-means leaves no cluster empty */
                fprintf(stderr, "%s: error: conditions = %d: the operating settings could not be split "
                                "into %d conditions that all have training rows\n", t.name, n_cond, n_cond);
                goto fail;
            }
        char *with = data_printf("%s; normalised per operating condition: %d conditions by k-means on "
                                 "setting1..setting3 of the training rows", windows_text, n_cond);
        if (!with) goto oom;
        free(windows_text);
        windows_text = with;
    }
    if (fit_norm(norm, &t, is_val, cond) != 0) goto oom;
    int64_t n_val_samples = 0;
    for (int64_t i = 0; i < t.n; i++) n_val_samples += take[i] && is_val[i];
    char *train_src = n_val == 0 ? data_strdup(windows_text)
                                 : data_printf("%s; training part: %lld of %lld %s, %lld samples", windows_text,
                                               (long long)(g - n_val), (long long)g, unit,
                                               (long long)(n_samples - n_val_samples));
    if (build_dataset(train, &t, &q, take, is_val, false, w, norm, cond, train_src) != 0) goto oom;
    train->n_skipped = n_skipped;
    if (val) {
        char *val_src = data_printf("%s; validation part: %lld of %lld %s (seed %llu), %lld samples", windows_text,
                                    (long long)n_val, (long long)g, unit, (unsigned long long)cfg->seed,
                                    (long long)n_val_samples);
        if (build_dataset(val, &t, &q, take, is_val, true, w, norm, cond, val_src) != 0) goto oom;
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "error: out of memory while preparing the training data\n");
fail:
    mtl_dataset_free(train);
    mtl_dataset_free(val);
    mtl_norm_free(norm);
done:
    free(ids);
    free(perm);
    free(cond);
    free(is_val);
    free(take);
    free(windows_text);
    seqs_free(&q);
    data_table_free(&t);
    return rc;
}

static int check_norm(const MtlNorm *norm, const DataTable *t) {
    if (!norm || norm->n != t->n_inputs || !norm->mean || !norm->std) {
        fprintf(stderr, "error: the normalisation has %d features but the data has %d inputs\n",
                norm ? norm->n : 0, t->n_inputs);
        return -1;
    }
    if (norm->k > MTL_MAX_CONDITIONS || (norm->k > 1 && !norm->centroids)) {
        fprintf(stderr, "error: the normalisation has %d operating conditions; expected 1 to %d, "
                        "each with a centroid\n", norm->k, MTL_MAX_CONDITIONS);
        return -1;
    }
    if (norm->k > 1 && !t->settings) {
        fprintf(stderr, "%s: error: the normalisation is per operating condition (%d conditions), but "
                        "these data have no operating settings (C-MAPSS files only)\n", t->name, norm->k);
        return -1;
    }
    return 0;
}

/* Test set or prediction inputs: the samples chosen by mode, with the training normalisation. */
static int finish(const MtlDataConfig *cfg, DataTable *t, WinMode mode, const MtlNorm *norm,
                  MtlDataset *out) {
    int rc = check_norm(norm, t);
    const int64_t w = cfg_window(cfg);
    Seqs q = {0};
    bool *take = NULL;
    int32_t *cond = NULL;
    char *source = NULL;
    if (rc != 0) goto done;
    rc = -1;
    if (seqs_build(&q, t) != 0) goto oom;
    if (norm->k > 1) {
        /* each row takes the training statistics of its nearest training condition */
        if (!(cond = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof *cond))) goto oom;
        data_conditions_assign(norm, t->settings, t->n, cond);
    }
    take = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof *take);
    if (!take) goto oom;
    for (int64_t i = 0; i < t->n; i++) take[i] = ends_sample(mode, q.k[i], q.len[q.seq[i]], w, 1);
    int64_t n_short = short_seqs(&q, w);
    if (w > 1) {
        const bool cmapss = cfg->kind == MTL_DATA_CMAPSS;
        source = data_printf("%s; windows of %lld %s, %lld of %lld %s shorter than the window padded by "
                             "repeating their first %s", t->source, (long long)w, cmapss ? "cycles" : "rows",
                             (long long)n_short, (long long)q.n_seq,
                             t->one_sequence ? "sequences" : cmapss ? "engines" : "groups",
                             cmapss ? "cycle" : "row");
    } else {
        source = data_strdup(t->source);
    }
    if (source && norm->k > 1) {
        char *with = data_printf("%s; each row normalised with the training statistics of the nearest "
                                 "of %d operating conditions", source, norm->k);
        free(source);
        source = with;
    }
    if (build_dataset(out, t, &q, take, NULL, false, w, norm, cond, source) != 0) {
        source = NULL; /* owned by out */
        goto oom;
    }
    out->n_padded = n_short;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "error: out of memory while preparing the data\n");
    free(source);
    mtl_dataset_free(out);
done:
    free(take);
    free(cond);
    seqs_free(&q);
    data_table_free(t);
    return rc;
}

int mtl_data_load_test(const MtlDataConfig *cfg, const MtlNorm *norm, MtlDataset *test) {
    memset(test, 0, sizeof *test);
    DataTable t;
    if (cfg->kind == MTL_DATA_CSV && !cfg->test_path) {
        fprintf(stderr, "error: no CSV test file given (test_path)\n");
        return -1;
    }
    if (load_table(cfg, DATA_WHICH_TEST, cfg->test_path, &t) != 0) return -1;
    /* C-MAPSS: the true RUL is known after the last cycle only; CSV rows all have targets */
    return finish(cfg, &t, cfg->kind == MTL_DATA_CMAPSS ? WIN_LAST : WIN_FULL_OR_LAST, norm, test);
}

int mtl_data_load_inputs(const MtlDataConfig *cfg, const char *path, const MtlNorm *norm, MtlDataset *out) {
    memset(out, 0, sizeof *out);
    DataTable t;
    if (load_table(cfg, DATA_WHICH_INPUTS, path, &t) != 0) return -1;
    return finish(cfg, &t, WIN_EVERY, norm, out);
}
