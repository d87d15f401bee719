/* Grouped AdamW with PyTorch's semantics (torch.optim.AdamW, single-tensor path): per group its
 * own lr, betas, eps, weight decay and step count; decoupled decay applied first and scaled by lr;
 * bias correction with the group's step t (starting at 1). Frozen groups and non-trainable
 * tensors are skipped entirely (no decay, no moment update).
 *
 * The moments are flat arrays in the parameter layout; the work is one loop per contiguous range
 * of trainable parameters (normally one range per group). No gradient clipping, schedules or
 * balancing here: a schedule scales every group's lr through lr_mult.
 */
#include "mtl_runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int add_range(MtlAdamW *opt, int64_t offset, int64_t count, int group) {
    if (count <= 0) return 0;
    if (opt->n_ranges > 0) {
        MtlAdamRange *last = &opt->ranges[opt->n_ranges - 1];
        if (last->group == group && last->offset + last->count == offset) {
            last->count += count; /* adjacent tensors of one group: keep one flat loop */
            return 0;
        }
    }
    MtlAdamRange *r = realloc(opt->ranges, (size_t)(opt->n_ranges + 1) * sizeof *r);
    if (!r) return -1;
    opt->ranges = r;
    opt->ranges[opt->n_ranges++] = (MtlAdamRange){offset, count, group};
    return 0;
}

int mtl_adamw_init(MtlAdamW *opt, const MtlGroupInfo *groups, int n_groups, int64_t n_params,
                   const MtlTensorInfo *tensors, int n_tensors) {
    memset(opt, 0, sizeof *opt);
    opt->n_groups = n_groups;
    opt->n_params = n_params;
    opt->lr_mult = 1.0f;
    opt->groups = malloc((size_t)(n_groups > 0 ? n_groups : 1) * sizeof *opt->groups);
    opt->step = calloc((size_t)(n_groups > 0 ? n_groups : 1), sizeof *opt->step);
    opt->m = calloc((size_t)(n_params > 0 ? n_params : 1), sizeof(float));
    opt->v = calloc((size_t)(n_params > 0 ? n_params : 1), sizeof(float));
    if (!opt->groups || !opt->step || !opt->m || !opt->v) goto oom;
    memcpy(opt->groups, groups, (size_t)n_groups * sizeof *groups);
    if (tensors) {
        for (int i = 0; i < n_tensors; i++) {
            const MtlTensorInfo *t = &tensors[i];
            if (t->trainable && !groups[t->group].frozen &&
                add_range(opt, t->offset, t->count, t->group))
                goto oom;
        }
    } else {
        for (int g = 0; g < n_groups; g++)
            if (!groups[g].frozen && add_range(opt, groups[g].offset, groups[g].count, g)) goto oom;
    }
    return 0;
oom:
    mtl_adamw_free(opt);
    return -1;
}

void mtl_adamw_free(MtlAdamW *opt) {
    free(opt->groups);
    free(opt->step);
    free(opt->m);
    free(opt->v);
    free(opt->ranges);
    memset(opt, 0, sizeof *opt);
}

/* One range's update, elementwise in float. The four arrays never overlap (parameters,
 * moments and gradients are separate buffers), which restrict tells the vectoriser. The runtime
 * is built for plain x86-64, so on GCC the loop is also cloned for AVX2 and AVX-512 and the CPU
 * picks one when the program loads; the arithmetic is the same operations in the same order
 * (C11 mode: no contraction into FMAs), so every clone gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void adamw_range(float *restrict p, float *restrict m, float *restrict v, const float *restrict gd, int64_t n,
                        float decay, float b1, float b2, float step_size, float bc2_sqrt, float eps) {
    for (int64_t i = 0; i < n; i++) {
        float g = gd[i];
        p[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

void mtl_adamw_step(MtlAdamW *opt, float *params, const float *grads) {
    /* A group's step counts once per optimizer step, whatever number of ranges it has. */
    for (int g = 0; g < opt->n_groups; g++)
        if (!opt->groups[g].frozen) opt->step[g]++;
    for (int r = 0; r < opt->n_ranges; r++) {
        const MtlAdamRange *rg = &opt->ranges[r];
        const MtlGroupInfo *gr = &opt->groups[rg->group];
        double t = (double)opt->step[rg->group];
        double lr = (double)gr->lr * opt->lr_mult;
        /* Scalars in double as PyTorch computes them in Python floats; elementwise in float. */
        float decay = (float)(1.0 - lr * gr->weight_decay);
        float b1 = gr->beta1, b2 = gr->beta2;
        double bc1 = 1.0 - pow(gr->beta1, t);
        double bc2 = 1.0 - pow(gr->beta2, t);
        float step_size = (float)(lr / bc1);
        float bc2_sqrt = (float)sqrt(bc2);
        float eps = gr->eps;
        adamw_range(params + rg->offset, opt->m + rg->offset, opt->v + rg->offset, grads + rg->offset, rg->count,
                    decay, b1, b2, step_size, bc2_sqrt, eps);
    }
}
