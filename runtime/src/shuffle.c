/* Seeded randomness for the data side of the runtime: the runtime's xoshiro256** generator
 * (rng.c) seeded from (seed, stream, sub), Fisher-Yates permutations and mtl_shuffle, the
 * per-epoch sample order.
 *
 * One (seed, stream, sub) triple gives one reproducible sequence on every platform: only
 * integer arithmetic is used for the draws that pick orders. Not for cryptography.
 */
#include "data_internal.h"

#include <math.h>

void data_rng_seed(DataRng *r, uint64_t seed, uint64_t stream, uint64_t sub) {
    /* Mix the three parts through splitmix64 in turn, so nearby seeds, streams or epochs give
     * unrelated states (a plain XOR would make (1, 0) and (0, 1) collide). */
    uint64_t x = seed;
    uint64_t h = mtl_splitmix64(&x);
    x = h ^ stream;
    h = mtl_splitmix64(&x);
    x = h ^ sub;
    for (int i = 0; i < 4; i++) r->s[i] = mtl_splitmix64(&x);
}

uint64_t data_rng_next(DataRng *r) { return mtl_rng_next(r); }

uint64_t data_rng_below(DataRng *r, uint64_t n) {
    /* Rejection of the top partial range keeps every value equally likely (a plain modulo
     * favours small values). */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = data_rng_next(r);
    while (v >= limit);
    return v % n;
}

double data_rng_uniform(DataRng *r) {
    return (double)(data_rng_next(r) >> 11) * 0x1.0p-53;
}

double data_rng_normal(DataRng *r) {
    /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
    double u = 1.0 - data_rng_uniform(r), v = data_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

void data_permutation(int64_t *perm, int64_t n, DataRng *r) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)data_rng_below(r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void mtl_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch) {
    DataRng r;
    data_rng_seed(&r, seed, DATA_STREAM_SHUFFLE, epoch);
    data_permutation(perm, n, &r);
}
