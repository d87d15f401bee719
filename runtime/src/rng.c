/* The runtime's one random generator: xoshiro256** (Blackman & Vigna), seeded through
 * splitmix64 so that any 64-bit seed, even 0, gives a well-mixed state. Sub-streams (init,
 * dropout per step) are derived from the run seed, so one seed determines every draw.
 * The data module (shuffle.c) uses the same generator with its own seeding from
 * (seed, stream, sub). Not cryptographic.
 */
#include "mtl_runtime.h"

uint64_t mtl_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mtl_rng_seed(MtlRng *r, uint64_t seed) {
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) r->s[i] = mtl_splitmix64(&sm);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mtl_rng_next(MtlRng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float mtl_rng_uniform(MtlRng *r) {
    /* top 24 bits: exactly representable in float, so the result is < 1 */
    return (float)(mtl_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

uint64_t mtl_seed_derive(uint64_t seed, uint64_t stream, uint64_t index) {
    /* Chain splitmix64 over (seed, stream, index) so neighbouring indices are unrelated. */
    uint64_t s = seed;
    uint64_t a = mtl_splitmix64(&s);
    s = a ^ (stream * 0xD1B54A32D192ED03ull);
    uint64_t b = mtl_splitmix64(&s);
    s = b ^ index;
    return mtl_splitmix64(&s);
}
