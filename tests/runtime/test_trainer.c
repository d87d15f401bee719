/* The trainer end to end, without the compiler: a hand-written two-task linear model
 * (fixtures/tiny_model.c) linked with mtlrt + mtlrt_main into runtime_tiny_trainer, run as a
 * subprocess on the synthetic fleet (and on a slice of C-MAPSS FD001 when MTLC_CMAPSS_DIR has it).
 * Checks exit statuses (0 / 1 / 2), the JSON Lines log, that the loss falls, the checkpoint
 * (exists, loads, identical for the same seed, holds the trained buffers which eval then uses),
 * that failed runs write no checkpoint and keep an earlier one, eval --json and predict's CSV.
 * The windowed build of the model (input [5, 17]) checks windows end to end: padded short test
 * engines reported in text and JSON, predict's engine,cycle,padded columns, the "window longer
 * than every engine" error, and a spec whose input does not match its features (exit 1).
 * The model's hand-derived gradients are checked against central differences first, since
 * everything else depends on them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mtl_runtime.h"

static char dir[256];

static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    s[n] = '\0';
    fclose(f);
    if (len) *len = n;
    return s;
}

static const char *path_in(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

typedef struct Run {
    int status;
    char *out, *err;
} Run;

/* Runs a test trainer with the given arguments (NULL-terminated), capturing stdout/stderr. */
static Run runv(const char *bin, const char *arg0, va_list ap) {
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    for (const char *a = arg0; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = a;
    argv[n] = NULL;
    const char *out = path_in("stdout.txt"), *err = path_in("stderr.txt");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    Run r = {WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), slurp(out, NULL),
             slurp(err, NULL)};
    /* in the sanitizer build a report may hide behind an expected exit status 1 */
    if (r.err && (strstr(r.err, "Sanitizer") || strstr(r.err, "runtime error:")))
        fail_msg("sanitizer report from the trainer:\n%s", r.err);
    return r;
}

static Run run(const char *arg0, ...) {
    va_list ap;
    va_start(ap, arg0);
    Run r = runv(TINY_TRAINER, arg0, ap);
    va_end(ap);
    return r;
}

/* the windowed model (input [5, 17], window 5) */
static Run run_window(const char *arg0, ...) {
    va_list ap;
    va_start(ap, arg0);
    Run r = runv(TINY_WINDOW_TRAINER, arg0, ap);
    va_end(ap);
    return r;
}

/* the windowed model whose spec lists 16 features */
static Run run_window_bad(const char *arg0, ...) {
    va_list ap;
    va_start(ap, arg0);
    Run r = runv(TINY_WINDOW_BAD_TRAINER, arg0, ap);
    va_end(ap);
    return r;
}

static void run_free(Run *r) {
    free(r->out);
    free(r->err);
}

static void expect_status(Run *r, int status) {
    if (r->status != status)
        fail_msg("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status, status,
                 r->out, r->err);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mtl_test_trainer_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the hand-written model's gradients ----------------------------------------------------- */

static double total_loss(MtlStep *s, const float *w) {
    mtl_model_forward(s);
    return (double)w[0] * s->losses[0] + (double)w[1] * s->losses[1];
}

static void test_model_gradients(void **state) {
    (void)state;
    MtlModelInfo m;
    char err[MTL_ERR_SIZE];
    assert_int_equal(mtl_model_info_parse(mtl_model_json, &m, err, sizeof err), 0);
    enum { B = 5 };
    float *params = calloc((size_t)m.n_params, sizeof(float));
    float *grads = calloc((size_t)m.n_params, sizeof(float));
    float *acts = calloc((size_t)(m.acts_per_sample * B + m.acts_fixed), sizeof(float));
    float *bufs = calloc((size_t)m.n_buffer_floats, sizeof(float));
    mtl_init_buffers(&m, bufs);
    float input[B * 17], yr[B], yc[B] = {0, 2, 1, 1, 0}, losses[2], w[2] = {0.3f, 0.7f};
    MtlRng rng;
    mtl_rng_seed(&rng, 42);
    mtl_init_params(&m, params, 1);
    for (int i = 0; i < m.n_params; i++) params[i] += 0.1f * (mtl_rng_uniform(&rng) - 0.5f);
    for (int i = 0; i < B * 17; i++) input[i] = 2.0f * mtl_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < B; i++) yr[i] = 3.0f * mtl_rng_uniform(&rng);
    const float *targets[2] = {yr, yc};
    MtlStep s = {.batch = B, .training = 1, .params = params, .grads = grads, .acts = acts,
                 .input = input, .targets = targets, .losses = losses, .task_weights = w,
                 .buffers = bufs};
    total_loss(&s, w);
    mtl_model_backward(&s);
    for (int i = 0; i < m.n_params; i++) {
        float keep = params[i];
        const float h = 1e-2f;
        params[i] = keep + h;
        double up = total_loss(&s, w);
        params[i] = keep - h;
        double down = total_loss(&s, w);
        params[i] = keep;
        double num = (up - down) / (2.0 * h);
        if (fabs(num - grads[i]) > 2e-3 + 2e-2 * fabs(num))
            fail_msg("param %d: analytic %g, numeric %g", i, (double)grads[i], num);
    }
    free(params);
    free(grads);
    free(acts);
    free(bufs);
    mtl_model_info_free(&m);
}

