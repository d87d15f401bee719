/* safetensors checkpoints: the exact bytes of a tiny file (length prefix, compact header padded
 * with spaces to 8 bytes, offsets, little-endian data), a model round trip (weights, buffers,
 * AdamW moments and steps, metadata) that is bit-identical, atomic replacement (failing writes
 * leave the earlier file intact and no temporary behind), and a loader that rejects damaged files
 * (also missing or misshapen buffers) with "PATH: error: reason" and leaves the destination
 * untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtl_runtime.h"

static char dir[256];
static MtlModelInfo model;

static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = -1;
    s[n < 0 ? 0 : n] = '\0';
    fclose(f);
    if (len) *len = n;
    return s;
}

static void spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static char *in_dir(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mtl_test_ckpt_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char *json = slurp(MTL_RUNTIME_FIXTURES "/model_good.json", NULL);
    char err[MTL_ERR_SIZE];
    int rc = json ? mtl_model_info_parse(json, &model, err, sizeof err) : -1;
    free(json);
    return rc;
}

static int teardown(void **state) {
    (void)state;
    mtl_model_info_free(&model);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_exact_layout(void **state) {
    (void)state;
    const float a[2] = {1.0f, -2.0f}, b[1] = {0.5f};
    MtlNamedTensor ts[2] = {{.name = "a", .ndim = 1, .shape = {2}, .data = a},
                            {.name = "b", .ndim = 2, .shape = {1, 1}, .data = b}};
    MtlMeta meta = {0};
    mtl_meta_set(&meta, "format", "pt");
    char err[MTL_ERR_SIZE] = "";
    const char *path = in_dir("tiny.safetensors");
    assert_int_equal(mtl_safetensors_write(path, ts, 2, &meta, err, sizeof err), 0);
    mtl_meta_free(&meta);

    /* 185 bytes of JSON, padded with 7 spaces to 192. The checksum is FNV-1a 64 over the data's
     * 32-bit words: h = 14695981039346656037, then h = (h ^ w) * 1099511628211 mod 2^64 for
     * w = 0x3F800000 (1.0), 0xC0000000 (-2.0), 0x3F000000 (0.5) = 0x5a5b33893b8f2fb7 (worked out
     * with Python's integers) */
    const char header[] = "{\"__metadata__\":{\"format\":\"pt\","
                          "\"data_checksum\":\"fnv1a64w:5a5b33893b8f2fb7\"},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}"
                          "       ";
    assert_int_equal(sizeof header - 1, 192);
    unsigned char want[8 + 192 + 12];
    const unsigned char len[8] = {192, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want, len, 8);
    memcpy(want + 8, header, 192);
    const unsigned char data[12] = {0x00, 0x00, 0x80, 0x3F,  /* 1.0 */
                                    0x00, 0x00, 0x00, 0xC0,  /* -2.0 */
                                    0x00, 0x00, 0x00, 0x3F}; /* 0.5 */
    memcpy(want + 200, data, 12);
    long n;
    char *got = slurp(path, &n);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    free(got);
    assert_int_equal(access(in_dir("tiny.safetensors.tmp"), F_OK), -1);

    MtlSafetensors st;
    assert_int_equal(mtl_safetensors_read(path, &st, err, sizeof err), 0);
    assert_int_equal(st.n, 2);
    const MtlStTensor *tb = mtl_safetensors_find(&st, "b");
    assert_non_null(tb);
    assert_int_equal(tb->begin, 8);
    assert_int_equal(tb->end, 12);
    assert_int_equal(tb->ndim, 2);
    assert_string_equal(mtl_meta_get(&st.meta, "format"), "pt");
    mtl_safetensors_free(&st);
}

static void fill(float *p, int64_t n, float base) {
    for (int64_t i = 0; i < n; i++) p[i] = base + 0.37f * (float)i - 0.001f * (float)(i * i);
}

