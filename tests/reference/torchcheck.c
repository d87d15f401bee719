/* torchcheck: compares a compiled model with PyTorch on one fixture (see make_fixtures.py).
 *
 *   torchcheck MODEL.so FIXTURE.safetensors
 *
 * Loads the fixture's weights and buffers into the model by name, runs forward (training or
 * eval mode, as the fixture says) and backward with the fixture's task weights, and compares the
 * head outputs, the losses, every parameter gradient and (training mode) the updated batchnorm
 * running statistics. Each tensor must agree within 1e-4 of its largest magnitude. A name
 * missing on either side is a failure, so parameter names are checked too.
 */
#include "mtl_abi.h"
#include "mtl_runtime.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*PassFn)(MtlStep *);

static MtlSafetensors fx;
static int failures;

static const MtlStTensor *need(const char *name) {
    const MtlStTensor *t = mtl_safetensors_find(&fx, name);
    if (!t) {
        fprintf(stderr, "torchcheck: fixture has no tensor '%s'\n", name);
        exit(1);
    }
    return t;
}

static int64_t count_of(const MtlStTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* copies a fixture tensor of exactly `count` floats into dst */
static void load(float *dst, const char *name, int64_t count) {
    const MtlStTensor *t = need(name);
    if (count_of(t) != count) {
        fprintf(stderr, "torchcheck: '%s' has %lld values in the fixture, the model expects %lld\n", name,
                (long long)count_of(t), (long long)count);
        exit(1);
    }
    memcpy(dst, fx.data + t->begin, (size_t)count * sizeof(float));
}

static void compare(const char *what, const char *name, const float *got, int64_t count) {
    float *want = malloc((size_t)count * sizeof(float));
    load(want, name, count);
    double scale = 0.0, worst = 0.0;
    for (int64_t i = 0; i < count; i++) scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < count; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
    double rel = worst / fmax(scale, 1e-12);
    int bad = !(rel <= 1e-4) && worst > 1e-9;
    printf("  %-7s %-40s max|diff| %.3g  (%.3g of max %.3g)%s\n", what, name, worst, rel, scale, bad ? "  FAIL" : "");
    failures += bad;
    free(want);
}

static double num(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: torchcheck MODEL.so FIXTURE.safetensors\n");
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "torchcheck: %s\n", dlerror());
        return 2;
    }
    const char *json = dlsym(so, "mtl_model_json");
    PassFn fwd = (PassFn)dlsym(so, "mtl_model_forward"), bwd = (PassFn)dlsym(so, "mtl_model_backward");
    char err[512];
    if (!json || !fwd || !bwd || mtl_safetensors_read(argv[2], &fx, err, sizeof err)) {
        fprintf(stderr, "torchcheck: %s\n", json ? err : "not a model object");
        return 2;
    }
    cJSON *m = cJSON_Parse(json);
    const char *mode = mtl_meta_get(&fx.meta, "training"), *batch = mtl_meta_get(&fx.meta, "batch");
    cJSON *weights_j = cJSON_Parse(mtl_meta_get(&fx.meta, "weights"));
    int64_t B = atoll(batch), training = !strcmp(mode, "1");
    int64_t n_params = (int64_t)num(m, "n_params"), n_buf = (int64_t)num(m, "n_buffer_floats");
    int64_t acts_n = (int64_t)num(m, "acts_per_sample") * B + (int64_t)num(m, "acts_fixed");
    int64_t in_size = (int64_t)num(cJSON_GetObjectItem(m, "input"), "size");
    float *params = calloc((size_t)n_params + 1, sizeof(float)), *grads = calloc((size_t)n_params + 1, sizeof(float));
    float *buffers = calloc((size_t)n_buf + 1, sizeof(float)), *acts = calloc((size_t)acts_n, sizeof(float));
    float *input = malloc((size_t)(B * in_size) * sizeof(float));
    const cJSON *tensors = cJSON_GetObjectItem(m, "tensors"), *bufs = cJSON_GetObjectItem(m, "buffers");
    const cJSON *tasks = cJSON_GetObjectItem(m, "tasks"), *t;
    cJSON_ArrayForEach(t, tensors) load(params + (int64_t)num(t, "offset"), cJSON_GetObjectItem(t, "name")->valuestring,
                                        (int64_t)num(t, "count"));
    cJSON_ArrayForEach(t, bufs) load(buffers + (int64_t)num(t, "offset"), cJSON_GetObjectItem(t, "name")->valuestring,
                                     (int64_t)num(t, "count"));
    load(input, "input", B * in_size);
    int K = cJSON_GetArraySize(tasks);
    float **targets = calloc((size_t)K, sizeof(float *)), *losses = calloc((size_t)K, sizeof(float));
    float *w = calloc((size_t)K, sizeof(float));
    for (int k = 0; k < K; k++) {
        const cJSON *task = cJSON_GetArrayItem(tasks, k);
        const char *name = cJSON_GetObjectItem(task, "name")->valuestring;
        char key[256];
        snprintf(key, sizeof key, "target.%s", name);
        int64_t ts = (int64_t)num(task, "target_size");
        targets[k] = malloc((size_t)(B * ts) * sizeof(float));
        load(targets[k], key, B * ts);
        w[k] = (float)cJSON_GetObjectItem(weights_j, name)->valuedouble;
    }
    MtlStep s = {.batch = B, .training = training, .seed = 1, .params = params, .grads = grads, .acts = acts,
                 .input = input, .targets = (const float *const *)targets, .losses = losses, .task_weights = w,
                 .buffers = buffers};
    fwd(&s);
    printf("torchcheck %s (%s mode, batch %lld)\n", argv[2], training ? "training" : "eval", (long long)B);
    for (int k = 0; k < K; k++) {
        const cJSON *task = cJSON_GetArrayItem(tasks, k);
        const char *name = cJSON_GetObjectItem(task, "name")->valuestring;
        char key[256];
        snprintf(key, sizeof key, "output.%s", name);
        compare("output", key, acts + (int64_t)num(task, "output_offset") * B, B * (int64_t)num(task, "out_width"));
        snprintf(key, sizeof key, "loss.%s", name);
        compare("loss", key, &losses[k], 1);
    }
    if (training)
        cJSON_ArrayForEach(t, bufs) {
            char key[512];
            snprintf(key, sizeof key, "after.%s", cJSON_GetObjectItem(t, "name")->valuestring);
            compare("buffer", key, buffers + (int64_t)num(t, "offset"), (int64_t)num(t, "count"));
        }
    bwd(&s);
    cJSON_ArrayForEach(t, tensors) {
        char key[512];
        snprintf(key, sizeof key, "grad.%s", cJSON_GetObjectItem(t, "name")->valuestring);
        compare("grad", key, grads + (int64_t)num(t, "offset"), (int64_t)num(t, "count"));
    }
    /* every fixture parameter must exist in the model too */
    for (int i = 0; i < fx.n; i++) {
        const char *name = fx.tensors[i].name;
        if (!strncmp(name, "grad.", 5)) {
            int found = 0;
            cJSON_ArrayForEach(t, tensors) found |= !strcmp(cJSON_GetObjectItem(t, "name")->valuestring, name + 5);
            if (!found) {
                printf("  PyTorch parameter %s has no counterpart in the model  FAIL\n", name + 5);
                failures++;
            }
        }
    }
    printf("%s: %d tensor(s) outside tolerance\n", failures ? "FAILED" : "ok", failures);
    for (int k = 0; k < K; k++) free(targets[k]);
    free(targets);
    free(losses);
    free(w);
    free(params);
    free(grads);
    free(buffers);
    free(acts);
    free(input);
    cJSON_Delete(weights_j);
    cJSON_Delete(m);
    mtl_safetensors_free(&fx);
    return failures ? 1 : 0;
}
