/* SentencePiece-style BPE ("llama" vocabularies): merge neighbouring symbols by
 * vocabulary score, falling back to <0xXX> byte tokens, as llama.cpp's llm_tokenizer_spm. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer-internal.h"

static bool before(const slm__tok_bigram_t *a, const slm__tok_bigram_t *b)
{
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

int slm__tok_heap_push(slm__tok_heap_t *h, slm__tok_bigram_t b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        slm__tok_bigram_t *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return SLM_E_NOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return SLM_OK;
}

slm__tok_bigram_t slm__tok_heap_pop(slm__tok_heap_t *h)
{
    slm__tok_bigram_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

int slm__tok_syms_split(const char *text, size_t len, slm__tok_sym_t **syms, size_t *n)
{
    if (len > (size_t)INT32_MAX)
        return SLM_E_INVALID;
    slm__tok_sym_t *s = malloc((len ? len : 1) * sizeof(*s));
    if (!s)
        return SLM_E_NOMEM;
    size_t k = 0;
    for (size_t off = 0; off < len; k++) {
        size_t l = slm__tok_utf8_len((unsigned char)text[off]);
        if (l > len - off)
            l = len - off;
        s[k].text = text + off;
        s[k].n = l;
        off += l;
        s[k].prev = (int)k - 1;
        s[k].next = off == len ? -1 : (int)k + 1;
    }
    *syms = s;
    *n = k;
    return SLM_OK;
}

static int try_bigram(const slm_tokenizer_t *tok, const slm__tok_sym_t *syms, int left,
                      int right, slm__tok_heap_t *heap)
{
    if (left < 0 || right < 0)
        return SLM_OK;
    size_t size = syms[left].n + syms[right].n;
    int32_t id = slm__tok_find(tok, syms[left].text, size);
    if (id < 0)
        return SLM_OK;
    return slm__tok_heap_push(heap, (slm__tok_bigram_t){ left, right, tok->score[id], size });
}

static int32_t byte_token(const slm_tokenizer_t *tok, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[6] = { '<', '0', 'x', hex[c >> 4], hex[c & 15], '>' };
    int32_t id = slm__tok_find(tok, buf, 6);
    if (id < 0)
        id = slm__tok_find(tok, (const char *)&c, 1);
    return id;
}

/* A symbol the vocabulary lacks is spelled in byte tokens; a byte without one
 * becomes the unknown token (llama.cpp would throw). */
static int emit(const slm_tokenizer_t *tok, const slm__tok_sym_t *sym, slm__tok_ids_t *out)
{
    int32_t id = slm__tok_find(tok, sym->text, sym->n);
    if (id >= 0)
        return slm__tok_ids_push(out, id);
    for (size_t j = 0; j < sym->n; j++) {
        id = byte_token(tok, (unsigned char)sym->text[j]);
        if (id < 0)
            id = tok->unk;
        if (id >= 0 && slm__tok_ids_push(out, id) < 0)
            return SLM_E_NOMEM;
    }
    return SLM_OK;
}

int slm__tok_spm_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        slm__tok_ids_t *out)
{
    slm__tok_sym_t *syms = NULL;
    size_t n = 0;
    slm__tok_heap_t heap = { 0 };
    int rc = slm__tok_syms_split(text, len, &syms, &n);
    for (size_t i = 1; i < n && rc == SLM_OK; i++)
        rc = try_bigram(tok, syms, (int)i - 1, (int)i, &heap);
    while (rc == SLM_OK && heap.n) {
        slm__tok_bigram_t b = slm__tok_heap_pop(&heap);
        slm__tok_sym_t *l = &syms[b.left], *r = &syms[b.right];
        /* Stale: one side was merged since this pair was queued. */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        rc = try_bigram(tok, syms, l->prev, b.left, &heap);
        if (rc == SLM_OK)
            rc = try_bigram(tok, syms, b.left, l->next, &heap);
    }
    for (int i = n ? 0 : -1; i != -1 && rc == SLM_OK; i = syms[i].next)
        rc = emit(tok, &syms[i], out);
    free(heap.v);
    free(syms);
    return rc;
}
