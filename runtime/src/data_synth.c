/* The built-in synthetic fleet: a seeded, C-MAPSS-like run-to-failure data set used when no
 * training file is given, so a trainer runs (and its tests run) without NASA's files.
 *
 * It is produced as the exact text of train/test/RUL files, which the loaders parse with the
 * same code as real files and mtl_synth_write() saves unchanged. Each engine i has a lifetime
 * L in [128, 362] cycles and degradation d(c) = w0 + (1 - w0) exp(-(L - c) / 50), which drives
 * fourteen sensors with FD001-like levels, drifts and noise; the seven sensors that are constant
 * on FD001 are constant here too, and setting3 is fixed at 100. It is not a physical model and
 * does not imitate FD001's statistics beyond those rough levels.
 *
 * Other fleets (SynthFleet; the default {1, 1} above is byte-for-byte the original):
 *   conditions K > 1   every cycle runs at one of K operating points drawn at random, like
 *                      FD002/FD004: (altitude, Mach, TRA) = (0, 0, 100), (10, 0.25, 100),
 *                      (20, 0.70, 100), (25, 0.62, 60), (35, 0.84, 100), (42, 0.84, 100) (the
 *                      first K), with small noise on altitude and Mach. Each sensor's level moves
 *                      with the condition (level = base x (1 + amp x L[c])) far more than
 *                      degradation moves it, and its noise, drift and engine offset are scaled
 *                      per condition; the FD001-constant sensors and TRA are constant within a
 *                      condition. Without per-condition normalisation the signal is buried.
 *   fault modes M = 2  each engine degrades by one of two signatures (like FD003): mode 0 is the
 *                      drift above; mode 1 leaves s11, s15, s20, s21 flat and moves s7, s8, s9,
 *                      s12, s13, s14 the other way.
 * The RUL file does not depend on K or M (lifetimes are drawn before anything else).
 */
#include "data_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const int synth_n_engines = 100;

#define SYNTH_MIN_LIFE 128
#define SYNTH_MAX_LIFE 362
#define SYNTH_MIN_TEST_CYCLES 31 /* FD001's shortest test engine */
#define SYNTH_TAU 50.0           /* cycles over which degradation becomes visible */

/* Per sensor s1..s21: healthy level, noise sd, change at failure, printed decimals
 * (levels and drifts read off FD001's early and last cycles). */
static const struct SynthSensor {
    double base, sd, drift;
    int decimals;
} synth_sensors[21] = {
    {518.67, 0, 0, 2},       {642.37, 0.35, 1.25, 2},  {1586.9, 4.5, 14.5, 2},   {1402.7, 5.5, 24.7, 2},
    {14.62, 0, 0, 2},        {21.61, 0, 0, 2},         {553.96, 0.55, -2.35, 2}, {2388.05, 0.05, 0.17, 2},
    {9057.0, 8.0, 38.5, 2},  {1.30, 0, 0, 2},          {47.35, 0.16, 0.75, 2},   {521.92, 0.45, -2.0, 2},
    {2388.05, 0.05, 0.17, 2}, {8138.3, 7.5, 27.0, 2},  {8.418, 0.025, 0.097, 4}, {0.03, 0, 0, 2},
    {392.26, 1.1, 3.8, 0},   {2388, 0, 0, 0},          {100.00, 0, 0, 2},        {38.93, 0.12, -0.46, 2},
    {23.36, 0.075, -0.276, 4},
};

/* Mode 1's change at failure per sensor (mode 0 uses synth_sensors[].drift). */
static const double synth_drift_mode1[21] = {
    0, 1.0, 11.0, 18.0, 0, 0, 2.0, -0.12, -30.0, 0, 0, 1.8, -0.12, -25.0, 0, 0, 3.0, 0, 0, 0, 0,
};

/* The operating points (altitude in thousands of ft, Mach, TRA), FD002's six. */
static const double synth_points[MTL_SYNTH_MAX_CONDITIONS][3] = {
    {0, 0, 100}, {10, 0.25, 100}, {20, 0.70, 100}, {25, 0.62, 60}, {35, 0.84, 100}, {42, 0.84, 100},
};
/* Per condition: the level shift L[c] (times each sensor's amplitude) and the scale of noise,
 * drift and engine offsets. */
