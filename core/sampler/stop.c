/* Stop strings for a generation loop: generated text is held back only while it
 * could still be the beginning of a stop string, so a match across tokens is seen. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <slmops/sampler.h>

#include "internal/util.h"

struct slm_stop {
    char **stops;
    size_t *lens;
    size_t n;
    char *pending;       /* text not yet handed out */
    size_t n_pending, cap_pending;
    char *out;           /* what the last call handed out */
    size_t cap_out;
    bool stopped;
};

void slm_stop_free(slm_stop_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->stops[i]);
    free(st->stops);
    free(st->lens);
    free(st->pending);
    free(st->out);
    free(st);
}

slm_stop_t *slm_stop_new(const char *const *stops, size_t n, slm_error_t *err)
{
    slm_stop_t *st = calloc(1, sizeof *st);
    if (st && n) {
        st->stops = calloc(n, sizeof *st->stops);
        st->lens = calloc(n, sizeof *st->lens);
    }
    if (!st || (n && (!st->stops || !st->lens)))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (!stops[i] || !*stops[i])
            continue;
        st->stops[st->n] = strdup(stops[i]);
        if (!st->stops[st->n])
            goto nomem;
        st->lens[st->n++] = strlen(stops[i]);
    }
    return st;
nomem:
    slm_stop_free(st);
    slm__fail(err, SLM_E_NOMEM, NULL, -1, "out of memory for %zu stop strings", n);
    return NULL;
}

static bool grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return false;
    *buf = b;
    *cap = c;
    return true;
}

/* Earliest position of any stop string in pending, or n_pending. */
static size_t first_match(const slm_stop_t *st)
{
    size_t best = st->n_pending;
    for (size_t i = 0; i < st->n; i++) {
        size_t L = st->lens[i];
        for (size_t at = 0; at + L <= st->n_pending && at < best; at++)
            if (memcmp(st->pending + at, st->stops[i], L) == 0) {
                best = at;
                break;
            }
    }
    return best;
}

/* Length of the longest tail of pending that begins some stop string. */
static size_t held_tail(const slm_stop_t *st)
{
    size_t hold = 0;
    for (size_t i = 0; i < st->n; i++) {
        size_t L = st->lens[i];
        size_t max = L - 1 < st->n_pending ? L - 1 : st->n_pending;
        for (size_t t = max; t > hold; t--)
            if (memcmp(st->pending + st->n_pending - t, st->stops[i], t) == 0) {
                hold = t;
                break;
            }
    }
    return hold;
}

/* Hands out the first n bytes of pending and keeps the rest. */
static void hand_out(slm_stop_t *st, size_t n, const char **emit, size_t *emit_len)
{
    if (!grow(&st->out, &st->cap_out, n + 1))
        n = 0;   /* out of memory: hold the text back rather than lose it */
    if (n)
        memcpy(st->out, st->pending, n);
    if (st->n_pending > n)   /* pending may be NULL when nothing is held */
        memmove(st->pending, st->pending + n, st->n_pending - n);
    st->n_pending -= n;
    *emit = st->out ? st->out : "";
    *emit_len = n;
}

bool slm_stop_feed(slm_stop_t *st, const char *text, size_t len, const char **emit,
                   size_t *emit_len)
{
    *emit = "";
    *emit_len = 0;
    if (!st || st->stopped)
        return st != NULL;
    if (len && !grow(&st->pending, &st->cap_pending, st->n_pending + len))
        return false;
    if (len)
        memcpy(st->pending + st->n_pending, text, len);
    st->n_pending += len;
    size_t at = first_match(st);
    if (at < st->n_pending) {
        hand_out(st, at, emit, emit_len);
        st->n_pending = 0;
        st->stopped = true;
        return true;
    }
    hand_out(st, st->n_pending - held_tail(st), emit, emit_len);
    return false;
}

void slm_stop_flush(slm_stop_t *st, const char **emit, size_t *emit_len)
{
    *emit = "";
    *emit_len = 0;
    if (st && !st->stopped)
        hand_out(st, st->n_pending, emit, emit_len);
}
