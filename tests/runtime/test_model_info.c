/* Model info table (ABI 2): the good fixture parses into the expected struct (buffers, acts_fixed,
 * windows included); good variants (window keys absent, a windowed input) parse with the expected
 * values; each broken variant (made by one textual edit of the fixture) is rejected with a reason
 * naming the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtl_runtime.h"

static char *good;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    s[n] = '\0';
    fclose(f);
    return s;
}

static int setup(void **state) {
    (void)state;
    good = slurp(MTL_RUNTIME_FIXTURES "/model_good.json");
    return good ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(good);
    return 0;
}

/* good with the first occurrence of `from` replaced by `to` (the edit must apply) */
static char *edit(const char *from, const char *to) {
    const char *at = strstr(good, from);
    assert_non_null(at);
    size_t n = strlen(good) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    size_t pre = (size_t)(at - good);
    memcpy(s, good, pre);
    strcpy(s + pre, to);
    strcat(s, at + strlen(from));
    return s;
}

static void test_good(void **state) {
    (void)state;
    MtlModelInfo m;
    char err[MTL_ERR_SIZE] = "";
    assert_int_equal(mtl_model_info_parse(good, &m, err, sizeof err), 0);
    assert_string_equal(m.name, "TinyDual");
    assert_int_equal(m.input_size, 3);
    assert_int_equal(m.n_params, 20);
    assert_int_equal(m.acts_per_sample, 10);
    assert_int_equal(m.n_tensors, 6);
    assert_string_equal(m.tensors[2].name, "head_rul.weight");
    assert_int_equal(m.tensors[2].ndim, 2);
    assert_int_equal(m.tensors[2].shape[0], 1);
    assert_int_equal(m.tensors[2].shape[1], 2);
    assert_int_equal(m.tensors[2].offset, 8);
    assert_int_equal(m.tensors[2].group, 1);
    assert_int_equal(m.tensors[0].init, MTL_INIT_UNIFORM);
    assert_float_equal(m.tensors[0].bound, 0.57735, 1e-6);
    assert_int_equal(m.tensors[1].init, MTL_INIT_ZEROS);
    assert_int_equal(m.tensors[3].init, MTL_INIT_ONES);
    assert_false(m.tensors[4].trainable);
    assert_int_equal(m.n_groups, 3);
    assert_float_equal(m.groups[1].lr, 0.002, 1e-9);
    assert_float_equal(m.groups[1].beta1, 0.8, 1e-7);
    assert_float_equal(m.groups[1].beta2, 0.99, 1e-7);
    assert_float_equal(m.groups[1].eps, 1e-6, 1e-12);
    assert_true(m.groups[2].frozen);
    assert_int_equal(m.n_tasks, 2);
    assert_int_equal(m.tasks[0].target, MTL_TARGET_REAL);
    assert_int_equal(m.tasks[1].target, MTL_TARGET_CLASS);
    assert_int_equal(m.tasks[1].loss, MTL_LOSS_CROSS_ENTROPY);
    assert_int_equal(m.tasks[1].classes, 3);
    assert_int_equal(m.tasks[1].output_offset, 3);
    assert_string_equal(m.tasks[1].bind, "health");
    assert_int_equal(mtl_model_find_task(&m, "health"), 1);
    assert_int_equal(mtl_model_find_task(&m, "nope"), -1);
    assert_int_equal(m.train.epochs, 30);
    assert_int_equal(m.train.batch, 64);
    assert_int_equal(m.train.seed, 7);
    assert_false(m.train.has_lr);
    assert_int_equal(m.data.kind, MTL_DATA_CMAPSS);
    assert_string_equal(m.data.train, "train_FD001.txt");
    assert_null(m.data.test);
    assert_int_equal(m.data.n_thresholds, 2);
    assert_float_equal(m.data.thresholds[1], 30, 0);
    assert_int_equal(m.data.n_features, 3);
    assert_string_equal(m.data.features[1], "s2");
    /* ABI 2 */
    assert_int_equal(m.abi, 3);
    assert_int_equal(m.acts_fixed, 5);
    assert_int_equal(m.n_buffer_floats, 4);
    assert_int_equal(m.n_buffers, 2);
    assert_string_equal(m.buffers[0].name, "shared.1.running_mean");
    assert_string_equal(m.buffers[1].name, "shared.1.running_var");
    assert_int_equal(m.buffers[1].ndim, 1);
    assert_int_equal(m.buffers[1].shape[0], 2);
    assert_int_equal(m.buffers[1].offset, 2);
    assert_int_equal(m.buffers[1].count, 2);
    assert_int_equal(m.buffers[0].init, MTL_INIT_ZEROS);
    assert_int_equal(m.buffers[1].init, MTL_INIT_ONES);
    assert_int_equal(m.data.window, 1);
    assert_int_equal(m.data.window_stride, 1);
    /* buffer init: zeros / ones as declared */
    float buf[4] = {7, 7, 7, 7};
    mtl_init_buffers(&m, buf);
    assert_true(buf[0] == 0.0f && buf[1] == 0.0f && buf[2] == 1.0f && buf[3] == 1.0f);
    mtl_model_info_free(&m);
}