/* ---- command line ----------------------------------------------------------------------------- */

static void test_usage_errors(void **state) {
    (void)state;
    Run r = run("train", "--bogus", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "--bogus"));
    assert_non_null(strstr(r.err, "--help"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err)); /* one line */
    run_free(&r);
    r = run("train", "-e", "abc", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "abc"));
    run_free(&r);
    r = run("train", "--epochs", NULL);
    expect_status(&r, 2);
    run_free(&r);
    r = run("train", "--batch", "0", NULL);
    expect_status(&r, 2);
    run_free(&r);
    r = run("frobnicate", NULL);
    expect_status(&r, 2);
    run_free(&r);
    r = run(NULL);
    expect_status(&r, 2);
    run_free(&r);
    r = run("predict", NULL); /* --input is required */
    expect_status(&r, 2);
    run_free(&r);

    r = run("--version", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "trainer (mtlc "));
    assert_non_null(strstr(r.out, ") model TinyLinear"));
    run_free(&r);
    r = run("train", "--help", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "--epochs"));
    /* each command's help is its own, under the program's real name */
    assert_non_null(strstr(r.out, "usage: runtime_tiny_trainer train"));
    assert_null(strstr(r.out, "--input"));
    assert_non_null(strstr(r.out, "log.jsonl.tmp"));
    run_free(&r);
    r = run("predict", "--help", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "usage: runtime_tiny_trainer predict"));
    assert_non_null(strstr(r.out, "--input"));
    assert_null(strstr(r.out, "--epochs"));
    run_free(&r);
    r = run("eval", "--help", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "usage: runtime_tiny_trainer eval"));
    assert_non_null(strstr(r.out, "--json"));
    assert_null(strstr(r.out, "--input"));
    run_free(&r);
    r = run("train", "--bogus", NULL);
    assert_non_null(strstr(r.err, "runtime_tiny_trainer: error:"));
    run_free(&r);

    /* epochs >= 1; batch 1..1000000; no empty paths */
    r = run("train", "--epochs", "0", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "integer >= 1"));
    run_free(&r);
    r = run("train", "-b", "1000001", NULL);
    expect_status(&r, 2);
    run_free(&r);
    r = run("train", "-b", "1000000000", NULL);
    expect_status(&r, 2);
    run_free(&r);
    r = run("train", "-o", "", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "empty output path"));
    run_free(&r);
    r = run("predict", "-i", "x.txt", "-o", "", NULL);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "empty output path"));
    run_free(&r);
    r = run("eval", "-c", "", NULL);
    expect_status(&r, 2);
    run_free(&r);
}

/* ---- training on the synthetic fleet --------------------------------------------------------- */

static cJSON *parse_line(const char *line, size_t n) {
    char *s = strndup(line, n);
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

/* Checks OUT/log.jsonl: one object per epoch with every key, the RUL loss falling. */
static void check_log(const char *log_path, int epochs) {
    char *log = slurp(log_path, NULL);
    assert_non_null(log);
    int lines = 0;
    double first = 0, last = 0;
    for (char *p = log; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        cJSON *j = parse_line(p, (size_t)(nl - p));
        assert_non_null(j);
        if (cJSON_GetObjectItem(j, "test")) {
            cJSON_Delete(j);
            p = nl + 1;
            continue;
        }
        lines++;
        assert_int_equal(cJSON_GetObjectItem(j, "epoch")->valueint, lines);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "step")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "lr"), "shared")));
        cJSON *loss = cJSON_GetObjectItem(j, "loss");
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(loss, "health")));
        double rl = cJSON_GetObjectItem(loss, "rul")->valuedouble;
        if (lines == 1) first = rl;
        last = rl;
        assert_float_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "weight"), "rul")->valuedouble,
                           0.5, 1e-9);
        cJSON *val = cJSON_GetObjectItem(j, "val");
        const char *keys[] = {"rmse", "nasa", "mae", "accuracy", "macro_f1"};
        for (int k = 0; k < 5; k++) assert_true(cJSON_IsNumber(cJSON_GetObjectItem(val, keys[k])));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "time_s")));
        assert_true(cJSON_GetObjectItem(j, "train_s")->valuedouble <= cJSON_GetObjectItem(j, "time_s")->valuedouble);
        cJSON_Delete(j);
        p = nl + 1;
    }
    assert_int_equal(lines, epochs);
    if (!(last < 0.8 * first)) fail_msg("RUL loss did not fall: %g -> %g", first, last);
    free(log);
}

