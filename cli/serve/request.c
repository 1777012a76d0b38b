/* Requests of `slmops serve`: made by an HTTP thread, run by the engine, freed by
 * whichever side lets go last; and telling whether a client is still there. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "cli/serve/serve.h"

srv_req_t *srv_req_new(srv_kind_t kind)
{
    srv_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->kind = kind;
    r->max_tokens = -1;
    r->top_logprobs = -1;
    r->adapter = -1;
    r->refs = 1;
    slm_sampler_params_default(&r->sampling);
    return r;
}

void srv_req_unref(srv_req_t *r)
{
    if (!r || --r->refs > 0)
        return;
    pthread_cond_destroy(&r->cv);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    for (size_t i = 0; i < r->n_choices; i++) {
        free(r->choices[i].text);
        free(r->choices[i].lp);
    }
    free(r->choices);
    slm_json_filter_free(r->json);
    free(r->prompt);
    free(r->prompt_text);
    free(r);
}

bool srv_req_set_choices(srv_req_t *r, size_t n)
{
    r->choices = calloc(n, sizeof *r->choices);
    if (!r->choices)
        return false;
    r->n_choices = n;
    for (size_t i = 0; i < n; i++) {
        r->choices[i].req = r;
        r->choices[i].index = (uint32_t)i;
    }
    return true;
}

bool srv_req_done(const srv_req_t *r)
{
    return r->n_done == r->n_choices;
}

void srv_req_abandon(srv_t *srv, srv_req_t *r)
{
    if (srv_req_done(r))
        return;
    r->gone = true;
    pthread_cond_signal(&srv->wake);
}

bool srv_peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (fd < 0 || poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP))
        return true;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void srv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}
