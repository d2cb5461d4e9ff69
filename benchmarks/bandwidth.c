/* Read bandwidth of the memory hierarchy, for the roofline in
 * docs/performance.md. Each thread sums its own array again and again,
 * with eight independent vector sums so that the adds never wait for each
 * other: the array's size decides where the reads come from (a core's L1
 * or L2 cache, the shared L3, or DRAM). bench_train.py compiles this file
 * with the C compiler the stacks use and calls it through ctypes. */
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef double vec __attribute__((vector_size(32)));

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Bytes per second that `threads` threads read together, each its own
 * array of `bytes` bytes (a multiple of 256), `reps` times over; the best
 * of `tries` timings. -1 if an array could not be allocated. */
double read_bandwidth(long bytes, long reps, int threads, int tries)
{
    double best = 0, started = 0, ended = 0, seconds;
    int failed = 0;
    volatile double sink = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        long n = bytes / (long) sizeof(vec);
        vec *a = (vec *) aligned_alloc(64, (size_t) n * sizeof(vec));
        failed = !a;
        for (long i = 0; a && i < n; i++)
            a[i] = (vec) {1, 1, 1, 1};
        for (int t = 0; t < tries; t++) {
#pragma omp barrier
#pragma omp master
            started = now();
#pragma omp barrier
            vec s[8] = {{0}};
            for (long r = 0; a && r < reps; r++)
                for (long i = 0; i + 8 <= n; i += 8)
                    for (int k = 0; k < 8; k++)
                        s[k] += a[i + k];
            for (int k = 1; k < 8; k++)
                s[0] += s[k];
#pragma omp atomic
            sink += s[0][0];
#pragma omp barrier
#pragma omp master
            {
                ended = now();
                seconds = ended - started;
                if (seconds > 0 &&
                    (double) bytes * reps * threads / seconds > best)
                    best = (double) bytes * reps * threads / seconds;
            }
        }
        free(a);
    }
    return failed ? -1 : best;
}