/* Everything of a log except the wall times. */
static char *log_without_time(const char *log_path) {
    char *log = slurp(log_path, NULL);
    assert_non_null(log);
    size_t cap = strlen(log) + 1, at = 0;
    char *out = calloc(cap, 1);
    for (char *p = log; *p;) {
        char *nl = strchr(p, '\n');
        cJSON *j = parse_line(p, (size_t)(nl - p));
        cJSON_DeleteItemFromObject(j, "time_s");
        cJSON_DeleteItemFromObject(j, "train_s");
        char *s = cJSON_PrintUnformatted(j);
        at += (size_t)snprintf(out + at, cap - at, "%s\n", s);
        free(s);
        cJSON_Delete(j);
        p = nl + 1;
    }
    free(log);
    return out;
}

static void test_train_synthetic(void **state) {
    (void)state;
    Run r = run("train", "-e", "4", "-b", "32", "--lr", "0.02", "-s", "3", "-o",
                path_in("run1"), NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.err, "synthetic"));
    assert_non_null(strstr(r.err, "OpenBLAS kernel"));
    assert_non_null(strstr(r.out, "{\"epoch\":4,"));
    assert_non_null(strstr(r.out, "{\"test\":{"));
    run_free(&r);
    check_log(path_in("run1/log.jsonl"), 4);

    /* the checkpoint loads into the model, with the run's metadata */
    MtlModelInfo m;
    char err[MTL_ERR_SIZE];
    assert_int_equal(mtl_model_info_parse(mtl_model_json, &m, err, sizeof err), 0);
    float *p = calloc((size_t)m.n_params, sizeof(float));
    MtlMeta meta = {0};
    float bufs[8];
    int rc = mtl_checkpoint_load(path_in("run1/model.safetensors"), &m, p, bufs, NULL, &meta, err,
                                 sizeof err);
    if (rc) fail_msg("%s", err);
    /* the running statistics were trained: no longer their init (mean 0, var 1) */
    for (int a = 0; a < 4; a++) {
        assert_true(bufs[a] != 0.0f);
        assert_true(bufs[4 + a] != 1.0f && bufs[4 + a] > 0.0f);
    }
    assert_string_equal(mtl_meta_get(&meta, "window"), "1");
    assert_string_equal(mtl_meta_get(&meta, "model"), "TinyLinear");
    assert_string_equal(mtl_meta_get(&meta, "epoch"), "4");
    assert_string_equal(mtl_meta_get(&meta, "seed"), "3");
    assert_string_equal(mtl_meta_get(&meta, "synthetic"), "true");
    assert_non_null(mtl_meta_get(&meta, "normalisation"));
    /* the optimizer's state is in the run's state checkpoint, not in the model's */
    assert_null(mtl_meta_get(&meta, "optimizer.step.shared"));
    MtlSafetensors sf;
    rc = mtl_safetensors_read(path_in("run1/state.safetensors"), &sf, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_non_null(mtl_meta_get(&sf.meta, "optimizer.step.shared"));
    assert_non_null(mtl_meta_get(&sf.meta, "train_progress"));
    assert_non_null(mtl_safetensors_find(&sf, "train_state.ema.shared.weight"));
    mtl_safetensors_free(&sf);

    /* same seed: same log (but for wall time) and the very same checkpoint bytes */
    r = run("train", "-e", "4", "-b", "32", "--lr", "0.02", "-s", "3", "-o", path_in("run2"),
            "--quiet", NULL);
    expect_status(&r, 0);
    assert_null(strstr(r.out, "\"epoch\""));
    run_free(&r);
    char *l1 = log_without_time(path_in("run1/log.jsonl"));
    char *l2 = log_without_time(path_in("run2/log.jsonl"));
    assert_string_equal(l1, l2);
    free(l1);
    free(l2);
    long n1, n2;
    char *c1 = slurp(path_in("run1/model.safetensors"), &n1);
    char *c2 = slurp(path_in("run2/model.safetensors"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c2, (size_t)n1);
    free(c2);

    /* another seed: different weights */
    r = run("train", "-e", "1", "-s", "4", "-o", path_in("run3"), "--quiet", NULL);
    expect_status(&r, 0);
    run_free(&r);
    char *c3 = slurp(path_in("run3/model.safetensors"), &n2);
    assert_true(n1 != n2 || memcmp(c1, c3, (size_t)n1) != 0);
    free(c3);

    /* a failing run into run1 (missing file) names the file, exits 1 and keeps the checkpoint */
    r = run("train", "--train", path_in("nope/train_FD001.txt"), "-o", path_in("run1"), NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "nope/train_FD001.txt"));
    run_free(&r);
    char *c1b = slurp(path_in("run1/model.safetensors"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c1b, (size_t)n1);
    free(c1b);
    free(c1);

    /* eval uses the checkpoint's running statistics: the same weights with the running mean
     * moved by 1000 change the health head (which centres with it) but not the RUL head */
    MtlMeta keep = {0};
    for (int i = 0; i < meta.n; i++)
        if (strncmp(meta.key[i], "optimizer.", 10) && strcmp(meta.key[i], "format"))
            mtl_meta_set(&keep, meta.key[i], meta.value[i]);
    for (int a = 0; a < 4; a++) bufs[a] += 1000.0f;
    if (mtl_checkpoint_save(path_in("moved.safetensors"), &m, p, bufs, NULL, &keep, err, sizeof err))
        fail_msg("%s", err);
    mtl_meta_free(&keep);
    mtl_meta_free(&meta);
    free(p);
    mtl_model_info_free(&m);
    Run e1 = run("eval", "-c", path_in("run1/model.safetensors"), "--json", NULL);
    Run e2 = run("eval", "-c", path_in("moved.safetensors"), "--json", NULL);
    expect_status(&e1, 0);
    expect_status(&e2, 0);
    cJSON *j1 = cJSON_Parse(e1.out), *j2 = cJSON_Parse(e2.out);
    assert_non_null(j1);
    assert_non_null(j2);
    assert_true(cJSON_GetObjectItem(j1, "rmse")->valuedouble == cJSON_GetObjectItem(j2, "rmse")->valuedouble);
    char *cf1 = cJSON_PrintUnformatted(cJSON_GetObjectItem(j1, "confusion"));
    char *cf2 = cJSON_PrintUnformatted(cJSON_GetObjectItem(j2, "confusion"));
    if (!strcmp(cf1, cf2)) fail_msg("moving the running mean did not change eval: %s", cf1);
    assert_int_equal(cJSON_GetObjectItem(j1, "padded")->valueint, 0);
    free(cf1);
    free(cf2);
    cJSON_Delete(j1);
    cJSON_Delete(j2);
    run_free(&e1);
    run_free(&e2);
    /* ... and into a fresh directory: nothing is created */
    r = run("train", "--train", path_in("nope/train_FD001.txt"), "-o", path_in("run4"), NULL);
    expect_status(&r, 1);
    run_free(&r);
    struct stat st;
    assert_int_equal(stat(path_in("run4/model.safetensors"), &st), -1);
    assert_int_equal(stat(path_in("run4/model.safetensors.tmp"), &st), -1);

    /* eval --json on the synthetic test fleet: exactly one JSON object */
    r = run("eval", "-c", path_in("run1/model.safetensors"), "--json", NULL);
    expect_status(&r, 0);
    cJSON *j = cJSON_Parse(r.out);
    if (!j) fail_msg("eval --json printed: %s", r.out);
    const char *keys[] = {"rmse", "nasa", "mae", "accuracy", "macro_f1", "engines"};
    for (int k = 0; k < 6; k++) assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, keys[k])));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "rul_capped")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "confusion")));
    assert_true(cJSON_GetObjectItem(j, "engines")->valueint > 0);
    assert_non_null(strstr(r.err, "synthetic"));
    cJSON_Delete(j);
    run_free(&r);

    /* eval text, uncapped */
    r = run("eval", "-c", path_in("run1/model.safetensors"), "--no-cap-test-rul", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "RMSE"));
    assert_non_null(strstr(r.out, "not capped"));
    assert_non_null(strstr(r.out, "engines evaluated"));
    run_free(&r);

    /* a damaged checkpoint is a user error naming the file */
    FILE *f = fopen(path_in("bad.safetensors"), "wb");
    fputs("not a checkpoint at all", f);
    fclose(f);
    r = run("eval", "-c", path_in("bad.safetensors"), NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "bad.safetensors: error:"));
    run_free(&r);

    /* predict: one CSV row per input row */
    f = fopen(path_in("rows.txt"), "w");
    for (int e = 1; e <= 2; e++)
        for (int c = 1; c <= 2 + e; c++) {
            fprintf(f, "%d %d -0.0007 -0.0004 100.0 518.67 642.%d 1589.7 1400.6 14.62 21.61 554.36 "
                       "2388.06 9046.19 1.3 47.47 521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.0 "
                       "39.06 23.4190\n", e, c, c);
        }
    fclose(f);
    r = run("predict", "-c", path_in("run1/model.safetensors"), "--input", path_in("rows.txt"),
            "-o", path_in("pred.csv"), NULL);
    expect_status(&r, 0);
    run_free(&r);
    char *csv = slurp(path_in("pred.csv"), NULL);
    assert_non_null(csv);
    assert_memory_equal(csv, "engine,rul,health,health_p0,health_p1,health_p2\n", 47);
    int rows = 0;
    for (char *q = csv; *q; q++) rows += *q == '\n';
    assert_int_equal(rows, 1 + 7);
    assert_int_equal(strncmp(strchr(csv, '\n') + 1, "1,", 2), 0);
    free(csv);
}

