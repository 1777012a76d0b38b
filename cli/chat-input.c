/* What the user types into `slmops chat`, read as Ollama reads it: lines, """ blocks,
 * /commands that never reach the model, and Ctrl-C (SIGINT) that stops a reply. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "cli/chat.h"

volatile sig_atomic_t slm_cli_chat_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    slm_cli_chat_interrupted = 1;
}

/* No SA_RESTART: a read() waiting for input returns EINTR, so Ctrl-C is seen at
 * once at the prompt too. */
bool slm_cli_chat_sigint_install(struct sigaction *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    slm_cli_chat_interrupted = 0;
    return sigaction(SIGINT, &sa, saved) == 0;
}

void slm_cli_chat_sigint_restore(const struct sigaction *saved)
{
    sigaction(SIGINT, saved, NULL);
}

void slm_cli_chat_reader_free(slm_cli_chat_reader_t *r)
{
    free(r->buf);
    free(r->msg);
    memset(r, 0, sizeof *r);
}

/* Appends n bytes to the message being built. */
static bool msg_put(slm_cli_chat_reader_t *r, const char *s, size_t n)
{
    if (r->msg_len + n + 1 > r->msg_cap) {
        size_t cap = r->msg_cap ? r->msg_cap : 256;
        while (cap < r->msg_len + n + 1)
            cap *= 2;
        char *p = realloc(r->msg, cap);
        if (!p)
            return false;
        r->msg = p;
        r->msg_cap = cap;
    }
    memcpy(r->msg + r->msg_len, s, n);
    r->msg_len += n;
    r->msg[r->msg_len] = '\0';
    return true;
}

typedef enum { LINE_OK, LINE_EOF, LINE_INTERRUPTED, LINE_ERROR } line_t;

/* Waits until stdin has input or Ctrl-C came, with no gap between looking at the
 * flag and waiting (pselect unblocks SIGINT only while it waits). */
static line_t wait_input(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    if (sigprocmask(SIG_BLOCK, &block, &old) != 0)
        return LINE_OK;
    line_t got = LINE_OK;
    while (!slm_cli_chat_interrupted) {
        fd_set in;
        FD_ZERO(&in);
        FD_SET(STDIN_FILENO, &in);
        int n = pselect(STDIN_FILENO + 1, &in, NULL, NULL, NULL, &old);
        if (n > 0 || (n < 0 && errno != EINTR))
            break;   /* input (or an error read() reports) */
    }
    if (slm_cli_chat_interrupted)
        got = LINE_INTERRUPTED;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return got;
}

/* The next line (without its end) into *line, from r->buf refilled by read(2). */
static line_t read_line(slm_cli_chat_reader_t *r, const char **line, size_t *len)
{
    for (;;) {
        char *nl = r->buf ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
        if (nl || (r->eof && r->start < r->len)) {
            size_t end = nl ? (size_t)(nl - r->buf) : r->len;
            *line = r->buf + r->start;
            *len = end - r->start;
            r->start = nl ? end + 1 : r->len;
            if (*len && (*line)[*len - 1] == '\r')
                (*len)--;
            return LINE_OK;
        }
        if (r->eof)
            return LINE_EOF;
        if (r->start > 0) {   /* keep the unread tail at the front */
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->len -= r->start;
            r->start = 0;
        }
        if (r->len == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 4096;
            char *p = realloc(r->buf, cap);
            if (!p)
                return LINE_ERROR;
            r->buf = p;
            r->cap = cap;
        }
        if (wait_input() == LINE_INTERRUPTED)
            return LINE_INTERRUPTED;
        ssize_t got = read(STDIN_FILENO, r->buf + r->len, r->cap - r->len);
        if (got < 0 && errno == EINTR && slm_cli_chat_interrupted)
            return LINE_INTERRUPTED;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return LINE_ERROR;
        if (got == 0)
            r->eof = true;
        r->len += (size_t)got;
    }
}