static void save_model(const char *path, float base, MtlAdamW *opt) {
    float p[20], bufs[4];
    fill(p, 20, base);
    fill(bufs, 4, base + 3); /* running statistics: a variance is never negative */
    assert_int_equal(mtl_adamw_init(opt, model.groups, model.n_groups, model.n_params,
                                    model.tensors, model.n_tensors), 0);
    fill(opt->m, 20, base + 1);
    fill(opt->v, 20, base + 2);
    opt->step[0] = 17;
    opt->step[1] = 5;
    MtlMeta meta = {0};
    mtl_meta_set(&meta, "model", "TinyDual");
    mtl_meta_set(&meta, "norm_mean", "[0.5,-1.25,\"q\\\"\"]");
    char err[MTL_ERR_SIZE] = "";
    int rc = mtl_checkpoint_save(path, &model, p, bufs, opt, &meta, err, sizeof err);
    if (rc) fail_msg("%s", err);
    mtl_meta_free(&meta);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *path = in_dir("model.safetensors");
    MtlAdamW opt;
    save_model(path, 0.25f, &opt);

    float p[20] = {0}, want[20], bufs[4] = {0}, want_bufs[4];
    fill(want, 20, 0.25f);
    fill(want_bufs, 4, 0.25f + 3);
    MtlAdamW back;
    assert_int_equal(mtl_adamw_init(&back, model.groups, model.n_groups, model.n_params,
                                    model.tensors, model.n_tensors), 0);
    MtlMeta meta = {0};
    char err[MTL_ERR_SIZE] = "";
    int rc = mtl_checkpoint_load(path, &model, p, bufs, &back, &meta, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_memory_equal(p, want, sizeof p);
    assert_memory_equal(bufs, want_bufs, sizeof bufs); /* the running statistics came back */
    /* moments exist for trainable tensors only (the health group is frozen): 0..10 */
    assert_memory_equal(back.m, opt.m, 11 * sizeof(float));
    assert_memory_equal(back.v, opt.v, 11 * sizeof(float));
    assert_true(back.m[15] == 0.0f);
    assert_int_equal(back.step[0], 17);
    assert_int_equal(back.step[1], 5);
    assert_string_equal(mtl_meta_get(&meta, "format"), "pt");
    assert_string_equal(mtl_meta_get(&meta, "norm_mean"), "[0.5,-1.25,\"q\\\"\"]");
    assert_string_equal(mtl_meta_get(&meta, "optimizer.step.shared"), "17");
    MtlSafetensors st;
    assert_int_equal(mtl_safetensors_read(path, &st, err, sizeof err), 0);
    assert_non_null(mtl_safetensors_find(&st, "optimizer.exp_avg.shared.0.weight"));
    assert_non_null(mtl_safetensors_find(&st, "optimizer.exp_avg_sq.head_rul.bias"));
    assert_null(mtl_safetensors_find(&st, "optimizer.exp_avg.head_health.bias"));
    /* buffers are plain F32 tensors under their own names, right after the parameters */
    const MtlStTensor *rv = mtl_safetensors_find(&st, "shared.1.running_var");
    assert_non_null(rv);
    assert_int_equal(rv->ndim, 1);
    assert_int_equal(rv->shape[0], 2);
    assert_int_equal(rv->begin, (20 + 2) * 4);
    assert_int_equal(rv->end, (20 + 4) * 4);
    float rv_data[2];
    memcpy(rv_data, st.data + rv->begin, sizeof rv_data);
    assert_memory_equal(rv_data, want_bufs + 2, sizeof rv_data);
    assert_null(mtl_safetensors_find(&st, "optimizer.exp_avg.shared.1.running_var"));
    assert_int_equal(st.n, 6 + 2 + 2 * 4);
    mtl_safetensors_free(&st);

    /* buffers may be left out of a load (checked, not copied) */
    float p2[20];
    assert_int_equal(mtl_checkpoint_load(path, &model, p2, NULL, NULL, NULL, err, sizeof err), 0);
    assert_memory_equal(p2, want, sizeof p2);

    /* saving what was loaded gives the same bytes */
    const char *again = in_dir("again.safetensors");
    MtlMeta user = {0};
    for (int i = 0; i < meta.n; i++)
        if (strncmp(meta.key[i], "optimizer.", 10) && strcmp(meta.key[i], "format"))
            mtl_meta_set(&user, meta.key[i], meta.value[i]);
    assert_int_equal(mtl_checkpoint_save(again, &model, p, bufs, &back, &user, err, sizeof err), 0);
    long n1, n2;
    char *f1 = slurp(path, &n1), *f2 = slurp(again, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(f1, f2, (size_t)n1);
    assert_int_equal((n1 - 8 - (long)(20 + 4 + 22) * 4) % 8, 0);
    free(f1);
    free(f2);
    mtl_meta_free(&user);
    mtl_meta_free(&meta);
    mtl_adamw_free(&back);
    mtl_adamw_free(&opt);
}

static void test_atomic_write(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", in_dir("keep.safetensors"));
    MtlAdamW opt;
    save_model(path, 1.0f, &opt);
    mtl_adamw_free(&opt);
    long n0;
    char *before = slurp(path, &n0);
    float p[20], bufs[4];
    fill(p, 20, 9.0f);
    fill(bufs, 4, 9.5f);
    char err[MTL_ERR_SIZE] = "";

    /* 1. the temporary cannot be created (a directory is in the way) */
    assert_int_equal(mkdir(in_dir("keep.safetensors.tmp"), 0755), 0);
    assert_int_equal(mtl_checkpoint_save(path, &model, p, bufs, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "error:"));
    assert_int_equal(rmdir(in_dir("keep.safetensors.tmp")), 0);

    /* 2. the disk "fills up" mid-write: RLIMIT_FSIZE makes write() fail with EFBIG */
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 100;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = mtl_checkpoint_save(path, &model, p, bufs, NULL, NULL, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "write"));
    assert_int_equal(access(in_dir("keep.safetensors.tmp"), F_OK), -1);

    /* 3. the directory does not exist */
    assert_int_equal(mtl_checkpoint_save(in_dir("no/such/dir/x.safetensors"), &model, p, bufs,
                                         NULL, NULL, err, sizeof err), -1);
    /* 4. a model with buffers saved without them is refused, not written half */
    assert_int_equal(mtl_checkpoint_save(path, &model, p, NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "has buffers"));

    long n1;
    char *after = slurp(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, (size_t)n0);
    free(before);
    free(after);
}

/* Expects the load to fail with "PATH: error: ...reason..." and the destination untouched. */
static void expect_reject(const char *path, const char *reason) {
    float p[20], bufs[4];
    for (int i = 0; i < 20; i++) p[i] = -7.0f;
    for (int i = 0; i < 4; i++) bufs[i] = -7.0f;
    char err[MTL_ERR_SIZE] = "";
    int rc = mtl_checkpoint_load(path, &model, p, bufs, NULL, NULL, err, sizeof err);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: error: ", path);
    if (rc != -1 || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, reason))
        fail_msg("%s: rc %d, message \"%s\", expected \"%s\"", path, rc, err, reason);
    for (int i = 0; i < 20; i++) assert_true(p[i] == -7.0f);
    for (int i = 0; i < 4; i++) assert_true(bufs[i] == -7.0f);
}

