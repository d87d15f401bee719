/* Synthetic fleet tests: byte-identical output per seed, the loaders reading the built-in fleet
 * exactly as they read its written files, constant columns, RUL running down to 0 in every
 * engine, a 100-engine test fleet with true RUL, the seeded split, a learnable signal, and
 * windows (counts and padded test engines checked against the written files).
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

static char *read_all(const char *dir, const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void remove_dir(const char *dir) {
    const char *names[] = {"train_synth.txt", "test_synth.txt", "RUL_synth.txt"};
    char path[1024];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

static const char *const binds2[] = {"rul", "health"};
static const MtlTargetKind kinds2[] = {MTL_TARGET_REAL, MTL_TARGET_CLASS};
static const int64_t classes2[] = {0, 3};

static MtlDataConfig synth_cfg(uint64_t seed) {
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.n_targets = 2;
    c.target_binds = binds2;
    c.target_kinds = kinds2;
    c.target_classes = classes2;
    c.validation = 0;
    c.seed = seed;
    return c;
}

static void test_write_deterministic(void **state) {
    (void)state;
    char d1[] = "/tmp/mtl_synth_XXXXXX", d2[] = "/tmp/mtl_synth_XXXXXX", d3[] = "/tmp/mtl_synth_XXXXXX";
    assert_non_null(mkdtemp(d1));
    assert_non_null(mkdtemp(d2));
    assert_non_null(mkdtemp(d3));
    assert_int_equal(mtl_synth_write(d1, 5), 0);
    assert_int_equal(mtl_synth_write(d2, 5), 0);
    assert_int_equal(mtl_synth_write(d3, 6), 0);
    const char *names[] = {"train_synth.txt", "test_synth.txt", "RUL_synth.txt"};
    for (int i = 0; i < 3; i++) {
        size_t n1, n2, n3;
        char *a = read_all(d1, names[i], &n1), *b = read_all(d2, names[i], &n2), *c = read_all(d3, names[i], &n3);
        assert_true(n1 > 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        assert_true(n1 != n3 || memcmp(a, c, n1) != 0); /* another seed, another fleet */
        free(a);
        free(b);
        free(c);
    }
    /* an unwritable place is reported, not crashed on */
    assert_int_equal(mtl_synth_write("/nonexistent/dir", 5) == -1 ? 0 : 1, 0);
    remove_dir(d1);
    remove_dir(d2);
    remove_dir(d3);
}

