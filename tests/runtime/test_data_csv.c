/* CSV loader tests: a small hand-checked file (quoted header names, a text column, a CRLF line,
 * a blank line), the by-group split, the test and inputs-only paths, every bad-file diagnostic
 * by its exact text, and windows: by group (groups interleaved in the file), over the whole
 * file without a group column, the test set's padded short group, and the too-long window.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtl_data.h"

#include "capture_stderr.h"

static const char *path_of(const char *name) {
    static char buf[4][1024];
    static int next;
    const char *d = getenv("MTLC_TEST_DATA");
    assert_non_null(d);
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", d, name);
    return b;
}

static const char *const inputs[] = {"a", "b"};
static const char *const binds[] = {"y", "cls"};
static const MtlTargetKind kinds[] = {MTL_TARGET_REAL, MTL_TARGET_CLASS};
static const int64_t classes[] = {0, 3};

static MtlDataConfig csv_cfg(const char *train) {
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.kind = MTL_DATA_CSV;
    c.train_path = train;
    c.n_input_columns = 2;
    c.input_columns = inputs;
    c.group_column = "unit";
    c.n_targets = 2;
    c.target_binds = binds;
    c.target_kinds = kinds;
    c.target_classes = classes;
    c.validation = 0;
    return c;
}

static void test_good(void **state) {
    (void)state;
    MtlDataConfig c = csv_cfg(path_of("csv_good.csv"));
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 6);
    assert_int_equal(tr.input_size, 2);
    assert_int_equal(tr.n_groups, 4);
    assert_int_equal(va.n, 0);
    /* a = 1..6: mean 3.5, population std 1.707825127659933 (python); b = 10 constant -> 0 */
    const double za[6] = {-1.4638501008513713, -0.8783100605108228, -0.29277002017027426,
                          0.29277002017027426, 0.8783100605108228,  1.4638501008513713};
    const float y[6] = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5}, cls[6] = {0, 1, 2, 0, 1, 2};
    const int32_t grp[6] = {1, 1, 2, 2, 3, 4};
    for (int i = 0; i < 6; i++) {
        assert_float_equal(tr.x[i * 2], za[i], 1e-6);
        assert_true(tr.x[i * 2 + 1] == 0.0f);
        assert_float_equal(tr.y[0][i], y[i], 0);
        assert_float_equal(tr.y[1][i], cls[i], 0);
        assert_int_equal(tr.group[i], grp[i]);
    }
    assert_float_equal(norm.mean[0], 3.5, 1e-7);
    assert_float_equal(norm.std[0], 1.707825127659933, 1e-6);
    assert_float_equal(norm.std[1], 0, 0);
    assert_false(tr.synthetic);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);

    /* test set: every row of the file, targets from the same columns */
    c.test_path = path_of("csv_good.csv");
    MtlDataset te;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 6);
    assert_float_equal(te.y[0][5], 5.5, 0);
    assert_float_equal(te.x[5 * 2], za[5], 1e-6);
    mtl_dataset_free(&te);

    /* inputs only: targets not needed, group kept */
    static const char *const in2[] = {"b", "a"};
    c.input_columns = in2;
    capture_begin();
    int rc = mtl_data_load_inputs(&c, path_of("csv_good.csv"), &norm, &te);
    capture_end();
    assert_int_equal(rc, 0); /* the norm is per position, so the swapped order still loads */
    assert_int_equal(te.n, 6);
    assert_int_equal(te.n_targets, 0);
    assert_int_equal(te.group[3], 2);
    mtl_dataset_free(&te);
    mtl_norm_free(&norm);

    /* without a group column every row is its own group */
    c = csv_cfg(path_of("csv_good.csv"));
    c.group_column = NULL;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n_groups, 6);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_group_split(void **state) {
    (void)state;
    MtlDataConfig c = csv_cfg(path_of("csv_good.csv"));
    c.validation = 0.5f;
    c.seed = 1;
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n_groups, 2);
    assert_int_equal(va.n_groups, 2);
    assert_int_equal(tr.n + va.n, 6);
    for (int64_t i = 0; i < tr.n; i++)
        for (int64_t j = 0; j < va.n; j++) assert_int_not_equal(tr.group[i], va.group[j]);
    /* the normalisation saw only the training rows: their column has mean 0 */
    double s = 0;
    for (int64_t i = 0; i < tr.n; i++) s += tr.x[i * 2];
    assert_float_equal(s / tr.n, 0, 1e-6);
    assert_non_null(strstr(va.source, "validation part: 2 of 4 groups"));
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