static const double synth_level[MTL_SYNTH_MAX_CONDITIONS] = {0, -0.12, -0.20, -0.35, -0.28, -0.31};
static const double synth_scale[MTL_SYNTH_MAX_CONDITIONS] = {1.0, 1.3, 0.8, 1.6, 1.1, 0.9};
/* How strongly each sensor's level follows the condition. */
static const double synth_amp[21] = {
    0.6, 0.5, 0.55, 0.7, 0.9, 0.8, 1.0, 0.3, 0.45, 0.6, 0.75, 1.0, 0.3, 0.4, 0.35, 0.8, 0.5, 0.3, 0.9, 0.9, 0.9,
};

typedef struct SynthEngine {
    int life;     /* failure cycle: RUL 0 there */
    int observed; /* cycles written: life (train) or the truncation point (test) */
} SynthEngine;

/* Each engine has its own stream, so the RUL file can be produced without the sensor draws
 * and still agree with the test rows. */
static SynthEngine engine_start(DataRng *rng, uint64_t seed, bool test, int i) {
    data_rng_seed(rng, seed, DATA_STREAM_SYNTH, (test ? 1000000u : 0u) + (uint64_t)i);
    SynthEngine e;
    e.life = SYNTH_MIN_LIFE + (int)data_rng_below(rng, SYNTH_MAX_LIFE - SYNTH_MIN_LIFE + 1);
    e.observed = test ? SYNTH_MIN_TEST_CYCLES + (int)data_rng_below(rng, (uint64_t)(e.life - SYNTH_MIN_TEST_CYCLES))
                      : e.life;
    return e;
}

/* Fixed-point printing of v with the given decimals: the same text as "%.*f" up to the rounding
 * of exact halves, and several times faster (printf's exact binary-to-decimal conversion
 * dominated generating the fleet). */
