/* The format-independent half of data loading: the public mtl_data_load_* entry points, the
 * seeded validation split by engine/group, the normalisation fitted on training rows only, and
 * the conversion of a raw DataTable into the public MtlDataset.
 *
 * It does not read files itself (data_cmapss*.c and data_csv.c do) and it never exits; on any
 * failure the outputs are left empty (safe to free) and -1 is returned.
 */
#include "data_internal.h"

#include <math.h>
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
    cfg->validation = 0.2f;
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
    bool ok = t->x && t->group;
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
    free(d->source);
    memset(d, 0, sizeof *d);
}

void mtl_norm_free(MtlNorm *n) {
    if (!n) return;
    free(n->mean);
    free(n->std);
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

/* Mean and population std per feature over the selected rows, in double. A column whose
 * values are all equal gets std exactly 0 (checked by min == max, because summing a constant
 * in floating point can leave a tiny non-zero variance that would then be amplified). */
static int fit_norm(MtlNorm *norm, const DataTable *t, const bool *is_val) {
    int f_n = t->n_inputs;
    norm->n = f_n;
    norm->mean = malloc((size_t)(f_n > 0 ? f_n : 1) * sizeof *norm->mean);
    norm->std = malloc((size_t)(f_n > 0 ? f_n : 1) * sizeof *norm->std);
    if (!norm->mean || !norm->std) return -1;
    for (int f = 0; f < f_n; f++) {
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        int64_t m = 0;
        for (int64_t i = 0; i < t->n; i++) {
            if (is_val && is_val[i]) continue;
            double v = t->x[i * f_n + f];
            sum += v;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
            m++;
        }
        double mean = m > 0 ? sum / (double)m : 0.0;
        double var = 0;
        if (m > 0 && lo == hi) {
            mean = lo;
        } else {
            for (int64_t i = 0; i < t->n; i++) {
                if (is_val && is_val[i]) continue;
                double d = t->x[i * f_n + f] - mean;
                var += d * d;
            }
            var /= (double)(m > 0 ? m : 1);
        }
        norm->mean[f] = (float)mean;
        norm->std[f] = (float)sqrt(var);
    }
    return 0;
}

/* Copies the selected rows of t into d, normalised with norm. */
static int build_dataset(MtlDataset *d, const DataTable *t, const bool *is_val, bool want_val,
                         const MtlNorm *norm, char *source) {
    memset(d, 0, sizeof *d);
    d->source = source;
    if (!source) return -1;
    int64_t n = 0;
    for (int64_t i = 0; i < t->n; i++)
        if (!is_val || is_val[i] == want_val) n++;
    int f_n = t->n_inputs;
    /* At least one element each, so an empty set still has valid pointers. */
    size_t rows = (size_t)(n > 0 ? n : 1);
    d->n_targets = t->n_targets;
    d->x = malloc(rows * (size_t)(f_n > 0 ? f_n : 1) * sizeof *d->x);
    d->group = malloc(rows * sizeof *d->group);
    if (!d->x || !d->group) return -1;
    if (t->n_targets > 0) {
        if (!(d->y = calloc((size_t)t->n_targets, sizeof *d->y))) return -1;
        for (int k = 0; k < t->n_targets; k++)
            if (!(d->y[k] = malloc(rows * sizeof **d->y))) return -1;
    }
    int64_t s = 0;
    for (int64_t i = 0; i < t->n; i++) {
        if (is_val && is_val[i] != want_val) continue;
        for (int f = 0; f < f_n; f++) {
            double sd = norm->std[f];
            /* A feature constant in training carries no information: 0, never a huge value. */
            d->x[s * f_n + f] =
                sd == 0 ? 0.0f : (float)((t->x[i * f_n + f] - (double)norm->mean[f]) / (sd + DATA_NORM_EPS));
        }
        for (int k = 0; k < t->n_targets; k++) d->y[k][s] = t->y[k][i];
        d->group[s] = t->group[i];
        s++;
    }
    int32_t *ids;
    int64_t g = distinct_groups(d->group, n, NULL, &ids);
    if (g < 0) return -1;
    free(ids);
    d->n = n;
    d->input_size = f_n;
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
    DataTable t;
    if (load_table(cfg, DATA_WHICH_TRAIN, cfg->train_path, &t) != 0) return -1;

    int rc = -1;
    int32_t *ids = NULL;
    int64_t *perm = NULL;
    bool *is_val = NULL;
    int64_t g = distinct_groups(t.group, t.n, NULL, &ids);
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
    for (int64_t i = 0; i < t.n; i++) is_val[i] = group_val[group_index(ids, g, t.group[i])];
    free(group_val);

    if (fit_norm(norm, &t, is_val) != 0) goto oom;
    const char *unit = cfg->kind == MTL_DATA_CMAPSS ? "engines" : "groups";
    int64_t n_val_rows = 0;
    for (int64_t i = 0; i < t.n; i++) n_val_rows += is_val[i];
    char *train_src = n_val == 0 ? data_strdup(t.source)
                                 : data_printf("%s; training part: %lld of %lld %s, %lld samples", t.source,
                                               (long long)(g - n_val), (long long)g, unit,
                                               (long long)(t.n - n_val_rows));
    if (build_dataset(train, &t, is_val, false, norm, train_src) != 0) goto oom;
    if (val) {
        char *val_src = data_printf("%s; validation part: %lld of %lld %s (seed %llu), %lld samples", t.source,
                                    (long long)n_val, (long long)g, unit, (unsigned long long)cfg->seed,
                                    (long long)n_val_rows);
        if (build_dataset(val, &t, is_val, true, norm, val_src) != 0) goto oom;
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "error: out of memory while preparing the training data\n");
    mtl_dataset_free(train);
    mtl_dataset_free(val);
    mtl_norm_free(norm);
done:
    free(ids);
    free(perm);
    free(is_val);
    data_table_free(&t);
    return rc;
}

static int check_norm(const MtlNorm *norm, const DataTable *t) {
    if (!norm || norm->n != t->n_inputs || !norm->mean || !norm->std) {
        fprintf(stderr, "error: the normalisation has %d features but the data has %d inputs\n",
                norm ? norm->n : 0, t->n_inputs);
        return -1;
    }
    return 0;
}

static int finish(const DataTable *t0, const MtlNorm *norm, MtlDataset *out) {
    DataTable t = *t0;
    int rc = check_norm(norm, &t);
    if (rc == 0 && build_dataset(out, &t, NULL, false, norm, data_strdup(t.source)) != 0) {
        fprintf(stderr, "error: out of memory while preparing the data\n");
        mtl_dataset_free(out);
        rc = -1;
    }
    data_table_free(&t);
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
    return finish(&t, norm, test);
}

int mtl_data_load_inputs(const MtlDataConfig *cfg, const char *path, const MtlNorm *norm, MtlDataset *out) {
    memset(out, 0, sizeof *out);
    DataTable t;
    if (load_table(cfg, DATA_WHICH_INPUTS, path, &t) != 0) return -1;
    return finish(&t, norm, out);
}
