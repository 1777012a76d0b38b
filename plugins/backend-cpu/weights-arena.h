/* Weights the host copies in (buffers it asked for with SLM_BUFFER_FROM_HOST) live
 * side by side in large anonymous chunks aligned to 2 MiB and advised as huge pages
 * (D60): a model's tensors are mostly smaller than one huge page, so only packing
 * them together lets the kernel back them with huge pages, and decode streams them
 * measurably faster from there than from the 4 KiB pages of a file mapping. */
#ifndef SLMOPS_CPU_WEIGHTS_ARENA_H
#define SLMOPS_CPU_WEIGHTS_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cpu_arena cpu_arena_t;
typedef struct cpu_arena_chunk cpu_arena_chunk_t;

/* Huge pages: the transparent huge page setting is not "never". */
bool cpu_arena_huge_pages(void);

cpu_arena_t *cpu_arena_new(void);
/* Every chunk unmapped: call once no buffer of the arena is left. */
void cpu_arena_free(cpu_arena_t *a);
/* `size` bytes (64-byte aligned) from the arena, or NULL when out of memory; *chunk
 * is what cpu_arena_release takes back. Contents undefined (the caller fills them). */
void *cpu_arena_take(cpu_arena_t *a, uint64_t size, cpu_arena_chunk_t **chunk);
/* The allocation at p (size bytes) of the chunk is gone: its whole pages are given
 * back at once; the chunk's last allocation unmaps the chunk. */
void cpu_arena_release(cpu_arena_t *a, cpu_arena_chunk_t *chunk, void *p, uint64_t size);

#endif
