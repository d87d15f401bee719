/* JSON forms of a run's settings and progress (train_state.h). cJSON prints a double with 17
 * significant digits whenever 15 do not read back exactly, so values survive a round trip bit
 * for bit; infinities (the "best so far" before any score) are written as null. */
#include "train_state.h"

#include "mtl_runtime.h"

#include <cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void train_progress_alloc(TrainProgress *p, int n_tasks, int n_groups) {
    memset(p, 0, sizeof *p);
    p->n_tasks = n_tasks;
    p->n_groups = n_groups;
    p->loss_sum = calloc((size_t)(n_tasks > 0 ? n_tasks : 1), sizeof *p->loss_sum);
    p->plateau_lr = calloc((size_t)(n_groups > 0 ? n_groups : 1), sizeof *p->plateau_lr);
    if (!p->loss_sum || !p->plateau_lr) {
        fprintf(stderr, "trainer: error: out of memory\n");
        exit(1);
    }
    mtl_plateau_init(&p->plateau);
    mtl_early_stop_init(&p->early);
}

void train_progress_free(TrainProgress *p) {
    free(p->loss_sum);
    free(p->plateau_lr);
    p->loss_sum = NULL;
    p->plateau_lr = NULL;
}

/* "%.17g" reads back bit for bit; cJSON's own printing stops at 15 digits whenever those read
 * back within its tolerance, which is not exact */
static cJSON *exact_number(double v) {
    char num[40];
    snprintf(num, sizeof num, "%.17g", v);
    return cJSON_CreateRaw(num);
}

static void add_d(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddItemToObject(o, key, exact_number(v));
    else cJSON_AddNullToObject(o, key);
}

/* integers beyond 2^53 do not survive a double: counts are written as decimal strings */
static void add_i(cJSON *o, const char *key, int64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v);
    cJSON_AddStringToObject(o, key, num);
}

static char *print_and_free(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) {
        fprintf(stderr, "trainer: error: out of memory\n");
        exit(1);
    }
    return s;
}

char *train_settings_json(const TrainSettings *s) {
    cJSON *o = cJSON_CreateObject();
    add_i(o, "epochs", s->epochs);
    add_i(o, "batch", s->batch);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    add_i(o, "threads", s->threads);
    cJSON_AddBoolToObject(o, "has_lr", s->has_lr);
    add_d(o, "lr", s->lr);
    add_d(o, "validation", s->validation);
    const MtlProtocol *p = &s->protocol;
    add_i(o, "warmup_epochs", p->warmup_epochs);
    add_d(o, "warmup_start", p->warmup_start);
    add_d(o, "plateau_factor", p->plateau_factor);
    add_i(o, "plateau_patience", p->plateau_patience);
    add_d(o, "min_lr", p->min_lr);
    add_d(o, "clip_norm", p->clip_norm);
    add_d(o, "ema", p->ema_decay);
    add_i(o, "patience", p->patience);
    cJSON_AddBoolToObject(o, "select_on_test", p->select_on_test);
    add_i(o, "max_bad_steps", p->max_bad_steps);
    add_i(o, "save_every", s->save_every);
    add_i(o, "save_every_steps", s->save_every_steps);
    return print_and_free(o);
}

char *train_progress_json(const TrainProgress *p) {
    cJSON *o = cJSON_CreateObject();
    add_i(o, "epoch", p->epoch);
    add_i(o, "step", p->step);
    add_i(o, "epoch_step", p->epoch_step);
    add_i(o, "epoch_samples", p->epoch_samples);
    cJSON *ls = cJSON_AddArrayToObject(o, "loss_sum");
    for (int k = 0; k < p->n_tasks; k++) cJSON_AddItemToArray(ls, exact_number(p->loss_sum[k]));
    add_d(o, "norm_sum", p->norm_sum);
    add_i(o, "norm_count", p->norm_count);
    add_i(o, "clipped", p->clipped);
    cJSON *lr = cJSON_AddArrayToObject(o, "plateau_lr");
    for (int g = 0; g < p->n_groups; g++) cJSON_AddItemToArray(lr, exact_number(p->plateau_lr[g]));
    add_d(o, "plateau_best", p->plateau.best);
    add_i(o, "plateau_bad_epochs", p->plateau.bad_epochs);
    add_i(o, "plateau_reductions", p->plateau.reductions);
    add_d(o, "early_best", p->early.best);
    add_i(o, "early_best_epoch", p->early.best_epoch);
    add_i(o, "early_bad_epochs", p->early.bad_epochs);
    add_i(o, "skipped", p->skipped);
    add_i(o, "bad_in_row", p->bad_in_row);
    cJSON_AddBoolToObject(o, "stopped_early", p->stopped_early);
    add_i(o, "ema_updates", p->ema_updates);
    add_i(o, "log_bytes", p->log_bytes);
    char hash[32];
    snprintf(hash, sizeof hash, "%llu", (unsigned long long)p->log_hash);
    cJSON_AddStringToObject(o, "log_hash", hash);
    add_d(o, "train_seconds", p->train_seconds);
    return print_and_free(o);
}

