/* Checkpoints as safetensors files: 8-byte little-endian header length N, N bytes of compact JSON
 * (padded with spaces to a multiple of 8 so the data starts aligned), then the raw little-endian
 * float32 data, tensors back to back in the order given. PyTorch's safetensors reads them as is.
 *
 * Writes go to PATH.tmp, are fsync'ed and renamed over PATH (then the directory is fsync'ed), so
 * PATH is always either the old file or the complete new one. The reader trusts nothing: header
 * length, JSON, dtype, shapes, offsets (in range, exactly covering the data, no overlap).
 * Only F32 is written or read: that is all the runtime stores. A model checkpoint holds the
 * parameters, then the buffers (batchnorm running statistics, by their own names), then the
 * optional AdamW moments.
 */
#include "mtl_runtime.h"

#include <cJSON.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this writer copies floats as they are in memory"
#endif

#define MAX_HEADER (100u * 1024u * 1024u) /* as the safetensors reference implementation */

/* ---- metadata ----------------------------------------------------------------------------- */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) abort(); /* out of memory for a few bytes of metadata: nothing sensible to do */
    memcpy(d, s, n);
    return d;
}

void mtl_meta_set(MtlMeta *meta, const char *key, const char *value) {
    for (int i = 0; i < meta->n; i++)
        if (!strcmp(meta->key[i], key)) {
            free(meta->value[i]);
            meta->value[i] = dup_str(value);
            return;
        }
    if (meta->n == meta->cap) {
        int cap = meta->cap ? 2 * meta->cap : 16;
        char **k = realloc(meta->key, (size_t)cap * sizeof *k);
        if (!k) abort();
        meta->key = k;
        char **v = realloc(meta->value, (size_t)cap * sizeof *v);
        if (!v) abort();
        meta->value = v;
        meta->cap = cap;
    }
    meta->key[meta->n] = dup_str(key);
    meta->value[meta->n] = dup_str(value);
    meta->n++;
}

const char *mtl_meta_get(const MtlMeta *meta, const char *key) {
    for (int i = 0; i < meta->n; i++)
        if (!strcmp(meta->key[i], key)) return meta->value[i];
    return NULL;
}

void mtl_meta_free(MtlMeta *meta) {
    for (int i = 0; i < meta->n; i++) {
        free(meta->key[i]);
        free(meta->value[i]);
    }
    free(meta->key);
    free(meta->value);
    memset(meta, 0, sizeof *meta);
}

/* ---- header text -------------------------------------------------------------------------- */

typedef struct Buf {
    char *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_string(Buf *b, const char *s) {
    put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                puts_(b, esc);
            } else {
                put(b, (const char *)c, 1);
            }
        }
    }
    put(b, "\"", 1);
}

static void put_i64(Buf *b, int64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v);
    puts_(b, num);
}