/* ---- checkpoints must come from this model, with sound metadata and weights ----------------- */

/* Re-saves OUT/model.safetensors as NAME with metadata key set to value (NULL: removed) and,
 * if poison is not NULL, that tensor's first element set to NaN. */
static const char *resave(const char *name, const char *key, const char *value, const char *poison) {
    MtlModelInfo m;
    char err[MTL_ERR_SIZE];
    assert_int_equal(mtl_model_info_parse(mtl_model_json, &m, err, sizeof err), 0);
    float *p = calloc((size_t)m.n_params, sizeof(float));
    float bufs[8];
    MtlMeta meta = {0}, keep = {0};
    if (mtl_checkpoint_load(path_in("ck/model.safetensors"), &m, p, bufs, NULL, &meta, err,
                            sizeof err))
        fail_msg("%s", err);
    for (int i = 0; i < meta.n; i++)
        if (strncmp(meta.key[i], "optimizer.", 10) && strcmp(meta.key[i], "format") &&
            (!key || strcmp(meta.key[i], key)))
            mtl_meta_set(&keep, meta.key[i], meta.value[i]);
    if (key && value) mtl_meta_set(&keep, key, value);
    if (poison)
        for (int t = 0; t < m.n_tensors; t++)
            if (!strcmp(m.tensors[t].name, poison)) p[m.tensors[t].offset] = NAN;
    const char *path = path_in(name);
    if (mtl_checkpoint_save(path, &m, p, bufs, NULL, &keep, err, sizeof err)) fail_msg("%s", err);
    mtl_meta_free(&keep);
    mtl_meta_free(&meta);
    free(p);
    mtl_model_info_free(&m);
    return path;
}

