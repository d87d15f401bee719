/* C-MAPSS loader tests: labels and normalisation on a hand-made fixture, the real FD001 facts
 * (row/engine counts, labels, raw values, RUL file, validation split) checked against an
 * independent fscanf reader, and every malformed-file diagnostic by its exact text. Windows:
 * hand-checked window contents, targets, strides and skipped engines on the fixture, the test
 * set's last window with padded short engines, predict inputs, the "window longer than every
 * engine" error, and FD001's 17,731 training windows.
 *
 * The FD001 tests need MTLC_CMAPSS_DIR; without it they are reported as skipped, never passed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtl_data.h"

#include "capture_stderr.h"

/* ---- helpers ---- */

static char *join(const char *dir, const char *name) {
    static char buf[8][1024];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static const char *test_data(void) {
    const char *d = getenv("MTLC_TEST_DATA");
    assert_non_null(d);
    return d;
}

/* The real data folder, or NULL after telling the user why the test is skipped. */
static const char *cmapss_dir(void) {
    const char *d = getenv("MTLC_CMAPSS_DIR");
    if (!d || access(join(d, "train_FD001.txt"), R_OK) != 0) {
        fprintf(stderr, "SKIPPED: C-MAPSS data not found (MTLC_CMAPSS_DIR=%s); real-data test not run\n",
                d ? d : "(unset)");
        return NULL;
    }
    return d;
}

static const char *const binds2[] = {"rul", "health"};
static const MtlTargetKind kinds2[] = {MTL_TARGET_REAL, MTL_TARGET_CLASS};
static const int64_t classes2[] = {0, 3};

static MtlDataConfig base_cfg(const char *train) {
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.train_path = train;
    c.n_targets = 2;
    c.target_binds = binds2;
    c.target_kinds = kinds2;
    c.target_classes = classes2;
    c.validation = 0;
    return c;
}

/* An independent reader: all numbers of a whitespace file, 26 per row. */
typedef struct Raw {
    int64_t n;
    double (*v)[26];
} Raw;

static Raw raw_read(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, count = 0;
    double *v = malloc(cap * sizeof *v);
    while (fscanf(f, "%lf", &v[count]) == 1)
        if (++count == cap) v = realloc(v, (cap *= 2) * sizeof *v);
    fclose(f);
    assert_int_equal(count % 26, 0);
    return (Raw){(int64_t)(count / 26), (double (*)[26])v};
}

/* Last cycle of the engine of row i, found by scanning the raw rows. */
static double raw_last_cycle(const Raw *r, int64_t i) {
    while (i + 1 < r->n && r->v[i + 1][0] == r->v[i][0]) i++;
    return r->v[i][1];
}

static const int default_cols[17] = {2, 3, 4, 6, 7, 8, 11, 12, 13, 15, 16, 17, 18, 19, 21, 24, 25};

/* ---- fixture tests (always run) ---- */

static void test_small_labels(void **state) {
    (void)state;
    static const char *const feats[] = {"s2", "setting3"};
    MtlDataConfig c = base_cfg(join(test_data(), "cmapss_small_train.txt"));
    c.rul_cap = 3;
    c.thresholds[0] = 2;
    c.thresholds[1] = 1;
    c.n_features = 2;
    c.features = feats;
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 8);
    assert_int_equal(tr.input_size, 2);
    assert_int_equal(tr.n_groups, 2);
    assert_int_equal(va.n, 0);
    /* engine 1 cycles 1..5, engine 2 cycles 1, 2, 4; cap 3; class = #thresholds >= RUL */
    const float rul[8] = {3, 3, 2, 1, 0, 3, 2, 0};
    const float cls[8] = {0, 0, 1, 2, 2, 0, 1, 2};
    const int32_t grp[8] = {1, 1, 1, 1, 1, 2, 2, 2};
    /* s2 values 110.6 111.1 111.6 112.1 112.6 110.7 111.2 112.2, z-scored by hand (python) */
    const double z[8] = {-1.329472001420056, -0.6009941924227832, 0.12748361657448962, 0.8559614255717625,
                         1.5844392345690352, -1.183776439620589, -0.4552986306233162, 1.0016569873712293};
    for (int i = 0; i < 8; i++) {
        assert_float_equal(tr.y[0][i], rul[i], 0);
        assert_float_equal(tr.y[1][i], cls[i], 0);
        assert_int_equal(tr.group[i], grp[i]);
        assert_float_equal(tr.x[i * 2], z[i], 1e-5);
        assert_float_equal(tr.x[i * 2 + 1], 0.0f, 0); /* setting3 is constant: exactly 0 */
    }
    assert_float_equal(norm.mean[0], 111.5125, 1e-4);
    assert_float_equal(norm.std[0], 0.6863626956646166, 1e-6);
    assert_float_equal(norm.mean[1], 100.0, 0);
    assert_float_equal(norm.std[1], 0.0, 0);
    assert_false(tr.synthetic);
    assert_non_null(strstr(tr.source, "cmapss_small_train.txt: 2 engines, 8 rows"));

    /* the test set: last cycle of each engine, RUL from the file (blank line and "+2" read) */
    c.test_path = join(test_data(), "cmapss_small_test.txt");
    c.rul_path = join(test_data(), "cmapss_small_rul.txt");
    c.rul_cap = 5;
    c.thresholds[0] = 6;
    c.thresholds[1] = 3;
    MtlDataset te;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 3);
    const float capped[3] = {5, 2, 5}, raw[3] = {7, 2, 30}, te_cls[3] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(te.group[i], i + 1);
        assert_float_equal(te.y[0][i], capped[i], 0);
        assert_float_equal(te.y[1][i], te_cls[i], 0);
    }
    /* engine 2's last row is cycle 3: s2 = 110.2 + 1.5 */
    assert_float_equal(te.x[1 * 2], (111.7 - 111.5125) / (0.6863626956646166 + 1e-8), 1e-5);
    mtl_dataset_free(&te);
    c.cap_test_rul = false;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    for (int i = 0; i < 3; i++) {
        assert_float_equal(te.y[0][i], raw[i], 0);
        assert_float_equal(te.y[1][i], te_cls[i], 0); /* class from the capped RUL either way */
    }
    assert_non_null(strstr(te.source, "not capped"));
    mtl_dataset_free(&te);

    /* inputs only: one sample per row of the test file, engine ids kept */
    assert_int_equal(mtl_data_load_inputs(&c, join(test_data(), "cmapss_small_test.txt"), &norm, &te), 0);
    assert_int_equal(te.n, 6);
    assert_int_equal(te.n_targets, 0);
    assert_int_equal(te.group[5], 3);
    mtl_dataset_free(&te);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

