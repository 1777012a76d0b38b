/* The train job's random streams: splitmix64, one per named use (a parameter's
 * initial values, dropout), so a draw never depends on what else drew before. */
#include "config.h"

#include "jobs/train.h"

uint64_t slm__train_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double slm__train_rng_unit(uint64_t *state)
{
    return (double)(slm__train_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* FNV-1a of the name, as the adapter builder keys its per-target streams. */
uint64_t slm__train_rng_stream(uint64_t seed, const char *name)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (const char *s = name ? name : ""; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return seed ^ h;
}