/* ---- parsing ------------------------------------------------------------------------------ */

typedef struct Rd {
    const cJSON *o;
    char *err;
    size_t err_size;
    int bad;
} Rd;

static const cJSON *item(Rd *r, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->o, key);
    if (!v && !r->bad) {
        mtl_errf(r->err, r->err_size, "missing \"%s\"", key);
        r->bad = 1;
    }
    return v;
}

/* counts are bounded by 2^53: far beyond any real run, and products of two of them (a step
 * count times a batch) cannot overflow 64 bits unnoticed in the callers' checks */
#define COUNT_MAX 9007199254740992LL

static int64_t get_i(Rd *r, const char *key, int64_t lo) {
    const cJSON *v = item(r, key);
    if (!v) return 0;
    char *end = NULL;
    errno = 0;
    long long x = cJSON_IsString(v) ? strtoll(v->valuestring, &end, 10) : 0;
    if (!cJSON_IsString(v) || errno || end == v->valuestring || *end || x < lo || x > COUNT_MAX) {
        if (!r->bad)
            mtl_errf(r->err, r->err_size, "\"%s\" is not a count from %lld to 2^53", key, (long long)lo);
        r->bad = 1;
        return 0;
    }
    return x;
}

/* a seed: any 64-bit unsigned value */
static uint64_t get_u(Rd *r, const char *key) {
    const cJSON *v = item(r, key);
    if (!v) return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = cJSON_IsString(v) && v->valuestring[0] != '-' ? strtoull(v->valuestring, &end, 10) : 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '-' || errno || end == v->valuestring || *end) {
        if (!r->bad) mtl_errf(r->err, r->err_size, "\"%s\" is not a 64-bit unsigned integer", key);
        r->bad = 1;
        return 0;
    }
    return x;
}

/* null reads as +infinity (see add_d) */
static double get_d(Rd *r, const char *key) {
    const cJSON *v = item(r, key);
    if (!v) return 0;
    if (cJSON_IsNull(v)) return INFINITY;
    if (!cJSON_IsNumber(v)) {
        if (!r->bad) mtl_errf(r->err, r->err_size, "\"%s\" is not a number", key);
        r->bad = 1;
        return 0;
    }
    return v->valuedouble;
}

static bool get_b(Rd *r, const char *key) {
    const cJSON *v = item(r, key);
    if (v && !cJSON_IsBool(v)) {
        if (!r->bad) mtl_errf(r->err, r->err_size, "\"%s\" is not true or false", key);
        r->bad = 1;
    }
    return v && cJSON_IsTrue(v);
}

static float get_f(Rd *r, const char *key, double lo, double hi) {
    double x = get_d(r, key);
    if (!r->bad && !(x >= lo && x <= hi)) {
        mtl_errf(r->err, r->err_size, "\"%s\" = %g is outside [%g, %g]", key, x, lo, hi);
        r->bad = 1;
    }
    return (float)x;
}

static void get_array(Rd *r, const char *key, int n, double *d, float *f) {
    const cJSON *a = item(r, key);
    if (!a) return;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) {
        if (!r->bad) mtl_errf(r->err, r->err_size, "\"%s\" is not an array of %d numbers", key, n);
        r->bad = 1;
        return;
    }
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
            if (!r->bad) mtl_errf(r->err, r->err_size, "\"%s\" holds something other than a finite number", key);
            r->bad = 1;
            return;
        }
        if (d) d[i] = x->valuedouble;
        if (f) f[i] = (float)x->valuedouble;
        i++;
    }
}

static cJSON *parse_obj(const char *json, Rd *r, char *err, size_t err_size) {
    r->err = err;
    r->err_size = err_size;
    r->bad = 0;
    cJSON *o = cJSON_Parse(json ? json : "");
    if (!cJSON_IsObject(o)) {
        mtl_errf(err, err_size, "not a JSON object");
        cJSON_Delete(o);
        return NULL;
    }
    r->o = o;
    return o;
}

