/* Huge-page chunks for the weights the host copies in (weights-arena.h, D60). */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "plugins/backend-cpu/weights-arena.h"

#define HUGE_PAGE ((size_t)2 << 20)
/* A chunk holds this much unless one allocation needs more: big enough that a
 * model's small tensors share huge pages, small enough that the unused tail of the
 * last chunk costs little (its pages are only faulted in where written). */
#define CHUNK_BYTES ((size_t)64 << 20)
#define ARENA_ALIGN 64

struct cpu_arena_chunk {
    void *map;                 /* what mmap returned */
    size_t map_len;
    char *base;                /* map rounded up to a huge page */
    size_t cap, used;
    size_t live;               /* allocations not yet released */
    cpu_arena_chunk_t *next;
};

struct cpu_arena {
    pthread_mutex_t lock;      /* devices may load models from several threads */
    cpu_arena_chunk_t *chunks; /* every chunk with live allocations; new buffers go in the
                                  first (one too big for a chunk gets its own, first) */
};

bool cpu_arena_huge_pages(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return false;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) && !strstr(line, "[never]");
    fclose(f);
    return ok;
}

cpu_arena_t *cpu_arena_new(void)
{
    cpu_arena_t *a = calloc(1, sizeof *a);
    if (a && pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

static void chunk_unmap(cpu_arena_chunk_t *c)
{
    munmap(c->map, c->map_len);
    free(c);
}

void cpu_arena_free(cpu_arena_t *a)
{
    if (!a)
        return;
    for (cpu_arena_chunk_t *c = a->chunks, *next; c; c = next) {
        next = c->next;
        chunk_unmap(c);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

static cpu_arena_chunk_t *chunk_new(size_t need)
{
    size_t cap = need > CHUNK_BYTES ? (need + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE : CHUNK_BYTES;
    if (cap > SIZE_MAX - HUGE_PAGE)
        return NULL;
    cpu_arena_chunk_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->map_len = cap + HUGE_PAGE;
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->map == MAP_FAILED) {
        free(c);
        return NULL;
    }
    c->base = (char *)(((uintptr_t)c->map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    c->cap = cap;
    /* A hint: without it (or when refused) the chunk is ordinary memory. */
    (void)madvise(c->base, cap, MADV_HUGEPAGE);
    return c;
}

void *cpu_arena_take(cpu_arena_t *a, uint64_t size, cpu_arena_chunk_t **chunk)
{
    if (!a || !chunk || size > SIZE_MAX - HUGE_PAGE - ARENA_ALIGN)
        return NULL;
    size_t need = (size ? (size_t)size : 1) + ARENA_ALIGN - 1;
    need -= need % ARENA_ALIGN;
    pthread_mutex_lock(&a->lock);
    cpu_arena_chunk_t *c = a->chunks;
    if (!c || c->cap - c->used < need) {
        cpu_arena_chunk_t *fresh = chunk_new(need);
        if (!fresh) {
            pthread_mutex_unlock(&a->lock);
            return NULL;
        }
        fresh->next = a->chunks;
        a->chunks = c = fresh;
    }
    void *p = c->base + c->used;
    c->used += need;
    c->live++;
    *chunk = c;
    pthread_mutex_unlock(&a->lock);
    return p;
}

void cpu_arena_release(cpu_arena_t *a, cpu_arena_chunk_t *chunk, void *p, uint64_t size)
{
    if (!a || !chunk)
        return;
    pthread_mutex_lock(&a->lock);
    /* The chunk may live on for its other buffers (a weight replaced during training,
     * say): the whole pages of this one go back now, not with the last of them. */
    if (chunk->live > 1) {
        long ps = sysconf(_SC_PAGESIZE);
        uintptr_t lo = (uintptr_t)p, hi = lo + (uintptr_t)size, pg = ps > 0 ? (uintptr_t)ps : 4096;
        lo = (lo + pg - 1) & ~(pg - 1);
        hi &= ~(pg - 1);
        if (lo < hi)
            (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    /* An empty chunk goes at once, the one being filled too: an unloaded model's
     * memory goes back to the system, not to the next load. */
    if (--chunk->live == 0) {
        for (cpu_arena_chunk_t **link = &a->chunks; *link; link = &(*link)->next)
            if (*link == chunk) {
                *link = chunk->next;
                break;
            }
        chunk_unmap(chunk);
    }
    pthread_mutex_unlock(&a->lock);
}
