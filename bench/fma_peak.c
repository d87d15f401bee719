/* fma_peak: the machine's FP32 fused-multiply-add peak in GFLOP/s, measured, on all cores.
 *
 *   fma_peak [--threads N] [--repeats R] [--isa avx512|avx2|scalar]
 *
 * One thread per online CPU (or N), each running 16 independent FMA chains on the widest vector
 * ISA the CPU reports (AVX-512F, else AVX2+FMA, else plain scalar multiply-add). 16 chains are
 * more than latency x throughput of any current core (4-cycle FMA latency x 2 FMA ports = 8
 * chains in flight), so the loop is bound by FMA throughput, not by the dependency chains; the
 * loop counter and branch go to other ports. Each FMA counts as 2 FLOPs per lane.
 *
 * Prints one JSON object: the median GFLOP/s over the repeats, the ISA, the thread count and
 * every repeat's figure. run.sh uses the median as the denominator of "% of peak".
 *
 * The timed region runs from a barrier that releases all threads at once to the last join, so
 * a thread that starts late (a busy machine) lowers the figure instead of being left out. On a
 * shared machine that wall-clock figure drops with the other jobs' load, so the object also has
 * "gflops_cpu": the same FLOPs over the threads' own CPU time (CLOCK_THREAD_CPUTIME_ID), i.e. the
 * rate while a thread actually holds its core - what the cores can do, whatever else runs.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define CHAINS 16

static volatile float sink_out;

typedef enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512 } Isa;
static const char *const isa_name[] = {"scalar", "avx2+fma", "avx512f"};
static const int isa_lanes[] = {1, 8, 16};

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

/* The 16 chains are 16 named variables, not an array: at -O2 GCC leaves an array in memory and
 * the loop then measures store-to-load forwarding instead of the FMA units. EACH(F) expands F once
 * per chain. Each kernel returns a value that depends on every chain, so none can be dropped.
 * a <- a * 0.9999 + 1e-4 converges to 1: no overflow, no denormals, the same speed throughout. */
#define EACH(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14) F(15)
#define SUM_ALL(add) add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))), \
                         add(add(add(a8, a9), add(a10, a11)), add(add(a12, a13), add(a14, a15))))

#if HAVE_X86
__attribute__((target("avx512f"))) static float run_avx512(int64_t iters) {
    const __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(1e-4f);
#define INIT(j) __m512 a##j = _mm512_set1_ps((float)(j));
#define STEP(j) a##j = _mm512_fmadd_ps(a##j, x, y);
    EACH(INIT)
    for (int64_t i = 0; i < iters; i++) {
        EACH(STEP)
    }
    return _mm512_reduce_add_ps(SUM_ALL(_mm512_add_ps));
#undef INIT
#undef STEP
}

__attribute__((target("avx2,fma"))) static float run_avx2(int64_t iters) {
    const __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(1e-4f);
#define INIT(j) __m256 a##j = _mm256_set1_ps((float)(j));
#define STEP(j) a##j = _mm256_fmadd_ps(a##j, x, y);
    EACH(INIT)
    for (int64_t i = 0; i < iters; i++) {
        EACH(STEP)
    }
    float v[8];
    _mm256_storeu_ps(v, SUM_ALL(_mm256_add_ps));
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
#undef INIT
#undef STEP
}
#endif

/* Without FMA hardware a multiply and an add are the best the CPU does per FLOP pair; the
 * compiler may contract them into an FMA where it can, which is what a real kernel would get. */
static float run_scalar(int64_t iters) {
#define INIT(j) float a##j = (float)(j);
#define STEP(j) a##j = a##j * 0.9999f + 1e-4f;
#define ADD(p, q) ((p) + (q))
    EACH(INIT)
    for (int64_t i = 0; i < iters; i++) {
        EACH(STEP)
    }
    return SUM_ALL(ADD);
#undef INIT
#undef STEP
#undef ADD
}

typedef struct {
    Isa isa;
    int64_t iters;
    pthread_barrier_t *start;
    float sink;
    double cpu_s; /* this thread's CPU time in the kernel */
} Job;

static float run(Isa isa, int64_t iters) {
#if HAVE_X86
    if (isa == ISA_AVX512) return run_avx512(iters);
    if (isa == ISA_AVX2) return run_avx2(iters);
#endif
    return run_scalar(iters);
}