static int64_t numel(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* ---- atomic write --------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void fsync_dir_of(const char *path) {
    /* Makes the rename itself durable; failure here is not worth failing the save for. */
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A checksum of the data region: FNV-1a 64 over its 32-bit words (little-endian, as stored).
 * Stored in the metadata as "data_checksum"; a reader that finds it verifies it, so a bit flip
 * in the weights of a checkpoint is an error instead of a silently different model. */
static uint64_t data_hash_words(uint64_t h, const unsigned char *p, int64_t bytes) {
    for (int64_t i = 0; i + 4 <= bytes; i += 4) {
        uint32_t w = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                     (uint32_t)p[i + 3] << 24;
        h = (h ^ w) * 1099511628211ull;
    }
    return h;
}

#define CHECKSUM_KEY "data_checksum"

int mtl_safetensors_write(const char *path, const MtlNamedTensor *tensors, int n,
                          const MtlMeta *meta, char *err, size_t err_size) {
    uint64_t sum = 14695981039346656037ull;
    for (int i = 0; i < n; i++)
        sum = data_hash_words(sum, (const unsigned char *)tensors[i].data,
                              numel(tensors[i].shape, tensors[i].ndim) * 4);
    char sum_text[40];
    snprintf(sum_text, sizeof sum_text, "fnv1a64w:%016llx", (unsigned long long)sum);
    Buf h = {0};
    puts_(&h, "{");
    bool first = true;
    puts_(&h, "\"__metadata__\":{");
    int written = 0;
    for (int i = 0; meta && i < meta->n; i++) {
        if (!strcmp(meta->key[i], CHECKSUM_KEY)) continue; /* recomputed below */
        if (written++) puts_(&h, ",");
        put_json_string(&h, meta->key[i]);
        puts_(&h, ":");
        put_json_string(&h, meta->value[i]);
    }
    if (written++) puts_(&h, ",");
    put_json_string(&h, CHECKSUM_KEY);
    puts_(&h, ":");
    put_json_string(&h, sum_text);
    puts_(&h, "}");
    first = false;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const MtlNamedTensor *t = &tensors[i];
        int64_t bytes = numel(t->shape, t->ndim) * 4;
        if (!first) puts_(&h, ",");
        first = false;
        put_json_string(&h, t->name);
        puts_(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) puts_(&h, ",");
            put_i64(&h, t->shape[d]);
        }
        puts_(&h, "],\"data_offsets\":[");
        put_i64(&h, off);
        puts_(&h, ",");
        put_i64(&h, off + bytes);
        puts_(&h, "]}");
        off += bytes;
    }
    puts_(&h, "}");
    while (h.n % 8) puts_(&h, " ");

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) abort();
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int rc = -1;
    const char *what = "open";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        mtl_errf(err, err_size, "%s: error: cannot create temporary file %s: %s", path, tmp,
                 strerror(errno));
        goto out;
    }
    unsigned char len8[8];
    uint64_t hl = h.n;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    what = "write";
    if (write_all(fd, len8, 8) || write_all(fd, h.p, h.n)) goto fail;
    /* Test hook (tests/e2e/resume.sh): MTL_TEST_KILL_DURING_SAVE=TEXT kills the process with
     * SIGKILL in the middle of writing the first file whose path contains TEXT (half of its
     * tensors on disk), the way a power cut or the OOM killer would. */
    const char *kill_at = getenv("MTL_TEST_KILL_DURING_SAVE");
    bool kill_now = kill_at && kill_at[0] && strstr(path, kill_at) != NULL;
    for (int i = 0; i < n; i++) {
        const MtlNamedTensor *t = &tensors[i];
        if (kill_now && i == n / 2) {
            fsync(fd);
            raise(SIGKILL);
        }
        if (write_all(fd, t->data, (size_t)numel(t->shape, t->ndim) * 4)) goto fail;
    }
    what = "fsync";
    if (fsync(fd) != 0) goto fail;
    what = "close";
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) goto fail;
    what = "rename";
    if (rename(tmp, path) != 0) goto fail;
    fsync_dir_of(path);
    rc = 0;
    goto out;
fail:
    mtl_errf(err, err_size, "%s: error: %s of %s failed: %s", path, what, tmp, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
out:
    free(tmp);
    free(h.p);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

static int read_file(const char *path, unsigned char **out, int64_t *size, char *err,
                     size_t err_size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        mtl_errf(err, err_size, "%s: error: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mtl_errf(err, err_size, "%s: error: not a regular file", path);
        close(fd);
        return -1;
    }
    unsigned char *buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (!buf) {
        mtl_errf(err, err_size, "%s: error: out of memory (%lld bytes)", path,
                 (long long)st.st_size);
        close(fd);
        return -1;
    }
    int64_t got = 0;
    while (got < st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)(st.st_size - got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            mtl_errf(err, err_size, "%s: error: read failed: %s", path,
                     r < 0 ? strerror(errno) : "file shrank while reading");
            free(buf);
            close(fd);
            return -1;
        }
        got += r;
    }
    close(fd);
    *out = buf;
    *size = got;
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const MtlStTensor *x = *(const MtlStTensor *const *)a, *y = *(const MtlStTensor *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* JSON integer value that is exact and in [0, 2^53]. */
static bool as_index(const cJSON *j, int64_t *v) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(int64_t)d) return false;
    *v = (int64_t)d;
    return true;
}

