/* C-MAPSS rows: picks the configured feature columns and derives the labels of a sample ending
 * at each row: the capped RUL and health class for training, and for a test file the engine's
 * true RUL from the RUL file on every row of that engine.
 *
 * Rows come from data_cmapss_rows.c, either a real file or the synthetic fleet's text, so both
 * go through one parser. Choosing samples (every cycle, the last cycle, windows), splitting and
 * normalisation are done by data_common.c; every row's three operating settings are kept beside
 * the features for the per-condition normalisation (data_conditions.c).
 */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const mtl_cmapss_default_features[17] = {
    "setting1", "setting2", "setting3", "s2",  "s3",  "s4",  "s7",  "s8",  "s9",
    "s11",      "s12",      "s13",      "s14", "s15", "s17", "s20", "s21",
};

/* Column of a feature name in the 26-column row, or -1. */
static int feature_column(const char *name) {
    char *end;
    long k;
    if (strncmp(name, "setting", 7) == 0 && name[7] >= '1' && name[7] <= '3' && name[8] == '\0')
        return 2 + (name[7] - '1');
    if (name[0] == 's' && name[1] >= '1' && name[1] <= '9') {
        k = strtol(name + 1, &end, 10);
        if (*end == '\0' && k >= 1 && k <= 21) return 4 + (int)k;
    }
    return -1;
}

bool mtl_cmapss_feature_known(const char *name) { return feature_column(name) >= 0; }