typedef struct BadCase {
    const char *file;
    const char *message; /* after "DIR/" */
} BadCase;

static const BadCase bad_rows[] = {
    {"cmapss_short_row.txt", "cmapss_short_row.txt:2: error: expected 26 columns, found 25\n"},
    {"cmapss_extra_column.txt", "cmapss_extra_column.txt:2: error: expected 26 columns, found 27\n"},
    {"cmapss_non_number.txt", "cmapss_non_number.txt:3: error: column s2: 'abc' is not a number\n"},
    /* only finite decimal numbers within the float32 range are data */
    {"cmapss_value_1e39.txt",
     "cmapss_value_1e39.txt:3: error: column s2: '1e39' is out of the float32 range\n"},
    {"cmapss_value_1e300.txt",
     "cmapss_value_1e300.txt:3: error: column s2: '1e300' is out of the float32 range\n"},
    {"cmapss_value_hex.txt", "cmapss_value_hex.txt:3: error: column s2: '0x10' is not a number\n"},
    {"cmapss_value_inf.txt", "cmapss_value_inf.txt:3: error: column s2: 'inf' is not a number\n"},
    {"cmapss_value_nan.txt", "cmapss_value_nan.txt:3: error: column s2: 'nan' is not a number\n"},
    {"cmapss_fractional_engine.txt",
     "cmapss_fractional_engine.txt:2: error: engine '1.5' is not a non-negative integer\n"},
    {"cmapss_decreasing_cycle.txt",
     "cmapss_decreasing_cycle.txt:4: error: engine 1: cycle 2 does not follow cycle 3 (cycles must "
     "increase within an engine)\n"},
    {"cmapss_engine_again.txt",
     "cmapss_engine_again.txt:4: error: engine 1 appears again (its rows start at line 1; each engine's "
     "rows must be one contiguous block)\n"},
    {"cmapss_empty.txt", "cmapss_empty.txt:1: error: no data rows (empty file)\n"},
    {"no_such_file.txt", "no_such_file.txt: error: cannot open: No such file or directory\n"},
};

/* An engine seen three times: every repeat names the line where its rows start (line 1), not
 * where the previous repeat was. */