static void expect_eval_error(const char *ckpt, const char *what) {
    Run r = run("eval", "-c", ckpt, NULL);
    expect_status(&r, 1);
    if (!strstr(r.err, what)) fail_msg("eval of %s: stderr lacks '%s':\n%s", ckpt, what, r.err);
    if (!strstr(r.err, ckpt)) fail_msg("eval of %s: stderr does not name it:\n%s", ckpt, r.err);
    run_free(&r);
    r = run("predict", "-c", ckpt, "-i", path_in("none.txt"), NULL);
    expect_status(&r, 1);
    if (!strstr(r.err, what)) fail_msg("predict with %s: stderr lacks '%s':\n%s", ckpt, what, r.err);
    run_free(&r);
}

static void test_checkpoint_checks(void **state) {
    (void)state;
    Run r = run("train", "-e", "1", "-o", path_in("ck"), "-q", NULL);
    expect_status(&r, 0);
    run_free(&r);
    /* the checkpoint carries both fingerprints */
    MtlSafetensors st;
    char err[MTL_ERR_SIZE];
    if (mtl_safetensors_read(path_in("ck/model.safetensors"), &st, err, sizeof err)) fail_msg("%s", err);
    const char *fp = mtl_meta_get(&st.meta, "model_fingerprint");
    assert_non_null(fp);
    assert_int_equal(strncmp(fp, "fnv1a64:", 8), 0);
    assert_int_equal(strlen(fp), 8 + 16);
    assert_non_null(mtl_meta_get(&st.meta, "model_probe"));
    mtl_safetensors_free(&st);
    /* an unchanged re-save still evaluates */
    r = run("eval", "-c", resave("same.safetensors", NULL, NULL, NULL), NULL);
    expect_status(&r, 0);
    run_free(&r);

    expect_eval_error(resave("nofp.safetensors", "model_fingerprint", NULL, NULL),
                      "no model fingerprint");
    expect_eval_error(resave("otherfp.safetensors", "model_fingerprint", "fnv1a64:0123456789abcdef", NULL),
                      "is of another model");
    /* same table, other network (say tanh for relu): the probe outputs differ */
    expect_eval_error(resave("otherprobe.safetensors", "model_probe", "[1,2,3,4,5,6,7,8]", NULL),
                      "computes something else");
    expect_eval_error(resave("feat_text.safetensors", "features", "xx", NULL),
                      "metadata \"features\" is not a non-empty JSON array");
    expect_eval_error(resave("feat_twice.safetensors", "features", "[\"s2\",\"s2\"]", NULL),
                      "names a feature twice");
    expect_eval_error(resave("feat_unknown.safetensors", "features", "[\"s2\",\"s99\"]", NULL),
                      "unknown C-MAPSS feature");
    expect_eval_error(resave("feat_number.safetensors", "features", "[1,2]", NULL),
                      "other than a feature name");
    expect_eval_error(resave("norm_bad.safetensors", "normalisation", "[1e39]", NULL),
                      "metadata normalisation: expected a JSON object");
    expect_eval_error(resave("nan.safetensors", NULL, NULL, "shared.weight"),
                      "tensor \"shared.weight\" holds NaN");
}