int mtl_safetensors_read(const char *path, MtlSafetensors *st, char *err, size_t err_size) {
    memset(st, 0, sizeof *st);
    int64_t size;
    if (read_file(path, &st->file, &size, err, err_size)) return -1;
    cJSON *root = NULL;
    MtlStTensor **order = NULL;
    if (size < 8) {
        mtl_errf(err, err_size, "%s: error: truncated (%lld bytes, not a safetensors file)", path,
                 (long long)size);
        goto bad;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)st->file[i] << (8 * i);
    if (hl < 2 || hl > MAX_HEADER || hl > (uint64_t)(size - 8)) {
        mtl_errf(err, err_size, "%s: error: header length %llu does not fit the file (%lld bytes)"
                 "; truncated or not a safetensors file", path, (unsigned long long)hl,
                 (long long)size);
        goto bad;
    }
    root = cJSON_ParseWithLength((const char *)st->file + 8, (size_t)hl);
    if (!root || !cJSON_IsObject(root)) {
        mtl_errf(err, err_size, "%s: error: header is not a JSON object", path);
        goto bad;
    }
    st->data = st->file + 8 + hl;
    st->data_size = size - 8 - (int64_t)hl;
    int n = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)(n > 0 ? n : 1), sizeof *st->tensors);
    if (!st->tensors) abort();
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                mtl_errf(err, err_size, "%s: error: __metadata__ is not an object", path);
                goto bad;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, it) {
                if (!cJSON_IsString(kv)) {
                    mtl_errf(err, err_size, "%s: error: metadata \"%s\" is not a string", path,
                             kv->string);
                    goto bad;
                }
                mtl_meta_set(&st->meta, kv->string, kv->valuestring);
            }
            continue;
        }
        const char *name = it->string;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) ||
            !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\": needs dtype, shape, data_offsets",
                     path, name);
            goto bad;
        }
        if (strcmp(dt->valuestring, "F32") != 0) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\": dtype %s, expected F32", path, name,
                     dt->valuestring);
            goto bad;
        }
        MtlStTensor *t = &st->tensors[st->n];
        t->name = dup_str(name);
        st->n++;
        if (cJSON_GetArraySize(sh) > MTL_MAX_DIMS) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\": too many dimensions", path, name);
            goto bad;
        }
        const cJSON *d;
        int64_t count = 1;
        cJSON_ArrayForEach(d, sh) {
            int64_t v;
            if (!as_index(d, &v) || (v > 0 && count > INT64_MAX / 4 / v)) {
                mtl_errf(err, err_size, "%s: error: tensor \"%s\": bad shape", path, name);
                goto bad;
            }
            t->shape[t->ndim++] = v;
            count *= v;
        }
        if (!as_index(cJSON_GetArrayItem(of, 0), &t->begin) ||
            !as_index(cJSON_GetArrayItem(of, 1), &t->end) || t->begin > t->end ||
            t->end > st->data_size) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\": data_offsets out of range (data is "
                     "%lld bytes); truncated file?", path, name, (long long)st->data_size);
            goto bad;
        }
        if (t->end - t->begin != count * 4) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\": data_offsets span %lld bytes, shape "
                     "needs %lld", path, name, (long long)(t->end - t->begin),
                     (long long)(count * 4));
            goto bad;
        }
    }
    /* Sorted by begin, consecutive tensors must touch exactly: no overlap and no hole. */
    order = malloc((size_t)(st->n > 0 ? st->n : 1) * sizeof *order);
    if (!order) abort();
    for (int i = 0; i < st->n; i++) order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n, sizeof *order, cmp_begin);
    int64_t at = 0;
    for (int i = 0; i < st->n; i++) {
        if (order[i]->begin != at) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\": data_offsets %s the previous tensor",
                     path, order[i]->name, order[i]->begin < at ? "overlap" : "leave a gap after");
            goto bad;
        }
        at = order[i]->end;
    }
    if (at != st->data_size) {
        mtl_errf(err, err_size, "%s: error: %lld bytes of data but tensors cover %lld", path,
                 (long long)st->data_size, (long long)at);
        goto bad;
    }
    const char *want = mtl_meta_get(&st->meta, CHECKSUM_KEY);
    if (want) {
        /* the data region in file order is the tensors' data in written order */
        char got[40];
        snprintf(got, sizeof got, "fnv1a64w:%016llx",
                 (unsigned long long)data_hash_words(14695981039346656037ull, st->data, st->data_size));
        if (strcmp(want, got) != 0) {
            mtl_errf(err, err_size, "%s: error: the tensor data do not match the file's checksum "
                     "(%s, computed %s): a damaged file", path, want, got);
            goto bad;
        }
    }
    free(order);
    cJSON_Delete(root);
    return 0;
