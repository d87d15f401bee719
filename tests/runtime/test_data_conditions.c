/* Operating conditions: k-means on the synthetic six-condition fleet recovers the generator's
 * true conditions one-to-one; k = 1 gives exactly the plain z-score (recomputed here
 * independently); per-condition z-scores of training rows have mean 0 and std 1 per condition
 * and feature, and columns constant within a condition map to 0; validation / test / predict
 * rows take the training statistics of their nearest centroid (a hand-made file with shifted
 * settings); too few distinct settings is a clear error naming the file; the same seed gives the
 * same result. The normalisation's JSON: exact round trip, and every malformed variant rejected
 * with a reason. The synthetic fleet: fault modes with their own signatures, the written
 * multi-condition files equal to the built-in fleet, and the model table's new keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_internal.h"
#include "mtl_data.h"

#include "capture_stderr.h"
#include "mtl_runtime.h"

/* ---- helpers ---- */

static const char *const binds2[] = {"rul", "health"};
static const MtlTargetKind kinds2[] = {MTL_TARGET_REAL, MTL_TARGET_CLASS};
static const int64_t classes2[] = {0, 3};

static MtlDataConfig synth_cfg(uint64_t seed, int synth_conditions, int k) {
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.n_targets = 2;
    c.target_binds = binds2;
    c.target_kinds = kinds2;
    c.target_classes = classes2;
    c.validation = 0.2f;
    c.seed = seed;
    c.synthetic_conditions = synth_conditions;
    c.conditions = k;
    return c;
}

/* Row index in the synthetic file of each (engine, cycle): engines 1..100 in order, cycles from 1. */
typedef struct RowIndex {
    int64_t start[102];
} RowIndex;

static RowIndex row_index(const char *text) {
    RowIndex r;
    memset(&r, 0, sizeof r);
    int64_t rows = 0;
    int last = 0;
    for (const char *p = text; *p;) {
        /* strtol, not sscanf: glibc's sscanf measures the whole remaining text on every call */
        char *end;
        int e = (int)strtol(p, &end, 10);
        assert_true(end > p);
        if (e != last) {
            assert_int_equal(e, last + 1);
            r.start[e] = rows;
            last = e;
        }
        rows++;
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    r.start[last + 1] = rows;
    return r;
}

static int64_t at_row(const RowIndex *r, int32_t engine, int64_t cycle) {
    int64_t i = r->start[engine] + cycle - 1;
    assert_true(i < r->start[engine + 1]);
    return i;
}

/* The fleet's text and truth for the train part. */
static char *fleet(uint64_t seed, int k, int m, SynthTruth *truth) {
    size_t len;
    char *text = synth_fleet_text(seed, SYNTH_TRAIN, (SynthFleet){k, m}, &len, truth);
    assert_non_null(text);
    return text;
}

/* Every k-means condition maps to exactly one true condition and back, for every sample. */
static void check_one_to_one(const MtlDataset *d, const RowIndex *ri, const SynthTruth *truth, int k,
                             int map[]) {
    for (int c = 0; c < k; c++) map[c] = -1;
    for (int64_t s = 0; s < d->n; s++) {
        int32_t got = d->condition[s];
        int32_t want = truth->condition[at_row(ri, d->group[s], d->cycle[s])];
        assert_in_range(got, 0, k - 1);
        if (map[got] < 0) map[got] = want;
        assert_int_equal(map[got], want); /* every row of a cluster has one true condition */
    }
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (map[a] >= 0) assert_true(map[a] != map[b]); /* and no two clusters share it */
}

/* ---- k-means ---- */

static void test_recovers_true_conditions(void **state) {
    (void)state;
    SynthTruth truth;
    char *text = fleet(4, 6, 1, &truth);
    RowIndex ri = row_index(text);
    assert_int_equal(truth.n_rows, ri.start[101]);
    MtlDataConfig c = synth_cfg(4, 6, 6);
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(norm.k, 6);
    assert_non_null(strstr(tr.source, "6 operating conditions"));
    assert_non_null(strstr(tr.source, "normalised per operating condition: 6 conditions"));
    int map[6];
    check_one_to_one(&tr, &ri, &truth, 6, map);
    for (int c2 = 0; c2 < 6; c2++) assert_true(map[c2] >= 0); /* all six found in training rows */
    /* validation rows are assigned by the centroids alone: just as right */
    int vmap[6];
    check_one_to_one(&va, &ri, &truth, 6, vmap);
    for (int c2 = 0; c2 < 6; c2++)
        if (vmap[c2] >= 0) assert_int_equal(vmap[c2], map[c2]);
    /* sorted by setting1: the generator's points are in ascending altitude, so the map is identity */
    static const double points[6][3] = {{0, 0, 100}, {10, 0.25, 100}, {20, 0.70, 100},
                                        {25, 0.62, 60}, {35, 0.84, 100}, {42, 0.84, 100}};
    for (int c2 = 0; c2 < 6; c2++) {
        assert_int_equal(map[c2], c2);
        for (int j = 0; j < 3; j++) assert_float_equal(norm.centroids[3 * c2 + j], points[c2][j], 0.01);
    }
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);

    /* the test fleet: every engine's last row in its true condition */
    SynthTruth tt;
    size_t len;
    char *ttext = synth_fleet_text(4, SYNTH_TEST, (SynthFleet){6, 1}, &len, &tt);
    RowIndex tri = row_index(ttext);
    MtlDataset te;
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 100);
    assert_non_null(strstr(te.source, "nearest of 6 operating conditions"));
    for (int64_t s = 0; s < te.n; s++)
        assert_int_equal(map[te.condition[s]], tt.condition[at_row(&tri, te.group[s], te.cycle[s])]);
    mtl_dataset_free(&te);
    free(ttext);
    synth_truth_free(&tt);
    mtl_norm_free(&norm);
    free(text);
    synth_truth_free(&truth);
}