/* The log lives in OUT/log.jsonl.tmp until the checkpoint is saved: a run that fails at the end
 * leaves the earlier log.jsonl and model.safetensors as they were. */
static void test_log_with_checkpoint(void **state) {
    (void)state;
    Run r = run("train", "-e", "2", "-o", path_in("lg"), "-q", NULL);
    expect_status(&r, 0);
    run_free(&r);
    struct stat st;
    assert_int_equal(stat(path_in("lg/log.jsonl.tmp"), &st), -1);
    long n1, n2;
    char *log1 = slurp(path_in("lg/log.jsonl"), &n1);
    char *ck1 = slurp(path_in("lg/model.safetensors"), &n2);
    assert_non_null(log1);
    /* the checkpoint's temporary is a directory: saving fails after every epoch was logged */
    assert_int_equal(mkdir(path_in("lg/model.safetensors.tmp"), 0755), 0);
    r = run("train", "-e", "3", "-o", path_in("lg"), "-q", NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "log.jsonl.tmp"));
    run_free(&r);
    long m1, m2;
    char *log2 = slurp(path_in("lg/log.jsonl"), &m1);
    char *ck2 = slurp(path_in("lg/model.safetensors"), &m2);
    assert_int_equal(n1, m1);
    assert_memory_equal(log1, log2, (size_t)n1);
    assert_int_equal(n2, m2);
    assert_memory_equal(ck1, ck2, (size_t)n2);
    /* the failed run's own log is kept under the in-progress name */
    char *partial = slurp(path_in("lg/log.jsonl.tmp"), NULL);
    assert_non_null(partial);
    assert_non_null(strstr(partial, "{\"epoch\":3,"));
    free(partial);
    free(log1);
    free(log2);
    free(ck1);
    free(ck2);
    rmdir(path_in("lg/model.safetensors.tmp"));

    /* a batch larger than the data is capped at the number of samples, and said so */
    r = run("train", "-e", "1", "-b", "1000000", "-o", path_in("big"), "-q", NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.err, "(capped from 1000000 at the number of training samples)"));
    run_free(&r);

    /* a failed predict output keeps the earlier file and leaves no temporary behind */
    FILE *f = fopen(path_in("pred.csv"), "w");
    fputs("earlier\n", f);
    fclose(f);
    assert_int_equal(mkdir(path_in("pred.csv.tmp"), 0755), 0);
    r = run("predict", "-c", path_in("lg/model.safetensors"), "-i", path_in("rows.txt"), "-o",
            path_in("pred.csv"), NULL);
    expect_status(&r, 1);
    run_free(&r);
    char *pred = slurp(path_in("pred.csv"), NULL);
    assert_string_equal(pred, "earlier\n");
    free(pred);
    rmdir(path_in("pred.csv.tmp"));
}

/* ---- windows -------------------------------------------------------------------------------- */

/* A C-MAPSS row of engine e, cycle c with s2 = 642 + c/100 (the other columns FD001-like). */
static void cmapss_row(FILE *f, int e, int c) {
    fprintf(f, "%d %d -0.0007 -0.0004 100.0 518.67 %.2f 1589.7 1400.6 14.62 21.61 554.36 2388.06 "
               "9046.19 1.3 47.47 521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.0 39.06 23.4190\n",
            e, c, 642.0 + c / 100.0);
}