/* A file with the given header JSON and `data` bytes of zeros. */
static const char *with_header(const char *name, const char *json, size_t data) {
    size_t hl = strlen(json);
    unsigned char *buf = calloc(8 + hl + data, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, json, hl);
    const char *path = in_dir(name);
    spit(path, buf, 8 + hl + data);
    free(buf);
    return path;
}

/* The header of a checkpoint of model_good.json (parameters in table order, then the buffers
 * given), data all zeros; buffer_json is appended verbatim after the parameters. */
static const char *model_file(const char *name, const char *buffer_json, size_t buffer_bytes) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"shared.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"shared.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
             "\"head_rul.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[32,40]},"
             "\"head_rul.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[40,44]},"
             "\"head_health.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[44,68]},"
             "\"head_health.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[68,80]}%s}",
             buffer_json);
    return with_header(name, json, 80 + buffer_bytes);
}

static void test_loader_rejects(void **state) {
    (void)state;
    const char *path = in_dir("good.safetensors");
    MtlAdamW opt;
    save_model(path, 2.0f, &opt);
    mtl_adamw_free(&opt);
    long n;
    char *whole = slurp(path, &n);

    expect_reject(in_dir("missing.safetensors"), "cannot open");
    spit(in_dir("empty"), "", 0);
    expect_reject(in_dir("empty"), "truncated");
    spit(in_dir("short"), whole, 5);
    expect_reject(in_dir("short"), "truncated");
    spit(in_dir("half_header"), whole, 60);
    expect_reject(in_dir("half_header"), "header length");
    spit(in_dir("cut_data"), whole, (size_t)n - 1);
    expect_reject(in_dir("cut_data"), "out of range");
    char garbage[64];
    for (int i = 0; i < 64; i++) garbage[i] = (char)(i * 37 + 11);
    spit(in_dir("garbage"), garbage, sizeof garbage);
    expect_reject(in_dir("garbage"), "header length");
    expect_reject(with_header("badjson", "{\"a\": [1, 2", 0), "not a JSON object");
    expect_reject(with_header("f16", "{\"shared.0.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],"
                                     "\"data_offsets\":[0,12]}}", 12), "dtype F16");
    expect_reject(with_header("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                              12), "overlap");
    expect_reject(with_header("span", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                  "shape needs 12");
    expect_reject(with_header("extra", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                  "tensor \"shared.0.weight\" [2,3] of model TinyDual is missing from the checkpoint, "
                  "which has \"a\" [2] in its place");
    expect_reject(with_header("shape", "{\"shared.0.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],"
                                       "\"data_offsets\":[0,24]}}", 24),
                  "has shape [3,2] in the checkpoint, model TinyDual expects [2,3]");
    expect_reject(with_header("missing_t", "{\"shared.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                                           "\"data_offsets\":[0,24]}}", 24),
                  "\"shared.0.bias\" [2] of model TinyDual is missing");
    /* buffers: all present (the helper itself is right), one missing, one misshapen */
    const char *both = ",\"shared.1.running_mean\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[80,88]},"
                       "\"shared.1.running_var\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[88,96]}";
    float p[20], bufs[4] = {5, 5, 5, 5};
    char err[MTL_ERR_SIZE] = "";
    if (mtl_checkpoint_load(model_file("bufs_ok", both, 16), &model, p, bufs, NULL, NULL, err,
                            sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(bufs[0] == 0.0f && bufs[3] == 0.0f);
    expect_reject(model_file("bufs_missing", ",\"shared.1.running_mean\":{\"dtype\":\"F32\","
                                             "\"shape\":[2],\"data_offsets\":[80,88]}", 8),
                  "buffer \"shared.1.running_var\" [2] of model TinyDual is missing");
    expect_reject(model_file("bufs_shape", ",\"shared.1.running_mean\":{\"dtype\":\"F32\",\"shape\":[2],"
                                           "\"data_offsets\":[80,88]},\"shared.1.running_var\":{\"dtype\":"
                                           "\"F32\",\"shape\":[1,2],\"data_offsets\":[88,96]}", 16),
                  "buffer \"shared.1.running_var\" has shape [1,2] in the checkpoint, model TinyDual expects [2]");
    expect_reject(model_file("bufs_moment", ",\"shared.1.running_mean\":{\"dtype\":\"F32\",\"shape\":[2],"
                                            "\"data_offsets\":[80,88]},\"shared.1.running_var\":{\"dtype\":"
                                            "\"F32\",\"shape\":[2],\"data_offsets\":[88,96]},"
                                            "\"optimizer.exp_avg.shared.1.running_mean\":{\"dtype\":"
                                            "\"F32\",\"shape\":[2],\"data_offsets\":[96,104]}", 24),
                  "tensor \"optimizer.exp_avg.shared.1.running_mean\" is not part of model TinyDual");
    free(whole);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_loader_rejects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
