/* The library's single logging path: level and category filtering from
 * SLMOPS_LOG, then the handler the application installed (none: discard). */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal/util.h"

static slm_log_fn log_handler;
static void *log_user;
static slm_log_level_t log_level = SLM_LOG_WARN;
static char log_categories[256];   /* comma list; empty: every category */
static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

static int parse_level(const char *s, size_t n)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strlen(names[i]) == n && strncasecmp(s, names[i], n) == 0)
            return i;
    return -1;
}

/* SLMOPS_LOG=level[,category...] */
static void log_read_env(void)
{
    const char *env = slm__getenv("SLMOPS_LOG");
    if (!env || !*env)
        return;
    const char *comma = strchr(env, ',');
    size_t n = comma ? (size_t)(comma - env) : strlen(env);
    int lvl = parse_level(env, n);
    if (lvl >= 0)
        log_level = (slm_log_level_t)lvl;
    if (comma)
        snprintf(log_categories, sizeof log_categories, "%s", comma + 1);
}

static bool category_enabled(const char *category)
{
    if (!log_categories[0] || !category)
        return true;
    size_t n = strlen(category);
    for (const char *p = log_categories; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, category, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

void slm_log_set_handler(slm_log_fn fn, void *user)
{
    pthread_once(&log_env_once, log_read_env);
    log_handler = fn;
    log_user = user;
}

void slm_log_set_level(slm_log_level_t level)
{
    pthread_once(&log_env_once, log_read_env);
    log_level = level;
}

slm_log_level_t slm_log_get_level(void)
{
    pthread_once(&log_env_once, log_read_env);
    return log_level;
}

const char *slm_log_level_name(slm_log_level_t level)
{
    switch (level) {
    case SLM_LOG_ERROR: return "error";
    case SLM_LOG_WARN: return "warn";
    case SLM_LOG_INFO: return "info";
    case SLM_LOG_DEBUG: return "debug";
    }
    return "?";
}

void slm_log(slm_log_level_t level, const char *category, const char *fmt, ...)
{
    pthread_once(&log_env_once, log_read_env);
    /* Errors always pass the category filter: they are never noise. */
    if (!log_handler || level > log_level)
        return;
    if (level != SLM_LOG_ERROR && !category_enabled(category))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_handler(level, category ? category : "", msg, log_user);
}
