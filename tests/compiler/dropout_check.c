/* dropout_check MODEL.so: training-mode dropout of a compiled model is unbiased.
 *
 * The specs in tests/compiler/dropout/ put each dropout kind where the model is linear in its
 * mask from there to every task output (no batchnorm, no nonlinearity after the dropout). Then
 * the mean over many dropout masks of the training-mode outputs must equal the evaluation-mode
 * outputs. Each output element is checked against the standard error of its mean over S masks:
 * |mean - eval| <= 6 sigma / sqrt(S) (+ 1e-5 of the largest output for masks that do not move it).
 * A missing 1/(1 - p) scale, a mask applied in evaluation mode, or a mask that does not change
 * with the step seed each fail by far. Exit 0 when every element holds, 1 otherwise.
 */
#include "mtl_abi.h"
#include "mtl_runtime.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*PassFn)(MtlStep *);
enum { B = 32, S = 2000 };

static float *zalloc(int64_t n) {
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) abort();
    return p;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dropout_check MODEL.so\n");
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "dropout_check: %s\n", dlerror());
        return 1;
    }
    const char *json = dlsym(so, "mtl_model_json");
    PassFn fwd = (PassFn)dlsym(so, "mtl_model_forward");
    MtlModelInfo m;
    char err[512];
    if (!json || !fwd || mtl_model_info_parse(json, &m, err, sizeof err) != 0) {
        fprintf(stderr, "dropout_check: not a model: %s\n", json ? err : "symbols missing");
        return 1;
    }
    if (m.n_buffer_floats > 0) {
        fprintf(stderr, "dropout_check: the model has buffers (batchnorm): train and eval differ anyway\n");
        return 1;
    }
    float *params = zalloc(m.n_params), *grads = zalloc(m.n_params);
    float *acts = zalloc(m.acts_per_sample * B + m.acts_fixed), *input = zalloc(m.input_size * B);
    mtl_init_params(&m, params, 11);
    MtlRng r;
    mtl_rng_seed(&r, 12);
    for (int64_t i = 0; i < m.input_size * B; i++) input[i] = 2 * mtl_rng_uniform(&r) - 1;
    float *targets[8] = {0}, losses[8], weights[8];
    for (int k = 0; k < m.n_tasks; k++) {
        targets[k] = zalloc(m.tasks[k].target_size * B); /* class 0, value 0: only outputs are read */
        weights[k] = 1;
    }
    MtlStep s = {.batch = B, .training = 0, .seed = 1, .params = params, .grads = grads, .acts = acts,
                 .input = input, .targets = (const float *const *)targets, .losses = losses,
                 .task_weights = weights, .buffers = NULL};
    int ok = 1;
    for (int k = 0; k < m.n_tasks; k++) {
        int64_t n = m.tasks[k].out_width * B;
        const float *out = acts + m.tasks[k].output_offset * B;
        s.training = 0;
        fwd(&s);
        double *ev = calloc((size_t)n, sizeof(double)), *sum = calloc((size_t)n, sizeof(double)),
               *sq = calloc((size_t)n, sizeof(double));
        if (!ev || !sum || !sq) abort();
        double big = 0;
        for (int64_t i = 0; i < n; i++) {
            ev[i] = out[i];
            big = fmax(big, fabs(ev[i]));
        }
        s.training = 1;
        int64_t moved = 0;
        for (int t = 0; t < S; t++) {
            s.seed = 1000 + (uint64_t)t; /* the trainer's step seed: a new mask each step */
            fwd(&s);
            for (int64_t i = 0; i < n; i++) {
                sum[i] += out[i];
                sq[i] += (double)out[i] * out[i];
                moved += out[i] != (float)ev[i];
            }
        }
        int64_t bad = 0;
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double mean = sum[i] / S, var = fmax(0, sq[i] / S - mean * mean);
            double z = fabs(mean - ev[i]) / (sqrt(var / S) + 1e-5 * big + 1e-30);
            worst = fmax(worst, z);
            bad += z > 6;
        }
        printf("%s: %lld outputs, %d masks: worst |mean - eval| = %.2f standard errors; %lld of %lld "
               "output values differed from eval\n", m.tasks[k].name, (long long)n, S, worst,
               (long long)moved, (long long)n * S);
        if (bad || moved == 0) {
            fprintf(stderr, "dropout_check: task %s: %lld outputs biased (worst %.1f standard errors)%s\n",
                    m.tasks[k].name, (long long)bad, worst, moved ? "" : "; dropout never changed an output");
            ok = 0;
        }
        free(ev);
        free(sum);
        free(sq);
    }
    for (int k = 0; k < m.n_tasks; k++) free(targets[k]);
    free(params);
    free(grads);
    free(acts);
    free(input);
    mtl_model_info_free(&m);
    dlclose(so);
    puts(ok ? "dropout_check: ok" : "dropout_check: FAILED");
    return ok ? 0 : 1;
}