/* The built-in fleet and its written file go through one parser: identical samples. */
static void test_same_path_as_files(void **state) {
    (void)state;
    char dir[] = "/tmp/mtl_synth_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mtl_synth_write(dir, 5), 0);
    size_t len;
    char *text = read_all(dir, "train_synth.txt", &len);
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    free(text);

    MtlDataConfig c = synth_cfg(5);
    MtlDataset a, av, b, bv;
    MtlNorm na, nb;
    assert_int_equal(mtl_data_load_train(&c, &a, &av, &na), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/train_synth.txt", dir);
    c.train_path = path;
    assert_int_equal(mtl_data_load_train(&c, &b, &bv, &nb), 0);
    assert_true(a.synthetic);
    assert_false(b.synthetic);
    char expect[256];
    snprintf(expect, sizeof expect,
             "synthetic C-MAPSS-like fleet (seed 5): 100 engines, %lld rows \xe2\x80\x94 not real data",
             (long long)lines);
    assert_string_equal(a.source, expect);
    assert_int_equal(a.n, lines);
    assert_int_equal(a.n, b.n);
    assert_int_equal(a.n_groups, 100);
    assert_memory_equal(a.x, b.x, (size_t)a.n * 17 * sizeof(float));
    assert_memory_equal(a.y[0], b.y[0], (size_t)a.n * sizeof(float));
    assert_memory_equal(a.y[1], b.y[1], (size_t)a.n * sizeof(float));
    assert_memory_equal(na.mean, nb.mean, 17 * sizeof(float));

    /* the test fleet: built-in vs its files */
    MtlDataset ta, tb;
    c.train_path = NULL;
    assert_int_equal(mtl_data_load_test(&c, &na, &ta), 0);
    char tpath[1024], rpath[1024];
    snprintf(tpath, sizeof tpath, "%s/test_synth.txt", dir);
    snprintf(rpath, sizeof rpath, "%s/RUL_synth.txt", dir);
    c.train_path = path;
    c.test_path = tpath;
    c.rul_path = rpath;
    assert_int_equal(mtl_data_load_test(&c, &na, &tb), 0);
    assert_int_equal(ta.n, 100);
    assert_int_equal(tb.n, 100);
    assert_true(ta.synthetic);
    assert_non_null(strstr(ta.source, "not real data"));
    assert_memory_equal(ta.x, tb.x, 100 * 17 * sizeof(float));
    assert_memory_equal(ta.y[0], tb.y[0], 100 * sizeof(float));
    MtlDataset *all[] = {&a, &av, &b, &bv, &ta, &tb};
    for (int i = 0; i < 6; i++) mtl_dataset_free(all[i]);
    mtl_norm_free(&na);
    mtl_norm_free(&nb);
    remove_dir(dir);
}

static void test_structure(void **state) {
    (void)state;
    static const char *const feats[] = {"s1", "s5", "s6", "s10", "s16", "s18", "s19", "setting3", "s4", "s11"};
    MtlDataConfig c = synth_cfg(11);
    c.rul_cap = INFINITY;
    c.n_features = 10;
    c.features = feats;
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    for (int f = 0; f < 8; f++) assert_true(norm.std[f] == 0.0f); /* constant like FD001 */
    assert_true(norm.std[8] > 1.0f);
    assert_true(norm.std[9] > 0.05f);
    /* RUL falls by one per cycle to 0 at every engine's last row */
    int engines = 0;
    for (int64_t i = 0; i < tr.n; i++) {
        bool last = i + 1 == tr.n || tr.group[i + 1] != tr.group[i];
        if (i == 0 || tr.group[i] != tr.group[i - 1]) {
            engines++;
            assert_int_equal(tr.group[i], engines);
            assert_in_range((int64_t)tr.y[0][i], 127, 361); /* lifetimes 128..362 */
        }
        if (last) assert_float_equal(tr.y[0][i], 0, 0);
        else assert_float_equal(tr.y[0][i] - tr.y[0][i + 1], 1, 0);
        for (int f = 0; f < 8; f++) assert_true(tr.x[i * 10 + f] == 0.0f);
    }
    assert_int_equal(engines, 100);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);

    MtlDataset te;
    c.cap_test_rul = false;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 100);
    assert_int_equal(te.n_groups, 100);
    int over_cap = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(te.group[i], i + 1);
        assert_in_range((int64_t)te.y[0][i], 1, 362 - 31);
        over_cap += te.y[0][i] > 125;
    }
    assert_true(over_cap > 0 && over_cap < 100); /* both capped and uncapped engines occur */
    mtl_dataset_free(&te);
    mtl_norm_free(&norm);
}

