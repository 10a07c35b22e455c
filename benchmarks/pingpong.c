/* The floor for one-in-flight latency: a blocking 100-byte ping-pong between two processes
 * over pipe(2), no event loop, no framing, no JSON. Compare with `chimera bench dispatch`'s
 * p50_us; run both pinned to one CPU (see docs/BENCHMARKS.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 100000;
    int to_child[2], to_parent[2];
    char buf[100] = {0};
    if (pipe(to_child) || pipe(to_parent)) return 1;
    if (fork() == 0) {
        for (;;) {
            ssize_t n = read(to_child[0], buf, sizeof buf);
            if (n <= 0) _exit(0);
            if (write(to_parent[1], buf, (size_t)n) != n) _exit(1);
        }
    }
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)rounds);
    for (int i = -1000; i < rounds; i++) {
        uint64_t start = now_ns();
        if (write(to_child[1], buf, sizeof buf) != sizeof buf) return 1;
        size_t got = 0;
        while (got < sizeof buf) got += (size_t)read(to_parent[0], buf + got, sizeof buf - got);
        if (i >= 0) samples[i] = now_ns() - start;
    }
    qsort(samples, (size_t)rounds, sizeof(uint64_t), cmp);
    printf("{\"rounds\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", rounds,
           samples[rounds / 2] / 1000.0, samples[rounds * 99 / 100] / 1000.0);
    return 0;
}