/* The configured features (or the 17 defaults) as column indices; -1 after reporting. */
static int resolve_features(const MtlDataConfig *cfg, int *cols) {
    int n = cfg->n_features;
    const char *const *names = cfg->features;
    if (n == 0 || !names) {
        n = 17;
        names = mtl_cmapss_default_features;
    }
    if (n > MTL_CMAPSS_COLUMNS) {
        fprintf(stderr, "error: %d C-MAPSS features requested, there are only 24\n", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        cols[i] = feature_column(names[i]);
        if (cols[i] < 0) {
            fprintf(stderr, "error: unknown C-MAPSS feature '%s' (expected setting1..setting3 or s1..s21)\n",
                    names[i]);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (cols[j] == cols[i]) {
                fprintf(stderr, "error: C-MAPSS feature '%s' is listed twice\n", names[i]);
                return -1;
            }
    }
    return n;
}

typedef enum { BIND_RUL, BIND_HEALTH } Bind;

static int check_config(const MtlDataConfig *cfg, Bind *binds) {
    if (!(cfg->rul_cap > 0)) {
        fprintf(stderr, "error: rul_cap must be positive (use INFINITY for no cap), got %g\n",
                (double)cfg->rul_cap);
        return -1;
    }
    if (cfg->n_thresholds < 0 || cfg->n_thresholds > MTL_MAX_THRESHOLDS) {
        fprintf(stderr, "error: %d health thresholds given, at most %d allowed\n", cfg->n_thresholds,
                MTL_MAX_THRESHOLDS);
        return -1;
    }
    for (int i = 1; i < cfg->n_thresholds; i++)
        if (!(cfg->thresholds[i] < cfg->thresholds[i - 1])) {
            fprintf(stderr, "error: health thresholds must be strictly descending (%g then %g)\n",
                    (double)cfg->thresholds[i - 1], (double)cfg->thresholds[i]);
            return -1;
        }
    for (int k = 0; k < cfg->n_targets; k++) {
        const char *b = cfg->target_binds ? cfg->target_binds[k] : NULL;
        if (b && strcmp(b, "rul") == 0) binds[k] = BIND_RUL;
        else if (b && strcmp(b, "health") == 0) binds[k] = BIND_HEALTH;
        else {
            fprintf(stderr, "error: task %d binds to '%s'; C-MAPSS targets are 'rul' and 'health'\n", k,
                    b ? b : "(none)");
            return -1;
        }
        bool is_class = cfg->target_kinds && cfg->target_kinds[k] == MTL_TARGET_CLASS;
        if (binds[k] == BIND_RUL && is_class) {
            fprintf(stderr, "error: task %d binds to 'rul', a real target, but is declared a class target\n", k);
            return -1;
        }
        if (binds[k] == BIND_HEALTH && is_class && cfg->target_classes &&
            cfg->target_classes[k] != cfg->n_thresholds + 1) {
            fprintf(stderr,
                    "error: task %d binds to 'health' with %lld classes, but %d health thresholds give %d\n",
                    k, (long long)cfg->target_classes[k], cfg->n_thresholds, cfg->n_thresholds + 1);
            return -1;
        }
    }
    return 0;
}

/* Number of thresholds t with rul <= t: 0 healthy ... n_thresholds most degraded. */
static float health_class(const MtlDataConfig *cfg, float rul) {
    int c = 0;
    for (int i = 0; i < cfg->n_thresholds; i++)
        if (rul <= cfg->thresholds[i]) c++;
    return (float)c;
}

static SynthFleet cfg_fleet(const MtlDataConfig *cfg) {
    return (SynthFleet){cfg->synthetic_conditions > 1 ? cfg->synthetic_conditions : 1,
                        cfg->synthetic_fault_modes > 1 ? cfg->synthetic_fault_modes : 1};
}

/* Parses a real file, or the synthetic fleet's text when path is NULL. */
static int read_rows(const char *path, uint64_t seed, SynthFleet fleet, SynthPart part, DataRows *rows) {
    if (path) {
        FILE *f = data_fopen(path, "r");
        if (!f) return -1;
        int rc = data_cmapss_read_rows(f, path, rows);
        fclose(f);
        return rc;
    }
    if (fleet.conditions > MTL_SYNTH_MAX_CONDITIONS || fleet.fault_modes > MTL_SYNTH_MAX_FAULT_MODES) {
        fprintf(stderr, "error: the synthetic fleet has 1 to %d operating conditions and 1 to %d fault "
                        "modes, got %d and %d\n", MTL_SYNTH_MAX_CONDITIONS, MTL_SYNTH_MAX_FAULT_MODES,
                fleet.conditions, fleet.fault_modes);
        return -1;
    }
    size_t len;
    char *text = synth_fleet_text(seed, part, fleet, &len, NULL);
    FILE *f = text ? fmemopen(text, len, "r") : NULL;
    if (!f) {
        fprintf(stderr, "error: cannot generate the synthetic fleet: out of memory\n");
        free(text);
        return -1;
    }
    char label[64];
    snprintf(label, sizeof label, "<synthetic %s fleet, seed %llu>", part == SYNTH_TRAIN ? "train" : "test",
             (unsigned long long)seed);
    int rc = data_cmapss_read_rows(f, label, rows);
    fclose(f);
    free(text);
    return rc;
}

static int read_rul(const char *path, uint64_t seed, int64_t **vals, int64_t *n, int64_t *last_line) {
    if (path) {
        FILE *f = data_fopen(path, "r");
        if (!f) return -1;
        int rc = data_cmapss_read_rul(f, path, vals, n, last_line);
        fclose(f);
        return rc;
    }
    size_t len;
    /* the RUL values do not depend on the conditions or fault modes */
    char *text = synth_fleet_text(seed, SYNTH_RUL, (SynthFleet){1, 1}, &len, NULL);
    FILE *f = text ? fmemopen(text, len, "r") : NULL;
    int rc = -1;
    if (f) {
        rc = data_cmapss_read_rul(f, "<synthetic RUL>", vals, n, last_line);
        fclose(f);
    } else {
        fprintf(stderr, "error: cannot generate the synthetic fleet: out of memory\n");
    }
    free(text);
    return rc;
}

static int64_t count_engines(const DataRows *rows) {
    int64_t n = 0;
    for (int64_t i = 0; i < rows->n; i++)
        if (i == 0 || rows->v[i * MTL_CMAPSS_COLUMNS] != rows->v[(i - 1) * MTL_CMAPSS_COLUMNS]) n++;
    return n;
}

/* Row i is the last of its engine's block. */
static bool is_last_row(const DataRows *rows, int64_t i) {
    return i + 1 == rows->n || rows->v[(i + 1) * MTL_CMAPSS_COLUMNS] != rows->v[i * MTL_CMAPSS_COLUMNS];
}

int data_cmapss_table(const MtlDataConfig *cfg, DataWhich which, const char *path, DataTable *t) {
    memset(t, 0, sizeof *t);
    int cols[MTL_CMAPSS_COLUMNS];
    Bind binds[64];
    int n_feat = resolve_features(cfg, cols);
    if (n_feat < 0) return -1;
    if (cfg->n_targets < 0 || cfg->n_targets > 64) {
        fprintf(stderr, "error: %d targets requested, at most 64 supported\n", cfg->n_targets);
        return -1;
    }
    int n_targets = which == DATA_WHICH_INPUTS ? 0 : cfg->n_targets;
    if (check_config(cfg, binds) != 0) return -1;

    /* The synthetic fleet replaces the files only when no training file is given at all, so a
     * missing test file next to a real training file is an error rather than a silent swap. */
    bool synthetic = cfg->train_path == NULL;
    const char *rows_path = path;
    if (which == DATA_WHICH_TRAIN) rows_path = cfg->train_path;
    if (which == DATA_WHICH_TEST) {
        rows_path = cfg->test_path;
        if (!rows_path && !synthetic) {
            fprintf(stderr, "error: no C-MAPSS test file given (test_path)\n");
            return -1;
        }
        if (rows_path && !cfg->rul_path) {
            fprintf(stderr, "%s: error: no RUL file given for this test file (rul_path)\n", rows_path);
            return -1;
        }
    }
    if (which == DATA_WHICH_INPUTS && !rows_path && !synthetic) {
        fprintf(stderr, "error: no input file given\n");
        return -1;
    }
    SynthPart part = which == DATA_WHICH_TRAIN ? SYNTH_TRAIN : SYNTH_TEST;
    DataRows rows;
    if (read_rows(rows_path, cfg->seed, cfg_fleet(cfg), part, &rows) != 0) return -1;
    int64_t n_engines = count_engines(&rows);

    int64_t *rul_true = NULL, n_rul = 0, rul_line = 0;
    const char *rul_name = which == DATA_WHICH_TEST && rows_path ? cfg->rul_path : "<synthetic RUL>";
    if (which == DATA_WHICH_TEST) {
        if (read_rul(rows_path ? cfg->rul_path : NULL, cfg->seed, &rul_true, &n_rul, &rul_line) != 0) {
            data_rows_free(&rows);
            return -1;
        }
        if (n_rul != n_engines) {
            const char *tp = rows_path ? rows_path : "<synthetic test fleet>";
            if (n_rul < n_engines)
                fprintf(stderr, "%s:%lld: error: RUL file ends after %lld values, but %s has %lld engines\n",
                        rul_name, (long long)(rul_line > 0 ? rul_line : 1), (long long)n_rul, tp,
                        (long long)n_engines);
            else
                fprintf(stderr, "%s: error: RUL file has %lld values, but %s has only %lld engines\n",
                        rul_name, (long long)n_rul, tp, (long long)n_engines);
            free(rul_true);
            data_rows_free(&rows);
            return -1;
        }
    }

    int64_t n = rows.n;
    if (data_table_alloc(t, n, n_feat, n_targets) != 0 ||
        !(t->settings = malloc((size_t)(n > 0 ? n : 1) * 3 * sizeof *t->settings))) {
        data_table_free(t);
        fprintf(stderr, "error: out of memory for %lld samples\n", (long long)n);
        free(rul_true);
        data_rows_free(&rows);
        return -1;
    }
    float cap = cfg->rul_cap;
    int64_t engine_index = 0;
    double last_cycle = 0;
    for (int64_t s = 0; s < rows.n; s++) {
        const double *v = rows.v + s * MTL_CMAPSS_COLUMNS;
        if (s == 0 || v[0] != v[-MTL_CMAPSS_COLUMNS]) {
            /* Rows of an engine are contiguous, so its last cycle is found by scanning ahead. */
            int64_t j = s;
            while (!is_last_row(&rows, j)) j++;
            last_cycle = rows.v[j * MTL_CMAPSS_COLUMNS + 1];
        }
        for (int f = 0; f < n_feat; f++) t->x[s * n_feat + f] = v[cols[f]];
        for (int j = 0; j < 3; j++) t->settings[s * 3 + j] = v[2 + j];
        t->group[s] = (int32_t)v[0];
        t->cycle[s] = (int64_t)v[1];
        float rul_capped, rul_target;
        if (which == DATA_WHICH_TEST) {
            /* every row of a test engine carries the engine's true RUL after its last cycle;
             * data_common.c keeps only the sample ending at that last cycle */
            float truth = (float)rul_true[engine_index];
            rul_capped = fminf(truth, cap);
            rul_target = cfg->cap_test_rul ? rul_capped : truth;
        } else {
            rul_capped = fminf((float)(last_cycle - v[1]), cap);
            rul_target = rul_capped;
        }
        /* The class always comes from the capped RUL, as in training, so a test engine's
         * class does not change with the cap_test_rul reporting choice. */
        for (int k = 0; k < n_targets; k++)
            t->y[k][s] = binds[k] == BIND_RUL ? rul_target : health_class(cfg, rul_capped);
        if (is_last_row(&rows, s)) engine_index++;
    }

    int64_t window = cfg->window > 1 ? cfg->window : 1;
    char last_text[64];
    if (window > 1) snprintf(last_text, sizeof last_text, "last %lld cycles", (long long)window);
    else snprintf(last_text, sizeof last_text, "last cycle");
    char cap_text[48];
    if (isinf(cap)) snprintf(cap_text, sizeof cap_text, "not capped");
    else snprintf(cap_text, sizeof cap_text, "%s at %g", which == DATA_WHICH_TEST && !cfg->cap_test_rul ? "not capped; training cap" : "capped", (double)cap);
    if (synthetic && !rows_path) {
        t->synthetic = true;
        /* "seed 5", or "seed 5, 6 operating conditions, 2 fault modes" for the other fleets */
        SynthFleet fl = cfg_fleet(cfg);
        char seed_text[96];
        int at = snprintf(seed_text, sizeof seed_text, "seed %llu", (unsigned long long)cfg->seed);
        if (fl.conditions > 1 || fl.fault_modes > 1)
            snprintf(seed_text + at, sizeof seed_text - (size_t)at, ", %d operating condition%s, %d fault mode%s",
                     fl.conditions, fl.conditions == 1 ? "" : "s", fl.fault_modes, fl.fault_modes == 1 ? "" : "s");
        if (which == DATA_WHICH_TEST)
            t->source = data_printf("synthetic C-MAPSS-like test fleet (%s): %lld engines, %s "
                                    "of each, true RUL %s \xe2\x80\x94 not real data",
                                    seed_text, (long long)n_engines, last_text, cap_text);
        else
            t->source = data_printf("synthetic C-MAPSS-like %sfleet (%s): %lld engines, %lld rows "
                                    "\xe2\x80\x94 not real data",
                                    part == SYNTH_TEST ? "test " : "", seed_text,
                                    (long long)n_engines, (long long)rows.n);
    } else if (which == DATA_WHICH_TEST) {
        t->source = data_printf("%s: %s of each of %lld engines, true RUL from %s (%s)", rows_path,
                                last_text, (long long)n_engines, cfg->rul_path, cap_text);
    } else {
        t->source = data_printf("%s: %lld engines, %lld rows", rows_path, (long long)n_engines,
                                (long long)rows.n);
    }
    char label[64];
    snprintf(label, sizeof label, "<synthetic %s fleet, seed %llu>", part == SYNTH_TRAIN ? "train" : "test",
             (unsigned long long)cfg->seed);
    t->name = data_strdup(rows_path ? rows_path : label);
    free(rul_true);
    data_rows_free(&rows);
    if (!t->source || !t->name) {
        data_table_free(t);
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    return 0;
}
