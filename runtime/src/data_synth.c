/* The built-in synthetic fleet: a seeded, C-MAPSS-like run-to-failure data set used when no
 * training file is given, so a trainer runs (and its tests run) without NASA's files.
 *
 * It is produced as the exact text of train/test/RUL files, which the loaders parse with the
 * same code as real files and mtl_synth_write() saves unchanged. Each engine i has a lifetime
 * L in [128, 362] cycles and degradation d(c) = w0 + (1 - w0) exp(-(L - c) / 50), which drives
 * fourteen sensors with FD001-like levels, drifts and noise; the seven sensors that are constant
 * on FD001 are constant here too, and setting3 is fixed at 100. It is not a physical model and
 * does not imitate FD001's statistics beyond those rough levels.
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

static void write_engine(FILE *m, DataRng *rng, SynthEngine e, int engine_id) {
    double w0 = 0.05 * data_rng_uniform(rng);        /* initial wear */
    double scale = 0.9 + 0.2 * data_rng_uniform(rng); /* engine-to-engine sensitivity */
    double offset[21];
    for (int k = 0; k < 21; k++) offset[k] = 0.3 * synth_sensors[k].sd * data_rng_normal(rng);
    for (int c = 1; c <= e.observed; c++) {
        double d = w0 + (1 - w0) * exp(-(double)(e.life - c) / SYNTH_TAU);
        double s1 = 0.0022 * data_rng_normal(rng), s2 = 0.0003 * data_rng_normal(rng);
        fprintf(m, "%d %d", engine_id, c);
        put_fixed(m, s1, 4);
        put_fixed(m, s2, 4);
        fputs(" 100.0", m);
        for (int k = 0; k < 21; k++) {
            const struct SynthSensor *s = &synth_sensors[k];
            double v = s->base;
            if (s->sd > 0) v += offset[k] + scale * s->drift * d + s->sd * data_rng_normal(rng);
            put_fixed(m, v, s->decimals);
        }
        fputs(" \n", m); /* a trailing blank, as in NASA's files */
    }
}

char *synth_fleet_text(uint64_t seed, SynthPart part, size_t *len) {
    char *buf = NULL;
    FILE *m = open_memstream(&buf, len);
    if (!m) return NULL;
    DataRng rng;
    for (int i = 0; i < synth_n_engines; i++) {
        SynthEngine e = engine_start(&rng, seed, part != SYNTH_TRAIN, i);
        if (part == SYNTH_RUL) fprintf(m, "%d\n", e.life - e.observed);
        else write_engine(m, &rng, e, i + 1);
    }
    if (ferror(m)) {
        fclose(m);
        free(buf);
        return NULL;
    }
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int write_file(const char *dir, const char *name, uint64_t seed, SynthPart part) {
    char *path = data_printf("%s/%s", dir, name);
    size_t len;
    char *text = synth_fleet_text(seed, part, &len);
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

int mtl_synth_write(const char *dir, uint64_t seed) {
    if (write_file(dir, "train_synth.txt", seed, SYNTH_TRAIN) != 0) return -1;
    if (write_file(dir, "test_synth.txt", seed, SYNTH_TEST) != 0) return -1;
    return write_file(dir, "RUL_synth.txt", seed, SYNTH_RUL);
}