typedef struct BadCsv {
    const char *file;
    const char *message; /* after "DIR/" */
} BadCsv;

static void test_bad_files(void **state) {
    (void)state;
    static const BadCsv cases[] = {
        {"csv_unknown_column.csv", "csv_unknown_column.csv:1: error: no column named 'b' (an input)\n"},
        {"csv_bad_class.csv",
         "csv_bad_class.csv:3: error: column 'cls': class label '3' is not an integer in 0..2\n"},
        {"csv_short_row.csv", "csv_short_row.csv:3: error: expected 5 columns, found 4\n"},
        {"csv_non_number.csv", "csv_non_number.csv:3: error: column 'b': 'abc' is not a number\n"},
        /* values must be decimal numbers representable as float32 */
        {"csv_value_range.csv",
         "csv_value_range.csv:3: error: column 'b': '1e39' is out of the float32 range\n"},
        {"csv_target_range.csv",
         "csv_target_range.csv:3: error: column 'y': '-1e300' is out of the float32 range\n"},
        {"csv_value_hex.csv", "csv_value_hex.csv:3: error: column 'b': '0x1A' is not a number\n"},
        {"csv_empty.csv", "csv_empty.csv:1: error: empty file: expected a header row\n"},
        {"csv_missing.csv", "csv_missing.csv: error: cannot open: No such file or directory\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        MtlDataConfig c = csv_cfg(path_of(cases[i].file));
        MtlDataset tr, va;
        MtlNorm norm;
        capture_begin();
        int rc = mtl_data_load_train(&c, &tr, &va, &norm);
        const char *err = capture_end();
        assert_int_equal(rc, -1);
        char expect[1024];
        snprintf(expect, sizeof expect, "%s", path_of(cases[i].message));
        assert_string_equal(err, expect);
        assert_null(tr.x);
        mtl_dataset_free(&tr);
        mtl_dataset_free(&va);
        mtl_norm_free(&norm);
    }
    /* a configured target column that is not there names the file and the column */
    static const char *const bad_binds[] = {"y", "health"};
    MtlDataConfig c = csv_cfg(path_of("csv_good.csv"));
    c.target_binds = bad_binds;
    MtlDataset tr, va;
    MtlNorm norm;
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    const char *err = capture_end();
    assert_int_equal(rc, -1);
    char expect[1024];
    snprintf(expect, sizeof expect, "%s:1: error: no column named 'health' (a task target)\n",
             path_of("csv_good.csv"));
    assert_string_equal(err, expect);
}

/* ---- windows ---- */

/* csv_windows.csv: unit,a,y rows (unit 1: a 1 2 3, unit 2: a 100 200 300, interleaved; unit 3:
 * a 7), y = 10 11 12 / 20 21 22 / 30; a blank line before the fifth data row. */
static const double win_a[7] = {1, 100, 2, 200, 3, 300, 7};
static const char *const win_inputs[] = {"a"};
static const char *const win_binds[] = {"y"};
static const MtlTargetKind win_kinds[] = {MTL_TARGET_REAL};

static MtlDataConfig win_cfg(const char *group, int64_t window) {
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.kind = MTL_DATA_CSV;
    c.train_path = path_of("csv_windows.csv");
    c.n_input_columns = 1;
    c.input_columns = win_inputs;
    c.group_column = group;
    c.n_targets = 1;
    c.target_binds = win_binds;
    c.target_kinds = win_kinds;
    c.validation = 0;
    c.window = window;
    return c;
}

/* a z-scored over all seven rows, computed here in double */
static double win_z(double v) {
    double m = 0, ss = 0;
    for (int i = 0; i < 7; i++) m += win_a[i] / 7;
    for (int i = 0; i < 7; i++) ss += (win_a[i] - m) * (win_a[i] - m) / 7;
    return (v - m) / (sqrt(ss) + 1e-8);
}

static void expect_rows(const MtlDataset *d, int64_t i, int w, const double *a) {
    for (int j = 0; j < w; j++)
        if (fabs(d->x[i * w + j] - win_z(a[j])) > 1e-5)
            fail_msg("window %lld row %d: %g, expected a = %g -> %g", (long long)i, j, d->x[i * w + j], a[j],
                     win_z(a[j]));
}

static void test_windows_by_group(void **state) {
    (void)state;
    MtlDataConfig c = win_cfg("unit", 2);
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    /* each group's rows in file order; samples in the file order of their last row */
    assert_int_equal(tr.n, 4);
    assert_int_equal(tr.input_size, 2);
    assert_int_equal(tr.n_groups, 2);
    assert_int_equal(tr.n_skipped, 1); /* unit 3 has one row */
    const double w0[2] = {1, 2}, w1[2] = {100, 200}, w2[2] = {2, 3}, w3[2] = {200, 300};
    expect_rows(&tr, 0, 2, w0);
    expect_rows(&tr, 1, 2, w1);
    expect_rows(&tr, 2, 2, w2);
    expect_rows(&tr, 3, 2, w3);
    const float y[4] = {11, 21, 12, 22};
    const int32_t grp[4] = {1, 2, 1, 2};
    const int64_t row[4] = {3, 4, 5, 6}; /* 1-based data rows (the blank line is not a row) */
    for (int i = 0; i < 4; i++) {
        assert_float_equal(tr.y[0][i], y[i], 0);
        assert_int_equal(tr.group[i], grp[i]);
        assert_int_equal(tr.cycle[i], row[i]);
    }
    assert_float_equal(norm.mean[0], 613.0 / 7, 1e-4); /* unit 3's row counts too */
    assert_non_null(strstr(tr.source, "1 of 3 groups shorter than the window skipped"));

    /* test set: every full window, and unit 3 once, padded with its only row */
    c.test_path = path_of("csv_windows.csv");
    MtlDataset te;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 5);
    assert_int_equal(te.n_padded, 1);
    assert_int_equal(te.n_groups, 3);
    const double t4[2] = {7, 7};
    expect_rows(&te, 3, 2, w3);
    expect_rows(&te, 4, 2, t4);
    assert_int_equal(te.pad[4], 1);
    assert_int_equal(te.pad[3], 0);
    assert_float_equal(te.y[0][4], 30, 0);
    assert_int_equal(te.group[4], 3);
    mtl_dataset_free(&te);

    /* inputs: a window at every row, padded at each group's first row */
    assert_int_equal(mtl_data_load_inputs(&c, path_of("csv_windows.csv"), &norm, &te), 0);
    assert_int_equal(te.n, 7);
    const int32_t pad[7] = {1, 1, 0, 0, 0, 0, 1};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(te.pad[i], pad[i]);
        assert_int_equal(te.cycle[i], i + 1);
    }
    const double i1[2] = {100, 100};
    expect_rows(&te, 1, 2, i1);
    mtl_dataset_free(&te);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);

    /* validation by group: one of the two groups with windows, never unit 3 */
    c.validation = 0.5f;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 2);
    assert_int_equal(va.n, 2);
    assert_int_not_equal(tr.group[0], va.group[0]);
    assert_true(va.group[0] != 3 && tr.group[0] != 3);
    /* statistics without the held-out group's rows */
    double m = 0;
    int cnt = 0;
    for (int i = 0; i < 7; i++)
        if (!((va.group[0] == 1 && (i == 0 || i == 2 || i == 4)) || (va.group[0] == 2 && (i == 1 || i == 3 || i == 5)))) {
            m += win_a[i];
            cnt++;
        }
    assert_int_equal(cnt, 4);
    assert_float_equal(norm.mean[0], m / cnt, 1e-4);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