static void test_engines_interleaved(void **state) {
    (void)state;
    const char *path = join(test_data(), "cmapss_engines_interleaved.txt");
    MtlDataConfig c = base_cfg(path);
    MtlDataset tr, va;
    MtlNorm norm;
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    const char *err = capture_end();
    assert_int_equal(rc, -1);
    char expect[2048];
    const char *tail = "each engine's rows must be one contiguous block)\n";
    snprintf(expect, sizeof expect,
             "%s:3: error: engine 1 appears again (its rows start at line 1; %s"
             "%s:5: error: engine 1 appears again (its rows start at line 1; %s"
             "%s:4: error: engine 2 appears again (its rows start at line 2; %s",
             path, tail, path, tail, path, tail);
    assert_string_equal(err, expect);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_bad_rows(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        MtlDataConfig c = base_cfg(join(test_data(), bad_rows[i].file));
        MtlDataset tr, va;
        MtlNorm norm;
        capture_begin();
        int rc = mtl_data_load_train(&c, &tr, &va, &norm);
        const char *err = capture_end();
        char expect[1024];
        snprintf(expect, sizeof expect, "%s/%s", test_data(), bad_rows[i].message);
        if (strcmp(err, expect) != 0) fail_msg("%s:\n got: %s want: %s", bad_rows[i].file, err, expect);
        assert_int_equal(rc, -1);
        assert_null(tr.x); /* outputs left empty and safe to free */
        mtl_dataset_free(&tr);
        mtl_dataset_free(&va);
        mtl_norm_free(&norm);
        /* the inputs-only path uses the same parser */
        MtlNorm dummy = {0};
        capture_begin();
        rc = mtl_data_load_inputs(&c, join(test_data(), bad_rows[i].file), &dummy, &tr);
        err = capture_end();
        assert_int_equal(rc, -1);
        assert_string_equal(err, expect);
    }
}

static void test_bad_rul(void **state) {
    (void)state;
    static const BadCase cases[] = {
        {"cmapss_rul_short.txt", "cmapss_rul_short.txt:2: error: RUL file ends after 2 values, but %s has 3 engines\n"},
        {"cmapss_rul_long.txt", "cmapss_rul_long.txt: error: RUL file has 4 values, but %s has only 3 engines\n"},
        {"cmapss_rul_bad.txt", "cmapss_rul_bad.txt:2: error: RUL 'x2' is not a non-negative integer\n"},
    };
    MtlDataConfig c = base_cfg(join(test_data(), "cmapss_small_train.txt"));
    MtlDataset tr, va, te;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    const char *test_path = join(test_data(), "cmapss_small_test.txt");
    c.test_path = test_path;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c.rul_path = join(test_data(), cases[i].file);
        capture_begin();
        int rc = mtl_data_load_test(&c, &norm, &te);
        const char *err = capture_end();
        char msg[1024], expect[2048];
        snprintf(msg, sizeof msg, cases[i].message, test_path);
        snprintf(expect, sizeof expect, "%s/%s", test_data(), msg);
        assert_int_equal(rc, -1);
        assert_string_equal(err, expect);
        mtl_dataset_free(&te);
    }
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_bad_config(void **state) {
    (void)state;
    static const char *const feats[] = {"s2", "s22"};
    MtlDataConfig c = base_cfg(join(test_data(), "cmapss_small_train.txt"));
    c.n_features = 2;
    c.features = feats;
    MtlDataset tr, va;
    MtlNorm norm;
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    assert_string_equal(capture_end(),
                        "error: unknown C-MAPSS feature 's22' (expected setting1..setting3 or s1..s21)\n");
    assert_int_equal(rc, -1);
    static const char *const bad_binds[] = {"rul", "wear"};
    c = base_cfg(join(test_data(), "cmapss_small_train.txt"));
    c.target_binds = bad_binds;
    capture_begin();
    rc = mtl_data_load_train(&c, &tr, &va, &norm);
    assert_string_equal(capture_end(), "error: task 1 binds to 'wear'; C-MAPSS targets are 'rul' and 'health'\n");
    assert_int_equal(rc, -1);
}

/* ---- real FD001 ---- */