bad:
    free(order);
    cJSON_Delete(root);
    mtl_safetensors_free(st);
    return -1;
}

void mtl_safetensors_free(MtlSafetensors *st) {
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    mtl_meta_free(&st->meta);
    free(st->file);
    memset(st, 0, sizeof *st);
}

const MtlStTensor *mtl_safetensors_find(const MtlSafetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

/* ---- model checkpoints -------------------------------------------------------------------- */

static const char EXP_AVG[] = "optimizer.exp_avg.";
static const char EXP_AVG_SQ[] = "optimizer.exp_avg_sq.";
static const char STEP_KEY[] = "optimizer.step.";

static bool has_moments(const MtlModelInfo *m, const MtlTensorInfo *t) {
    return t->trainable && !m->groups[t->group].frozen;
}

static char *cat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) abort();
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

int mtl_checkpoint_save(const char *path, const MtlModelInfo *m, const float *params,
                        const float *buffers, const MtlAdamW *opt, const MtlMeta *meta, char *err,
                        size_t err_size) {
    return mtl_checkpoint_save_full(path, m, params, buffers, opt, NULL, 0, meta, err, err_size);
}

int mtl_checkpoint_save_full(const char *path, const MtlModelInfo *m, const float *params,
                             const float *buffers, const MtlAdamW *opt, const MtlTensorCopy *copies,
                             int n_copies, const MtlMeta *meta, char *err, size_t err_size) {
    if (m->n_buffers > 0 && !buffers) {
        mtl_errf(err, err_size, "%s: error: internal: model %s has buffers but none were given",
                 path, m->name);
        return -1;
    }
    size_t per_copy = (size_t)(m->n_tensors + m->n_buffers);
    MtlNamedTensor *ts = calloc((size_t)(3 * m->n_tensors + m->n_buffers + 1) + per_copy * (size_t)n_copies,
                                sizeof *ts);
    char **names = calloc((size_t)(2 * m->n_tensors + 1) + per_copy * (size_t)n_copies, sizeof *names);
    if (!ts || !names) abort();
    int n = 0, nn = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const MtlTensorInfo *t = &m->tensors[i];
        ts[n] = (MtlNamedTensor){.name = t->name, .ndim = t->ndim, .data = params + t->offset};
        memcpy(ts[n].shape, t->shape, sizeof t->shape);
        n++;
    }
    for (int i = 0; i < m->n_buffers; i++) {
        const MtlBufferInfo *b = &m->buffers[i];
        ts[n] = (MtlNamedTensor){.name = b->name, .ndim = b->ndim, .data = buffers + b->offset};
        memcpy(ts[n].shape, b->shape, sizeof b->shape);
        n++;
    }
    if (opt) {
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < m->n_tensors; i++) {
                const MtlTensorInfo *t = &m->tensors[i];
                if (!has_moments(m, t)) continue;
                names[nn] = cat(pass ? EXP_AVG_SQ : EXP_AVG, t->name);
                ts[n] = (MtlNamedTensor){.name = names[nn], .ndim = t->ndim,
                                         .data = (pass ? opt->v : opt->m) + t->offset};
                memcpy(ts[n].shape, t->shape, sizeof t->shape);
                n++;
                nn++;
            }
    }
    for (int c = 0; c < n_copies; c++) {
        for (int i = 0; i < m->n_tensors; i++) {
            const MtlTensorInfo *t = &m->tensors[i];
            names[nn] = cat(copies[c].prefix, t->name);
            ts[n] = (MtlNamedTensor){.name = names[nn], .ndim = t->ndim,
                                     .data = copies[c].params + t->offset};
            memcpy(ts[n].shape, t->shape, sizeof t->shape);
            n++;
            nn++;
        }
        if (!copies[c].buffers) continue;
        for (int i = 0; i < m->n_buffers; i++) {
            const MtlBufferInfo *b = &m->buffers[i];
            names[nn] = cat(copies[c].prefix, b->name);
            ts[n] = (MtlNamedTensor){.name = names[nn], .ndim = b->ndim,
                                     .data = copies[c].buffers + b->offset};
            memcpy(ts[n].shape, b->shape, sizeof b->shape);
            n++;
            nn++;
        }
    }
    MtlMeta all = {0};
    mtl_meta_set(&all, "format", "pt");
    if (meta)
        for (int i = 0; i < meta->n; i++) mtl_meta_set(&all, meta->key[i], meta->value[i]);
    if (opt)
        for (int g = 0; g < m->n_groups; g++) {
            char key[256], val[32];
            snprintf(key, sizeof key, "%s%s", STEP_KEY, m->groups[g].name);
            snprintf(val, sizeof val, "%lld", (long long)opt->step[g]);
            mtl_meta_set(&all, key, val);
        }
    int rc = mtl_safetensors_write(path, ts, n, &all, err, err_size);
    mtl_meta_free(&all);
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    free(ts);
    return rc;
}

