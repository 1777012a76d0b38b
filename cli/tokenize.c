/* `slmops tokenize (-m MODEL | --tokenizer PATH) [--ids] [--bos] [--special] TEXT`
 * (or -p TEXT, -f FILE, '-' for standard input):
 * the token ids (and pieces) a vocabulary gives a text. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slmops/input.h>
#include <slmops/tokenizer.h>

#include "cli/common.h"
#include "cli/options.h"
#include "cli/verbs.h"

typedef struct opts {
    const char *model, *tokenizer, *prompt, *file;
    slm_cli_strs_t text;
    bool ids, bos, special;
    long threads;
} opts_t;

#define OFF(f) offsetof(opts_t, f)
static const slm_cli_opt_t own_opts[] = {
    {"-m, --model", "MODEL", SLM_CLI_STR, OFF(model), 0, 0, "the vocabulary of this model"},
    {"--tokenizer", "PATH", SLM_CLI_STR, OFF(tokenizer), 0, 0,
     "or of this tokenizer: GGUF, tokenizer.bin, tokenizer.model,\n"
     "a Hugging Face folder"},
    {"-p, --prompt", "TEXT", SLM_CLI_STR, OFF(prompt), 0, 0,
     "the text (instead of the TEXT operand); '-' reads standard input"},
    {"-f, --file", "FILE", SLM_CLI_STR, OFF(file), 0, 0, "encode the contents of FILE"},
    {"--ids", NULL, SLM_CLI_FLAG, OFF(ids), 0, 0,
     "print only the ids, on one line, separated by spaces"},
    {"--bos", NULL, SLM_CLI_FLAG, OFF(bos), 0, 0,
     "start with BOS when the vocabulary has one (default: no BOS)"},
    {"--special", NULL, SLM_CLI_FLAG, OFF(special), 0, 0,
     "control tokens' text in TEXT becomes those tokens"},
    {0},
};

static const slm_cli_group_t groups[] = {
    {"Options", own_opts, 0},
    {"Common options", slm_cli_threads_opt, OFF(threads)},
    {0},
};

static const slm_cli_spec_t spec = {
    .verb = "tokenize",
    .synopsis = "(-m MODEL | --tokenizer PATH) [OPTIONS] (TEXT | -p TEXT | -f FILE)",
    .about = "Encode the text with a model's vocabulary and print one token a line: the\n"
             "id, a tab, and the token's text (control bytes escaped). TEXT '-' reads\n"
             "standard input.\n",
    .groups = groups,
    .operand_names = "TEXT",
    .max_operands = 1,
    .operands_offset = OFF(text),
};

static int parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    int rc = slm_cli_parse(&spec, argc, argv, o);
    if (rc != SLM_CLI_OK)
        return rc;
    if (!o->model == !o->tokenizer)
        return slm_cli_usage_error("tokenize", "give one of -m MODEL and --tokenizer PATH");
    if ((o->text.n > 0) + !!o->prompt + !!o->file != 1)
        return slm_cli_usage_error("tokenize", "give the text once: TEXT, -p TEXT or -f FILE");
    if (o->text.n)
        o->prompt = o->text.v[0];
    return SLM_CLI_OK;
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
        return rc == SLM_CLI_HELP_SHOWN ? SLM_CLI_OK : rc;
    size_t len = 0;
    char *text = NULL;
    if ((rc = slm_cli_prompt_text("tokenize", o.prompt, o.file, &text, &len)) != SLM_CLI_OK)
        return rc;
    slm_registry_t *reg = slm_cli_registry_open();
    slm_tokenizer_t *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    slm_error_t err;
    slm_error_init(&err);
    unsigned flags = (o.bos ? SLM_TOKENIZE_ADD_BOS : 0) | (o.special ? SLM_TOKENIZE_PARSE_SPECIAL : 0);
    if (!reg)
        rc = SLM_CLI_FAILED;
    else if (slm_tokenizer_load(reg, o.model ? o.model : o.tokenizer, &tok, &err) != SLM_OK ||
             slm_tokenizer_encode(tok, text, len, flags, &ids, &n, &err) != SLM_OK)
        rc = slm_cli_fail("tokenize", &err);
    else
        print_tokens(tok, ids, n, o.ids);
    free(ids);
    free(text);
    slm_tokenizer_free(tok);
    slm_registry_free(reg);
    return rc;
}
