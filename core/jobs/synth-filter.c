/* The synth job's filters: empty, length bounds, repetition, duplicates, and an
 * optional checker (the prompt's answer, exactly or contained, after task
 * normalization; or a PCRE2 regular expression) that keeps only verified answers. */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/task.h>

#include "internal/util.h"
#include "jobs/synth.h"
#include "tokenizer/tokenizer-internal.h"

const char *const slm__synth_drop_names[SLM__DROP_N] = {
    "empty", "too_short", "too_long", "repetitive", "duplicate", "check_failed",
};

struct slm__synth_filter {
    slm__synth_filter_params_t p;
    pcre2_code *re;
    pcre2_match_data *md;
    char **seen;               /* kept "prompt line \x1f normalized response" keys, sorted */
    size_t n_seen, cap_seen;
};

/* UTF-8 to code points (the PCRE2 library is the 32-bit one). */
static uint32_t *widen(const char *s, size_t len, size_t *n)
{
    uint32_t *w = malloc((len + 1) * sizeof *w);
    *n = 0;
    for (size_t i = 0; w && i < len;)
        w[(*n)++] = slm__tok_utf8_next((const unsigned char *)s, len, &i);
    return w;
}

int slm__synth_filter_new(const slm__synth_filter_params_t *p, slm__synth_filter_t **out,
                          slm_error_t *err)
{
    slm__synth_filter_t *f = calloc(1, sizeof *f);
    if (!f)
        return slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
    f->p = *p;
    *out = f;
    if (!p->check || strcmp(p->check, "regex") != 0)
        return SLM_OK;
    size_t n = 0;
    uint32_t *w = widen(p->regex ? p->regex : "", p->regex ? strlen(p->regex) : 0, &n);
    int code = 0;
    PCRE2_SIZE off = 0;
    f->re = w ? pcre2_compile(w, n, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL) : NULL;
    free(w);
    if (!f->re) {
        PCRE2_UCHAR msg[128];
        char why[128];
        pcre2_get_error_message(code, msg, SLM__ARRAY_LEN(msg));
        size_t k = 0;
        for (; msg[k] && k + 1 < sizeof why; k++)
            why[k] = msg[k] < 128 ? (char)msg[k] : '?';
        why[k] = '\0';
        return slm__fail(err, SLM_E_INVALID, NULL, -1, "synth: check_regex '%s': %s at "
                         "character %zu", p->regex ? p->regex : "", why, (size_t)off);
    }
    f->md = pcre2_match_data_create_from_pattern(f->re, NULL);
    return f->md ? SLM_OK : slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
}

void slm__synth_filter_free(slm__synth_filter_t *f)
{
    if (!f)
        return;
    pcre2_match_data_free(f->md);
    pcre2_code_free(f->re);
    for (size_t i = 0; i < f->n_seen; i++)
        free(f->seen[i]);
    free(f->seen);
    free(f);
}

double slm__synth_repetition(const char *text, size_t len)
{
    /* Word starts and lengths, then each 3-gram compared with the earlier ones. */
    size_t cap = len / 2 + 2, n = 0;
    size_t *start = malloc(cap * sizeof *start), *wl = malloc(cap * sizeof *wl);
    if (!start || !wl) {
        free(start);
        free(wl);
        return 0.0;
    }
    for (size_t i = 0; i < len;) {
        while (i < len && strchr(" \t\r\n", text[i]))
            i++;
        size_t j = i;
        while (j < len && !strchr(" \t\r\n", text[j]))
            j++;
        if (j > i && n < cap) {
            start[n] = i;
            wl[n++] = j - i;
        }
        i = j;
    }
    size_t grams = n >= 3 ? n - 2 : 0, repeated = 0;
    for (size_t a = 1; a < grams; a++) {
        bool seen = false;
        for (size_t b = 0; b < a && !seen; b++) {
            seen = true;
            for (size_t k = 0; k < 3 && seen; k++)
                seen = wl[a + k] == wl[b + k] &&
                       memcmp(text + start[a + k], text + start[b + k], wl[a + k]) == 0;
        }
        repeated += seen;
    }
    free(start);
    free(wl);
    return grams ? (double)repeated / (double)grams : 0.0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether key was seen; if not, remember it. -1: out of memory. */
static int seen_before(slm__synth_filter_t *f, char *key)
{
    if (f->n_seen && bsearch(&key, f->seen, f->n_seen, sizeof *f->seen, cmp_str)) {
        free(key);
        return 1;
    }
    if (f->n_seen == f->cap_seen) {
        size_t cap = f->cap_seen ? 2 * f->cap_seen : 64;
        char **s = realloc(f->seen, cap * sizeof *s);
        if (!s) {
            free(key);
            return -1;
        }
        f->seen = s;
        f->cap_seen = cap;
    }
    size_t i = f->n_seen;
    while (i > 0 && strcmp(f->seen[i - 1], key) > 0) {
        f->seen[i] = f->seen[i - 1];
        i--;
    }
    f->seen[i] = key;
    f->n_seen++;
    return 0;
}

static int check(slm__synth_filter_t *f, const slm__synth_prompt_t *pr, const char *norm,
                 const char *text, size_t len, slm_error_t *err)
{
    const char *c = f->p.check;
    if (!c)
        return 1;
    if (strcmp(c, "regex") == 0) {
        size_t n = 0;
        uint32_t *w = widen(text, len, &n);
        if (!w)
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
        int m = pcre2_match(f->re, w, n, 0, 0, f->md, NULL);
        free(w);
        return m >= 0;
    }
    if (!pr->answer)
        return 0;   /* a checker by answer drops what it cannot verify */
    char *want = NULL;
    int rc = slm_task_normalize(pr->answer, strlen(pr->answer), &want, err);
    if (rc)
        return rc;
    bool ok = strcmp(c, "exact") == 0 ? strcmp(norm, want) == 0 : *want && strstr(norm, want);
    free(want);
    return ok;
}

int slm__synth_filter_judge(slm__synth_filter_t *f, const slm__synth_prompt_t *pr,
                            const char *text, size_t len, int *verdict, slm_error_t *err)
{
    char *norm = NULL;
    int rc = slm_task_normalize(text, len, &norm, err);
    if (rc)
        return rc;
    *verdict = -1;
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)text[i] & 0xc0) != 0x80;
    int why = -1;
    if (!*norm)
        why = SLM__DROP_EMPTY;
    else if ((int64_t)chars < f->p.min_chars)
        why = SLM__DROP_SHORT;
    else if (f->p.max_chars > 0 && (int64_t)chars > f->p.max_chars)
        why = SLM__DROP_LONG;
    else if (f->p.max_repeat < 1.0 && slm__synth_repetition(text, len) > f->p.max_repeat)
        why = SLM__DROP_REPEAT;
    if (why < 0) {
        int ok = check(f, pr, norm, text, len, err);
        if (ok < 0) {
            free(norm);
            return ok;
        }
        if (!ok)
            why = SLM__DROP_CHECK;
    }
    if (why < 0 && f->p.dedup) {
        size_t kl = strlen(norm) + 32;
        char *key = malloc(kl);
        if (!key) {
            free(norm);
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
        }
        snprintf(key, kl, "%zu\x1f%s", pr->line, norm);
        int s = seen_before(f, key);
        if (s < 0) {
            free(norm);
            return slm__fail(err, SLM_E_NOMEM, NULL, -1, "synth: out of memory");
        }
        if (s)
            why = SLM__DROP_DUPLICATE;
    }
    free(norm);
    *verdict = why;
    return SLM_OK;
}
