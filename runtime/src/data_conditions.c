/* Operating conditions for the per-condition normalisation (conditions = k > 1, C-MAPSS only):
 * k-means on the three operating settings of the training part's rows, and the nearest-centroid
 * rule that assigns every row (training, validation, test, predict inputs) to a condition.
 *
 * The clustering runs in standardised settings (each setting minus its mean over the training
 * rows, divided by its population std). The raw scales differ by orders of magnitude (altitude
 * 0-42 thousand ft, Mach 0-0.84, throttle resolver angle 60-100): in raw units the distance is
 * ruled by TRA's 40-point steps and altitude, and a condition told apart mainly by Mach would be
 * invisible; with the settings standardised every setting counts by how much it varies, and the
 * result does not depend on the units a file happens to use. A constant setting gets scale 1 (it
 * adds nothing to any distance). The same metric assigns new rows, so it is stored in MtlNorm.
 *
 * Deterministic for a seed: k-means++ initialisation from the project's generator (stream
 * DATA_STREAM_CONDITIONS, one sub-stream per restart), KMEANS_RESTARTS restarts keeping the
 * lowest inertia (the first of equal ones), Lloyd iterations until no assignment changes (or
 * KMEANS_MAX_ITER), distance ties to the lower index. The winning centroids are sorted by
 * (setting1, setting2, setting3), so condition numbers do not depend on which restart won.
 */
#include "data_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KMEANS_RESTARTS 10
#define KMEANS_MAX_ITER 300

static int cmp_triple(const void *a, const void *b) {
    const double *x = a, *y = b;
    for (int j = 0; j < 3; j++)
        if (x[j] != y[j]) return x[j] < y[j] ? -1 : 1;
    return 0;
}

/* Distinct (setting1, setting2, setting3) triples among m rows; -1 on allocation failure. */
static int64_t distinct_settings(const double *p, int64_t m) {
    double *c = malloc((size_t)(m > 0 ? m : 1) * 3 * sizeof *c);
    if (!c) return -1;
    memcpy(c, p, (size_t)m * 3 * sizeof *c);
    qsort(c, (size_t)m, 3 * sizeof *c, cmp_triple);
    int64_t d = 0;
    for (int64_t i = 0; i < m; i++)
        if (i == 0 || cmp_triple(c + 3 * i, c + 3 * (i - 1)) != 0) d++;
    free(c);
    return d;
}

static double dist2(const double *a, const double *b) {
    double s = 0;
    for (int j = 0; j < 3; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

static int nearest(const double *z, const double *cent, int k, double *d_out) {
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < k; c++) {
        double d = dist2(z, cent + 3 * c);
        if (d < bd) { /* strict: ties go to the lower index */
            bd = d;
            best = c;
        }
    }
    if (d_out) *d_out = bd;
    return best;
}

int data_condition_of(const MtlNorm *norm, const double *s) {
    if (norm->k <= 1 || !norm->centroids) return 0;
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < norm->k; c++) {
        double d = 0;
        for (int j = 0; j < 3; j++) {
            double u = (s[j] - (double)norm->centroids[3 * c + j]) / (double)norm->settings_scale[j];
            d += u * u;
        }
        if (d < bd) {
            bd = d;
            best = c;
        }
    }
    return best;
}

void data_conditions_assign(const MtlNorm *norm, const double *settings, int64_t n, int32_t *cond) {
    for (int64_t i = 0; i < n; i++) cond[i] = (int32_t)data_condition_of(norm, settings + 3 * i);
}

/* k-means++ seeding: the first centre uniformly, each next one with probability proportional
 * to the squared distance to the nearest centre chosen so far. */
static void kmeanspp(const double *z, int64_t m, int k, DataRng *rng, double *cent, double *d2) {
    int64_t first = (int64_t)data_rng_below(rng, (uint64_t)m);
    memcpy(cent, z + 3 * first, 3 * sizeof *cent);
    for (int64_t i = 0; i < m; i++) d2[i] = dist2(z + 3 * i, cent);
    for (int c = 1; c < k; c++) {
        double total = 0;
        for (int64_t i = 0; i < m; i++) total += d2[i];
        int64_t pick = -1;
        if (total > 0 && isfinite(total)) {
            double target = data_rng_uniform(rng) * total, cum = 0;
            for (int64_t i = 0; i < m && pick < 0; i++) {
                cum += d2[i];
                if (cum > target && d2[i] > 0) pick = i;
            }
            /* rounding can leave the running sum just short of target: the last candidate */
            for (int64_t i = m - 1; pick < 0 && i >= 0; i--)
                if (d2[i] > 0) pick = i;
        }
        if (pick < 0) pick = (int64_t)data_rng_below(rng, (uint64_t)m); /* degenerate: all equal */
        memcpy(cent + 3 * c, z + 3 * pick, 3 * sizeof *cent);
        for (int64_t i = 0; i < m; i++) {
            double d = dist2(z + 3 * i, cent + 3 * c);
            if (d < d2[i]) d2[i] = d;
        }
    }
}

/* Lloyd's iterations from the given centres; returns the inertia (sum of squared distances to
 * the nearest final centre). */