static void test_fd001_train(void **state) {
    (void)state;
    const char *dir = cmapss_dir();
    if (!dir) skip();
    const char *path = join(dir, "train_FD001.txt");
    MtlDataConfig c = base_cfg(path);
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 20631);
    assert_int_equal(tr.input_size, 17);
    assert_int_equal(tr.n_groups, 100);
    assert_int_equal(va.n, 0);
    assert_false(tr.synthetic);

    /* hand-checked: engine 1 has 192 cycles, engine 2 starts at row 193 and has 287 */
    assert_float_equal(tr.y[0][0], 125, 0);
    assert_float_equal(tr.y[1][0], 0, 0);
    assert_float_equal(tr.y[0][191], 0, 0);
    assert_float_equal(tr.y[1][191], 2, 0);
    assert_float_equal(tr.y[0][161], 30, 0); /* cycle 162: RUL 30 -> critical */
    assert_float_equal(tr.y[1][161], 2, 0);
    assert_float_equal(tr.y[0][160], 31, 0);
    assert_float_equal(tr.y[1][160], 1, 0);
    assert_float_equal(tr.y[0][111], 80, 0); /* cycle 112: RUL 80 -> degrading */
    assert_float_equal(tr.y[1][111], 1, 0);
    assert_float_equal(tr.y[0][110], 81, 0);
    assert_float_equal(tr.y[1][110], 0, 0);
    assert_int_equal(tr.group[192], 2);
    assert_float_equal(tr.y[0][192], 125, 0);
    assert_float_equal(tr.y[0][192 + 286], 0, 0);
    assert_int_equal(tr.group[20630], 100);

    /* raw values recovered from the normalised ones: row 1 setting1 -0.0007, s2 641.82, s21 23.4190 */
    const float *x = tr.x;
    assert_float_equal(x[0] * (norm.std[0] + 1e-8) + norm.mean[0], -0.0007, 1e-6);
    assert_float_equal(x[3] * (norm.std[3] + 1e-8) + norm.mean[3], 641.82, 1e-3);
    assert_float_equal(x[16] * (norm.std[16] + 1e-8) + norm.mean[16], 23.4190, 1e-4);
    /* row 193 (engine 2, cycle 1): s2 641.89 */
    assert_float_equal(x[192 * 17 + 3] * (norm.std[3] + 1e-8) + norm.mean[3], 641.89, 1e-3);

    /* every label and every mean/std against an independent reader */
    Raw raw = raw_read(path);
    assert_int_equal(raw.n, 20631);
    for (int64_t i = 0; i < raw.n; i++) {
        double rul = fmin(raw_last_cycle(&raw, i) - raw.v[i][1], 125);
        double cls = rul > 80 ? 0 : rul > 30 ? 1 : 2;
        if (tr.y[0][i] != rul || tr.y[1][i] != cls || tr.group[i] != (int32_t)raw.v[i][0])
            fail_msg("row %lld: got RUL %g class %g engine %d, want %g %g %g", (long long)i + 1, tr.y[0][i],
                     tr.y[1][i], tr.group[i], rul, cls, raw.v[i][0]);
    }
    for (int f = 0; f < 17; f++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < raw.n; i++) s += raw.v[i][default_cols[f]];
        double mean = s / raw.n;
        for (int64_t i = 0; i < raw.n; i++) ss += pow(raw.v[i][default_cols[f]] - mean, 2);
        double sd = sqrt(ss / raw.n);
        assert_float_equal(norm.mean[f], mean, 1e-6 * fabs(mean) + 1e-9);
        if (f == 2) assert_float_equal(norm.std[f], 0, 0); /* setting3 is constant 100.0 */
        else assert_float_equal(norm.std[f], sd, 1e-5 * sd);
        /* The normalised training column has mean 0 and std 1 (constant column: all 0). The
         * tolerance allows for MtlNorm holding float32: s13's mean 2388.06 is stored to within
         * 1.2e-4, which is 1.7e-3 of its std 0.07. */
        double zs = 0, zss = 0;
        for (int64_t i = 0; i < tr.n; i++) zs += tr.x[i * 17 + f];
        for (int64_t i = 0; i < tr.n; i++) zss += (double)tr.x[i * 17 + f] * tr.x[i * 17 + f];
        if (fabs(zs / tr.n) > 2e-3) fail_msg("feature %d: normalised mean %g", f, zs / tr.n);
        assert_float_equal(sqrt(zss / tr.n), f == 2 ? 0 : 1, 1e-4);
    }
    free(raw.v);

    /* sensors constant on FD001 normalise to exactly 0, not to noise over 1e-8 */
    static const char *const consts[] = {"s1", "s5", "s10", "s16", "s18", "s19", "s2"};
    c.n_features = 7;
    c.features = consts;
    MtlDataset tr2, va2;
    MtlNorm norm2;
    assert_int_equal(mtl_data_load_train(&c, &tr2, &va2, &norm2), 0);
    for (int64_t i = 0; i < tr2.n; i++)
        for (int f = 0; f < 6; f++) assert_true(tr2.x[i * 7 + f] == 0.0f);
    for (int f = 0; f < 6; f++) assert_true(norm2.std[f] == 0.0f);
    assert_true(norm2.std[6] > 0.1f);
    mtl_dataset_free(&tr2);
    mtl_dataset_free(&va2);
    mtl_norm_free(&norm2);

    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_fd001_test(void **state) {
    (void)state;
    const char *dir = cmapss_dir();
    if (!dir) skip();
    MtlDataConfig c = base_cfg(join(dir, "train_FD001.txt"));
    c.test_path = join(dir, "test_FD001.txt");
    c.rul_path = join(dir, "RUL_FD001.txt");
    MtlDataset tr, va, te, te_raw;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    c.cap_test_rul = false;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te_raw), 0);
    assert_int_equal(te.n, 100);
    assert_int_equal(te.n_groups, 100);
    assert_float_equal(te.y[0][0], 112, 0);
    assert_float_equal(te.y[0][99], 20, 0);
    assert_float_equal(te.y[1][99], 2, 0);
    assert_float_equal(te.y[0][24], 125, 0);    /* engine 25: true RUL 145, capped */
    assert_float_equal(te_raw.y[0][24], 145, 0);
    assert_non_null(strstr(te.source, "capped at 125"));
    assert_non_null(strstr(te_raw.source, "not capped"));

    /* every engine against independent readers of the RUL and test files */
    FILE *f = fopen(c.rul_path, "r");
    assert_non_null(f);
    int v, k = 0;
    while (fscanf(f, "%d", &v) == 1) {
        assert_true(k < 100);
        assert_float_equal(te_raw.y[0][k], v, 0);
        assert_float_equal(te.y[0][k], v < 125 ? v : 125, 0);
        double cls = fmin(v, 125) > 80 ? 0 : fmin(v, 125) > 30 ? 1 : 2;
        assert_float_equal(te.y[1][k], cls, 0);
        k++;
    }
    fclose(f);
    assert_int_equal(k, 100);
    Raw raw = raw_read(c.test_path);
    assert_int_equal(raw.n, 13096);
    int64_t e = 0;
    for (int64_t i = 0; i < raw.n; i++) {
        if (i + 1 < raw.n && raw.v[i + 1][0] == raw.v[i][0]) continue;
        assert_int_equal(te.group[e], (int32_t)raw.v[i][0]);
        for (int ft = 0; ft < 17; ft++) {
            double back = te.x[e * 17 + ft] * ((double)norm.std[ft] + 1e-8) + norm.mean[ft];
            if (norm.std[ft] == 0) back = norm.mean[ft];
            assert_float_equal(back, raw.v[i][default_cols[ft]], 2e-3);
        }
        e++;
    }
    assert_int_equal(e, 100);
    /* engine 1 of the test file ends at cycle 31 with s2 = 642.58 */
    assert_float_equal(te.x[3] * (norm.std[3] + 1e-8) + norm.mean[3], 642.58, 1e-3);

    MtlDataset in;
    assert_int_equal(mtl_data_load_inputs(&c, c.test_path, &norm, &in), 0);
    assert_int_equal(in.n, 13096);
    assert_int_equal(in.n_groups, 100);
    assert_int_equal(in.group[30], 1);
    assert_int_equal(in.group[31], 2);
    assert_memory_equal(in.x + 30 * 17, te.x, 17 * sizeof(float));
    free(raw.v);
    mtl_dataset_free(&in);
    mtl_dataset_free(&te);
    mtl_dataset_free(&te_raw);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

