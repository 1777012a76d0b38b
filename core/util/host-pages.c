/* Dropping the pages of read-only file mappings once copied (host-pages.h). */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal/host-pages.h"

typedef struct mapping {
    uintptr_t lo, hi;
    bool droppable;            /* file-backed, not writable, no anonymous or swapped page */
} mapping_t;

struct slm__host_pages {
    mapping_t *m;
    size_t n;
    uintptr_t page;
};

/* Every mapping of this process, with whether its pages may be dropped. */
static mapping_t *read_mappings(size_t *n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return NULL;
    mapping_t *m = NULL;
    size_t cap = 0;
    *n = 0;
    char *line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, f) > 0) {
        unsigned long lo, hi, inode;
        char perms[8];
        unsigned long kb;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &lo, &hi, perms, &inode) == 4) {
            if (*n == cap) {
                size_t nc = cap ? 2 * cap : 64;
                mapping_t *g = realloc(m, nc * sizeof *m);
                if (!g) {
                    free(m);
                    free(line);
                    fclose(f);
                    return NULL;
                }
                m = g;
                cap = nc;
            }
            m[(*n)++] = (mapping_t){lo, hi, inode != 0 && perms[1] == '-'};
        } else if (*n && (sscanf(line, "Anonymous: %lu kB", &kb) == 1 ||
                          sscanf(line, "Swap: %lu kB", &kb) == 1) && kb != 0) {
            m[*n - 1].droppable = false;   /* pages of its own, in memory or swapped out */
        }
    }
    free(line);
    fclose(f);
    return m;
}

static int by_start(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const slm__host_range_t *)a)->data;
    uintptr_t y = (uintptr_t)((const slm__host_range_t *)b)->data;
    return x < y ? -1 : x > y;
}

/* The whole pages of [lo, hi) inside droppable mappings. */
static uint64_t drop(const mapping_t *m, size_t nm, uintptr_t lo, uintptr_t hi, uintptr_t page)
{
    uint64_t dropped = 0;
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].droppable || m[i].hi <= lo || m[i].lo >= hi)
            continue;
        uintptr_t a = lo > m[i].lo ? lo : m[i].lo, b = hi < m[i].hi ? hi : m[i].hi;
        a = (a + page - 1) & ~(page - 1);
        b &= ~(page - 1);
        if (a < b && madvise((void *)a, b - a, MADV_DONTNEED) == 0)
            dropped += b - a;
    }
    return dropped;
}

slm__host_pages_t *slm__host_pages_open(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    slm__host_pages_t *hp = ps > 0 ? calloc(1, sizeof *hp) : NULL;
    if (!hp)
        return NULL;
    hp->page = (uintptr_t)ps;
    if (!(hp->m = read_mappings(&hp->n))) {
        free(hp);
        return NULL;
    }
    return hp;
}

void slm__host_pages_close(slm__host_pages_t *hp)
{
    if (hp) {
        free(hp->m);
        free(hp);
    }
}

uint64_t slm__host_pages_drop(const slm__host_pages_t *hp, slm__host_range_t *r, size_t n)
{
    if (!hp || !r || n == 0)
        return 0;
    qsort(r, n, sizeof *r, by_start);
    uint64_t dropped = 0;
    uintptr_t lo = (uintptr_t)r[0].data, hi = lo + r[0].size;
    for (size_t i = 1; i <= n; i++) {
        uintptr_t a = i < n ? (uintptr_t)r[i].data : 0, b = i < n ? a + r[i].size : 0;
        if (i < n && a <= hi) {
            hi = b > hi ? b : hi;
            continue;
        }
        dropped += drop(hp->m, hp->n, lo, hi, hp->page);
        lo = a;
        hi = b;
    }
    return dropped;
}