/* Fewer clusters than operating points still works (k = 3 on the six-point fleet) and k-means
 * output is reproducible: same seed, same norm and data, bit for bit. */
static void test_deterministic(void **state) {
    (void)state;
    MtlDataConfig c = synth_cfg(9, 6, 3);
    MtlDataset a, av, b, bv;
    MtlNorm na, nb;
    assert_int_equal(mtl_data_load_train(&c, &a, &av, &na), 0);
    assert_int_equal(mtl_data_load_train(&c, &b, &bv, &nb), 0);
    assert_true(mtl_norm_equal(&na, &nb));
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.x, b.x, (size_t)a.n * 17 * sizeof(float));
    assert_memory_equal(a.condition, b.condition, (size_t)a.n * sizeof(int32_t));
    char *ja = mtl_norm_to_json(&na), *jb = mtl_norm_to_json(&nb);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    MtlDataset *all[] = {&a, &av, &b, &bv};
    for (int i = 0; i < 4; i++) mtl_dataset_free(all[i]);
    mtl_norm_free(&na);
    mtl_norm_free(&nb);
}

/* k = 1 (and 0, a zeroed config) is today's plain z-score: statistics recomputed here from the
 * written file's training engines, with the same double sums, agree bit for bit. */
static void test_k1_is_plain_zscore(void **state) {
    (void)state;
    char dir[] = "/tmp/mtl_cond_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mtl_synth_write(dir, 3), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/train_synth.txt", dir);
    MtlDataConfig c = synth_cfg(3, 1, 1);
    c.train_path = path;
    MtlDataset tr, va, tr0, va0;
    MtlNorm norm, norm0;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    c.conditions = 0;
    assert_int_equal(mtl_data_load_train(&c, &tr0, &va0, &norm0), 0);
    assert_true(mtl_norm_equal(&norm, &norm0));
    assert_true(norm.k <= 1);
    assert_null(norm.centroids);
    assert_memory_equal(tr.x, tr0.x, (size_t)tr.n * 17 * sizeof(float));
    assert_string_equal(tr.source, tr0.source);
    assert_null(strstr(tr.source, "condition"));

    bool train_engine[101] = {0};
    for (int64_t i = 0; i < tr.n; i++) train_engine[tr.group[i]] = true;
    static const int cols[17] = {2, 3, 4, 6, 7, 8, 11, 12, 13, 15, 16, 17, 18, 19, 21, 24, 25};
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 15, n = 0;
    double(*rows)[26] = malloc(cap * sizeof *rows);
    while (fscanf(f, "%lf", &rows[n][0]) == 1) {
        for (int j = 1; j < 26; j++) assert_int_equal(fscanf(f, "%lf", &rows[n][j]), 1);
        if (train_engine[(int)rows[n][0]]) n++;
        if (n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
    }
    fclose(f);
    assert_int_equal((int64_t)n, tr.n);
    for (int fi = 0; fi < 17; fi++) {
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            sum += rows[i][cols[fi]];
            lo = fmin(lo, rows[i][cols[fi]]);
            hi = fmax(hi, rows[i][cols[fi]]);
        }
        double mean = lo == hi ? lo : sum / (double)n, var = 0;
        if (lo != hi) {
            for (size_t i = 0; i < n; i++) var += (rows[i][cols[fi]] - mean) * (rows[i][cols[fi]] - mean);
            var /= (double)n;
        }
        assert_true(norm.mean[fi] == (float)mean);
        assert_true(norm.std[fi] == (float)sqrt(var));
        for (int64_t s = 0; s < tr.n; s += 997) {
            float want = var == 0 ? 0.0f
                                  : (float)((rows[s][cols[fi]] - (double)norm.mean[fi]) / ((double)norm.std[fi] + 1e-8));
            assert_true(tr.x[s * 17 + fi] == want);
        }
    }
    for (int64_t s = 0; s < tr.n; s++) assert_int_equal(tr.condition[s], 0);
    free(rows);
    MtlDataset *all[] = {&tr, &va, &tr0, &va0};
    for (int i = 0; i < 4; i++) mtl_dataset_free(all[i]);
    mtl_norm_free(&norm);
    mtl_norm_free(&norm0);
    const char *names[] = {"train_synth.txt", "test_synth.txt", "RUL_synth.txt"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

/* Per condition and feature over the training rows: z has mean 0 and std 1, except columns
 * constant within the condition (setting3, and s1/s5/s10 here), which are exactly 0. */
static void test_per_condition_zscores(void **state) {
    (void)state;
    static const char *const feats[] = {"setting1", "setting2", "setting3", "s1", "s2", "s5",
                                        "s7", "s10", "s11", "s17", "s21"};
    enum { F = 11 };
    MtlDataConfig c = synth_cfg(12, 6, 6);
    c.n_features = F;
    c.features = feats;
    MtlDataset tr, va;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(norm.n, F);
    for (int k = 0; k < 6; k++) {
        for (int f = 0; f < F; f++) {
            double s = 0, ss = 0;
            int64_t m = 0;
            for (int64_t i = 0; i < tr.n; i++) {
                if (tr.condition[i] != k) continue;
                float z = tr.x[i * F + f];
                assert_true(isfinite(z));
                s += z;
                ss += (double)z * z;
                m++;
            }
            assert_true(m > 100);
            double mean = s / (double)m, sd = sqrt(ss / (double)m - mean * mean);
            bool constant = f == 2 || f == 3 || f == 5 || f == 7;
            if (constant) {
                assert_true(norm.std[k * F + f] == 0.0f);
                assert_true(s == 0 && ss == 0); /* every value exactly 0 */
            } else {
                assert_true(norm.std[k * F + f] > 0);
                /* MtlNorm holds float32: a mean of ~9000 is stored to ~5e-4, i.e. 1e-4 sd */
                assert_float_equal(mean, 0, 1e-3);
                assert_float_equal(sd, 1, 1e-3);
            }
        }
    }
    /* the constant columns are constant only within a condition: plain z-score sees them vary */
    MtlDataConfig c1 = c;
    c1.conditions = 1;
    MtlDataset tr1, va1;
    MtlNorm n1;
    assert_int_equal(mtl_data_load_train(&c1, &tr1, &va1, &n1), 0);
    assert_true(n1.std[3] > 10);
    /* validation rows: finite, and 0 in the constant columns (they come from the same points) */
    for (int64_t i = 0; i < va.n; i++)
        for (int f = 0; f < F; f++) {
            assert_true(isfinite(va.x[i * F + f]));
            if (f == 2 || f == 3 || f == 5 || f == 7) assert_true(va.x[i * F + f] == 0.0f);
        }
    mtl_dataset_free(&tr1);
    mtl_dataset_free(&va1);
    mtl_norm_free(&n1);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
}

/* Correlation of feature f with the capped RUL over the samples. */
static double rul_corr(const MtlDataset *d, int f) {
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, m = (double)d->n;
    for (int64_t i = 0; i < d->n; i++) {
        double x = d->x[i * d->n_features + f], y = d->y[0][i];
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    double cov = sxy / m - sx / m * sy / m;
    return cov / sqrt((sxx / m - sx / m * sx / m) * (syy / m - sy / m * sy / m));
}

/* On the six-condition fleet the operating point moves every sensor far more than wear does:
 * plain z-scores of the 14 sensors hardly correlate with RUL, per-condition ones clearly do
 * (about -0.6 / +0.7, as on the one-condition fleet). */
static void test_conditions_unbury_signal(void **state) {
    (void)state;
    MtlDataConfig c = synth_cfg(0, 6, 1);
    c.validation = 0;
    MtlDataset plain, per, v1, v2;
    MtlNorm n1, n6;
    assert_int_equal(mtl_data_load_train(&c, &plain, &v1, &n1), 0);
    c.conditions = 6;
    assert_int_equal(mtl_data_load_train(&c, &per, &v2, &n6), 0);
    for (int f = 3; f < 17; f++) {
        double r1 = rul_corr(&plain, f), r6 = rul_corr(&per, f);
        print_message("%-3s corr with RUL: %+.2f plain z-score, %+.2f per condition\n",
                      mtl_cmapss_default_features[f], r1, r6);
        assert_true(fabs(r1) < 0.15);
        assert_true(fabs(r6) > 0.5);
    }
    MtlDataset *all[] = {&plain, &per, &v1, &v2};
    for (int i = 0; i < 4; i++) mtl_dataset_free(all[i]);
    mtl_norm_free(&n1);
    mtl_norm_free(&n6);
}

/* ---- a hand-made file: three operating points, shifted test rows, too few settings ---- */

static const double hand_points[3][3] = {{0, 0, 100}, {10, 0.25, 100}, {20, 0.70, 60}};

/* Sensor k of engine e, cycle c at point p, as the loader reads it back from "%.4f": a level
 * per point + small wear + a per-row wiggle; s1 is constant within each point. */
static double hand_value(int e, int c, int p, int k) {
    double v = k == 1 ? 500.0 - 30.0 * p : 100.0 * k + 50.0 * p * k + 0.01 * c + 0.37 * ((e * 7 + c * 3 + k) % 5);
    char buf[64];
    snprintf(buf, sizeof buf, "%.4f", v);
    return strtod(buf, NULL);
}

static void hand_row(FILE *f, int e, int c, int p, double jitter) {
    fprintf(f, "%d %d %.4f %.4f %.1f", e, c, hand_points[p][0] + jitter, hand_points[p][1] + jitter / 100,
            hand_points[p][2]);
    for (int k = 1; k <= 21; k++) fprintf(f, " %.4f", hand_value(e, c, p, k));
    fputc('\n', f);
}

static void test_test_rows_use_training_stats(void **state) {
    (void)state;
    char dir[] = "/tmp/mtl_cond_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char train[1024], test[1024], rul[1024];
    snprintf(train, sizeof train, "%s/train.txt", dir);
    snprintf(test, sizeof test, "%s/test.txt", dir);
    snprintf(rul, sizeof rul, "%s/rul.txt", dir);
    FILE *f = fopen(train, "w");
    for (int e = 1; e <= 4; e++)
        for (int c = 1; c <= 12; c++) hand_row(f, e, c, (e + c) % 3, 0.001 * ((c * 5) % 3));
    fclose(f);
    f = fopen(test, "w");
    hand_row(f, 1, 1, 0, 0);
    hand_row(f, 1, 2, 1, 0.3); /* (10.3, 0.253, 100): nearest training point (10, 0.25, 100) */
    hand_row(f, 2, 1, 2, 0);
    hand_row(f, 2, 2, 2, -0.5); /* (19.5, 0.695, 60) */
    fclose(f);
    f = fopen(rul, "w");
    fputs("10\n20\n", f);
    fclose(f);

    static const char *const feats[] = {"s1", "s2", "s3"};
    MtlDataConfig c = synth_cfg(0, 1, 3);
    c.train_path = train;
    c.test_path = test;
    c.rul_path = rul;
    c.validation = 0;
    c.n_features = 3;
    c.features = feats;
    MtlDataset tr, va, te, in;
    MtlNorm norm;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    assert_int_equal(norm.k, 3);
    /* training statistics per condition, recomputed from the rows written */
    for (int p = 0; p < 3; p++) {
        for (int j = 0; j < 3; j++) assert_float_equal(norm.centroids[3 * p + j], hand_points[p][j], 0.002);
        for (int k = 1; k <= 3; k++) {
            double s = 0, ss = 0;
            int m = 0;
            for (int e = 1; e <= 4; e++)
                for (int cy = 1; cy <= 12; cy++) {
                    if ((e + cy) % 3 != p) continue;
                    double v = hand_value(e, cy, p, k);
                    s += v;
                    ss += v * v;
                    m++;
                }
            double mean = s / m, sd = k == 1 ? 0 : sqrt(ss / m - mean * mean);
            assert_float_equal(norm.mean[p * 3 + k - 1], mean, 1e-3);
            assert_float_equal(norm.std[p * 3 + k - 1], sd, 1e-4);
        }
    }
    assert_int_equal(mtl_data_load_test(&c, &norm, &te), 0);
    assert_int_equal(te.n, 2); /* the last row of each engine */
    assert_int_equal(te.condition[0], 1);
    assert_int_equal(te.condition[1], 2);
    /* the shifted rows' values, normalised with their training condition's statistics */
    int want_cond[2] = {1, 2}, cyc[2] = {2, 2}, eng[2] = {1, 2};
    for (int s = 0; s < 2; s++)
        for (int k = 1; k <= 3; k++) {
            int p = want_cond[s];
            double raw = hand_value(eng[s], cyc[s], p, k);
            double sd = norm.std[p * 3 + k - 1];
            float want = sd == 0 ? 0.0f : (float)((raw - (double)norm.mean[p * 3 + k - 1]) / (sd + 1e-8));
            assert_true(te.x[s * 3 + k - 1] == want);
        }
    assert_true(te.x[0] == 0.0f); /* s1 is constant within condition 1 */
    /* predict inputs: every row, the same assignment */
    assert_int_equal(mtl_data_load_inputs(&c, test, &norm, &in), 0);
    assert_int_equal(in.n, 4);
    int want_in[4] = {0, 1, 2, 2};
    for (int s = 0; s < 4; s++) assert_int_equal(in.condition[s], want_in[s]);
    assert_memory_equal(in.x + 3, te.x, 3 * sizeof(float));
    mtl_dataset_free(&in);
    mtl_dataset_free(&te);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);

    /* the normalisation survives its JSON and normalises the same way afterwards */
    char *json = mtl_norm_to_json(&norm), err[256];
    MtlNorm back;
    assert_int_equal(mtl_norm_from_json(json, 3, &back, err, sizeof err), 0);
    assert_true(mtl_norm_equal(&norm, &back));
    MtlDataset te2;
    assert_int_equal(mtl_data_load_test(&c, &back, &te2), 0);
    assert_int_equal(te2.condition[0], 1);
    mtl_dataset_free(&te2);
    mtl_norm_free(&back);
    free(json);
    mtl_norm_free(&norm);

    /* four conditions from three distinct settings: an error naming the file (no jitter here) */
    f = fopen(train, "w");
    for (int e = 1; e <= 4; e++)
        for (int cy = 1; cy <= 12; cy++) hand_row(f, e, cy, (e + cy) % 3, 0);
    fclose(f);
    c.conditions = 4;
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    const char *out = capture_end();
    assert_int_equal(rc, -1);
    char want[1200];
    snprintf(want, sizeof want,
             "%s: error: conditions = 4 but the training data have only 3 distinct operating settings "
             "(setting1..setting3); use conditions = 3 or fewer\n", train);
    assert_string_equal(out, want);
    assert_null(norm.mean);
    assert_null(norm.centroids);
    assert_int_equal(tr.n, 0);
    /* three is fine: every condition one exact point, all its setting columns constant */
    c.conditions = 3;
    assert_int_equal(mtl_data_load_train(&c, &tr, &va, &norm), 0);
    for (int p = 0; p < 3; p++)
        for (int j = 0; j < 3; j++) assert_float_equal(norm.centroids[3 * p + j], hand_points[p][j], 1e-4);
    mtl_dataset_free(&tr);
    mtl_dataset_free(&va);
    mtl_norm_free(&norm);
    remove(train);
    remove(test);
    remove(rul);
    rmdir(dir);
}

/* Conditions are for C-MAPSS only; bad k values; a per-condition norm cannot normalise CSV. */
static void test_config_errors(void **state) {
    (void)state;
    MtlDataConfig c = synth_cfg(0, 1, 65);
    MtlDataset tr, va;
    MtlNorm norm;
    capture_begin();
    int rc = mtl_data_load_train(&c, &tr, &va, &norm);
    const char *out = capture_end();
    assert_int_equal(rc, -1);
    assert_string_equal(out, "error: conditions must be between 1 and 64, got 65\n");
    c.conditions = 1;
    c.synthetic_conditions = 7;
    capture_begin();
    rc = mtl_data_load_train(&c, &tr, &va, &norm);
    out = capture_end();
    assert_int_equal(rc, -1);
    assert_non_null(strstr(out, "1 to 6 operating conditions"));

    static const char *const inputs[] = {"a", "b"};
    MtlDataConfig v;
    mtl_data_config_defaults(&v);
    v.kind = MTL_DATA_CSV;
    v.train_path = "/nonexistent.csv";
    v.n_input_columns = 2;
    v.input_columns = inputs;
    v.conditions = 2;
    capture_begin();
    rc = mtl_data_load_train(&v, &tr, &va, &norm);
    out = capture_end();
    assert_int_equal(rc, -1);
    assert_non_null(strstr(out, "conditions = 2 needs C-MAPSS operating settings"));
}

/* ---- JSON ---- */

static void test_json_round_trip(void **state) {
    (void)state;
    /* awkward floats: every one must come back with the same bits */
    float vals[] = {0.1f, -0.0f, FLT_MIN, FLT_MAX, -FLT_MAX, 1e-45f, 16777217.0f, 3.14159274f,
                    2388.06f, 1.0f / 3.0f, 8.4397f, 123456789.0f};
    enum { NV = sizeof vals / sizeof vals[0] };
    float mean[2 * NV], sd[2 * NV], cent[6] = {0.0019f, -0.0004f, 100.0f, 42.0049f, 0.84f, 60.0f};
    for (int i = 0; i < NV; i++) {
        mean[i] = vals[i];
        mean[NV + i] = -vals[NV - 1 - i];
        sd[i] = fabsf(vals[i]);
        sd[NV + i] = i % 3 ? fabsf(vals[i]) * 0.5f : 0.0f;
    }
    MtlNorm n = {.n = NV, .mean = mean, .std = sd, .k = 2, .centroids = cent,
                 .settings_mean = {17.5f, 0.5f, 93.3f}, .settings_scale = {14.7f, 0.31f, 1.0f}};
    char *json = mtl_norm_to_json(&n), err[256];
    assert_non_null(json);
    assert_null(strchr(json, ' ')); /* compact */
    MtlNorm back;
    assert_int_equal(mtl_norm_from_json(json, NV, &back, err, sizeof err), 0);
    assert_true(mtl_norm_equal(&n, &back));
    assert_memory_equal(back.mean, mean, sizeof mean);
    assert_memory_equal(back.std, sd, sizeof sd);
    char *again = mtl_norm_to_json(&back);
    assert_string_equal(json, again);
    /* any feature count is accepted with n_features 0 */
    MtlNorm any;
    assert_int_equal(mtl_norm_from_json(json, 0, &any, err, sizeof err), 0);
    assert_true(mtl_norm_equal(&any, &back));
    mtl_norm_free(&any);
    free(again);
    free(json);
    /* one bit apart is not equal */
    back.std[3] = nextafterf(back.std[3], INFINITY);
    assert_false(mtl_norm_equal(&n, &back));
    mtl_norm_free(&back);

    /* one condition: no settings keys; k 0 and 1 are the same normalisation */
    float m1[2] = {1.5f, -2.25f}, s1[2] = {0.5f, 0.0f};
    MtlNorm one = {.n = 2, .mean = m1, .std = s1};
    json = mtl_norm_to_json(&one);
    assert_string_equal(json, "{\"version\":1,\"features\":2,\"conditions\":1,\"mean\":[[1.5,-2.25]],"
                              "\"std\":[[0.5,0]]}");
    assert_int_equal(mtl_norm_from_json(json, 2, &back, err, sizeof err), 0);
    assert_int_equal(back.k, 1);
    assert_null(back.centroids);
    assert_true(mtl_norm_equal(&one, &back));
    mtl_norm_free(&back);
    free(json);
}

static void test_json_rejects(void **state) {
    (void)state;
    static const char *const k1 = "\"version\":1,\"features\":2,\"conditions\":1";
    static const char *const cond2 =
        "\"version\":1,\"features\":2,\"conditions\":2,\"settings_mean\":[1,2,3],\"settings_scale\":[1,1,1],"
        "\"centroids\":[[0,0,100],[10,0.25,100]]";
    static const struct {
        const char *head, *tail, *message;
    } bad[] = {
        {"", "[1,2]", "expected a JSON object"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":1,\"mean\":[[1,2]],\"std\":[[1,1]]} x", "not valid JSON"},
        {"", "{\"version\":1,", "not valid JSON"},
        {"k1", ",\"mean\":[[1,NaN]],\"std\":[[1,1]]}", "not valid JSON"},
        {"k1", ",\"mean\":[[1,2]],\"std\":[[1,null]]}", "\"std\"[0][1] is not a number"},
        {"k1", ",\"mean\":[[1,1e39]],\"std\":[[1,1]]}", "\"mean\"[0][1] is not a finite float32 value"},
        {"k1", ",\"mean\":[[1,2]],\"std\":[[1,-0.5]]}", "\"std\"[0][1] is negative (-0.5)"},
        {"k1", ",\"mean\":[[1,2,3]],\"std\":[[1,1]]}", "\"mean\"[0] must be an array of 2 numbers (one per feature)"},
        {"k1", ",\"mean\":[[1,2]],\"std\":[[1,1]],\"std2\":1}", "unknown key \"std2\""},
        {"k1", ",\"mean\":[[1,2],[3,4]],\"std\":[[1,1]]}", "\"mean\" has 2 rows, expected 1"},
        {"k1", ",\"mean\":[[1,2]]}", "\"std\" is missing"},
        {"k1", ",\"mean\":[[1,2]],\"std\":[[1,1]],\"centroids\":[[1,2,3]]}",
         "\"centroids\" given with one operating condition"},
        {"", "{\"version\":2,\"features\":2,\"conditions\":1,\"mean\":[[1,2]],\"std\":[[1,1]]}",
         "format version 2, this runtime reads version 1"},
        {"", "{\"version\":1,\"features\":3,\"conditions\":1,\"mean\":[[1,2,3]],\"std\":[[1,1,1]]}",
         "3 features, but the data have 2"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":0,\"mean\":[],\"std\":[]}",
         "\"conditions\" must be a whole number from 1 to 64"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":65,\"mean\":[],\"std\":[]}",
         "\"conditions\" must be a whole number from 1 to 64"},
        {"", "{\"version\":1,\"features\":2.5,\"conditions\":1,\"mean\":[[1,2]],\"std\":[[1,1]]}",
         "\"features\" must be a whole number"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":2,\"mean\":[[1,2],[1,2]],\"std\":[[1,1],[1,1]]}",
         "\"settings_mean\" is missing (needed with 2 conditions)"},
        {"cond2", ",\"mean\":[[1,2],[1,2]],\"std\":[[1,1],[1,1]]}", NULL}, /* the good one */
        {"cond2", ",\"mean\":[[1,2]],\"std\":[[1,1]]}", "\"mean\" has 1 rows, expected 2"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":2,\"settings_mean\":[1,2,3],\"settings_scale\":[1,0,1],"
             "\"centroids\":[[0,0,100],[10,0.25,100]],\"mean\":[[1,2],[1,2]],\"std\":[[1,1],[1,1]]}",
         "\"settings_scale\"[1] must be positive, got 0"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":2,\"settings_mean\":[1,2],\"settings_scale\":[1,1,1],"
             "\"centroids\":[[0,0,100],[10,0.25,100]],\"mean\":[[1,2],[1,2]],\"std\":[[1,1],[1,1]]}",
         "\"settings_mean\" has 2 values, expected 3"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":2,\"settings_mean\":[1,2,3],\"settings_scale\":[1,1,1],"
             "\"centroids\":[[0,0,100]],\"mean\":[[1,2],[1,2]],\"std\":[[1,1],[1,1]]}",
         "\"centroids\" has 1 rows, expected 2"},
        {"", "{\"version\":1,\"features\":2,\"conditions\":2,\"settings_mean\":[1,2,3],\"settings_scale\":[1,1,1],"
             "\"centroids\":[[0,0,100],[10,\"x\",100]],\"mean\":[[1,2],[1,2]],\"std\":[[1,1],[1,1]]}",
         "\"centroids\"[1][1] is not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[1024], err[256] = "untouched";
        if (bad[i].head[0])
            snprintf(json, sizeof json, "{%s%s", !strcmp(bad[i].head, "k1") ? k1 : cond2, bad[i].tail);
        else
            snprintf(json, sizeof json, "%s", bad[i].tail);
        MtlNorm n;
        int rc = mtl_norm_from_json(json, 2, &n, err, sizeof err);
        if (!bad[i].message) {
            assert_int_equal(rc, 0);
            assert_int_equal(n.k, 2);
            mtl_norm_free(&n);
            continue;
        }
        if (rc != -1 || !strstr(err, bad[i].message) || strncmp(err, "normalisation: ", 15) != 0)
            fail_msg("case %zu: %s\n  rc %d, err \"%s\", expected \"%s\"", i, json, rc, err, bad[i].message);
        assert_null(n.mean);
        assert_null(n.std);
        assert_null(n.centroids);
    }
    char err[64];
    MtlNorm n;
    assert_int_equal(mtl_norm_from_json(NULL, 2, &n, err, sizeof err), -1);
}

/* ---- the synthetic fleet ---- */

/* Fault modes: both drawn, each with its own signature; mode 0 engines of the two-mode fleet
 * degrade like the original fleet's. */
static void test_fault_modes(void **state) {
    (void)state;
    SynthTruth truth;
    char *text = fleet(21, 1, 2, &truth);
    assert_int_equal(truth.n_engines, 100);
    int count[2] = {0, 0};
    for (int e = 0; e < 100; e++) {
        assert_in_range(truth.fault_mode[e], 0, 1);
        count[truth.fault_mode[e]]++;
    }
    assert_true(count[0] > 20 && count[1] > 20);
    /* s7 (column 11) falls in mode 0, rises in mode 1; s11 (column 15) rises in mode 0 only */
    RowIndex ri = row_index(text);
    double first[101][2] = {{0}}, last[101][2] = {{0}};
    int e = 0;
    for (const char *p = text; *p;) {
        double v[26];
        for (int j = 0; j < 26; j++) {
            char *end;
            v[j] = strtod(p, &end);
            assert_true(end > p);
            p = end;
        }
        e = (int)v[0];
        int64_t len = ri.start[e + 1] - ri.start[e], k = (int64_t)v[1];
        for (int s = 0; s < 2; s++) {
            double x = v[s ? 15 : 11];
            if (k <= 20) first[e][s] += x / 20;
            if (k > len - 20) last[e][s] += x / 20;
        }
        p = strchr(p, '\n') + 1;
    }
    for (e = 1; e <= 100; e++) {
        double d7 = last[e][0] - first[e][0], d11 = last[e][1] - first[e][1];
        if (truth.fault_mode[e - 1] == 0) { /* 20-cycle means: noise sd about 0.17 on s7 */
            assert_true(d7 < -0.7);
            assert_true(d11 > 0.25);
        } else {
            assert_true(d7 > 0.6);
            assert_true(fabs(d11) < 0.25);
        }
    }
    for (int i = 0; i < truth.n_rows; i++) assert_int_equal(truth.condition[i], 0);
    free(text);
    synth_truth_free(&truth);

    /* the default fleet: one mode, one condition */
    text = fleet(21, 1, 1, &truth);
    for (int i = 0; i < 100; i++) assert_int_equal(truth.fault_mode[i], 0);
    free(text);
    synth_truth_free(&truth);
    /* out of range: no fleet */
    size_t len;
    assert_null(synth_fleet_text(1, SYNTH_TRAIN, (SynthFleet){7, 1}, &len, NULL));
    assert_null(synth_fleet_text(1, SYNTH_TRAIN, (SynthFleet){1, 3}, &len, NULL));
}

static char *read_file(const char *dir, const char *name, size_t *len) {
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

/* The written multi-condition fleet is the built-in one: same text, same samples and norm. */
static void test_write_fleet(void **state) {
    (void)state;
    char dir[] = "/tmp/mtl_cond_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mtl_synth_write_fleet(dir, 8, 6, 2), 0);
    static const char *const names[] = {"train_synth.txt", "test_synth.txt", "RUL_synth.txt"};
    for (int part = 0; part < 3; part++) {
        size_t n1, n2;
        char *a = read_file(dir, names[part], &n1);
        char *b = synth_fleet_text(8, (SynthPart)part, (SynthFleet){6, 2}, &n2, NULL);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        free(a);
        free(b);
    }
    /* the RUL file is the default fleet's: lifetimes do not depend on the conditions */
    size_t n1, n2;
    char *r6 = read_file(dir, "RUL_synth.txt", &n1);
    char *r1 = synth_fleet_text(8, SYNTH_RUL, (SynthFleet){1, 1}, &n2, NULL);
    assert_int_equal(n1, n2);
    assert_memory_equal(r6, r1, n1);
    free(r6);
    free(r1);

    MtlDataConfig c = synth_cfg(8, 6, 6);
    c.synthetic_fault_modes = 2;
    MtlDataset a, av, b, bv, ta, tb;
    MtlNorm na, nb;
    assert_int_equal(mtl_data_load_train(&c, &a, &av, &na), 0);
    assert_non_null(strstr(a.source, "synthetic C-MAPSS-like fleet (seed 8, 6 operating conditions, 2 fault "
                                     "modes)"));
    assert_int_equal(mtl_data_load_test(&c, &na, &ta), 0);
    char train[1024], test[1024], rul[1024];
    snprintf(train, sizeof train, "%s/train_synth.txt", dir);
    snprintf(test, sizeof test, "%s/test_synth.txt", dir);
    snprintf(rul, sizeof rul, "%s/RUL_synth.txt", dir);
    c.train_path = train;
    c.test_path = test;
    c.rul_path = rul;
    assert_int_equal(mtl_data_load_train(&c, &b, &bv, &nb), 0);
    assert_int_equal(mtl_data_load_test(&c, &nb, &tb), 0);
    assert_true(mtl_norm_equal(&na, &nb));
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.x, b.x, (size_t)a.n * 17 * sizeof(float));
    assert_memory_equal(ta.x, tb.x, (size_t)ta.n * 17 * sizeof(float));
    assert_memory_equal(ta.y[0], tb.y[0], (size_t)ta.n * sizeof(float));
    MtlDataset *all[] = {&a, &av, &b, &bv, &ta, &tb};
    for (int i = 0; i < 6; i++) mtl_dataset_free(all[i]);
    mtl_norm_free(&na);
    mtl_norm_free(&nb);
    assert_int_equal(mtl_synth_write_fleet("/nonexistent/dir", 8, 7, 1), -1);
    for (int i = 0; i < 3; i++) {
        snprintf(train, sizeof train, "%s/%s", dir, names[i]);
        remove(train);
    }
    rmdir(dir);
}

/* ---- the model table ---- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static char *with_data_keys(const char *good, const char *keys) {
    const char *at = strstr(good, "\"window_stride\": 1}");
    assert_non_null(at);
    size_t n = strlen(good) + strlen(keys) + 8;
    char *s = malloc(n);
    snprintf(s, n, "%.*s\"window_stride\": 1%s}%s", (int)(at - good), good, keys,
             at + strlen("\"window_stride\": 1}"));
    return s;
}

static void test_model_info_keys(void **state) {
    (void)state;
    char *good = slurp(MTL_RUNTIME_FIXTURES "/model_good.json"), err[512];
    MtlModelInfo m;
    assert_int_equal(mtl_model_info_parse(good, &m, err, sizeof err), 0);
    assert_int_equal(m.data.conditions, 1);
    assert_int_equal(m.data.synthetic_conditions, 1);
    assert_int_equal(m.data.synthetic_fault_modes, 1);
    mtl_model_info_free(&m);
    char *s = with_data_keys(good, ", \"conditions\": 6, \"synthetic_conditions\": 6, \"synthetic_fault_modes\": 2");
    assert_int_equal(mtl_model_info_parse(s, &m, err, sizeof err), 0);
    assert_int_equal(m.data.conditions, 6);
    assert_int_equal(m.data.synthetic_conditions, 6);
    assert_int_equal(m.data.synthetic_fault_modes, 2);
    mtl_model_info_free(&m);
    free(s);
    static const struct {
        const char *keys, *message;
    } bad[] = {
        {", \"conditions\": 0", "\"conditions\" must be an integer >= 1"},
        {", \"conditions\": 65", "\"conditions\" must be from 1 to 64, got 65"},
        {", \"synthetic_conditions\": 7", "\"synthetic_conditions\" must be from 1 to 6, got 7"},
        {", \"synthetic_fault_modes\": 3", "\"synthetic_fault_modes\" must be from 1 to 2, got 3"},
        {", \"conditions\": 2.5", "\"conditions\" must be an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = with_data_keys(good, bad[i].keys);
        int rc = mtl_model_info_parse(s, &m, err, sizeof err);
        if (rc != -1 || !strstr(err, bad[i].message))
            fail_msg("case %zu: rc %d, err \"%s\", expected \"%s\"", i, rc, err, bad[i].message);
        free(s);
    }
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_true_conditions),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_k1_is_plain_zscore),
        cmocka_unit_test(test_per_condition_zscores),
        cmocka_unit_test(test_conditions_unbury_signal),
        cmocka_unit_test(test_test_rows_use_training_stats),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_fault_modes),
        cmocka_unit_test(test_write_fleet),
        cmocka_unit_test(test_model_info_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
