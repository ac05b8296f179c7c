/*
 * What issuing a prefetch costs on this machine, against a load: K random
 * cache lines of a buffer of MiB mebibytes, on 4 KiB pages (HUGE=0) or
 * 2 MiB pages (HUGE=1, if transparent huge pages allow madvise).
 *
 *   cc -O2 prefetch_cost.c && ./a.out MiB HUGE K     (e.g. ./a.out 2048 0 40)
 *
 * Prints cycles per batch of K: issuing K prefetches to random lines, K
 * independent loads of random lines, and K prefetches within one page.
 * See bench-results/README.md, "What is left of the gap, measured".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <xmmintrin.h>

static inline uint64_t rdtsc(void) {
    unsigned lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MiB HUGE K\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atol(argv[1]) << 20;
    int huge = atoi(argv[2]);
    int k = atoi(argv[3]);
    if (k < 1 || k > 64) {
        fprintf(stderr, "K: 1 to 64\n");
        return 2;
    }
    char *buf = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    madvise(buf, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (size_t i = 0; i < bytes; i += 4096) buf[i] = 1;
    size_t lines = bytes / 64;
    srand(2);
    uint64_t prefetch = 0, load = 0, one_page = 0;
    int rounds = 30000;
    volatile uint64_t sink = 0;
    char *at[64];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < k; i++)
            at[i] = buf + (((size_t)rand() * RAND_MAX + rand()) % lines) * 64;
        int mode = r % 3;
        uint64_t t0 = rdtsc();
        if (mode == 0) {
            for (int i = 0; i < k; i++) _mm_prefetch(at[i], _MM_HINT_T0);
        } else if (mode == 1) {
            uint64_t x = 0;
            for (int i = 0; i < k; i++) x += *(volatile char *)at[i];
            sink += x;
        } else {
            char *page = (char *)((uintptr_t)at[0] & ~(uintptr_t)4095);
            for (int i = 0; i < k; i++) _mm_prefetch(page + (i * 64) % 4096, _MM_HINT_T0);
        }
        uint64_t t = rdtsc() - t0;
        if (mode == 0) prefetch += t;
        else if (mode == 1) load += t;
        else one_page += t;
    }
    int n = rounds / 3;
    printf("huge=%d K=%d cycles: %d prefetches at random %lu, %d loads at random %lu, %d prefetches in one page %lu\n",
           huge, k, k, (unsigned long)(prefetch / n), k, (unsigned long)(load / n), k, (unsigned long)(one_page / n));
    return 0;
}