static void test_split(void **state) {
    (void)state;
    MtlDataConfig c = synth_cfg(3);
    c.validation = 0.2f;
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(tr.n_groups, 80);
    assert_int_equal(va.n_groups, 20);
    bool in_tr[101] = {0};
    for (int64_t i = 0; i < tr.n; i++) in_tr[tr.group[i]] = true;
    for (int64_t i = 0; i < va.n; i++) assert_false(in_tr[va.group[i]]);
    assert_true(va.synthetic);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

/* Least squares on the 17 default features: a linear model already explains most of the
 * capped RUL, so a trained network certainly can. */
static void test_learnable(void **state) {
    (void)state;
    MtlDataConfig c = synth_cfg(0);
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    enum { P = 18 };
    double a[P][P + 1] = {{0}};
    for (int64_t i = 0; i < tr.n; i++) {
        double row[P];
        for (int f = 0; f < 17; f++) row[f] = tr.x[i * 17 + f];
        row[17] = 1;
        for (int r = 0; r < P; r++) {
            for (int q = 0; q < P; q++) a[r][q] += row[r] * row[q];
            a[r][P] += row[r] * tr.y[0][i];
        }
    }
    for (int r = 0; r < P; r++) a[r][r] += 1e-6; /* setting3 is an all-zero column */
    for (int col = 0; col < P; col++)
        for (int r = col + 1; r < P; r++) {
            double m = a[r][col] / a[col][col];
            for (int q = col; q <= P; q++) a[r][q] -= m * a[col][q];
        }
    double w[P];
    for (int r = P - 1; r >= 0; r--) {
        double s = a[r][P];
        for (int q = r + 1; q < P; q++) s -= a[r][q] * w[q];
        w[r] = s / a[r][r];
    }
    double se = 0, sy = 0, syy = 0;
    for (int64_t i = 0; i < tr.n; i++) {
        double p = w[17];
        for (int f = 0; f < 17; f++) p += w[f] * tr.x[i * 17 + f];
        se += (p - tr.y[0][i]) * (p - tr.y[0][i]);
        sy += tr.y[0][i];
        syy += (double)tr.y[0][i] * tr.y[0][i];
    }
    double rmse = sqrt(se / tr.n), sd = sqrt(syy / tr.n - pow(sy / tr.n, 2));
    print_message("synthetic fleet: linear RMSE %.2f vs RUL std %.2f\n", rmse, sd);
    assert_true(rmse < 0.5 * sd); /* 15.1 vs 40.6 for seed 0 */
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

/* Rows per engine of a written C-MAPSS file, read with sscanf: lens[engine] (engines 1..100). */
static void engine_lengths(const char *dir, const char *name, int64_t *lens) {
    size_t len;
    char *text = read_all(dir, name, &len);
    memset(lens, 0, 101 * sizeof *lens);
    for (char *p = text; *p;) {
        int e;
        assert_int_equal(sscanf(p, "%d", &e), 1);
        assert_in_range(e, 1, 100);
        lens[e]++;
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        p = nl + 1;
    }
    free(text);
}

static void test_windows(void **state) {
    (void)state;
    char dir[] = "/tmp/mtl_synth_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mtl_synth_write(dir, 2), 0);
    int64_t train_len[101], test_len[101];
    engine_lengths(dir, "train_synth.txt", train_len);
    engine_lengths(dir, "test_synth.txt", test_len);
    remove_dir(dir);

    MtlDataConfig c = synth_cfg(2);
    c.window = 30;
    c.window_stride = 3;
    MtlDataset tr, va, te;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    int64_t want = 0;
    for (int e = 1; e <= 100; e++)
        if (train_len[e] >= 30) want += (train_len[e] - 30) / 3 + 1;
    assert_int_equal(tr.n, want);
    assert_int_equal(tr.input_size, 30 * 17);
    assert_true(tr.synthetic);
    /* the test fleet, last 100 cycles: engines with fewer rows are padded, none dropped */
    c.window = 100;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    int64_t short_engines = 0;
    for (int e = 1; e <= 100; e++) short_engines += test_len[e] < 100;
    assert_true(short_engines > 0 && short_engines < 100);
    assert_int_equal(te.n, 100);
    assert_int_equal(te.n_padded, short_engines);
    for (int i = 0; i < 100; i++)
        assert_int_equal(te.pad[i], test_len[i + 1] < 100 ? 100 - test_len[i + 1] : 0);
    mtl_dataset_free(&te);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_deterministic), cmocka_unit_test(test_same_path_as_files),
        cmocka_unit_test(test_structure),           cmocka_unit_test(test_split),
        cmocka_unit_test(test_learnable),           cmocka_unit_test(test_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