static slm_cli_chat_in_t command(const char *line, size_t len)
{
    static const struct {
        const char *name;
        slm_cli_chat_in_t kind;
    } commands[] = {
        {"/bye", SLM_CLI_CHAT_QUIT}, {"/exit", SLM_CLI_CHAT_QUIT}, {"/clear", SLM_CLI_CHAT_CLEAR},
        {"/help", SLM_CLI_CHAT_HELP}, {"/?", SLM_CLI_CHAT_HELP},
    };
    size_t n = 0;
    while (n < len && line[n] != ' ' && line[n] != '\t')
        n++;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == n && memcmp(commands[i].name, line, n) == 0)
            return commands[i].kind;
    return SLM_CLI_CHAT_UNKNOWN;
}

static void prompt(const slm_cli_chat_reader_t *r, bool more)
{
    if (!r->tty)
        return;
    fputs(more ? "... " : "> ", stdout);
    fflush(stdout);
}

static bool ends_with_quotes(const char *s, size_t n)
{
    return n >= 3 && memcmp(s + n - 3, "\"\"\"", 3) == 0;
}

/* One line of a """ block: the lines are joined with newlines; the opening and
 * closing lines count only when they hold text besides the quotes. */
static bool block_line(slm_cli_chat_reader_t *r, const char *s, size_t n, bool *lines)
{
    if (!n)
        return *lines ? msg_put(r, "\n", 1) : true;
    if (*lines && !msg_put(r, "\n", 1))
        return false;
    *lines = true;
    return msg_put(r, s, n);
}

slm_cli_chat_in_t slm_cli_chat_read(slm_cli_chat_reader_t *r)
{
    bool block = false, lines = false;   /* inside """ ... """; a line kept yet */
    r->msg_len = 0;
    prompt(r, false);
    for (;;) {
        const char *line;
        size_t len;
        line_t got = read_line(r, &line, &len);
        if (got == LINE_INTERRUPTED) {
            slm_cli_chat_interrupted = 0;
            if (!block) {   /* Ctrl-C at an empty prompt leaves */
                if (r->tty)
                    fputs("\n", stdout);
                return SLM_CLI_CHAT_QUIT;
            }
            r->msg_len = 0;   /* in a """ block it drops the block */
            block = lines = false;
            if (r->tty)
                fputs("\n", stdout);
            prompt(r, false);
            continue;
        }
        if (got == LINE_ERROR)
            return SLM_CLI_CHAT_ERROR;
        if (got == LINE_EOF)   /* an unfinished """ block is still sent */
            return block && r->msg_len ? SLM_CLI_CHAT_MESSAGE : SLM_CLI_CHAT_EOF;
        bool opens = !block && len >= 3 && memcmp(line, "\"\"\"", 3) == 0;
        if (opens) {
            line += 3;
            len -= 3;
            block = true;
        }
        if (block) {
            bool closes = ends_with_quotes(line, len);
            size_t n = closes ? len - 3 : len;
            bool keep = n > 0 || (!opens && !closes);   /* empty lines inside count */
            if (keep && !block_line(r, line, n, &lines))
                return SLM_CLI_CHAT_ERROR;
            if (closes && r->msg_len)
                return SLM_CLI_CHAT_MESSAGE;
            if (closes)   /* """""": nothing to send */
                block = lines = false;
            prompt(r, block);
            continue;
        }
        if (len && line[0] == '/') {
            if (!msg_put(r, line, len))
                return SLM_CLI_CHAT_ERROR;
            return command(line, len);
        }
        if (!len) {   /* an empty line is no message */
            prompt(r, false);
            continue;
        }
        return msg_put(r, line, len) ? SLM_CLI_CHAT_MESSAGE : SLM_CLI_CHAT_ERROR;
    }
}

void slm_cli_chat_help(void)
{
    printf("Available commands:\n"
           "  /clear          forget the conversation (the system message stays)\n"
           "  /bye, /exit     leave (so do Ctrl-D, and Ctrl-C at an empty prompt)\n"
           "  /help, /?       this help\n"
           "Ctrl-C stops a reply. Use \"\"\" to begin and end a message of several lines.\n");
    fflush(stdout);
}
