/* Shuffle tests: each epoch's order is a permutation (every index exactly once), the same
 * (seed, epoch) gives the same order, other epochs and seeds give other orders, and the first
 * position is roughly uniform (a biased Fisher-Yates would fail this).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mtl_data.h"

static void assert_permutation(const int64_t *p, int64_t n) {
    bool *seen = calloc((size_t)n + 1, 1);
    for (int64_t i = 0; i < n; i++) {
        assert_in_range(p[i], 0, n - 1);
        assert_false(seen[p[i]]);
        seen[p[i]] = true;
    }
    free(seen);
}

static void test_permutation(void **state) {
    (void)state;
    enum { N = 20631 };
    int64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    mtl_shuffle(a, N, 42, 0);
    assert_permutation(a, N);
    mtl_shuffle(b, N, 42, 0);
    assert_memory_equal(a, b, N * sizeof *a);
    mtl_shuffle(c, N, 42, 1);
    assert_permutation(c, N);
    assert_true(memcmp(a, c, N * sizeof *a) != 0);
    mtl_shuffle(c, N, 43, 0);
    assert_true(memcmp(a, c, N * sizeof *a) != 0);
    /* not the identity */
    int64_t fixed = 0;
    for (int64_t i = 0; i < N; i++) fixed += a[i] == i;
    assert_true(fixed < 20);
    free(a);
    free(b);
    free(c);
    int64_t one[1] = {7};
    mtl_shuffle(one, 1, 1, 1);
    assert_int_equal(one[0], 0);
    mtl_shuffle(NULL, 0, 1, 1); /* nothing to do, nothing touched */
}

static void test_uniform_first(void **state) {
    (void)state;
    int64_t count[4] = {0}, p[4];
    for (uint64_t e = 0; e < 24000; e++) {
        mtl_shuffle(p, 4, 9, e);
        count[p[0]]++;
    }
    /* 6000 expected each; 6 sigma is about 400 */
    for (int i = 0; i < 4; i++) assert_in_range(count[i], 5600, 6400);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_uniform_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