int train_settings_parse(const char *json, TrainSettings *s, char *err, size_t err_size) {
    Rd r;
    cJSON *o = parse_obj(json, &r, err, err_size);
    if (!o) return -1;
    memset(s, 0, sizeof *s);
    s->epochs = get_i(&r, "epochs", 1);
    s->batch = get_i(&r, "batch", 1);
    s->seed = get_u(&r, "seed");
    s->threads = (int)get_i(&r, "threads", 1);
    s->has_lr = get_b(&r, "has_lr");
    /* the command line takes these up to the largest float; a state must read back what it wrote */
    s->lr = get_f(&r, "lr", 0, FLT_MAX);
    s->validation = get_f(&r, "validation", 0, 1);
    MtlProtocol *p = &s->protocol;
    p->warmup_epochs = get_i(&r, "warmup_epochs", 0);
    p->warmup_start = get_f(&r, "warmup_start", 0, 1);
    p->plateau_factor = get_f(&r, "plateau_factor", 0, 1);
    p->plateau_patience = get_i(&r, "plateau_patience", 0);
    p->min_lr = get_f(&r, "min_lr", 0, FLT_MAX);
    p->clip_norm = get_f(&r, "clip_norm", 0, FLT_MAX);
    p->ema_decay = get_f(&r, "ema", 0, 1);
    p->patience = get_i(&r, "patience", 0);
    p->select_on_test = get_b(&r, "select_on_test");
    p->max_bad_steps = get_i(&r, "max_bad_steps", 0);
    s->save_every = get_i(&r, "save_every", 0);
    s->save_every_steps = get_i(&r, "save_every_steps", 0);
    cJSON_Delete(o);
    if (r.bad) return -1;
    /* the ranges the command line and the spec enforce, as float32 */
    const char *bad = NULL;
    if (s->batch > 1000000) bad = "batch";
    else if (s->has_lr && !(s->lr > 0)) bad = "lr";
    else if (!(p->warmup_start > 0)) bad = "warmup_start";
    else if (!(p->plateau_factor > 0)) bad = "plateau_factor";
    else if (!(p->ema_decay < 1.0f)) bad = "ema";
    else if (p->max_bad_steps < 1) bad = "max_bad_steps";
    else if (s->threads > 4096) bad = "threads";
    if (bad) {
        mtl_errf(err, err_size, "\"%s\" is out of range", bad);
        return -1;
    }
    return 0;
}

int train_progress_parse(const char *json, TrainProgress *p, char *err, size_t err_size) {
    Rd r;
    cJSON *o = parse_obj(json, &r, err, err_size);
    if (!o) return -1;
    p->epoch = get_i(&r, "epoch", 0);
    p->step = get_i(&r, "step", 0);
    p->epoch_step = get_i(&r, "epoch_step", 0);
    p->epoch_samples = get_i(&r, "epoch_samples", 0);
    get_array(&r, "loss_sum", p->n_tasks, p->loss_sum, NULL);
    p->norm_sum = get_d(&r, "norm_sum");
    p->norm_count = get_i(&r, "norm_count", 0);
    p->clipped = get_i(&r, "clipped", 0);
    get_array(&r, "plateau_lr", p->n_groups, NULL, p->plateau_lr);
    p->plateau.best = get_d(&r, "plateau_best");
    p->plateau.bad_epochs = get_i(&r, "plateau_bad_epochs", 0);
    p->plateau.reductions = get_i(&r, "plateau_reductions", 0);
    p->early.best = get_d(&r, "early_best");
    p->early.best_epoch = get_i(&r, "early_best_epoch", 0);
    p->early.bad_epochs = get_i(&r, "early_bad_epochs", 0);
    p->skipped = get_i(&r, "skipped", 0);
    p->bad_in_row = get_i(&r, "bad_in_row", 0);
    p->stopped_early = get_b(&r, "stopped_early");
    p->ema_updates = get_i(&r, "ema_updates", 0);
    p->log_bytes = get_i(&r, "log_bytes", 0);
    p->log_hash = get_u(&r, "log_hash");
    p->train_seconds = get_d(&r, "train_seconds");
    cJSON_Delete(o);
    if (r.bad) return -1;
    if (!isfinite(p->norm_sum) || !isfinite(p->train_seconds)) {
        mtl_errf(err, err_size, "\"norm_sum\" or \"train_seconds\" is not finite");
        return -1;
    }
    for (int g = 0; g < p->n_groups; g++)
        if (!(p->plateau_lr[g] > 0) || !isfinite(p->plateau_lr[g])) {
            mtl_errf(err, err_size, "\"plateau_lr\" holds a learning rate that is not positive");
            return -1;
        }
    if (p->epoch_step > p->step || p->early.best_epoch > p->epoch || p->bad_in_row > p->skipped) {
        mtl_errf(err, err_size, "the counts contradict each other (epoch_step > step, best epoch "
                 "after the last epoch, or more bad steps in a row than skipped)");
        return -1;
    }
    return 0;
}
