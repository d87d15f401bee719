/* exp, tanh and the logistic sigmoid for the kernels, written so that a loop calling them
 * vectorises.
 *
 * Why not libm: glibc's expf/tanhf are scalar calls, and LLVM cannot turn a call in a loop into
 * vector code without a vector math library, so the LSTM gate loops ran one element at a time and
 * spent a quarter of a DualTaskModel training step in tanhf/expm1f. These are straight-line
 * float arithmetic with selects instead of branches, inlined into the loops of the generated
 * trainer, where O3 widens them to the machine's vectors.
 *
 * Accuracy (checked over every float in range by tests/runtime/test_mtk_math.c against the double
 * libm; measured maxima in the test's output): exp within 2 ulp, sigmoid within 3, tanh within
 * 3.5 (the worst near |x| = 0.008, where e/(e + 2) rounds three times); exact limits (exp(-inf) = 0,
 * exp(+inf) = +inf, tanh(±inf) = ±1, sigmoid(-inf) = 0, sigmoid(+inf) = 1); NaN propagates.
 * Subnormal results of exp below 2^-126 are flushed to zero (exp(x) for x < -87.34), which no
 * gate or softmax can tell from the true value.
 */
#ifndef MTK_MATH_H
#define MTK_MATH_H

#include <stdint.h>
#include <string.h>

/* 2^k for an integer-valued float k in [-126, 127], built from its exponent bits */
static inline float mtk_pow2i(float k) {
    int32_t bits = ((int32_t)k + 127) << 23;
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* e^x. Range reduction x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in a high part with few bits, so
 * n·ln2_hi is exact, and a low part), then e^r by its Taylor polynomial to degree 7, whose
 * truncation error r^8/8! < 1.4e-8 relative is below half an ulp, then scaling by 2^n. */
static inline float mtk_expf(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    /* clamp first so every lane stays finite (NaN included: both tests fail and it becomes 0, so
     * no float-to-int conversion below sees a value out of range); those lanes are fixed at the
     * end. 88.75 still rounds to n = 128, whose 2^n is split in two factors below. Lanes whose
     * result is flushed (below ln FLT_MIN) compute e^0 instead: clamped to -88 they would make
     * a subnormal product, and each subnormal costs a microcode assist of ~100 cycles — it made
     * a softmax over saturated logits several times slower. */
    float xc = x >= -87.33654475f ? (x <= 88.75f ? x : 88.75f) : 0.0f;
    /* round to nearest through the 1.5·2^23 trick: vectorises everywhere, unlike lrintf */
    const float shifter = 12582912.0f;
    float n = (xc * log2e + shifter) - shifter;
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* n ∈ [-127, 128]: 2^n in two halves keeps each factor a normal float */
    float n1 = (float)((int32_t)n / 2), n2 = n - n1;
    float y = p * mtk_pow2i(n1) * mtk_pow2i(n2);
    y = x > 88.72283935546875f ? __builtin_inff() : y; /* above ln(FLT_MAX) */
    y = x < -87.33654475f ? 0.0f : y;                   /* below ln(FLT_MIN): flushed */
    return x != x ? x : y;
}

/* e^x − 1 for |x| ≤ 1.1, where it has no cancellation to fear: Taylor to degree 11 (error
 * x^12/12! < 6.6e-9 relative at the ends). Used by tanh near zero only. */
static inline float mtk_expm1_small(float x) {
    float p = 1.0f / 39916800.0f;
    p = p * x + 1.0f / 3628800.0f;
    p = p * x + 1.0f / 362880.0f;
    p = p * x + 1.0f / 40320.0f;
    p = p * x + 1.0f / 5040.0f;
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    p = p * x + 1.0f;
    return p * x;
}

/* tanh(x) = e/(e + 2) with e = e^{2|x|} − 1: near zero e comes from the polynomial (relative
 * accuracy kept for tiny x), further out from exp, where 1 − 2/(e^{2|x|} + 1) has no harmful
 * cancellation; the sign is put back at the end. */
static inline float mtk_tanhf(float x) {
    float a = x < 0.0f ? -x : x;
    float e_small = mtk_expm1_small(2.0f * (a < 0.55f ? a : 0.55f));
    float t_small = e_small / (e_small + 2.0f);
    float t_large = 1.0f - 2.0f / (mtk_expf(2.0f * (a < 9.1f ? a : 9.1f)) + 1.0f);
    float t = a < 0.55f ? t_small : (a < 9.1f ? t_large : 1.0f); /* tanh(9.1) rounds to 1 */
    t = x < 0.0f ? -t : t;
    return x != x ? x : t;
}

/* 1/(1 + e^{-z}), as PyTorch computes the logistic function */
static inline float mtk_sigmoidf(float z) { return 1.0f / (1.0f + mtk_expf(-z)); }

#endif
