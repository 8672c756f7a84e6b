/*
 * The IcmpSendEcho contract on top of the engine: a handle is an engine of one family
 * without a thread, and each call runs the engine's loop in the caller's thread until its
 * single echo is settled. The reply record and the echoed data go into the caller's buffer,
 * the data right after the record, as ICMP_ECHO_REPLY and its data do on Windows.
 */
#include "core/icmp_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct icmp_handle {
    struct icmp_engine *engine;
    int family;
    enum icmp_status last;
};

int icmp_open(struct icmp_handle **out, int family)
{
    struct icmp_engine_options o = {
        .min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS, .no_thread = true, .families = family};
    struct icmp_handle *h;
    int rc;

    if (out == NULL)
        return -EINVAL;
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    rc = icmp_engine_open(&h->engine, &o);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->family = family;
    h->last = ICMP_STATUS_SUCCESS;
    *out = h;
    return 0;
}

void icmp_close(struct icmp_handle *handle)
{
    if (handle == NULL)
        return;
    icmp_engine_close(handle->engine);
    free(handle);
}

static void on_done(struct icmp_job *job, void *arg)
{
    (void)job;
    *(bool *)arg = true;
}

int icmp_send_echo(struct icmp_handle *h, const struct icmp_addr *dst, const void *data,
                   uint16_t size, const struct icmp_options *options, void *reply_buffer,
                   size_t reply_size, uint32_t timeout_ms)
{
    struct icmp_echo_reply *rec = reply_buffer;
    struct icmp_echo_result result;
    struct icmp_job job = {0};
    struct icmp_job *jobs[1] = {&job};
    bool done = false;
    int rc;

    if (h == NULL || dst == NULL || (data == NULL && size > 0) || reply_buffer == NULL ||
        timeout_ms == 0 || size > ICMP_PAYLOAD_MAX - ICMP_PAYLOAD_MIN)
        return -EINVAL;
    if (dst->family != h->family)
        return -EINVAL;
    if (reply_size < ICMP_REPLY_BUFFER_SIZE(size)) {
        h->last = ICMP_STATUS_BUF_TOO_SMALL;
        if (reply_size >= sizeof(*rec)) {
            memset(rec, 0, sizeof(*rec));
            rec->address = *dst;
            rec->status = ICMP_STATUS_BUF_TOO_SMALL;
            rec->ttl = -1;
        }
        return 0;
    }

    job.dst = *dst;
    job.count = 1;
    job.timeout_ns = (int64_t)timeout_ms * 1000000;
    job.payload_size = (uint16_t)(ICMP_PAYLOAD_MIN + size);
    job.data = size > 0 ? data : NULL;
    if (size > 0 && data == NULL)
        return -EINVAL;
    if (options != NULL) {
        job.ttl = options->ttl;
        job.tos = options->tos;
        job.dont_fragment = (options->flags & ICMP_FLAG_DF) != 0;
    }
    job.results = &result;
    job.on_done = on_done;
    job.arg = &done;
    rc = icmp_engine_submit(h->engine, jobs, 1);
    if (rc < 0)
        return rc;
    icmp__engine_run_until(h->engine, &done);
    if (job.error < 0)
        return job.error;

    memset(rec, 0, sizeof(*rec));
    rec->address = result.from.family != 0 ? result.from : *dst;
    rec->status = result.status;
    rec->rtt_ns = result.rtt_ns >= 0 ? result.rtt_ns : 0;
    rec->rtt_ms = (uint32_t)(rec->rtt_ns / 1000000);
    rec->ttl = result.ttl;
    rec->data = (uint8_t *)reply_buffer + sizeof(*rec);
    rec->options.ttl = (uint8_t)(result.ttl >= 0 ? result.ttl : 0);
    h->last = result.status;
    if (!result.sent || result.status == ICMP_STATUS_TIMED_OUT)
        return 0; /* nothing came back: the record only carries the reason */
    if (result.status == ICMP_STATUS_SUCCESS && size > 0) {
        /* The engine accepted the reply only if its data equalled ours byte for byte. */
        memcpy(rec->data, data, size);
        rec->data_size = size;
    }
    return 1;
}

enum icmp_status icmp_last_status(const struct icmp_handle *handle)
{
    return handle != NULL ? handle->last : ICMP_STATUS_GENERAL_FAILURE;
}

enum icmp_socket_mode icmp_handle_mode(const struct icmp_handle *handle)
{
    if (handle == NULL)
        return ICMP_MODE_NONE;
    return icmp_engine_mode(handle->engine, handle->family);
}