static void test_windowed(void **state) {
    (void)state;
    /* train on the synthetic fleet: every test engine has at least 31 cycles, none padded */
    Run r = run_window("train", "-e", "2", "-b", "64", "--lr", "0.02", "-o", path_in("win"), NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.err, "windows of 5 cycles (stride 1)"));
    assert_non_null(strstr(r.err, "0 of 100 test engines shorter than the window (5 cycles) were padded "
                                  "by repeating their first cycle"));
    assert_non_null(strstr(r.err, "engines evaluated: 100 (last 5 cycles of each)"));
    char *t = strstr(r.out, "{\"test\":");
    assert_non_null(t);
    cJSON *j = cJSON_Parse(t);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "test"), "padded")->valueint, 0);
    cJSON_Delete(j);
    run_free(&r);

    /* a test file with a 3-cycle engine (padded) and a 7-cycle one */
    FILE *f = fopen(path_in("wtest.txt"), "w");
    for (int c = 1; c <= 3; c++) cmapss_row(f, 1, c);
    for (int c = 1; c <= 7; c++) cmapss_row(f, 2, c);
    fclose(f);
    f = fopen(path_in("wrul.txt"), "w");
    fputs("40\n90\n", f);
    fclose(f);
    r = run_window("eval", "-c", path_in("win/model.safetensors"), "--test", path_in("wtest.txt"), "--rul",
                   path_in("wrul.txt"), "--json", NULL);
    expect_status(&r, 0);
    j = cJSON_Parse(r.out);
    if (!j) fail_msg("eval --json printed: %s", r.out);
    assert_int_equal(cJSON_GetObjectItem(j, "engines")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(j, "padded")->valueint, 1);
    cJSON_Delete(j);
    assert_non_null(strstr(r.err, "1 of 2 test engines shorter than the window (5 cycles) were padded by "
                                  "repeating their first cycle"));
    run_free(&r);
    r = run_window("eval", "-c", path_in("win/model.safetensors"), "--test", path_in("wtest.txt"), "--rul",
                   path_in("wrul.txt"), NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "1 of 2 test engines shorter than the window (5 cycles) were padded"));
    run_free(&r);

    /* predict: a row per cycle, with engine, cycle and how many rows were padded */
    r = run_window("predict", "-c", path_in("win/model.safetensors"), "--input", path_in("wtest.txt"), "-o",
                   path_in("wpred.csv"), NULL);
    expect_status(&r, 0);
    assert_non_null(strstr(r.err, "7 of 10 predictions"));
    run_free(&r);
    char *csv = slurp(path_in("wpred.csv"), NULL);
    assert_non_null(csv);
    const char *want_rows[] = {"engine,cycle,padded,rul,health,health_p0,health_p1,health_p2",
                               "1,1,4,", "1,2,3,", "1,3,2,", "2,1,4,", "2,2,3,", "2,3,2,", "2,4,1,",
                               "2,5,0,", "2,6,0,", "2,7,0,"};
    char *line = csv;
    for (size_t i = 0; i < sizeof want_rows / sizeof want_rows[0]; i++) {
        assert_non_null(line);
        if (strncmp(line, want_rows[i], strlen(want_rows[i])) != 0)
            fail_msg("predict row %zu: %.60s, expected %s", i, line, want_rows[i]);
        line = strchr(line, '\n');
        if (line) line++;
    }
    assert_true(line && *line == '\0');
    free(csv);

    /* a training file whose engines are all shorter than the window */
    f = fopen(path_in("short_train.txt"), "w");
    for (int e = 1; e <= 2; e++)
        for (int c = 1; c <= 3; c++) cmapss_row(f, e, c);
    fclose(f);
    r = run_window("train", "--train", path_in("short_train.txt"), "-o", path_in("win_short"), NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "short_train.txt: error: no engine in short_train.txt has 5 cycles: "
                                  "window 5 is longer than every engine (the longest has 3)"));
    run_free(&r);
    struct stat st;
    assert_int_equal(stat(path_in("win_short"), &st), -1);

    /* a spec whose input [5, 17] does not match its 16 features: a clear error, nothing written */
    r = run_window_bad("train", "-e", "1", "-o", path_in("win_bad"), NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "input x has shape [5, 17] (85 floats per sample)"));
    assert_non_null(strstr(r.err, "16 features per cycle (window 5 x 16 = 80)"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err)); /* one line */
    run_free(&r);
    assert_int_equal(stat(path_in("win_bad"), &st), -1);
    /* ... and the same check on a checkpoint: the bad build reading the good build's checkpoint
     * is refused by model name before anything else */
    r = run_window_bad("eval", "-c", path_in("win/model.safetensors"), NULL);
    expect_status(&r, 1);
    run_free(&r);
    /* a checkpoint whose feature list (16) does not fit the model's [5, 17] input */
    MtlSafetensors ck;
    char err[MTL_ERR_SIZE];
    if (mtl_safetensors_read(path_in("win/model.safetensors"), &ck, err, sizeof err)) fail_msg("%s", err);
    MtlNamedTensor *ts = calloc((size_t)ck.n, sizeof *ts);
    for (int i = 0; i < ck.n; i++) {
        ts[i].name = ck.tensors[i].name;
        ts[i].ndim = ck.tensors[i].ndim;
        memcpy(ts[i].shape, ck.tensors[i].shape, sizeof ts[i].shape);
        ts[i].data = (const float *)(ck.data + ck.tensors[i].begin);
    }
    mtl_meta_set(&ck.meta, "features", "[\"setting1\",\"setting2\",\"setting3\",\"s2\",\"s3\",\"s4\",\"s7\","
                                       "\"s8\",\"s9\",\"s11\",\"s12\",\"s13\",\"s14\",\"s15\",\"s17\",\"s20\"]");
    if (mtl_safetensors_write(path_in("win16.safetensors"), ts, ck.n, &ck.meta, err, sizeof err))
        fail_msg("%s", err);
    free(ts);
    mtl_safetensors_free(&ck);
    r = run_window("predict", "-c", path_in("win16.safetensors"), "--input", path_in("wtest.txt"), NULL);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "model TinyWindow's input x has shape [5, 17] (85 floats per sample), but the "
                                  "data has 16 features per cycle (window 5 x 16 = 80)"));
    assert_string_equal(r.out, "");
    run_free(&r);
}