/* Engines of a set as a 101-entry membership table. */
static void engines_of(const MtlDataset *d, bool *in) {
    memset(in, 0, 101 * sizeof *in);
    for (int64_t i = 0; i < d->n; i++) {
        assert_in_range(d->group[i], 1, 100);
        in[d->group[i]] = true;
    }
}

static void test_fd001_split(void **state) {
    (void)state;
    const char *dir = cmapss_dir();
    if (!dir) skip();
    const char *path = join(dir, "train_FD001.txt");
    MtlDataConfig c = base_cfg(path);
    c.validation = 0.2f;
    c.seed = 7;
    MtlDataset tr, va, tr2, va2, tr3, va3;
    MtlNorm norm, norm2, norm3;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(mtl_data_load_train(&c, &tr2, &va2, &norm2), 0);
    c.seed = 8;
    assert_int_equal(mtl_data_load_train(&c, &tr3, &va3, &norm3), 0);
    assert_int_equal(va.n_groups, 20);
    assert_int_equal(tr.n_groups, 80);
    assert_int_equal(tr.n + va.n, 20631);
    bool in_tr[101], in_va[101], in_va3[101];
    engines_of(&tr, in_tr);
    engines_of(&va, in_va);
    engines_of(&va3, in_va3);
    int differ = 0;
    for (int e = 1; e <= 100; e++) {
        assert_true(in_tr[e] != in_va[e]); /* disjoint, and together every engine */
        differ += in_va[e] != in_va3[e];
    }
    assert_true(differ > 0);
    /* same seed: the same split and the same bytes */
    assert_int_equal(va2.n, va.n);
    assert_memory_equal(va2.group, va.group, (size_t)va.n * sizeof(int32_t));
    assert_memory_equal(va2.x, va.x, (size_t)va.n * 17 * sizeof(float));
    assert_non_null(strstr(va.source, "validation part: 20 of 100 engines"));

    /* the statistics come from the training engines only */
    Raw raw = raw_read(path);
    double s = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < raw.n; i++)
        if (in_tr[(int)raw.v[i][0]]) {
            s += raw.v[i][6];
            m++;
        }
    assert_int_equal(m, tr.n);
    assert_float_equal(norm.mean[3], s / m, 1e-4);
    double zs = 0;
    for (int64_t i = 0; i < tr.n; i++) zs += tr.x[i * 17 + 3];
    assert_float_equal(zs / tr.n, 0, 1e-3); /* float32 mean, see test_fd001_train */
    free(raw.v);
    MtlDataset *all[] = {&tr, &va, &tr2, &va2, &tr3, &va3};
    for (int i = 0; i < 6; i++) mtl_dataset_free(all[i]);
    mtl_norm_free(&norm);
    mtl_norm_free(&norm2);
    mtl_norm_free(&norm3);
}