static void *worker(void *p) {
    Job *j = p;
    pthread_barrier_wait(j->start);
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    j->sink = run(j->isa, j->iters);
    j->cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

/* Seconds for `threads` threads each running `iters` iterations, all released together; *cpu_s
 * (if not NULL) receives the threads' mean CPU time. */
static double timed(Isa isa, int threads, int64_t iters, float *sink, double *cpu_s) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    Job *jobs = calloc((size_t)threads, sizeof *jobs);
    if (!tid || !jobs) {
        fprintf(stderr, "fma_peak: out of memory\n");
        exit(1);
    }
    for (int t = 0; t < threads; t++) {
        jobs[t] = (Job){.isa = isa, .iters = iters, .start = &start};
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0) {
            fprintf(stderr, "fma_peak: cannot start thread %d\n", t);
            exit(1);
        }
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    double dt = now_s() - t0;
    double cpu = 0;
    for (int t = 0; t < threads; t++) {
        *sink += jobs[t].sink;
        cpu += jobs[t].cpu_s;
    }
    if (cpu_s) *cpu_s = cpu / threads;
    pthread_barrier_destroy(&start);
    free(tid);
    free(jobs);
    return dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = ncpu > 0 ? (int)ncpu : 1, repeats = 7;
    const char *want = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) want = argv[++i];
        else {
            fprintf(stderr, "usage: fma_peak [--threads N] [--repeats R] [--isa avx512|avx2|scalar]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 4096 || repeats < 1 || repeats > 1000) {
        fprintf(stderr, "fma_peak: --threads 1..4096, --repeats 1..1000\n");
        return 2;
    }
    Isa best = ISA_SCALAR;
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = ISA_AVX2;
    if (__builtin_cpu_supports("avx512f")) best = ISA_AVX512;
#endif
    Isa isa = best;
    if (want) {
        isa = !strcmp(want, "avx512") ? ISA_AVX512 : !strcmp(want, "avx2") ? ISA_AVX2 : ISA_SCALAR;
        if (isa > best || (isa == ISA_SCALAR && strcmp(want, "scalar"))) {
            fprintf(stderr, "fma_peak: ISA %s not available here (best: %s)\n", want, isa_name[best]);
            return 2;
        }
    }
    /* Calibrate on one thread so that a repeat lasts about 0.25 s whatever the clock and ISA:
     * long enough to swamp thread start-up and reach the steady (licence-adjusted) frequency,
     * short enough to stay a light load on a shared machine. */
    float sink = 0;
    int64_t iters = 1 << 16;
    for (;;) {
        double t = timed(isa, 1, iters, &sink, NULL);
        if (t > 0.05 || iters > ((int64_t)1 << 40)) {
            iters = (int64_t)((double)iters * 0.25 / (t > 0 ? t : 1e-9));
            break;
        }
        iters *= 4;
    }
    if (iters < 1) iters = 1;
    timed(isa, threads, iters / 4, &sink, NULL); /* warm-up: wake every core, raise the clocks */
    double *g = calloc((size_t)repeats, sizeof *g), *sorted = calloc((size_t)repeats, sizeof *sorted);
    double *gc = calloc((size_t)repeats, sizeof *gc);
    if (!g || !sorted || !gc) return 1;
    double flops = 2.0 * CHAINS * isa_lanes[isa] * (double)iters * threads;
    for (int r = 0; r < repeats; r++) {
        double cpu = 0;
        g[r] = flops / timed(isa, threads, iters, &sink, &cpu) * 1e-9;
        gc[r] = flops / (cpu > 0 ? cpu : 1e-9) * 1e-9;
    }
    qsort(gc, (size_t)repeats, sizeof *gc, cmp_double);
    memcpy(sorted, g, sizeof *g * (size_t)repeats);
    qsort(sorted, (size_t)repeats, sizeof *sorted, cmp_double);
    sink_out = sink; /* keeps every chain's result observable */
    printf("{\"gflops\":%.2f,\"gflops_cpu\":%.2f,\"isa\":\"%s\",\"threads\":%d,\"chains\":%d,\"runs\":[",
           sorted[repeats / 2], gc[repeats / 2], isa_name[isa], threads, CHAINS);
    for (int r = 0; r < repeats; r++) printf("%s%.2f", r ? "," : "", g[r]);
    printf("]}\n");
    free(g);
    free(gc);
    free(sorted);
    return 0;
}