/* ---- a slice of the real FD001 ------------------------------------------------------------- */

static void test_train_cmapss_slice(void **state) {
    (void)state;
    const char *data = getenv("MTLC_CMAPSS_DIR");
    char src[512];
    snprintf(src, sizeof src, "%s/train_FD001.txt", data ? data : "");
    FILE *in = data ? fopen(src, "r") : NULL;
    if (!in) {
        printf("skipped: no C-MAPSS FD001 in MTLC_CMAPSS_DIR\n");
        skip();
    }
    /* the first 12 engines keep the run short */
    FILE *out = fopen(path_in("train_slice.txt"), "w");
    char line[1024];
    while (fgets(line, sizeof line, in) && atoi(line) <= 12) fputs(line, out);
    fclose(in);
    fclose(out);
    char test[512], rul[512];
    snprintf(test, sizeof test, "%s/test_FD001.txt", data);
    snprintf(rul, sizeof rul, "%s/RUL_FD001.txt", data);
    Run r = run("train", "--train", path_in("train_slice.txt"), "--test", test, "--rul", rul,
                "-e", "3", "-b", "64", "--lr", "0.02", "--warmup", "0", "-o", path_in("fd001"), NULL);
    expect_status(&r, 0);
    assert_null(strstr(r.err, "synthetic"));
    char *t = strstr(r.out, "{\"test\":");
    assert_non_null(t);
    cJSON *j = cJSON_Parse(t);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "test"), "engines")->valueint, 100);
    cJSON_Delete(j);
    run_free(&r);
    check_log(path_in("fd001/log.jsonl"), 3);

    /* eval of a real-data checkpoint needs a test set */
    r = run("eval", "-c", path_in("fd001/model.safetensors"), NULL);
    expect_status(&r, 1);
    run_free(&r);
    r = run("eval", "-c", path_in("fd001/model.safetensors"), "--test", test, "--rul", rul,
            "--json", NULL);
    expect_status(&r, 0);
    j = cJSON_Parse(r.out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "engines")->valueint, 100);
    cJSON_Delete(j);
    run_free(&r);
}

/* ---- OpenBLAS kernel choice ------------------------------------------------------------------ */

static void test_blas_choice(void **state) {
    (void)state;
    assert_true(mtl_blas_core_is_generic("Prescott"));
    assert_true(mtl_blas_core_is_generic("CORE2"));
    assert_true(mtl_blas_core_is_generic("unknown"));
    assert_false(mtl_blas_core_is_generic("Haswell"));
    assert_false(mtl_blas_core_is_generic("Zen"));
    /* only a kernel whose instructions this CPU has */
    const char *best = mtl_blas_best_core();
    __builtin_cpu_init();
    if (best) {
        assert_true(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
        if (!strcmp(best, "SkylakeX")) assert_true(__builtin_cpu_supports("avx512bw"));
        else assert_string_equal(best, "Haswell");
    } else {
        assert_false(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    }
    assert_int_equal(mtl_blas_set_threads(1), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_gradients),
        cmocka_unit_test(test_blas_choice),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_train_synthetic),
        cmocka_unit_test(test_checkpoint_checks),
        cmocka_unit_test(test_log_with_checkpoint),
        cmocka_unit_test(test_windowed),
        cmocka_unit_test(test_train_cmapss_slice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
