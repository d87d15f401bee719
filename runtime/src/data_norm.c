/* The normalisation as text, for checkpoints: mtl_norm_to_json / mtl_norm_from_json (format in
 * mtl_data.h) and mtl_norm_equal.
 *
 * Floats are printed with "%.9g": nine significant digits identify every float32 uniquely, and
 * the decimal is so much closer to the float than to the midpoint of its neighbours that
 * reading it as a double (cJSON) and rounding to float gives back the same bits. The reader
 * trusts nothing: a checkpoint may be damaged or hand-edited, and a wrong size or a NaN here
 * would silently corrupt every normalised input.
 */
#include "data_internal.h"

#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NORM_JSON_VERSION 1

/* ---- writing ---- */

typedef struct Out {
    char *buf;
    size_t len, cap;
    bool failed;
} Out;

static void out_add(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_add(Out *o, const char *fmt, ...) {
    if (o->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->failed = true;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
}

/* A float as JSON: "%.9g", or null for a value JSON cannot hold (the reader rejects it). */
static void out_float(Out *o, float v) {
    if (isfinite(v)) out_add(o, "%.9g", (double)v);
    else out_add(o, "null");
}

static void out_floats(Out *o, const float *v, int n) {
    out_add(o, "[");
    for (int i = 0; i < n; i++) {
        if (i) out_add(o, ",");
        out_float(o, v[i]);
    }
    out_add(o, "]");
}

/* [[row 0], [row 1], ...]: rows of width w */
static void out_rows(Out *o, const float *v, int rows, int w) {
    out_add(o, "[");
    for (int r = 0; r < rows; r++) {
        if (r) out_add(o, ",");
        out_floats(o, v + (size_t)r * (size_t)w, w);
    }
    out_add(o, "]");
}

char *mtl_norm_to_json(const MtlNorm *n) {
    int k = n->k > 1 ? n->k : 1;
    Out o = {.cap = 256};
    if (!(o.buf = malloc(o.cap))) return NULL;
    o.buf[0] = '\0';
    out_add(&o, "{\"version\":%d,\"features\":%d,\"conditions\":%d", NORM_JSON_VERSION, n->n, k);
    if (k > 1) {
        out_add(&o, ",\"settings_mean\":");
        out_floats(&o, n->settings_mean, 3);
        out_add(&o, ",\"settings_scale\":");
        out_floats(&o, n->settings_scale, 3);
        out_add(&o, ",\"centroids\":");
        out_rows(&o, n->centroids, k, 3);
    }
    out_add(&o, ",\"mean\":");
    out_rows(&o, n->mean, k, n->n);
    out_add(&o, ",\"std\":");
    out_rows(&o, n->std, k, n->n);
    out_add(&o, "}");
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}

/* ---- reading ---- */

static int fail(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size > 0) {
        int at = snprintf(err, err_size, "normalisation: ");
        va_list ap;
        va_start(ap, fmt);
        if (at >= 0 && (size_t)at < err_size) vsnprintf(err + at, err_size - (size_t)at, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A whole number in [lo, hi] under key; -1 after reporting. */
static int get_int(const cJSON *root, const char *key, int lo, int hi, int *out, char *err, size_t es) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return fail(err, es, "\"%s\" is missing", key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return fail(err, es, "\"%s\" must be a whole number from %d to %d", key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

/* One float32: a finite JSON number within float range; name[i] in messages. */
static int get_float(const cJSON *x, const char *what, float *out, char *err, size_t es) {
    if (!cJSON_IsNumber(x)) return fail(err, es, "%s is not a number", what);
    double d = x->valuedouble;
    /* below FLT_MAX + half an ulp, the value rounds to a finite float ("%.9g" prints FLT_MAX
     * as 3.40282347e+38, a little above it) */
    if (!isfinite(d) || fabs(d) >= 0x1.ffffffp+127) return fail(err, es, "%s is not a finite float32 value", what);
    *out = (float)d;
    return 0;
}

/* An array of exactly n floats into out; each >= 0 / > 0 when min_kind is 1 / 2. */
static int get_floats(const cJSON *a, const char *name, int n, float *out, int min_kind, char *err,
                      size_t es) {
    if (!cJSON_IsArray(a)) return fail(err, es, "%s must be an array of %d numbers", name, n);
    int got = cJSON_GetArraySize(a);
    if (got != n) return fail(err, es, "%s has %d values, expected %d", name, got, n);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        char what[96];
        snprintf(what, sizeof what, "%s[%d]", name, i);
        if (get_float(x, what, &out[i], err, es) != 0) return -1;
        if (min_kind == 1 && out[i] < 0) return fail(err, es, "%s is negative (%.9g)", what, (double)out[i]);
        if (min_kind == 2 && !(out[i] > 0))
            return fail(err, es, "%s must be positive, got %.9g", what, (double)out[i]);
        i++;
    }
    return 0;
}

/* rows arrays of w floats each under key, into *out [rows * w] (malloc'd once every size is
 * known to be right, so a damaged count cannot ask for a huge allocation). */
static int get_rows(const cJSON *root, const char *key, int rows, int w, float **out, int min_kind,
                    char *err, size_t es) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a) return fail(err, es, "\"%s\" is missing", key);
    if (!cJSON_IsArray(a)) return fail(err, es, "\"%s\" must be an array of %d arrays", key, rows);
    int got = cJSON_GetArraySize(a);
    if (got != rows)
        return fail(err, es, "\"%s\" has %d rows, expected %d (one per operating condition)", key, got, rows);
    int r = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsArray(x) || cJSON_GetArraySize(x) != w)
            return fail(err, es, "\"%s\"[%d] must be an array of %d numbers%s", key, r, w,
                        w == 3 ? " (setting1..setting3)" : " (one per feature)");
        r++;
    }
    if (!(*out = malloc((size_t)rows * (size_t)w * sizeof **out))) return fail(err, es, "out of memory");
    r = 0;
    cJSON_ArrayForEach(x, a) {
        char name[64];
        snprintf(name, sizeof name, "\"%s\"[%d]", key, r);
        if (get_floats(x, name, w, *out + (size_t)r * (size_t)w, min_kind, err, es) != 0) return -1;
        r++;
    }
    return 0;
}

int mtl_norm_from_json(const char *json, int n_features, MtlNorm *out, char *err, size_t err_size) {
    static const char *const keys[] = {"version", "features", "conditions", "settings_mean",
                                       "settings_scale", "centroids", "mean", "std", NULL};
    memset(out, 0, sizeof *out);
    if (err && err_size > 0) err[0] = '\0';
    if (!json) return fail(err, err_size, "no text");
    cJSON *root = cJSON_ParseWithOpts(json, NULL, true); /* nothing may follow the object */
    if (!root) return fail(err, err_size, "not valid JSON");
    int rc = -1, version = 0, f_n = 0, k = 0;
    MtlNorm n = {0};
    if (!cJSON_IsObject(root)) {
        fail(err, err_size, "expected a JSON object");
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        bool known = false;
        for (int i = 0; keys[i] && !known; i++) known = item->string && !strcmp(item->string, keys[i]);
        if (!known) {
            fail(err, err_size, "unknown key \"%s\"", item->string ? item->string : "");
            goto done;
        }
    }
    if (get_int(root, "version", 0, INT32_MAX, &version, err, err_size) != 0) goto done;
    if (version != NORM_JSON_VERSION) {
        fail(err, err_size, "format version %d, this runtime reads version %d", version, NORM_JSON_VERSION);
        goto done;
    }
    if (get_int(root, "features", 1, INT32_MAX, &f_n, err, err_size) != 0) goto done;
    if (n_features > 0 && f_n != n_features) {
        fail(err, err_size, "%d features, but the data have %d", f_n, n_features);
        goto done;
    }
    if (get_int(root, "conditions", 1, MTL_MAX_CONDITIONS, &k, err, err_size) != 0) goto done;
    n.n = f_n;
    n.k = k;
    static const char *const cond_keys[] = {"settings_mean", "settings_scale", "centroids"};
    if (k > 1) {
        const cJSON *sm = cJSON_GetObjectItemCaseSensitive(root, "settings_mean");
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(root, "settings_scale");
        if (!sm || !ss) {
            fail(err, err_size, "\"%s\" is missing (needed with %d conditions)", sm ? "settings_scale" : "settings_mean", k);
            goto done;
        }
        if (get_floats(sm, "\"settings_mean\"", 3, n.settings_mean, 0, err, err_size) != 0 ||
            get_floats(ss, "\"settings_scale\"", 3, n.settings_scale, 2, err, err_size) != 0 ||
            get_rows(root, "centroids", k, 3, &n.centroids, 0, err, err_size) != 0)
            goto done;
    } else {
        for (int i = 0; i < 3; i++)
            if (cJSON_GetObjectItemCaseSensitive(root, cond_keys[i])) {
                fail(err, err_size, "\"%s\" given with one operating condition", cond_keys[i]);
                goto done;
            }
    }
    if (get_rows(root, "mean", k, f_n, &n.mean, 0, err, err_size) != 0 ||
        get_rows(root, "std", k, f_n, &n.std, 1, err, err_size) != 0)
        goto done;
    *out = n;
    memset(&n, 0, sizeof n);
    rc = 0;
done:
    mtl_norm_free(&n);
    cJSON_Delete(root);
    return rc;
}

bool mtl_norm_equal(const MtlNorm *a, const MtlNorm *b) {
    int ka = a->k > 1 ? a->k : 1, kb = b->k > 1 ? b->k : 1;
    if (a->n != b->n || ka != kb) return false;
    size_t cells = (size_t)ka * (size_t)(a->n > 0 ? a->n : 0);
    /* bits, not values: -0 vs 0 or a changed NaN payload is another normalisation on disk */
    if (cells > 0) {
        if (!a->mean || !b->mean || !a->std || !b->std) return false;
        if (memcmp(a->mean, b->mean, cells * sizeof *a->mean) != 0 ||
            memcmp(a->std, b->std, cells * sizeof *a->std) != 0)
            return false;
    }
    if (ka > 1) {
        if (!a->centroids || !b->centroids) return false;
        if (memcmp(a->centroids, b->centroids, (size_t)ka * 3 * sizeof *a->centroids) != 0 ||
            memcmp(a->settings_mean, b->settings_mean, sizeof a->settings_mean) != 0 ||
            memcmp(a->settings_scale, b->settings_scale, sizeof a->settings_scale) != 0)
            return false;
    }
    return true;
}
