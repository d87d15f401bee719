/* CSV loader tests: a small hand-checked file (quoted header names, a text column, a CRLF line,
 * a blank line), the by-group split, the test and inputs-only paths, and every bad-file
 * diagnostic by its exact text.
 */
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

static const char *path_of(const char *name) {
    static char buf[4][1024];
    static int next;
    const char *d = getenv("MTLC_TEST_DATA");
    assert_non_null(d);
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", d, name);
    return b;
}

static char captured[16384];
static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void) {
    fflush(stderr);
    capture_file = tmpfile();
    assert_non_null(capture_file);
    saved_stderr = dup(2);
    dup2(fileno(capture_file), 2);
}

static const char *capture_end(void) {
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(capture_file);
    size_t n = fread(captured, 1, sizeof captured - 1, capture_file);
    captured[n] = '\0';
    fclose(capture_file);
    return captured;
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_group_split),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
