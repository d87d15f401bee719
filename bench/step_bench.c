/* step_bench: times training steps (forward, backward, grouped AdamW) or inference of a model
 * compiled with `mtlc SPEC --shared -o MODEL.so`, on seeded random inputs and targets.
 *
 *   step_bench MODEL.so [--batch 256] [--steps N] [--repeats R] [--infer | --backward]
 *              [--balance METHOD [--every N] [--norms shared_params|trunk_output]]
 *   step_bench --blas-core
 *
 * --balance gaba (or any method of mtl_balance.h) times the step the trainer takes with that
 * method: one forward pass, one backward pass per task when the per-task gradients are measured
 * (every N-th step), the method's weights and the combined gradient (runtime/src/balance_step.c),
 * then AdamW (--norms trunk_output: the heads' backward pass per task, then one full backward
 * pass). Without it the step is one forward and one backward pass of the fixed-weight loss.
 * --backward times the backward pass alone (one forward pass before each repeat; every backward
 * pass reuses its activations): bench/stacking.sh compares it at batch B and 2B to bound what
 * stacking the tasks' backward passes through the trunk could save.
 *
 * Prints one JSON object: the per-step milliseconds of each repeat and their median, the OpenBLAS
 * kernel, the parameter count, and the resident memory just before the first step and at its
 * peak (kB). The work per step is exactly what the trainer does per batch, minus data gathering.
 *
 * Like the trainer, step_bench first lets the runtime pick the OpenBLAS kernel (mtl_blas_select:
 * it may re-execute itself once with OPENBLAS_CORETYPE set), so a timing is of the kernel a
 * training run would use. --blas-core prints that choice and stops: {"core": the kernel's name,
 * "coretype": OPENBLAS_CORETYPE as set by the selection or the user, or null when OpenBLAS's own
 * choice stands}. run.sh gives PyTorch the same.
 */
