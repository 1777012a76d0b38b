/* Logging: the library never prints; it hands each message to one callback.
 * SLMOPS_LOG=level[,category...] filters (level: error|warn|info|debug). */
#ifndef SLMOPS_LOG_H
#define SLMOPS_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slm_log_level {
    SLM_LOG_ERROR = 0,
    SLM_LOG_WARN = 1,
    SLM_LOG_INFO = 2,
    SLM_LOG_DEBUG = 3
} slm_log_level_t;

/* category: a short word such as "registry", "sched", "cpu"; msg has no newline. */
typedef void (*slm_log_fn)(slm_log_level_t level, const char *category,
                           const char *msg, void *user);

/* Install the handler (NULL discards everything). Not thread-safe with logging. */
void slm_log_set_handler(slm_log_fn fn, void *user);

/* Highest level that reaches the handler; SLMOPS_LOG overrides the default (warn). */
void slm_log_set_level(slm_log_level_t level);
slm_log_level_t slm_log_get_level(void);

/* Emit a message (used by the core and, through the host table, by plugins). */
void slm_log(slm_log_level_t level, const char *category, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *slm_log_level_name(slm_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif
