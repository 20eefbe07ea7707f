/* Connection deadlines and the rejection summary: the guard thread.
 *
 * libmicrohttpd's only clock is an idle timeout that every received byte
 * resets, so a client sending one header byte a second holds a connection
 * (and, with enough of them, every slot) for ever; and a suspended connection
 * (its job queued) is not polled, so a client that hangs up is not noticed
 * until its job has run. This file keeps a list of the open connections (MHD's
 * connection notifications) with the phase each is in, and one thread that
 * wakes every 100 ms and:
 *  - closes a connection whose first request's headers are not complete
 *    --header-timeout seconds after it opened (later requests on a kept-alive
 *    connection: --idle-timeout after the previous answer, counted from then,
 *    not reset by bytes);
 *  - closes one whose body arrives slower than --min-body-rate on average
 *    once --header-timeout has passed since its headers;
 *  - closes one whose client closed in the middle of the body (MHD would
 *    hold it, and its body memory, until the idle timeout);
 *  - closes one whose client reset it with our answer unread (the answer's
 *    memory comes back now, not at the idle timeout);
 *  - cancels the queued job of a client that hung up (poll(2) POLLRDHUP on
 *    the suspended socket), so its untaken inputs are never run. As nginx
 *    does (its 499), a client's end of stream while it waits counts as
 *    giving up: a client that half-closes after its request loses it;
 *  - writes at most one log line a second summarising the rejections.
 * Closing is shutdown(2) on MHD's socket, never close(2): MHD then reads the
 * end of stream, closes and frees the connection itself (notified CLOSED
 * before it closes the descriptor, under our list lock, so the descriptor we
 * shut down is still this connection's). */
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"

/* MHD_OPTION_NOTIFY_CONNECTION: STARTED adds the connection, CLOSED removes it. */
void qs_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context, int code) {
    qs_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        qs_conn *k = calloc(1, sizeof *k);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!k || !ci) {
            free(k);
            *socket_context = NULL; /* not guarded: MHD's idle timeout still applies */
            return;
        }
        k->fd = ci->connect_fd;
        k->phase = QS_PH_HEADERS;
        k->since = qs_now();
        pthread_mutex_lock(&srv->conn_mu);
        k->next = srv->conns;
        if (srv->conns) srv->conns->prev = k;
        srv->conns = k;
        pthread_mutex_unlock(&srv->conn_mu);
        *socket_context = k;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        qs_conn *k = *socket_context;
        if (!k) return;
        pthread_mutex_lock(&srv->conn_mu);
        if (k->prev)
            k->prev->next = k->next;
        else
            srv->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        pthread_mutex_unlock(&srv->conn_mu);
        free(k);
        *socket_context = NULL;
    }
}

static qs_conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void qs_conn_phase(qs_server *srv, struct MHD_Connection *c, int phase, qs_job *job) {
    qs_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&srv->conn_mu);
    k->phase = phase;
    k->since = qs_now();
    k->body_bytes = 0;
    k->eof_seen = 0;
    k->job = job;
    pthread_mutex_unlock(&srv->conn_mu);
}

void qs_conn_poison(qs_server *srv, struct MHD_Connection *c) {
    qs_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&srv->conn_mu);
    k->poisoned = 1;
    if (!k->closed_by_us) {
        shutdown(k->fd, SHUT_RDWR);
        k->closed_by_us = 1;
    }
    pthread_mutex_unlock(&srv->conn_mu);
    qs_reject(srv, QS_REJ_BAD_FRAMING);
}

int qs_conn_poisoned(qs_server *srv, struct MHD_Connection *c) {
    qs_conn *k = conn_of(c);
    if (!k) return 0;
    pthread_mutex_lock(&srv->conn_mu);
    int p = k->poisoned;
    pthread_mutex_unlock(&srv->conn_mu);
    return p;
}

void qs_conn_body(qs_server *srv, struct MHD_Connection *c, size_t n) {
    qs_conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&srv->conn_mu);
    k->body_bytes += n;
    pthread_mutex_unlock(&srv->conn_mu);
}

/* One sweep over the connections (conn_mu held). Jobs to cancel are
 * collected, not cancelled here: cancelling takes srv->mu, which is never
 * taken inside conn_mu elsewhere, but keeping the order one-way is simpler. */