#include "mtl_abi.h"
#include "mtl_balance_step.h"
#include "mtl_runtime.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef void (*PassFn)(MtlStep *);

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Resident set size now, in kB (Linux /proc; -1 elsewhere). */
static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size, resident;
    int n = f ? fscanf(f, "%ld %ld", &size, &resident) : 0;
    if (f) fclose(f);
    return n == 2 ? resident * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    mtl_blas_select(argc, argv); /* may re-execute this program once, as the trainer does */
    if (argc == 2 && !strcmp(argv[1], "--blas-core")) {
        const char *ct = getenv("OPENBLAS_CORETYPE");
        printf("{\"core\":\"%s\",\"coretype\":", mtl_blas_corename());
        printf(ct ? "\"%s\"}\n" : "null}\n", ct);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: step_bench MODEL.so [--batch B] [--steps N] [--repeats R] [--infer | --backward]\n"
                        "                  [--balance METHOD [--every N] [--norms shared_params|trunk_output]]\n"
                        "       step_bench --blas-core\n");
        return 2;
    }
    int64_t B = 256;
    int steps = 50, repeats = 7, infer = 0, backward_only = 0;
    const char *balance = NULL;
    double every = 1;
    const char *norms = "shared_params";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--infer")) infer = 1;
        else if (!strcmp(argv[i], "--backward")) backward_only = 1;
        else if (!strcmp(argv[i], "--balance") && i + 1 < argc) balance = argv[++i];
        else if (!strcmp(argv[i], "--every") && i + 1 < argc) every = atof(argv[++i]);
        else if (!strcmp(argv[i], "--norms") && i + 1 < argc) norms = argv[++i];
        else {
            fprintf(stderr, "step_bench: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (repeats < 1 || repeats > 1000 || steps < 1 || B < 1 || every < 1) {
        fprintf(stderr, "step_bench: --repeats 1..1000, --steps, --batch and --every >= 1\n");
        return 2;
    }
    if (backward_only && (infer || balance)) {
        fprintf(stderr, "step_bench: --backward goes with neither --infer nor --balance\n");
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "step_bench: %s\n", dlerror());
        return 2;
    }
    const char *json = dlsym(so, "mtl_model_json");
    PassFn fwd = (PassFn)dlsym(so, "mtl_model_forward"), bwd = (PassFn)dlsym(so, "mtl_model_backward"),
           bwd_heads = (PassFn)dlsym(so, "mtl_model_backward_heads");
    MtlModelInfo m;
    char err[512];
    if (!json || !fwd || !bwd || mtl_model_info_parse(json, &m, err, sizeof err)) {
        fprintf(stderr, "step_bench: %s\n", json ? err : "not a model object");
        return 2;
    }
    float *params = malloc(sizeof(float) * (size_t)m.n_params), *grads = malloc(sizeof(float) * (size_t)m.n_params);
    float *buffers = calloc((size_t)m.n_buffer_floats + 1, sizeof(float));
    float *acts = calloc((size_t)(m.acts_per_sample * B + m.acts_fixed), sizeof(float));
    float *input = malloc(sizeof(float) * (size_t)(m.input_size * B));
    float **targets = calloc((size_t)m.n_tasks, sizeof(float *)), *losses = calloc((size_t)m.n_tasks, sizeof(float));
    float *weights = calloc((size_t)m.n_tasks, sizeof(float));
    mtl_init_params(&m, params, 1);
    mtl_init_buffers(&m, buffers);
    MtlRng rng;
    mtl_rng_seed(&rng, 2);
    for (int64_t i = 0; i < m.input_size * B; i++) input[i] = 2.0f * mtl_rng_uniform(&rng) - 1.0f;
    for (int k = 0; k < m.n_tasks; k++) {
        weights[k] = m.tasks[k].weight;
        targets[k] = malloc(sizeof(float) * (size_t)(m.tasks[k].target_size * B));
        for (int64_t i = 0; i < m.tasks[k].target_size * B; i++)
            targets[k][i] = m.tasks[k].classes > 0 ? (float)(int)(mtl_rng_uniform(&rng) * (float)m.tasks[k].classes)
                                                   : 125.0f * mtl_rng_uniform(&rng);
    }
    MtlAdamW opt;
    if (mtl_adamw_init(&opt, m.groups, m.n_groups, m.n_params, m.tensors, m.n_tensors)) return 2;
    MtlStep s = {.batch = B, .training = !infer, .seed = 3, .params = params, .grads = grads, .acts = acts,
                 .input = input, .targets = (const float *const *)targets, .losses = losses, .task_weights = weights,
                 .buffers = buffers};
    MtlBalanceRun bal;
    if (balance) {
        MtlBalanceMethod bm;
        if (mtl_balance_method_parse(balance, &bm) != 0) {
            fprintf(stderr, "step_bench: unknown balance method %s\n", balance);
            return 2;
        }
        m.balance.method = (int)bm;
        m.balance.n_options = 1;
        m.balance.option[0] = strdup("every");
        m.balance.value[0] = every;
        if (strcmp(norms, "shared_params") && strcmp(norms, "trunk_output")) {
            fprintf(stderr, "step_bench: --norms is shared_params or trunk_output\n");
            return 2;
        }
        m.balance.norms_on_output = !strcmp(norms, "trunk_output");
        if (mtl_balance_run_init(&bal, &m, false, 1, err, sizeof err) != 0) {
            fprintf(stderr, "step_bench: %s\n", err);
            return 2;
        }
    }
    long rss_before = rss_kb(); /* everything allocated; activations untouched so far (calloc) */
    int64_t step_no = 0;
    double *ms = calloc((size_t)repeats, sizeof(double));
    for (int r = -1; r < repeats; r++) { /* r = -1 warms up caches, BLAS threads and page tables */
        if (backward_only) fwd(&s);
        double t0 = now_ms();
        for (int i = 0; i < steps; i++) {
            if (backward_only) {
                bwd(&s);
                continue;
            }
            s.seed = (uint64_t)(r + 2) * 100003u + (uint64_t)i;
            if (balance) {
                if (mtl_balance_step(&bal, &s, fwd, bwd, bwd_heads, ++step_no) < 0) {
                    fprintf(stderr, "step_bench: out of memory\n");
                    return 1;
                }
                mtl_adamw_step(&opt, params, grads);
                continue;
            }
            fwd(&s);
            if (!infer) {
                bwd(&s);
                mtl_adamw_step(&opt, params, grads);
            }
        }
        if (r >= 0) ms[r] = (now_ms() - t0) / steps;
    }
    double *sorted = malloc(sizeof(double) * (size_t)repeats);
    memcpy(sorted, ms, sizeof(double) * (size_t)repeats);
    qsort(sorted, (size_t)repeats, sizeof(double), cmp_double);
    char mode[64];
    if (balance) snprintf(mode, sizeof mode, "train_step_%s_every_%g", balance, every);
    else snprintf(mode, sizeof mode, "%s", infer ? "inference" : backward_only ? "backward" : "train_step");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* ru_maxrss: kB on Linux */
    printf("{\"model\":\"%s\",\"batch\":%lld,\"mode\":\"%s\",\"median_ms\":%.4f,\"ms\":[", m.name, (long long)B,
           mode, sorted[repeats / 2]);
    for (int r = 0; r < repeats; r++) printf("%s%.4f", r ? "," : "", ms[r]);
    printf("],\"blas_core\":\"%s\",\"n_params\":%lld,\"rss_before_kb\":%ld,\"max_rss_kb\":%ld}\n",
           mtl_blas_corename(), (long long)m.n_params, rss_before, (long)ru.ru_maxrss);
    return 0;
}