static double lloyd(const double *z, int64_t m, int k, double *cent, int32_t *assign, double *d2,
                    double *sum, int64_t *count) {
    for (int64_t i = 0; i < m; i++) assign[i] = -1;
    for (int it = 0; it < KMEANS_MAX_ITER; it++) {
        int64_t changed = 0;
        for (int64_t i = 0; i < m; i++) {
            int c = nearest(z + 3 * i, cent, k, &d2[i]);
            if (assign[i] != c) {
                assign[i] = c;
                changed++;
            }
        }
        if (changed == 0) break;
        memset(sum, 0, (size_t)k * 3 * sizeof *sum);
        memset(count, 0, (size_t)k * sizeof *count);
        for (int64_t i = 0; i < m; i++) {
            for (int j = 0; j < 3; j++) sum[3 * assign[i] + j] += z[3 * i + j];
            count[assign[i]]++;
        }
        for (int c = 0; c < k; c++) {
            if (count[c] > 0) {
                for (int j = 0; j < 3; j++) cent[3 * c + j] = sum[3 * c + j] / (double)count[c];
                continue;
            }
            /* An empty cluster restarts at the point farthest from its centre; that point's
             * distance is then 0, so a second empty cluster takes another one. */
            int64_t far = -1;
            for (int64_t i = 0; i < m; i++)
                if (d2[i] > 0 && (far < 0 || d2[i] > d2[far])) far = i;
            if (far >= 0) {
                memcpy(cent + 3 * c, z + 3 * far, 3 * sizeof *cent);
                d2[far] = 0;
            }
        }
    }
    double inertia = 0;
    for (int64_t i = 0; i < m; i++) {
        double d;
        nearest(z + 3 * i, cent, k, &d);
        inertia += d;
    }
    return inertia;
}

int data_conditions_fit(const double *settings, int64_t n, const bool *skip, int k, uint64_t seed,
                        const char *name, MtlNorm *norm) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += !(skip && skip[i]);
    size_t rows = (size_t)(m > 0 ? m : 1);
    double *z = malloc(rows * 3 * sizeof *z), *d2 = malloc(rows * sizeof *d2);
    int32_t *assign = malloc(rows * sizeof *assign);
    double *cent = malloc((size_t)k * 3 * sizeof *cent), *best = malloc((size_t)k * 3 * sizeof *best);
    double *sum = malloc((size_t)k * 3 * sizeof *sum);
    int64_t *count = malloc((size_t)k * sizeof *count);
    float *out = malloc((size_t)k * 3 * sizeof *out);
    int rc = -1;
    if (!z || !d2 || !assign || !cent || !best || !sum || !count || !out) goto oom;
    m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(skip && skip[i])) memcpy(z + 3 * m++, settings + 3 * i, 3 * sizeof *z);
    int64_t distinct = distinct_settings(z, m);
    if (distinct < 0) goto oom;
    if (distinct < k) {
        fprintf(stderr, "%s: error: conditions = %d but the training data have only %lld distinct "
                        "operating setting%s (setting1..setting3); use conditions = %lld or fewer\n",
                name, k, (long long)distinct, distinct == 1 ? "" : "s",
                (long long)(distinct > 0 ? distinct : 1));
        goto done;
    }

    /* Standardise (see the top of the file). The float values are what MtlNorm keeps, so the
     * clustering runs in exactly the metric that later assigns rows. */
    for (int j = 0; j < 3; j++) {
        double s = 0, lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < m; i++) {
            s += z[3 * i + j];
            lo = fmin(lo, z[3 * i + j]);
            hi = fmax(hi, z[3 * i + j]);
        }
        double mean = lo == hi ? lo : s / (double)m, var = 0;
        if (lo != hi) {
            for (int64_t i = 0; i < m; i++) var += (z[3 * i + j] - mean) * (z[3 * i + j] - mean);
            var /= (double)m;
        }
        float fm = (float)mean, fs = (float)sqrt(var);
        if (!isfinite(fs)) fs = FLT_MAX;
        if (!(fs > 0)) fs = var > 0 ? FLT_MIN : 1.0f; /* constant, or a spread below float range */
        norm->settings_mean[j] = fm;
        norm->settings_scale[j] = fs;
        for (int64_t i = 0; i < m; i++) z[3 * i + j] = (z[3 * i + j] - (double)fm) / (double)fs;
    }

    double best_inertia = INFINITY;
    for (int r = 0; r < KMEANS_RESTARTS; r++) {
        DataRng rng;
        data_rng_seed(&rng, seed, DATA_STREAM_CONDITIONS, (uint64_t)r);
        kmeanspp(z, m, k, &rng, cent, d2);
        double inertia = lloyd(z, m, k, cent, assign, d2, sum, count);
        if (r == 0 || inertia < best_inertia) {
            best_inertia = inertia;
            memcpy(best, cent, (size_t)k * 3 * sizeof *best);
        }
    }
    /* back to the file's units, sorted so condition numbers are stable */
    for (int c = 0; c < k; c++)
        for (int j = 0; j < 3; j++)
            best[3 * c + j] = (double)norm->settings_mean[j] + (double)norm->settings_scale[j] * best[3 * c + j];
    qsort(best, (size_t)k, 3 * sizeof *best, cmp_triple);
    for (int i = 0; i < k * 3; i++) out[i] = (float)best[i];
    norm->k = k;
    norm->centroids = out;
    out = NULL;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "%s: error: out of memory while finding the operating conditions\n", name);
done:
    free(z);
    free(d2);
    free(assign);
    free(cent);
    free(best);
    free(sum);
    free(count);
    free(out);
    return rc;
}