/* Variants that must parse: window keys are optional (default 1), a windowed [T, F] input, a
 * model without buffers. */
static void test_good_variants(void **state) {
    (void)state;
    MtlModelInfo m;
    char err[MTL_ERR_SIZE] = "";
    char *s = edit(", \"window\": 1, \"window_stride\": 1}", "}");
    if (mtl_model_info_parse(s, &m, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(m.data.window, 1);
    assert_int_equal(m.data.window_stride, 1);
    mtl_model_info_free(&m);
    free(s);

    char *s1 = edit("\"shape\": [3], \"size\": 3", "\"shape\": [3, 1], \"size\": 3");
    const char *at = strstr(s1, "\"window\": 1, \"window_stride\": 1");
    assert_non_null(at);
    const char *w3 = "\"window\": 3, \"window_stride\": 2"; /* same length */
    memcpy((char *)at, w3, strlen(w3));
    if (mtl_model_info_parse(s1, &m, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(m.data.window, 3);
    assert_int_equal(m.data.window_stride, 2);
    assert_int_equal(m.input_ndim, 2);
    assert_int_equal(m.input_shape[0], 3);
    assert_int_equal(m.input_shape[1], 1);
    mtl_model_info_free(&m);
    free(s1);

    const char *b0 = strstr(good, "  \"buffers\": [");
    const char *b1 = strstr(good, "  \"groups\": [");
    assert_true(b0 && b1 && b0 < b1);
    char *s2 = malloc(strlen(good) + 64);
    size_t pre = (size_t)(b0 - good);
    memcpy(s2, good, pre);
    strcpy(s2 + pre, "  \"buffers\": [],\n");
    strcat(s2, b1);
    /* the region may stay declared even with no buffer in it */
    if (mtl_model_info_parse(s2, &m, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(m.n_buffers, 0);
    assert_int_equal(m.n_buffer_floats, 4);
    mtl_model_info_free(&m);
    free(s2);

    /* amnl_cap is optional: absent (as in the fixture) means off; given, it reaches MtlTaskInfo */
    if (mtl_model_info_parse(good, &m, err, sizeof err)) fail_msg("%s", err);
    assert_true(m.tasks[0].amnl_cap == 0.0f && m.tasks[1].amnl_cap == 0.0f);
    mtl_model_info_free(&m);
    char *s3 = edit("\"huber_delta\": 1.0, \"weight\": 0.5, \"out_width\": 1",
                    "\"huber_delta\": 1.0, \"weight\": 0.5, \"amnl_cap\": 125, \"out_width\": 1");
    if (mtl_model_info_parse(s3, &m, err, sizeof err)) fail_msg("%s", err);
    assert_true(m.tasks[0].amnl_cap == 125.0f && m.tasks[1].amnl_cap == 0.0f);
    mtl_model_info_free(&m);
    free(s3);

    /* the trunk output's gradient, and balance norms measured on it */
    if (mtl_model_info_parse(good, &m, err, sizeof err)) fail_msg("%s", err);
    assert_true(m.trunk_size == 2 && m.trunk_grad_offset == 8 && !m.balance.norms_on_output);
    mtl_model_info_free(&m);
    char *s4 = edit("  \"train\": {", "  \"balance\": {\"method\": \"gaba\", \"norms\": \"trunk_output\"},\n  \"train\": {");
    if (mtl_model_info_parse(s4, &m, err, sizeof err)) fail_msg("%s", err);
    assert_true(m.balance.norms_on_output);
    mtl_model_info_free(&m);
    free(s4);
    char *s5 = edit("\"trunk_output\": {\"name\": \"shared.1.out\", \"size\": 2, \"grad_offset\": 8}",
                    "\"trunk_output\": null");
    if (mtl_model_info_parse(s5, &m, err, sizeof err)) fail_msg("%s", err);
    assert_true(m.trunk_grad_offset == -1);
    mtl_model_info_free(&m);
    free(s5);
}

typedef struct Broken {
    const char *from, *to, *reason;
} Broken;

static const Broken broken[] = {
    {"\"abi\": 3", "\"abi\": 1", "ABI version 1, this runtime implements 3"},
    {"\"name\": \"TinyDual\",", "", "missing key \"name\""},
    {"\"n_params\": 20", "\"n_params\": 21", "groups cover 20 parameters but n_params is 21"},
    {"\"shape\": [2, 3], \"offset\": 0, \"count\": 6", "\"shape\": [2, 3], \"offset\": 0, \"count\": 5",
     "count 5 does not match shape"},
    {"\"offset\": 6, \"count\": 2, \"group\": 0", "\"offset\": 5, \"count\": 2, \"group\": 0",
     "overlaps"},
    {"\"name\": \"rul\", \"offset\": 8", "\"name\": \"rul\", \"offset\": 9",
     "groups must be contiguous"},
    {"\"offset\": 10, \"count\": 1, \"group\": 1", "\"offset\": 10, \"count\": 1, \"group\": 2",
     "outside its group"},
    {"\"init\": \"ones\"", "\"init\": \"normal\"", "unknown init \"normal\""},
    {"\"loss\": \"mse\"", "\"loss\": \"mse2\"", "unknown loss"},
    {"\"output_offset\": 3", "\"output_offset\": 8", "beyond acts_per_sample"},
    {"\"kind\": \"cmapss\"", "\"kind\": \"parquet\"", "unknown kind"},
    {"\"betas\": [0.8, 0.99]", "\"betas\": [0.8]", "betas must be two numbers"},
    {"\"lr\": null", "\"lr\": \"fast\"", "\"lr\" must be a positive number or null"},
    {"\"trainable\": true", "\"trainable\": 1", "must be true or false"},
    {"{\n  \"abi\"", "[\n  \"abi\"", "not valid JSON"},
    /* ABI 2: acts_fixed, buffers, windows */
    {"\"acts_fixed\": 5, ", "", "missing key \"acts_fixed\""},
    {"\"n_buffer_floats\": 4", "\"n_buffer_floats\": -1", "\"n_buffer_floats\" must be an integer >= 0"},
    {"\"n_buffer_floats\": 4", "\"n_buffer_floats\": 3",
     "buffer \"shared.1.running_var\": ends at 4 beyond n_buffer_floats 3"},
    {"\"buffers\": [", "\"buffers_\": [", "missing key \"buffers\""},
    {"\"shape\": [2], \"offset\": 2, \"count\": 2", "\"shape\": [2], \"offset\": 2, \"count\": 3",
     "buffer \"shared.1.running_var\": count 3 does not match shape (2)"},
    {"\"offset\": 2, \"count\": 2, \"init\"", "\"offset\": 1, \"count\": 2, \"init\"",
     "buffer \"shared.1.running_var\": offset 1 overlaps the previous buffer"},
    {"\"count\": 2, \"init\": \"ones\"", "\"count\": 2, \"init\": \"uniform\"",
     "unknown buffer init \"uniform\""},
    {"\"name\": \"shared.1.running_var\"", "\"name\": \"shared.0.bias\"",
     "buffer \"shared.0.bias\" has the name of a tensor"},
    {"\"name\": \"shared.1.running_var\"", "\"name\": \"shared.1.running_mean\"",
     "buffer \"shared.1.running_mean\" appears twice"},
    {"\"window\": 1,", "\"window\": 0,", "\"window\" must be an integer >= 1"},
    {"\"window_stride\": 1", "\"window_stride\": 1.5", "\"window_stride\" must be an integer >= 1"},
    {"\"window\": 1,", "\"window\": 2,",
     "window 2 needs an input of shape [2, F], input \"x\" has shape [3]"},
    /* the trunk output's gradient lies in the per-sample activations; norms are one of two */
    {"\"size\": 2, \"grad_offset\": 8", "\"size\": 2, \"grad_offset\": 9",
     "trunk_output: gradient outside the per-sample activations"},
    {"\"size\": 2, \"grad_offset\": 8", "\"size\": 0, \"grad_offset\": 8",
     "\"size\" must be an integer >= 1"},
    {"  \"train\": {", "  \"balance\": {\"method\": \"gaba\", \"norms\": \"output\"},\n  \"train\": {",
     "balance: \"norms\" is \"shared_params\" or \"trunk_output\""},
    {"\"trunk_output\": {\"name\": \"shared.1.out\", \"size\": 2, \"grad_offset\": 8}",
     "\"trunk_output\": null, \"balance\": {\"method\": \"gaba\", \"norms\": \"trunk_output\"}",
     "balance: norms on the trunk output, but no gradient reaches it"},
    /* AMNL weighting: a finite cap >= 0, and only on mse over one real value per sample */
    {"\"weight\": 0.5, \"out_width\": 1", "\"weight\": 0.5, \"amnl_cap\": -1, \"out_width\": 1",
     "task \"rul\": amnl_cap must be finite and >= 0"},
    {"\"weight\": 0.5, \"out_width\": 1", "\"weight\": 0.5, \"amnl_cap\": \"125\", \"out_width\": 1",
     "task \"rul\": \"amnl_cap\" must be a number"},
    {"\"loss\": \"mse\"", "\"loss\": \"mae\", \"amnl_cap\": 125",
     "task \"rul\": amnl_cap applies to an mse task with one real target value"},
    {"\"weight\": 0.5, \"out_width\": 3", "\"weight\": 0.5, \"amnl_cap\": 125, \"out_width\": 3",
     "task \"health\": amnl_cap applies to an mse task with one real target value"},
};

static void test_broken(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        char *s = edit(broken[i].from, broken[i].to);
        MtlModelInfo m;
        char err[MTL_ERR_SIZE] = "";
        int rc = mtl_model_info_parse(s, &m, err, sizeof err);
        if (rc != -1 || !strstr(err, broken[i].reason))
            fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err,
                     broken[i].reason);
        free(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_good_variants),
        cmocka_unit_test(test_broken),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
