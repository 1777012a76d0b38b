/* Inside the tokenizer: the vocabulary tables shared by the loader (tokenizer.c),
 * the encoders (spm.c, bpe.c, wpm.c) and the decoders (decode.c). */
#ifndef SLMOPS_TOKENIZER_INTERNAL_H
#define SLMOPS_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slmops/tokenizer.h>

enum { SLM__TOK_SPM = 1, SLM__TOK_BPE = 2, SLM__TOK_WPM = 3 };

/* A byte string that is not necessarily NUL-terminated. */
typedef struct slm__tok_str {
    const char *s;
    uint32_t len;
} slm__tok_str_t;

/* String -> index over an array of slm__tok_str_t (open addressing; a slot holds
 * index + 1, 0 when empty). */
typedef struct slm__tok_index {
    uint32_t *slots;
    size_t mask;           /* capacity - 1 (capacity is a power of two) */
} slm__tok_index_t;

/* A growable output array of ids. */
typedef struct slm__tok_ids {
    int32_t *v;
    size_t n, cap;
} slm__tok_ids_t;

/* A growable byte buffer. */
typedef struct slm__tok_buf {
    char *v;
    size_t n, cap;
} slm__tok_buf_t;

struct slm_tokenizer {
    int kind;                      /* SLM__TOK_* */
    char pre_name[64];
    size_t n_vocab;
    slm__tok_str_t *text;          /* vocabulary entries (into text_pool) */
    char *text_pool;
    float *score;
    uint32_t *attr;                /* SLM_TOKEN_ATTR_* */
    slm__tok_index_t text_index;
    uint32_t max_token_len;

    slm__tok_str_t *piece;         /* what each id prints as (into piece_pool) */
    char *piece_pool;

    /* byte-level BPE */
    slm__tok_str_t *merges;        /* "left right", rank = position */
    char *merge_pool;
    size_t n_merges;
    slm__tok_index_t merge_index;
    void **regex;                  /* pcre2_code *, applied one after the other */
    size_t n_regex;
    bool ignore_merges;

    /* WordPiece */
    bool wpm_lowercase, wpm_strip_accents;

    bool add_space_prefix, add_bos, add_eos, clean_spaces;
    int32_t bos, eos, eot, eom, unk, pad, sep;
    int32_t *eog;                  /* ids that end generation */
    size_t n_eog;
    int32_t *special;              /* matched in the text, longest first */
    size_t n_special;
};

int slm__tok_index_build(slm__tok_index_t *ix, const slm__tok_str_t *strs, size_t n,
                         bool keep_first, size_t *dup);
void slm__tok_index_free(slm__tok_index_t *ix);
int32_t slm__tok_index_find(const slm__tok_index_t *ix, const slm__tok_str_t *strs,
                            const char *s, size_t len);

static inline int32_t slm__tok_find(const slm_tokenizer_t *tok, const char *s, size_t len)
{
    return slm__tok_index_find(&tok->text_index, tok->text, s, len);
}

int slm__tok_ids_push(slm__tok_ids_t *ids, int32_t id);
int slm__tok_buf_append(slm__tok_buf_t *b, const void *s, size_t n);

/* Length of the UTF-8 sequence a lead byte starts, as llama.cpp's unicode_len_utf8. */
static inline size_t slm__tok_utf8_len(unsigned char c)
{
    static const unsigned char lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lookup[c >> 4];
}
/* Decode one code point at s[*i] (llama.cpp's rules; invalid input yields U+FFFD
 * and advances one byte). */
uint32_t slm__tok_utf8_next(const unsigned char *s, size_t len, size_t *i);
/* Append the UTF-8 of cp to out (4 bytes room); returns the byte count. */
size_t slm__tok_utf8_put(uint32_t cp, char *out);

/* One symbol of a word being merged (a linked list over an array). */
typedef struct slm__tok_sym {
    int prev, next;
    const char *text;
    size_t n;
} slm__tok_sym_t;

/* A candidate merge of two neighbouring symbols; higher key first, then the
 * leftmost (SentencePiece: key = score; BPE: key = -rank). */
typedef struct slm__tok_bigram {
    int left, right;
    double key;
    size_t size;
} slm__tok_bigram_t;

typedef struct slm__tok_heap {
    slm__tok_bigram_t *v;
    size_t n, cap;
} slm__tok_heap_t;

int slm__tok_heap_push(slm__tok_heap_t *h, slm__tok_bigram_t b);
slm__tok_bigram_t slm__tok_heap_pop(slm__tok_heap_t *h);
/* Split text into UTF-8 characters (lead-byte lengths, clamped), linked in order. */
int slm__tok_syms_split(const char *text, size_t len, slm__tok_sym_t **syms, size_t *n);

/* Encoders for one run of plain text (special tokens already split off). */
int slm__tok_spm_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        slm__tok_ids_t *out);
int slm__tok_bpe_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        slm__tok_ids_t *out);
int slm__tok_wpm_encode(const slm_tokenizer_t *tok, const char *text, size_t len,
                        slm__tok_ids_t *out);

/* BPE set-up: compile the pre-tokenizer's regexes and set its options. */
int slm__tok_bpe_init(slm_tokenizer_t *tok, const char *pre, slm_error_t *err);
void slm__tok_bpe_free(slm_tokenizer_t *tok);
/* GPT-2's byte <-> printable code point mapping. */
uint32_t slm__tok_byte_to_cp(uint8_t b);
int slm__tok_cp_to_byte(uint32_t cp);

/* Fill tok->piece for every id (called once the vocabulary is loaded). */
int slm__tok_build_pieces(slm_tokenizer_t *tok);

#endif
