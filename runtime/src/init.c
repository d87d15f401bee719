/* Parameter and buffer initialisation from the model info table: each tensor's "init" entry
 * decides (uniform U(-bound, bound), zeros, ones). The compiler computes the bound (PyTorch's
 * Linear default reduces to 1/sqrt(fan_in)); this file does not know about layers or fan-in.
 * Buffers (batchnorm running statistics) are zeros or ones and draw nothing.
 *
 * Draws come from one generator seeded from (seed, MTL_STREAM_INIT), in table order, so the
 * result depends on the seed and the table only.
 */
#include "mtl_runtime.h"

#include <assert.h>

void mtl_init_params(const MtlModelInfo *m, float *params, uint64_t seed) {
    MtlRng rng;
    mtl_rng_seed(&rng, mtl_seed_derive(seed, MTL_STREAM_INIT, 0));
    for (int64_t i = 0; i < m->n_params; i++) params[i] = 0.0f; /* gaps between tensors */
    for (int i = 0; i < m->n_tensors; i++) {
        const MtlTensorInfo *t = &m->tensors[i];
        float *p = params + t->offset;
        switch (t->init) {
        case MTL_INIT_UNIFORM:
            /* as torch.Tensor.uniform_(a, b): a + (b - a) * u, u in [0, 1) */
            for (int64_t j = 0; j < t->count; j++)
                p[j] = -t->bound + 2.0f * t->bound * mtl_rng_uniform(&rng);
            break;
        case MTL_INIT_ZEROS:
            for (int64_t j = 0; j < t->count; j++) p[j] = 0.0f;
            break;
        case MTL_INIT_ONES:
            for (int64_t j = 0; j < t->count; j++) p[j] = 1.0f;
            break;
        default:
            assert(!"unknown init kind");
        }
    }
}

void mtl_init_buffers(const MtlModelInfo *m, float *buffers) {
    for (int64_t i = 0; i < m->n_buffer_floats; i++) buffers[i] = 0.0f;
    for (int i = 0; i < m->n_buffers; i++) {
        const MtlBufferInfo *b = &m->buffers[i];
        float v = b->init == MTL_INIT_ONES ? 1.0f : 0.0f;
        for (int64_t j = 0; j < b->count; j++) buffers[b->offset + j] = v;
    }
}
