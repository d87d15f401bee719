/* gradcheck: central-difference check of a compiled model's backward pass.
 *
 *   gradcheck MODEL.so [--batch B] [--seed S] [--h H]
 *
 * Loads a model built with `mtlc SPEC --shared -o MODEL.so`, fills parameters, inputs and
 * targets with seeded random values, runs forward + backward once, then for every trainable
 * parameter element (or an even sample of 400 when there are more) compares the gradient with
 * (L(p+h) - L(p-h)) / 2h, where L = Σ_k w_k L_k with the table's task weights. Training mode is
 * on, so dropout masks are part of the check (the mask depends only on the step seed).
 * Prints the worst error and exits 1 if any element is outside tolerance.
 */
#include "mtl_abi.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*PassFn)(MtlStep *);

static uint64_t rng_state = 1;
static double urand(void) { /* splitmix64 → [0,1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) {
        fprintf(stderr, "gradcheck: model table lacks number '%s'\n", k);
        exit(2);
    }
    return v->valuedouble;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: gradcheck MODEL.so [--batch B] [--seed S] [--h H]\n");
        return 2;
    }
    int64_t B = 5;
    double h = 1e-3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) B = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) rng_state = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--h")) h = atof(argv[i + 1]);
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "gradcheck: %s\n", dlerror());
        return 2;
    }
    const char *json = dlsym(so, "mtl_model_json");
    PassFn fwd = (PassFn)dlsym(so, "mtl_model_forward"), bwd = (PassFn)dlsym(so, "mtl_model_backward");
    if (!json || !fwd || !bwd) {
        fprintf(stderr, "gradcheck: %s does not export the model ABI\n", argv[1]);
        return 2;
    }
    cJSON *m = cJSON_Parse(json);
    int64_t n_params = (int64_t)num(m, "n_params"), acts = (int64_t)num(m, "acts_per_sample");
    int64_t acts_fixed = (int64_t)num(m, "acts_fixed"), n_buf = (int64_t)num(m, "n_buffer_floats");
    int64_t in_size = (int64_t)num(cJSON_GetObjectItem(m, "input"), "size");
    const cJSON *tasks = cJSON_GetObjectItem(m, "tasks"), *tensors = cJSON_GetObjectItem(m, "tensors");
    int K = cJSON_GetArraySize(tasks);

    float *params = malloc(sizeof(float) * (size_t)n_params), *grads = malloc(sizeof(float) * (size_t)n_params);
    float *act = calloc((size_t)(acts * B + acts_fixed), sizeof(float)), *input = malloc(sizeof(float) * (size_t)(in_size * B));
    float **targets = calloc((size_t)K, sizeof(float *)), *losses = calloc((size_t)K, sizeof(float));
    float *weights = calloc((size_t)K, sizeof(float));
    float *buffers = calloc((size_t)n_buf + 1, sizeof(float)); /* running statistics: unused in training mode */
    for (int64_t i = 0; i < n_params; i++) params[i] = (float)(urand() - 0.5);
    for (int64_t i = 0; i < in_size * B; i++) input[i] = (float)(2.0 * urand() - 1.0);
    for (int k = 0; k < K; k++) {
        const cJSON *t = cJSON_GetArrayItem(tasks, k);
        int64_t ts = (int64_t)num(t, "target_size"), classes = (int64_t)num(t, "classes");
        weights[k] = (float)num(t, "weight");
        targets[k] = malloc(sizeof(float) * (size_t)(ts * B));
        for (int64_t i = 0; i < ts * B; i++)
            targets[k][i] = classes > 0 ? (float)(int64_t)(urand() * (double)classes) : (float)(2.0 * urand() - 1.0);
    }
    MtlStep s = {.batch = B, .training = 1, .seed = 12345, .params = params, .grads = grads, .acts = act,
                 .input = input, .targets = (const float *const *)targets, .losses = losses, .task_weights = weights, .buffers = buffers};
    fwd(&s);
    double L0 = 0.0;
    for (int k = 0; k < K; k++) L0 += fabs((double)weights[k] * losses[k]);
    /* rounding noise of a float difference quotient is about eps·|L|/h; an error below 25 times
     * that is not evidence of anything */
    double noise_floor = fmax(2e-3, 25.0 * 1.1920929e-7 * L0 / h);
    bwd(&s);
    float *analytic = malloc(sizeof(float) * (size_t)n_params);
    memcpy(analytic, grads, sizeof(float) * (size_t)n_params);

    int bad = 0, checked = 0;
    double worst = 0.0;
    const char *worst_name = "";
    int n_t = cJSON_GetArraySize(tensors);
    for (int ti = 0; ti < n_t; ti++) {
        const cJSON *t = cJSON_GetArrayItem(tensors, ti);
        if (!cJSON_IsTrue(cJSON_GetObjectItem(t, "trainable"))) continue;
        int64_t off = (int64_t)num(t, "offset"), cnt = (int64_t)num(t, "count");
        int64_t stride = cnt > 400 ? cnt / 400 : 1;
        /* Float forward passes put ~1e-7·L/h of noise on each difference quotient, so errors are
         * judged relative to each element plus a floor: a quarter of the tensor's largest element
         * or the noise floor above (at least 2e-3). */
        double scale = 0.0;
        for (int64_t e = 0; e < cnt; e++) scale = fmax(scale, fabs(analytic[off + e]));
        for (int64_t e = 0; e < cnt; e += stride) {
            float *p = &params[off + e], saved = *p;
            double L[2];
            for (int side = 0; side < 2; side++) {
                *p = saved + (float)(side ? -h : h);
                fwd(&s);
                L[side] = 0.0;
                for (int k = 0; k < K; k++) L[side] += (double)weights[k] * losses[k];
            }
            *p = saved;
            double numeric = (L[0] - L[1]) / (2.0 * h), a = analytic[off + e];
            double err = fabs(numeric - a) / (fmax(noise_floor, 0.25 * scale) + fmax(fabs(numeric), fabs(a)));
            checked++;
            if (err > worst) {
                worst = err;
                worst_name = cJSON_GetObjectItem(t, "name")->valuestring;
            }
            if (err > 2e-2) {
                if (bad < 10)
                    fprintf(stderr, "  %s[%lld]: analytic %.6g numeric %.6g\n",
                            cJSON_GetObjectItem(t, "name")->valuestring, (long long)e, a, numeric);
                bad++;
            }
        }
    }
    printf("gradcheck %s: %d elements checked, %d outside tolerance, worst relative error %.3g (%s), "
           "noise floor %.3g\n", argv[1], checked, bad, worst, worst_name, noise_floor);
    cJSON_Delete(m);
    for (int k = 0; k < K; k++) free(targets[k]);
    free(targets);
    free(params);
    free(grads);
    free(act);
    free(input);
    free(losses);
    free(weights);
    free(buffers);
    free(analytic);
    return bad || checked == 0 ? 1 : 0;
}