static size_t sweep_locked(qs_server *srv, double now, qs_job **cancel, size_t cap) {
    size_t n_cancel = 0;
    const qs_server_config *cfg = &srv->cfg;
    for (qs_conn *k = srv->conns; k; k = k->next) {
        if (k->closed_by_us) continue;
        double age = now - k->since;
        int reason = -1;
        switch (k->phase) {
            case QS_PH_HEADERS:
                if (cfg->header_timeout_s > 0 && age > cfg->header_timeout_s) reason = QS_REJ_HEADER_TIMEOUT;
                break;
            case QS_PH_IDLE:
                if (cfg->idle_timeout_s > 0 && age > (double)cfg->idle_timeout_s)
                    reason = QS_REJ_HEADER_TIMEOUT;
                break;
            case QS_PH_BODY: {
                if (cfg->min_body_rate && age > cfg->header_timeout_s &&
                    (double)k->body_bytes < (double)cfg->min_body_rate * (age - cfg->header_timeout_s)) {
                    reason = QS_REJ_SLOW_BODY;
                    break;
                }
                /* The client closed mid-body (libmicrohttpd 0.9.75 leaves such a
             * connection in CLOSE-WAIT, its body memory held, until the idle
             * timeout): end of stream seen, nothing left unread, and no byte
             * arrived since the last sweep. */
                struct pollfd p = {.fd = k->fd, .events = POLLRDHUP};
                int unread = 0;
                if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
                    ioctl(k->fd, FIONREAD, &unread) == 0 && unread == 0) {
                    if (k->eof_seen && k->eof_bytes == k->body_bytes) reason = QS_REJ_CLIENT_GONE;
                    k->eof_seen = 1;
                    k->eof_bytes = k->body_bytes;
                }
                break;
            }
            case QS_PH_WAIT: {
                struct pollfd p = {.fd = k->fd, .events = POLLRDHUP};
                if (k->job && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
                    if (n_cancel < cap) cancel[n_cancel++] = k->job;
                    k->job = NULL;
                    reason = QS_REJ_CLIENT_GONE;
                }
                break;
            }
            case QS_PH_REPLY: {
                /* A client that closed with our answer unread resets the
             * connection (POLLERR/POLLHUP); MHD, blocked on a full send
             * buffer, would hold the answer until the idle timeout. A FIN
             * alone (POLLRDHUP) is a half-close: the client may still read. */
                struct pollfd p = {.fd = k->fd, .events = 0};
                if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) reason = QS_REJ_CLIENT_GONE;
                break;
            }
            default: break;
        }
        if (reason >= 0) {
            shutdown(k->fd, SHUT_RDWR);
            k->closed_by_us = 1;
            qs_reject(srv, reason);
        }
    }
    return n_cancel;
}

static void log_summary(qs_server *srv, uint64_t *last) {
    char line[768];
    size_t len = 0;
    uint64_t total = 0;
    for (int k = 0; k < QS_REJ_COUNT; k++) {
        uint64_t now = atomic_load(&srv->rejected[k]);
        uint64_t d = now - last[k];
        last[k] = now;
        if (!d) continue;
        total += d;
        int w = snprintf(line + len, sizeof line - len, "%s%s %llu", len ? ", " : "", qs_reject_names[k],
                         (unsigned long long)d);
        if (w > 0 && (size_t)w < sizeof line - len) len += (size_t)w;
    }
    if (total)
        qs_log(srv, QEMBED_LOG_WARN, "%llu request(s) or connection(s) rejected in the last second: %s",
               (unsigned long long)total, line);
}

static void *guard_main(void *arg) {
    qs_server *srv = arg;
    uint64_t last[QS_REJ_COUNT] = {0};
    double next_log = qs_now() + 1;
    qs_job *cancel[64];
    while (!atomic_load(&srv->guard_stop)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double now = qs_now();
        pthread_mutex_lock(&srv->conn_mu);
        size_t n = sweep_locked(srv, now, cancel, sizeof cancel / sizeof *cancel);
        /* The requests hold their jobs until MHD completes them, which the
         * shutdown above cannot make happen before we let go of conn_mu. */
        for (size_t i = 0; i < n; i++) qs_job_cancel(srv, cancel[i]);
        pthread_mutex_unlock(&srv->conn_mu);
        if (now >= next_log) {
            log_summary(srv, last);
            next_log = now + 1;
        }
    }
    log_summary(srv, last);
    return NULL;
}

int qs_guard_start(qs_server *srv) {
    atomic_store(&srv->guard_stop, 0);
    if (pthread_create(&srv->guard, NULL, guard_main, srv) != 0) return -1;
    srv->guard_running = 1;
    return 0;
}

void qs_guard_stop(qs_server *srv) {
    if (!srv->guard_running) return;
    atomic_store(&srv->guard_stop, 1);
    pthread_join(srv->guard, NULL);
    srv->guard_running = 0;
}