static void test_windows_whole_file(void **state) {
    (void)state;
    /* no group column: windows over consecutive rows of the whole file */
    MtlDataConfig c = win_cfg(NULL, 3);
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n, 5);
    for (int i = 0; i < 5; i++) {
        expect_rows(&tr, i, 3, win_a + i);
        assert_int_equal(tr.cycle[i], i + 3);
    }
    assert_float_equal(tr.y[0][4], 30, 0);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);

    c = win_cfg(NULL, 8);
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    const char *err = capture_end();
    char expect[1024];
    snprintf(expect, sizeof expect, "%s: error: the file has 7 rows: window 8 is longer than the file\n",
             path_of("csv_windows.csv"));
    assert_string_equal(err, expect);
    assert_int_equal(rc, -1);
    c = win_cfg("unit", 4);
    capture_begin();
    rc = mtl_data_load_train(&c, &tr, &va, &norm);
    err = capture_end();
    snprintf(expect, sizeof expect,
             "%s: error: no group in csv_windows.csv has 4 rows: window 4 is longer than every group (the "
             "longest has 3)\n",
             path_of("csv_windows.csv"));
    assert_string_equal(err, expect);
    assert_int_equal(rc, -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_group_split),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_windows_by_group),
        cmocka_unit_test(test_windows_whole_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