static void put_fixed(FILE *m, double v, int decimals) {
    static const double scale[5] = {1, 10, 100, 1000, 10000};
    long long q = llround(v * scale[decimals]);
    char buf[40], *p = buf + sizeof buf;
    *--p = '\0';
    unsigned long long a = q < 0 ? (unsigned long long)(-q) : (unsigned long long)q;
    for (int i = 0; i < decimals; i++, a /= 10) *--p = (char)('0' + a % 10);
    if (decimals > 0) *--p = '.';
    do {
        *--p = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    if (q < 0) *--p = '-';
    *--p = ' ';
    fputs(p, m);
}

/* Rows' true conditions as they are written (SynthTruth). */
typedef struct CondLog {
    int32_t *v;
    int64_t n, cap;
    bool failed;
} CondLog;

static void cond_push(CondLog *g, int32_t c) {
    if (g->failed) return;
    if (g->n == g->cap) {
        int64_t cap = g->cap ? 2 * g->cap : 16384;
        int32_t *nv = realloc(g->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            g->failed = true;
            return;
        }
        g->v = nv;
        g->cap = cap;
    }
    g->v[g->n++] = c;
}

/* Writes one engine; returns its fault mode. The draws of the original fleet come first and in
 * the same order, and the others are drawn only for K > 1 / M > 1, so {1, 1} is unchanged. */
static int write_engine(FILE *m, DataRng *rng, SynthEngine e, int engine_id, SynthFleet fl, CondLog *log) {
    double w0 = 0.05 * data_rng_uniform(rng);        /* initial wear */
    double scale = 0.9 + 0.2 * data_rng_uniform(rng); /* engine-to-engine sensitivity */
    double offset[21];
    for (int k = 0; k < 21; k++) offset[k] = 0.3 * synth_sensors[k].sd * data_rng_normal(rng);
    int mode = fl.fault_modes > 1 ? (int)data_rng_below(rng, (uint64_t)fl.fault_modes) : 0;
    for (int c = 1; c <= e.observed; c++) {
        double d = w0 + (1 - w0) * exp(-(double)(e.life - c) / SYNTH_TAU);
        int oc = 0;
        fprintf(m, "%d %d", engine_id, c);
        if (fl.conditions > 1) {
            oc = (int)data_rng_below(rng, (uint64_t)fl.conditions);
            double alt = synth_points[oc][0] + 0.003 * data_rng_normal(rng);
            double mach = synth_points[oc][1] + 0.0003 * data_rng_normal(rng);
            put_fixed(m, alt, 4);
            put_fixed(m, mach, 4);
            put_fixed(m, synth_points[oc][2], 1);
        } else {
            double s1 = 0.0022 * data_rng_normal(rng), s2 = 0.0003 * data_rng_normal(rng);
            put_fixed(m, s1, 4);
            put_fixed(m, s2, 4);
            fputs(" 100.0", m);
        }
        if (log) cond_push(log, oc);
        for (int k = 0; k < 21; k++) {
            const struct SynthSensor *s = &synth_sensors[k];
            double drift = mode == 1 ? synth_drift_mode1[k] : s->drift;
            double v = s->base;
            if (fl.conditions > 1) {
                v = s->base * (1 + synth_amp[k] * synth_level[oc]);
                if (s->sd > 0)
                    v += synth_scale[oc] * (offset[k] + scale * drift * d + s->sd * data_rng_normal(rng));
            } else if (s->sd > 0) {
                v += offset[k] + scale * drift * d + s->sd * data_rng_normal(rng);
            }
            put_fixed(m, v, s->decimals);
        }
        fputs(" \n", m); /* a trailing blank, as in NASA's files */
    }
    return mode;
}

void synth_truth_free(SynthTruth *t) {
    if (!t) return;
    free(t->condition);
    free(t->fault_mode);
    memset(t, 0, sizeof *t);
}

char *synth_fleet_text(uint64_t seed, SynthPart part, SynthFleet fleet, size_t *len, SynthTruth *truth) {
    if (truth) memset(truth, 0, sizeof *truth);
    if (fleet.conditions < 1) fleet.conditions = 1;
    if (fleet.fault_modes < 1) fleet.fault_modes = 1;
    if (fleet.conditions > MTL_SYNTH_MAX_CONDITIONS || fleet.fault_modes > MTL_SYNTH_MAX_FAULT_MODES)
        return NULL;
    char *buf = NULL;
    FILE *m = open_memstream(&buf, len);
    if (!m) return NULL;
    CondLog log = {0};
    int32_t *modes = NULL;
    bool want = truth && part != SYNTH_RUL;
    if (want && !(modes = calloc((size_t)synth_n_engines, sizeof *modes))) log.failed = true;
    DataRng rng;
    for (int i = 0; i < synth_n_engines; i++) {
        SynthEngine e = engine_start(&rng, seed, part != SYNTH_TRAIN, i);
        if (part == SYNTH_RUL) {
            fprintf(m, "%d\n", e.life - e.observed);
        } else {
            int mode = write_engine(m, &rng, e, i + 1, fleet, want ? &log : NULL);
            if (modes) modes[i] = mode;
        }
    }
    bool bad = ferror(m) != 0;
    if (fclose(m) != 0 || bad || log.failed) {
        free(buf);
        free(log.v);
        free(modes);
        return NULL;
    }
    if (want) {
        truth->n_rows = log.n;
        truth->condition = log.v;
        truth->n_engines = synth_n_engines;
        truth->fault_mode = modes;
    }
    return buf;
}

static int write_file(const char *dir, const char *name, uint64_t seed, SynthPart part, SynthFleet fleet) {
    char *path = data_printf("%s/%s", dir, name);
    size_t len;
    char *text = synth_fleet_text(seed, part, fleet, &len, NULL);
    int rc = -1;
    if (!path || !text) {
        fprintf(stderr, "%s: error: out of memory\n", path ? path : name);
    } else {
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "%s: error: cannot open for writing: %s\n", path, strerror(errno));
        } else {
            bool ok = fwrite(text, 1, len, f) == len;
            int err = errno;
            if (fclose(f) != 0 && ok) {
                ok = false;
                err = errno;
            }
            if (!ok) fprintf(stderr, "%s: error: write failed: %s\n", path, strerror(err));
            else rc = 0;
        }
    }
    free(text);
    free(path);
    return rc;
}

int mtl_synth_write_fleet(const char *dir, uint64_t seed, int conditions, int fault_modes) {
    SynthFleet fleet = {conditions > 1 ? conditions : 1, fault_modes > 1 ? fault_modes : 1};
    if (fleet.conditions > MTL_SYNTH_MAX_CONDITIONS || fleet.fault_modes > MTL_SYNTH_MAX_FAULT_MODES) {
        fprintf(stderr, "%s: error: the synthetic fleet has 1 to %d operating conditions and 1 to %d "
                        "fault modes, got %d and %d\n", dir, MTL_SYNTH_MAX_CONDITIONS,
                MTL_SYNTH_MAX_FAULT_MODES, conditions, fault_modes);
        return -1;
    }
    if (write_file(dir, "train_synth.txt", seed, SYNTH_TRAIN, fleet) != 0) return -1;
    if (write_file(dir, "test_synth.txt", seed, SYNTH_TEST, fleet) != 0) return -1;
    return write_file(dir, "RUL_synth.txt", seed, SYNTH_RUL, fleet);
}

int mtl_synth_write(const char *dir, uint64_t seed) { return mtl_synth_write_fleet(dir, seed, 1, 1); }