static bool same_shape(const MtlStTensor *s, int ndim, const int64_t *shape) {
    if (s->ndim != ndim) return false;
    for (int d = 0; d < ndim; d++)
        if (s->shape[d] != shape[d]) return false;
    return true;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

static const MtlTensorInfo *model_tensor(const MtlModelInfo *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static const MtlBufferInfo *model_buffer(const MtlModelInfo *m, const char *name) {
    for (int i = 0; i < m->n_buffers; i++)
        if (!strcmp(m->buffers[i].name, name)) return &m->buffers[i];
    return NULL;
}

int mtl_checkpoint_load(const char *path, const MtlModelInfo *m, float *params, float *buffers,
                        MtlAdamW *opt, MtlMeta *meta_out, char *err, size_t err_size) {
    return mtl_checkpoint_load_full(path, m, params, buffers, opt, NULL, 0, meta_out, err, err_size);
}

/* Which copy (index) a file tensor name belongs to, with the model name after the prefix; -1
 * for a name of no copy. */
static int copy_of(const MtlTensorCopy *copies, int n_copies, const char *name, const char **base) {
    for (int c = 0; c < n_copies; c++) {
        size_t k = strlen(copies[c].prefix);
        if (!strncmp(name, copies[c].prefix, k)) {
            *base = name + k;
            return c;
        }
    }
    return -1;
}

/* The model's tensors and buffers against the file's, in the model's order: the first one
 * missing or of another shape is what a user loading another spec's checkpoint needs to see. */
int mtl_checkpoint_first_mismatch(const char *path, const MtlModelInfo *m, const MtlSafetensors *st,
                          char *err, size_t err_size) {
    int total = m->n_tensors + m->n_buffers;
    for (int i = 0; i < total; i++) {
        bool is_buf = i >= m->n_tensors;
        const char *name = is_buf ? m->buffers[i - m->n_tensors].name : m->tensors[i].name;
        int ndim = is_buf ? m->buffers[i - m->n_tensors].ndim : m->tensors[i].ndim;
        const int64_t *shape = is_buf ? m->buffers[i - m->n_tensors].shape : m->tensors[i].shape;
        char mine[128], theirs[128];
        shape_str(mine, sizeof mine, ndim, shape);
        const MtlStTensor *t = mtl_safetensors_find(st, name);
        if (!t) {
            /* the file's tensor in the same position, if any, says what it holds instead */
            if (i < st->n) {
                shape_str(theirs, sizeof theirs, st->tensors[i].ndim, st->tensors[i].shape);
                mtl_errf(err, err_size, "%s: error: %s \"%s\" %s of model %s is missing from the "
                         "checkpoint, which has \"%s\" %s in its place (a checkpoint of another "
                         "spec?)", path, is_buf ? "buffer" : "tensor", name, mine, m->name,
                         st->tensors[i].name, theirs);
            } else {
                mtl_errf(err, err_size, "%s: error: %s \"%s\" %s of model %s is missing from the "
                         "checkpoint%s", path, is_buf ? "buffer" : "tensor", name, mine, m->name,
                         is_buf ? " (a checkpoint from before the model had buffers?)"
                                : " (a checkpoint of another spec?)");
            }
            return -1;
        }
        if (!same_shape(t, ndim, shape)) {
            shape_str(theirs, sizeof theirs, t->ndim, t->shape);
            mtl_errf(err, err_size, "%s: error: %s \"%s\" has shape %s in the checkpoint, model %s "
                     "expects %s (a checkpoint of another spec?)", path, is_buf ? "buffer" : "tensor",
                     name, theirs, m->name, mine);
            return -1;
        }
    }
    return 0;
}

int mtl_checkpoint_load_full(const char *path, const MtlModelInfo *m, float *params, float *buffers,
                             MtlAdamW *opt, MtlTensorCopy *copies, int n_copies, MtlMeta *meta_out,
                             char *err, size_t err_size) {
    MtlSafetensors st;
    if (mtl_safetensors_read(path, &st, err, err_size)) return -1;
    int rc = -1;
    bool have_opt = false;
    int64_t *copy_params = calloc((size_t)n_copies + 1, sizeof *copy_params);
    int64_t *copy_bufs = calloc((size_t)n_copies + 1, sizeof *copy_bufs);
    if (!copy_params || !copy_bufs) abort();
    for (int c = 0; c < n_copies; c++) copies[c].present = false;
    if (mtl_checkpoint_first_mismatch(path, m, &st, err, err_size) != 0) goto out;
    /* First validate every name and shape, then copy: a bad file changes nothing. */
    for (int i = 0; i < st.n; i++) {
        const char *name = st.tensors[i].name;
        const char *base = name;
        bool moment = false;
        int copy = -1;
        if (!strncmp(name, EXP_AVG_SQ, sizeof EXP_AVG_SQ - 1)) {
            base = name + sizeof EXP_AVG_SQ - 1;
            moment = true;
        } else if (!strncmp(name, EXP_AVG, sizeof EXP_AVG - 1)) {
            base = name + sizeof EXP_AVG - 1;
            moment = true;
        } else {
            copy = copy_of(copies, n_copies, name, &base);
        }
        const MtlTensorInfo *t = model_tensor(m, base);
        const MtlBufferInfo *buf = moment ? NULL : model_buffer(m, base);
        if (!buf && (!t || (moment && !has_moments(m, t)))) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\" is not part of model %s", path, name,
                     m->name);
            goto out;
        }
        if (copy >= 0) {
            if (buf) copy_bufs[copy]++;
            else copy_params[copy]++;
        }
        int ndim = buf ? buf->ndim : t->ndim;
        const int64_t *shape = buf ? buf->shape : t->shape;
        if (!same_shape(&st.tensors[i], ndim, shape)) {
            char a[128], b[128];
            shape_str(a, sizeof a, st.tensors[i].ndim, st.tensors[i].shape);
            shape_str(b, sizeof b, ndim, shape);
            mtl_errf(err, err_size, "%s: error: %s \"%s\" has shape %s, model %s expects %s",
                     path, buf ? "buffer" : "tensor", name, a, m->name, b);
            goto out;
        }
        if (moment) have_opt = true;
        /* a diverged or damaged checkpoint must not load silently (the data may be unaligned) */
        const unsigned char *raw = st.data + st.tensors[i].begin;
        int64_t count = (st.tensors[i].end - st.tensors[i].begin) / 4;
        for (int64_t j = 0; j < count; j++) {
            float v;
            memcpy(&v, raw + 4 * j, sizeof v);
            if (!isfinite(v)) {
                mtl_errf(err, err_size, "%s: error: tensor \"%s\" holds %s at element %lld "
                         "(a diverged or damaged checkpoint)", path, name,
                         isnan(v) ? "NaN" : "infinity", (long long)j);
                goto out;
            }
            /* variances (batchnorm running_var, AdamW's second moment) are never negative:
             * a negative one would turn into NaN inside the model */
            if (v < 0.0f && (ends_with(name, "running_var") || !strncmp(name, "optimizer.exp_avg_sq.", 21))) {
                mtl_errf(err, err_size, "%s: error: tensor \"%s\" holds the negative variance %g at "
                         "element %lld (a damaged checkpoint)", path, name, (double)v, (long long)j);
                goto out;
            }
        }
    }
    for (int c = 0; c < n_copies; c++) {
        if (copy_params[c] == 0 && copy_bufs[c] == 0) continue;
        if (copy_params[c] != m->n_tensors || (copies[c].buffers && copy_bufs[c] != m->n_buffers)) {
            mtl_errf(err, err_size, "%s: error: the copy \"%s*\" of the weights is incomplete (%lld of "
                     "%d tensors, %lld of %d buffers): a damaged checkpoint", path, copies[c].prefix,
                     (long long)copy_params[c], m->n_tensors, (long long)copy_bufs[c], m->n_buffers);
            goto out;
        }
        copies[c].present = true;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (!mtl_safetensors_find(&st, m->tensors[i].name)) {
            mtl_errf(err, err_size, "%s: error: tensor \"%s\" of model %s is missing", path,
                     m->tensors[i].name, m->name);
            goto out;
        }
    for (int i = 0; i < m->n_buffers; i++)
        if (!mtl_safetensors_find(&st, m->buffers[i].name)) {
            mtl_errf(err, err_size, "%s: error: buffer \"%s\" of model %s is missing (a checkpoint "
                     "from before the model had buffers?)", path, m->buffers[i].name, m->name);
            goto out;
        }
    if (opt && have_opt) {
        /* Resuming needs all of the optimizer state or none of it. */
        for (int i = 0; i < m->n_tensors; i++) {
            const MtlTensorInfo *t = &m->tensors[i];
            if (!has_moments(m, t)) continue;
            for (int pass = 0; pass < 2; pass++) {
                char *nm = cat(pass ? EXP_AVG_SQ : EXP_AVG, t->name);
                bool found = mtl_safetensors_find(&st, nm) != NULL;
                if (!found) {
                    mtl_errf(err, err_size, "%s: error: optimizer state incomplete: \"%s\" missing",
                             path, nm);
                    free(nm);
                    goto out;
                }
                free(nm);
            }
        }
        for (int g = 0; g < m->n_groups; g++) {
            char key[256];
            snprintf(key, sizeof key, "%s%s", STEP_KEY, m->groups[g].name);
            const char *v = mtl_meta_get(&st.meta, key);
            char *end;
            if (!v || (errno = 0, strtoll(v, &end, 10) < 0) || *end || end == v) {
                mtl_errf(err, err_size, "%s: error: metadata \"%s\" missing or not a count", path,
                         key);
                goto out;
            }
        }
    }
    /* Everything checked: copy. */
    for (int i = 0; i < st.n; i++) {
        const MtlStTensor *s = &st.tensors[i];
        const char *name = s->name;
        float *dst;
        const char *base;
        int copy = -1;
        if (strncmp(name, EXP_AVG, sizeof EXP_AVG - 1)) copy = copy_of(copies, n_copies, name, &base);
        if (copy >= 0) {
            const MtlBufferInfo *buf = model_buffer(m, base);
            if (buf && !copies[copy].buffers) continue;
            dst = buf ? copies[copy].buffers + buf->offset : copies[copy].params + model_tensor(m, base)->offset;
        } else if (!strncmp(name, EXP_AVG_SQ, sizeof EXP_AVG_SQ - 1)) {
            if (!opt) continue;
            dst = opt->v + model_tensor(m, name + sizeof EXP_AVG_SQ - 1)->offset;
        } else if (!strncmp(name, EXP_AVG, sizeof EXP_AVG - 1)) {
            if (!opt) continue;
            dst = opt->m + model_tensor(m, name + sizeof EXP_AVG - 1)->offset;
        } else if (model_buffer(m, name)) {
            if (!buffers) continue;
            dst = buffers + model_buffer(m, name)->offset;
        } else {
            dst = params + model_tensor(m, name)->offset;
        }
        memcpy(dst, st.data + s->begin, (size_t)(s->end - s->begin));
    }
    if (opt && have_opt)
        for (int g = 0; g < m->n_groups; g++) {
            char key[256];
            snprintf(key, sizeof key, "%s%s", STEP_KEY, m->groups[g].name);
            opt->step[g] = strtoll(mtl_meta_get(&st.meta, key), NULL, 10);
        }
    if (meta_out) {
        *meta_out = st.meta;
        memset(&st.meta, 0, sizeof st.meta);
    }
    rc = 0;
out:
    free(copy_params);
    free(copy_bufs);
    mtl_safetensors_free(&st);
    return rc;
}