/* ---- windows ---- */

/* s2 of the small fixture z-scored with the training statistics of test_small_labels (python) */
static double z_s2(double v) { return (v - 111.5125) / (0.6863626956646166 + 1e-8); }

static MtlDataConfig small_window_cfg(int64_t window, int64_t stride) {
    static const char *const feats[] = {"s2", "setting3"};
    MtlDataConfig c = base_cfg(join(test_data(), "cmapss_small_train.txt"));
    c.rul_cap = 3;
    c.thresholds[0] = 2;
    c.thresholds[1] = 1;
    c.n_features = 2;
    c.features = feats;
    c.window = window;
    c.window_stride = stride;
    return c;
}

/* Expects window i of d to hold s2 values s2[0..w) (oldest first; setting3 is always 0). */
static void expect_window(const MtlDataset *d, int64_t i, int w, const double *s2) {
    for (int j = 0; j < w; j++) {
        double got = d->x[(i * w + j) * 2];
        if (fabs(got - z_s2(s2[j])) > 1e-5)
            fail_msg("window %lld row %d: z %g, expected s2 %g -> %g", (long long)i, j, got, s2[j], z_s2(s2[j]));
        assert_true(d->x[(i * w + j) * 2 + 1] == 0.0f);
    }
}

static void test_small_windows(void **state) {
    (void)state;
    /* engine 1: cycles 1..5, s2 110.6 111.1 111.6 112.1 112.6; engine 2: cycles 1, 2, 4,
     * s2 110.7 111.2 112.2; RUL capped at 3: engine 1 3 3 2 1 0, engine 2 3 2 0 */
    MtlDataConfig c = small_window_cfg(3, 1);
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 4); /* 5 - 2 + 3 - 2 */
    assert_int_equal(tr.window, 3);
    assert_int_equal(tr.n_features, 2);
    assert_int_equal(tr.input_size, 6);
    assert_int_equal(tr.n_groups, 2);
    assert_int_equal(tr.n_skipped, 0);
    assert_int_equal(va.n, 0);
    const double w0[3] = {110.6, 111.1, 111.6}, w1[3] = {111.1, 111.6, 112.1}, w2[3] = {111.6, 112.1, 112.6},
                 w3[3] = {110.7, 111.2, 112.2};
    expect_window(&tr, 0, 3, w0);
    expect_window(&tr, 1, 3, w1);
    expect_window(&tr, 2, 3, w2);
    expect_window(&tr, 3, 3, w3);
    const float rul[4] = {2, 1, 0, 0}, cls[4] = {1, 2, 2, 2};
    const int32_t grp[4] = {1, 1, 1, 2};
    const int64_t cyc[4] = {3, 4, 5, 4};
    for (int i = 0; i < 4; i++) {
        assert_float_equal(tr.y[0][i], rul[i], 0);
        assert_float_equal(tr.y[1][i], cls[i], 0);
        assert_int_equal(tr.group[i], grp[i]);
        assert_int_equal(tr.cycle[i], cyc[i]);
        assert_int_equal(tr.pad[i], 0);
    }
    /* statistics from the rows, as without windows */
    assert_float_equal(norm.mean[0], 111.5125, 1e-4);
    assert_int_equal(norm.n, 2);
    assert_non_null(strstr(tr.source, "windows of 3 cycles (stride 1): 4 windows"));

    /* the test set: the last 3 cycles of each engine; engine 1 (2 cycles: s2 110.6 111.1) and
     * engine 3 (1 cycle: 110.8) are padded at the front with their first cycle */
    c.test_path = join(test_data(), "cmapss_small_test.txt");
    c.rul_path = join(test_data(), "cmapss_small_rul.txt");
    c.rul_cap = 5;
    c.thresholds[0] = 6;
    c.thresholds[1] = 3;
    MtlDataset te;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 3);
    assert_int_equal(te.n_groups, 3);
    assert_int_equal(te.n_padded, 2);
    const double t0[3] = {110.6, 110.6, 111.1}, t1[3] = {110.7, 111.2, 111.7}, t2[3] = {110.8, 110.8, 110.8};
    expect_window(&te, 0, 3, t0);
    expect_window(&te, 1, 3, t1);
    expect_window(&te, 2, 3, t2);
    const int32_t pads[3] = {1, 0, 2};
    const int64_t last[3] = {2, 3, 1};
    const float capped[3] = {5, 2, 5}, te_cls[3] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(te.group[i], i + 1);
        assert_int_equal(te.pad[i], pads[i]);
        assert_int_equal(te.cycle[i], last[i]);
        assert_float_equal(te.y[0][i], capped[i], 0);
        assert_float_equal(te.y[1][i], te_cls[i], 0);
    }
    assert_non_null(strstr(te.source, "last 3 cycles of each of 3 engines"));
    assert_non_null(strstr(te.source, "2 of 3 engines shorter than the window padded"));
    mtl_dataset_free(&te);

    /* predict inputs: one window ending at every row, padded at each engine's start */
    assert_int_equal(mtl_data_load_inputs(&c, join(test_data(), "cmapss_small_test.txt"), &norm, &te), 0);
    assert_int_equal(te.n, 6);
    assert_int_equal(te.n_targets, 0);
    const int32_t in_pad[6] = {2, 1, 2, 1, 0, 2};
    const int64_t in_cyc[6] = {1, 2, 1, 2, 3, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(te.pad[i], in_pad[i]);
        assert_int_equal(te.cycle[i], in_cyc[i]);
    }
    const double i3[3] = {110.7, 110.7, 111.2};
    expect_window(&te, 3, 3, i3);
    mtl_dataset_free(&te);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);

    /* stride 2: engine 1 windows end at cycles 3 and 5, engine 2 at its third row */
    c = small_window_cfg(3, 2);
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 3);
    expect_window(&tr, 0, 3, w0);
    expect_window(&tr, 1, 3, w2);
    expect_window(&tr, 2, 3, w3);
    assert_int_equal(tr.cycle[1], 5);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);

    /* window 4: engine 2 (3 rows) gives none and is reported; its rows still count for the
     * statistics (the mean stays that of all 8 rows) */
    c = small_window_cfg(4, 1);
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 2);
    assert_int_equal(tr.n_groups, 1);
    assert_int_equal(tr.n_skipped, 1);
    const double v0[4] = {110.6, 111.1, 111.6, 112.1}, v1[4] = {111.1, 111.6, 112.1, 112.6};
    expect_window(&tr, 0, 4, v0);
    expect_window(&tr, 1, 4, v1);
    assert_float_equal(norm.mean[0], 111.5125, 1e-4);
    assert_non_null(strstr(tr.source, "2 windows, 1 of 2 engines shorter than the window skipped"));
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_window_too_long(void **state) {
    (void)state;
    MtlDataConfig c = small_window_cfg(6, 1);
    MtlDataset tr, va;
    MtlNorm norm;
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    const char *err = capture_end();
    char expect[1024];
    snprintf(expect, sizeof expect,
             "%s: error: no engine in cmapss_small_train.txt has 6 cycles: window 6 is longer than every "
             "engine (the longest has 5)\n",
             join(test_data(), "cmapss_small_train.txt"));
    assert_string_equal(err, expect);
    assert_int_equal(rc, -1);
    assert_null(tr.x);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
    /* exactly as long as the longest engine: one window */
    c = small_window_cfg(5, 1);
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 1);
    assert_int_equal(tr.n_skipped, 1);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_fd001_windows(void **state) {
    (void)state;
    const char *dir = cmapss_dir();
    if (!dir) skip();
    const char *path = join(dir, "train_FD001.txt");
    MtlDataConfig c = base_cfg(path);
    MtlDataset rows, va0, tr, va;
    MtlNorm norm0, norm;
    assert_int_equal(mtl_data_load_train(&c, &rows, &va0, &norm0), 0);
    c.window = 30;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 17731); /* 20,631 - 100 x 29 */
    assert_int_equal(tr.input_size, 30 * 17);
    assert_int_equal(tr.n_groups, 100);
    assert_int_equal(tr.n_skipped, 0);
    assert_int_equal(va.n, 0);
    /* the same statistics as without windows */
    assert_memory_equal(norm.mean, norm0.mean, 17 * sizeof(float));
    assert_memory_equal(norm.std, norm0.std, 17 * sizeof(float));
    /* every window against the per-row data set: engine blocks found from the engine ids */
    Raw raw = raw_read(path);
    int64_t w = 0, start = 0;
    for (int64_t i = 0; i < raw.n; i++) {
        if (i > 0 && raw.v[i][0] != raw.v[i - 1][0]) start = i;
        if (i - start < 29) continue;
        assert_true(w < tr.n);
        if (memcmp(tr.x + w * 30 * 17, rows.x + (i - 29) * 17, 30 * 17 * sizeof(float)) != 0)
            fail_msg("window %lld (rows %lld..%lld) differs", (long long)w, (long long)(i - 29), (long long)i);
        if (tr.y[0][w] != rows.y[0][i] || tr.y[1][w] != rows.y[1][i] || tr.group[w] != rows.group[i] ||
            tr.cycle[w] != (int64_t)raw.v[i][1])
            fail_msg("window %lld: targets/engine/cycle are not those of row %lld", (long long)w, (long long)i);
        w++;
    }
    assert_int_equal(w, 17731);
    /* engine 1's first window ends at cycle 30: RUL 192 - 30 = 162, capped at 125 */
    assert_int_equal(tr.cycle[0], 30);
    assert_float_equal(tr.y[0][0], 125, 0);
    assert_float_equal(tr.y[0][162], 0, 0); /* engine 1's last window (192 - 29 = 163 of them) */
    assert_int_equal(tr.group[163], 2);
    free(raw.v);
    assert_non_null(strstr(tr.source, "windows of 30 cycles (stride 1): 17731 windows"));

    /* the test set: the last 30 cycles of each of 100 engines (all have at least 31) */
    c.test_path = join(dir, "test_FD001.txt");
    c.rul_path = join(dir, "RUL_FD001.txt");
    MtlDataset te, in;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 100);
    assert_int_equal(te.n_padded, 0);
    assert_float_equal(te.y[0][0], 112, 0);
    c.window = 1;
    assert_int_equal(mtl_data_load_inputs(&c, c.test_path, &norm, &in), 0);
    /* engine 1 has 31 cycles: its window is rows 1..30 of the file (0-based) */
    assert_memory_equal(te.x, in.x + 1 * 17, 30 * 17 * sizeof(float));
    assert_int_equal(te.cycle[0], 31);
    mtl_dataset_free(&in);
    mtl_dataset_free(&te);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);

    /* validation by engine: 20 engines' windows held out, together still 17,731 */
    c.window = 30;
    c.validation = 0.2f;
    c.seed = 3;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n_groups, 80);
    assert_int_equal(va.n_groups, 20);
    assert_int_equal(tr.n + va.n, 17731);
    for (int64_t i = 0; i < tr.n; i += 97)
        for (int64_t j = 0; j < va.n; j++) assert_int_not_equal(tr.group[i], va.group[j]);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
    mtl_dataset_free(&rows);
    mtl_dataset_free(&va0);
    mtl_norm_free(&norm0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_labels), cmocka_unit_test(test_bad_rows),   cmocka_unit_test(test_bad_rul),
        cmocka_unit_test(test_bad_config),   cmocka_unit_test(test_fd001_train), cmocka_unit_test(test_fd001_test),
        cmocka_unit_test(test_fd001_split),  cmocka_unit_test(test_small_windows), cmocka_unit_test(test_window_too_long),
        cmocka_unit_test(test_fd001_windows), cmocka_unit_test(test_engines_interleaved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
