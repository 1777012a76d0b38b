/* Giving back the pages of host memory a copy was made from (D60): once a model's
 * weights are copied to a device, the file mapping they were read from still counts
 * toward the process's resident memory page by page, unless its pages are dropped. */
#ifndef SLMOPS_INTERNAL_HOST_PAGES_H
#define SLMOPS_INTERNAL_HOST_PAGES_H

#include <stddef.h>
#include <stdint.h>

typedef struct slm__host_range {
    const void *data;
    uint64_t size;
} slm__host_range_t;

/* The process's mappings as /proc/self/smaps lists them now (NULL without it, or
 * out of memory: then nothing is dropped). */
typedef struct slm__host_pages slm__host_pages_t;
slm__host_pages_t *slm__host_pages_open(void);
void slm__host_pages_close(slm__host_pages_t *hp);

/* Drops (madvise MADV_DONTNEED) the whole pages inside the ranges that lie in a
 * read-only file mapping none of whose pages is anonymous or swapped out (never
 * written, so every page reads back from the file, unchanged, if touched again). Memory of any other
 * kind (the heap, anonymous or writable mappings, pages copied on write) is left
 * alone: dropping those would lose data. Ranges that touch are merged first, so the
 * pages two of them share go too. Sorts `r` in place. Returns the bytes dropped. */
uint64_t slm__host_pages_drop(const slm__host_pages_t *hp, slm__host_range_t *r, size_t n);

#endif
