/* `slmops tokenize (-m MODEL | --tokenizer PATH) [--ids] [--bos] [--special] TEXT`:
 * the token ids (and pieces) a vocabulary gives a text. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/input.h>
#include <slmops/tokenizer.h>

#include "cli/common.h"
#include "cli/verbs.h"

#define MAX_FILE_BYTES (256u << 20)

typedef struct opts {
    const char *path, *text, *file;
    bool ids, bos, special;
} opts_t;

static void tokenize_usage(void)
{
    printf("Usage: slmops tokenize (-m MODEL | --tokenizer PATH) [OPTIONS] (TEXT | -f FILE)\n"
           "Encode TEXT with a model's vocabulary and print one token a line: the id,\n"
           "a tab, and the token's text (control bytes escaped). PATH may be a GGUF\n"
           "file, tokenizer.bin, tokenizer.model or a Hugging Face folder.\n"
           "  --ids       print only the ids, on one line, separated by spaces\n"
           "  --bos       start with BOS when the vocabulary has one (default: no BOS)\n"
           "  --special   control tokens' text in TEXT becomes those tokens\n"
           "  -f FILE     encode the contents of FILE instead of TEXT\n");
}

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (slm_cli_is_help(a)) {
            tokenize_usage();
            return -1;
        }
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0 || strcmp(a, "--tokenizer") == 0) {
            if (o->path)
                return slm_cli_usage_error("tokenize", "give one of -m and --tokenizer, once");
            if (!(o->path = slm_cli_value(argc, argv, &i, "tokenize")))
                return SLM_CLI_USAGE;
        } else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) {
            if (!(o->file = slm_cli_value(argc, argv, &i, "tokenize")))
                return SLM_CLI_USAGE;
        } else if (strcmp(a, "--ids") == 0) {
            o->ids = true;
        } else if (strcmp(a, "--bos") == 0) {
            o->bos = true;
        } else if (strcmp(a, "--special") == 0) {
            o->special = true;
        } else if (a[0] == '-' && a[1] && strcmp(a, "--") != 0) {
            return slm_cli_usage_error("tokenize", "unknown option '%s'", a);
        } else {
            if (strcmp(a, "--") == 0 && i + 1 < argc)
                a = argv[++i];
            if (o->text)
                return slm_cli_usage_error("tokenize", "one TEXT only (quote it)");
            o->text = a;
        }
    }
    if (!o->path)
        return slm_cli_usage_error("tokenize", "missing -m MODEL or --tokenizer PATH");
    if (!o->text == !o->file)
        return slm_cli_usage_error("tokenize", "give either TEXT or -f FILE");
    return SLM_CLI_OK;
}

static char *read_file(const char *path, size_t *len)
{
    char *buf;
    slm_error_t err;
    slm_error_init(&err);
    if (slm_input_read_all(path, MAX_FILE_BYTES, &buf, len, &err) != SLM_OK) {
        slm_cli_fail("tokenize", &err);
        return NULL;
    }
    return buf;
}

/* Token text with control bytes, backslash and DEL escaped, on one line. */
static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void print_tokens(const slm_tokenizer_t *tok, const int32_t *ids, size_t n, bool only_ids)
{
    for (size_t i = 0; i < n; i++) {
        if (only_ids) {
            printf("%s%d", i ? " " : "", (int)ids[i]);
            continue;
        }
        size_t len = 0;
        const char *piece = slm_tokenizer_piece(tok, ids[i], &len);
        printf("%d\t", (int)ids[i]);
        print_escaped(piece ? piece : "", piece ? len : 0);
        printf("\n");
    }
    if (only_ids)
        printf("\n");
}

int slm_cli_tokenize(int argc, char **argv)
{
    opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc != SLM_CLI_OK)
        return rc < 0 ? SLM_CLI_OK : rc;
    size_t len = o.text ? strlen(o.text) : 0;
    char *data = o.file ? read_file(o.file, &len) : NULL;
    if (o.file && !data)
        return SLM_CLI_FAILED;
    slm_registry_t *reg = slm_cli_registry_open();
    slm_tokenizer_t *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    slm_error_t err;
    slm_error_init(&err);
    unsigned flags = (o.bos ? SLM_TOKENIZE_ADD_BOS : 0) | (o.special ? SLM_TOKENIZE_PARSE_SPECIAL : 0);
    if (!reg)
        rc = SLM_CLI_FAILED;
    else if (slm_tokenizer_load(reg, o.path, &tok, &err) != SLM_OK ||
             slm_tokenizer_encode(tok, data ? data : o.text, len, flags, &ids, &n, &err) != SLM_OK)
        rc = slm_cli_fail("tokenize", &err);
    else
        print_tokens(tok, ids, n, o.ids);
    free(ids);
    free(data);
    slm_tokenizer_free(tok);
    slm_registry_free(reg);
    return rc;
}
