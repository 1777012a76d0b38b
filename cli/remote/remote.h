/* The remote teacher of `slmops distill`: an OpenAI-compatible HTTP endpoint asked with
 * libcurl (kept out of libslmops), its answers kept in a resumable JSONL cache. */
#ifndef SLMOPS_CLI_REMOTE_H
#define SLMOPS_CLI_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct slm_cli_remote {
    const char *url;            /* base URL (…/v1) or the endpoint itself */
    const char *model;
    bool completions;           /* /v1/completions with a prompt, not chat messages */
    const char *key_env, *key_file;
    bool key_env_given;         /* a missing variable is an error only when named */
    long concurrency, retries, timeout_s;
    const char *cache;          /* the JSONL cache */
    long samples, max_tokens, top_k;   /* top_k < 0: not sent */
    double temperature, top_p;
    uint64_t seed;
} slm_cli_remote_t;

/* Ask the teacher for every sample of every prompt of requests (JSONL {"line",
 * "prompt", "system"?}, written by the synth job) that the cache lacks, and write
 * responses ({"line", "sample", "response" | "error", ...} in order) for the synth
 * job. Failures are reported on stderr and in responses; returns an exit status. */
int slm_cli_remote_run(const slm_cli_remote_t *r, const char *requests, const char *responses);

/* The cache: one JSON object a line, {"key", "line", "sample", "response", ...},
 * each appended in one write and fsync'd; a torn last line (a kill) is dropped. */
typedef struct slm_cli_cache slm_cli_cache_t;
int slm_cli_cache_open(const char *path, slm_cli_cache_t **out);   /* an exit status */
const json_t *slm_cli_cache_get(const slm_cli_cache_t *c, const char *key);
int slm_cli_cache_put(slm_cli_cache_t *c, json_t *entry);   /* takes entry; "key" set */
size_t slm_cli_cache_dropped(const slm_cli_cache_t *c);    /* torn lines dropped at open */
void slm_cli_cache_close(slm_cli_cache_t *c);

#endif
