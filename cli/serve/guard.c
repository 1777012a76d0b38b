/* Who may talk to `slmops serve`: the API key (read from a file or the environment,
 * compared in constant time) and the Host names a request may use. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <slmops/input.h>

#include "cli/serve/serve.h"

#define MAX_KEY_FILE 4096

bool srv_const_eq(const char *a, size_t na, const char *b, size_t nb)
{
    /* Every byte of b is looked at whatever a holds, so the time tells only b's length. */
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < nb; i++)
        diff |= (unsigned char)((na ? (unsigned char)a[i % na] : 0u) ^ (unsigned char)b[i]);
    return diff == 0;
}

/* The key without the spaces and newline a file usually ends with. */
static bool set_key(srv_guard_t *g, const char *text, const char *from)
{
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1]))
        n--;
    while (n && isspace((unsigned char)*text))
        text++, n--;
    if (n == 0 || memchr(text, '\n', n)) {
        fprintf(stderr, "slmops serve: %s: the API key is %s (give one line of text)\n", from,
                n ? "more than one line" : "empty");
        return false;
    }
    g->api_key = strndup(text, n);
    g->api_key_len = n;
    return g->api_key != NULL;
}

bool srv_guard_load_key(srv_guard_t *g, const char *file)
{
    if (!file) {
        const char *env = secure_getenv("SLMOPS_API_KEY");
        return !env || set_key(g, env, "SLMOPS_API_KEY");
    }
    slm_error_t err;
    slm_error_init(&err);
    char *text = NULL;
    size_t len = 0;
    if (slm_input_read_all(file, MAX_KEY_FILE, &text, &len, &err) != SLM_OK) {
        fprintf(stderr, "slmops serve: --api-key-file: %s\n", err.message);
        return false;
    }
    bool ok = strlen(text) == len ? set_key(g, text, file) : false;
    if (strlen(text) != len)
        fprintf(stderr, "slmops serve: %s: the API key file holds a NUL byte\n", file);
    free(text);
    return ok;
}

bool srv_guard_authorized(const srv_guard_t *g, const char *authorization)
{
    if (!g->api_key)
        return true;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *k = authorization + 7;
    while (*k == ' ')
        k++;
    return srv_const_eq(k, strlen(k), g->api_key, g->api_key_len);
}

/* The host part of a Host header: brackets around an IPv6 address and the port gone. */
static bool host_part(const char *host, char *out, size_t cap)
{
    size_t n;
    if (*host == '[') {
        const char *end = strchr(host, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
        host++;
        n = (size_t)(end - host);
    } else {
        const char *colon = strchr(host, ':');
        n = colon ? (size_t)(colon - host) : strlen(host);
    }
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, host, n);
    out[n] = '\0';
    return true;
}

static bool is_ip_literal(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static bool is_loopback_name(const char *h)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(h, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

bool srv_guard_host_ok(const srv_guard_t *g, const char *host)
{
    char h[256];
    if (!host || !host_part(host, h, sizeof h))
        return false;
    for (size_t i = 0; i < g->n_allowed_hosts; i++)
        if (strcmp(g->allowed_hosts[i], "*") == 0 || strcasecmp(g->allowed_hosts[i], h) == 0)
            return true;
    if (strcasecmp(h, g->bound) == 0)
        return true;
    if (g->loopback)
        return is_loopback_name(h);
    /* A DNS rebinding attack needs a name; a numeric address names no other site. */
    return g->wildcard && is_ip_literal(h);
}
