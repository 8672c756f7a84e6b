/*
 * core/: the batched ICMP echo engine, modelled on Windows' IcmpSendEcho.
 *
 * Two ways in:
 * - icmp_open()/icmp_send_echo()/icmp_close(): the IcmpCreateFile / IcmpSendEcho /
 *   IcmpCloseHandle contract, synchronous, one echo per call, replies in a caller buffer.
 * - struct icmp_engine: what the exporter uses. Callers submit jobs (a destination and how
 *   to ping it); an engine thread runs every job of every caller together on one socket per
 *   address family and calls each job's completion callback when its last echo is settled.
 *
 * This header is the whole public surface of the engine. It knows nothing of HTTP,
 * Prometheus or JSON. Functions return 0 (or a count) on success and -errno on failure;
 * per-echo outcomes live in each result's status.
 */
#ifndef ICMP_H
#define ICMP_H

#include "core/icmp_addr.h" /* struct icmp_addr, the address type shared with config/ */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Outcome of one echo, with the meanings of Windows' IP_STATUS codes (ipexport.h). The
 * enum value n is the Windows code minus 11000 (success is 0), so icmp_status_code() is
 * exact and the values are stable across releases.
 */
enum icmp_status {
    ICMP_STATUS_SUCCESS = 0,
    ICMP_STATUS_BUF_TOO_SMALL = 1,
    ICMP_STATUS_DEST_NET_UNREACHABLE = 2,  /* v6: no route */
    ICMP_STATUS_DEST_HOST_UNREACHABLE = 3, /* v6: address unreachable */
    ICMP_STATUS_DEST_PROT_UNREACHABLE = 4, /* v6: administratively prohibited */
    ICMP_STATUS_DEST_PORT_UNREACHABLE = 5,
    ICMP_STATUS_NO_RESOURCES = 6,
    ICMP_STATUS_BAD_OPTION = 7,
    ICMP_STATUS_HW_ERROR = 8,
    ICMP_STATUS_PACKET_TOO_BIG = 9,
    ICMP_STATUS_TIMED_OUT = 10,
    ICMP_STATUS_BAD_REQ = 11,
    ICMP_STATUS_BAD_ROUTE = 12,
    ICMP_STATUS_TTL_EXPIRED_TRANSIT = 13,
    ICMP_STATUS_TTL_EXPIRED_REASSEM = 14,
    ICMP_STATUS_PARAM_PROBLEM = 15,
    ICMP_STATUS_SOURCE_QUENCH = 16,
    ICMP_STATUS_OPTION_TOO_BIG = 17,
    ICMP_STATUS_BAD_DESTINATION = 18,
    ICMP_STATUS_DEST_UNREACHABLE = 40,
    ICMP_STATUS_TIME_EXCEEDED = 41,
    ICMP_STATUS_BAD_HEADER = 42,
    ICMP_STATUS_UNRECOGNIZED_NEXT_HEADER = 43,
    ICMP_STATUS_ICMP_ERROR = 44,
    ICMP_STATUS_DEST_SCOPE_MISMATCH = 45,
    ICMP_STATUS_GENERAL_FAILURE = 50,
};

/* One past the largest enum icmp_status value: the size of per-status arrays. */
#define ICMP_STATUS_LIMIT 51

/*
 * Stable lower-case name of a status, suitable as a Prometheus label value
 * ("success", "timed_out", ...). Returns NULL for a value that is not a status.
 * Thread-safe; the string is a constant.
 */
const char *icmp_status_name(enum icmp_status status);

/*
 * The Windows numeric IP_STATUS code (0 for success, 11000 + n otherwise), for display
 * and reference. Returns -1 for a value that is not a status. Thread-safe.
 */
int icmp_status_code(enum icmp_status status);

/*
 * Parses an IPv4 or IPv6 literal (no names, no resolution) into *addr.
 * Returns 0, or -EINVAL when text is not an address literal. Thread-safe.
 */
int icmp_addr_parse(const char *text, struct icmp_addr *addr);

/*
 * Writes the address as text into buf (at least 46 bytes, INET6_ADDRSTRLEN). Returns buf,
 * or "?" written into buf when the family is unknown. Thread-safe.
 */
const char *icmp_addr_format(const struct icmp_addr *addr, char *buf, size_t size);

/* True when both addresses have the same family, bytes and scope. */
bool icmp_addr_equal(const struct icmp_addr *a, const struct icmp_addr *b);

/* CLOCK_MONOTONIC in nanoseconds: the clock of job deadlines. */
int64_t icmp_now_ns(void);

/* ---------------------------------------------------------------------------------------
 * Sockets.
 */

/* How the engine reaches ICMP for one family. */
enum icmp_socket_mode {
    ICMP_MODE_NONE = 0, /* no socket: neither ping sockets nor CAP_NET_RAW */
    ICMP_MODE_DGRAM,    /* unprivileged ping socket (net.ipv4.ping_group_range) */
    ICMP_MODE_RAW,      /* raw socket (CAP_NET_RAW) */
};

/* "none", "dgram" or "raw". Thread-safe. */
const char *icmp_socket_mode_name(enum icmp_socket_mode mode);

/* ---------------------------------------------------------------------------------------
 * The batch engine.
 */

/* Result of one echo of a job. Times are nanoseconds. */
struct icmp_echo_result {
    enum icmp_status status; /* TIMED_OUT until something better is known */
    struct icmp_addr from;   /* who answered: the target, or the router of an ICMP error */
    int64_t rtt_ns;          /* from the send to the answer's receive stamp, a CLOCK_MONOTONIC
                                duration (setting the wall clock does not move it); -1 without
                                an answer */
    int64_t sent_ns;         /* CLOCK_REALTIME send stamp; -1 when never sent */
    uint16_t seq;            /* ICMP sequence number used on the wire */
    int16_t ttl;             /* TTL / hop limit of the answer (0-255; of the error packet for
                                an ICMP error); -1 when unknown, e.g. without an answer */
    bool sent;               /* false: cut by the deadline, a cancel or a send error */
    uint16_t duplicates;     /* further copies of the reply seen while the job ran */
    bool tx_stamped;         /* rtt_ns starts at the kernel's transmit stamp (else at the
                                stamp taken just before sendmsg) */
    int send_errno;          /* errno of a failed send, else 0 */
};

struct icmp_job;

/*
 * Completion callback: runs on the engine thread once every echo of the job is settled
 * (answered, errored, timed out, or abandoned at the deadline or on cancel). After it
 * returns the engine never touches the job again, so it may free or reuse it. It must not
 * block; it may call icmp_engine_submit().
 */
typedef void (*icmp_done_fn)(struct icmp_job *job, void *arg);

/*
 * A job: `count` echoes to `dst`, `interval_ns` apart, each waiting up to `timeout_ns`.
 * The caller owns it and its results array, fills the request part, and must keep both
 * alive and untouched from icmp_engine_submit() until the callback has run.
 */
struct icmp_job {
    /* request */
    struct icmp_addr dst;
    struct icmp_addr src;  /* source address; family 0 lets the kernel choose */
    uint32_t count;        /* echoes, >= 1 */
    int64_t interval_ns;   /* between this job's echoes */
    int64_t timeout_ns;    /* per echo, > 0 */
    int64_t deadline_ns;   /* CLOCK_MONOTONIC absolute bound of the whole job; 0 = none */
    uint16_t payload_size; /* ICMP data bytes, >= ICMP_PAYLOAD_MIN */
    const void *data;      /* optional: data after our 16-byte header, payload_size - 16 */
    uint8_t ttl;           /* 0 = kernel default */
    uint8_t tos;           /* IPv4 TOS / IPv6 traffic class */
    bool dont_fragment;
    uint64_t flow; /* share of the send budget: jobs with the same nonzero flow share one;
                      0 = a flow of its own (see icmp_engine_set_send_gap) */
    struct icmp_echo_result *results; /* count entries, written by the engine */
    icmp_done_fn on_done;
    void *arg;

    /* outcome, valid in on_done */
    int error;           /* 0, or -errno when the job could not run at all, or when the
                            engine failed while it ran (icmp_engine_error; the results and
                            counts then hold what was settled before) */
    bool cancelled;      /* stopped by icmp_engine_cancel() */
    uint32_t sent;       /* echoes sent */
    uint32_t received;   /* echoes answered with an echo reply */
    uint32_t errors;     /* echoes answered with an ICMP error */
    uint32_t duplicates; /* duplicate replies seen while the job ran */
    uint32_t late;       /* replies arriving after their echo timed out, while it ran */
    uint32_t corrupt;    /* replies to our echoes with wrong data or source */

    /* engine-private */
    struct {
        int64_t next_send;
        uint32_t next_echo;
        uint32_t outstanding;
        uint32_t heap_index;     /* in its flow's heap */
        uint32_t deadline_index; /* in the engine's deadline heap */
        struct icmp__flow *flow;
        struct icmp_job *next;
        struct icmp_job *prev;
        uint8_t state;
    } priv;
};

/* ICMP_PAYLOAD_MIN (16: our nonce and send stamp) and ICMP_PAYLOAD_MAX (65507, the largest
 * IPv4 echo data, which IPv6 carries too) come from core/icmp_addr.h, shared with config/. */

struct icmp_engine_options {
    int64_t min_send_gap_ns;     /* global minimum gap between two sends (pacing) */
    enum icmp_socket_mode mode4; /* wanted mode for IPv4: NONE means "auto" */
    enum icmp_socket_mode mode6; /* likewise for IPv6 */
    bool no_thread;              /* internal: driven by the caller (icmp_send_echo) */
    bool start_later;            /* open the sockets only; icmp_engine_start starts the thread
                                    (e.g. after the process dropped its privileges) */
    int families;                /* 0 = both; AF_INET or AF_INET6 = only that one */
};

/* Default pacing: 10 us between sends (100,000 packets per second at most). */
#define ICMP_DEFAULT_SEND_GAP_NS 10000

/* Engine-wide counters, monotonically increasing (see icmp_engine_stats). */
struct icmp_engine_stats {
    uint64_t jobs;
    uint64_t sent;
    uint64_t send_errors;
    uint64_t replies[ICMP_STATUS_LIMIT]; /* settled echoes by status, timeouts included */
    uint64_t duplicates;
    uint64_t late;
    uint64_t corrupt; /* our identifier and sequence, wrong source or data */
    uint64_t foreign; /* ICMP that is not a reply to any echo of ours */
    uint64_t in_flight;
};

struct icmp_engine;

/*
 * Opens the engine: one ICMP socket per family (ping socket first, raw otherwise, unless
 * options ask for a mode) and the engine thread. options may be NULL for defaults.
 * Succeeds when at least one family has a socket (see icmp_engine_mode); returns -EACCES
 * when none could be opened, -ENOMEM, or another -errno. Not thread-safe with close.
 */
int icmp_engine_open(struct icmp_engine **out, const struct icmp_engine_options *options);

/*
 * Starts the engine thread of an engine opened with start_later (jobs submitted before
 * wait for it). Returns 0, -EALREADY when it runs (or the engine is driven by the caller),
 * or -errno from pthread_create. Not thread-safe with close.
 */
int icmp_engine_start(struct icmp_engine *e);

/* Sets the global minimum gap between two sends (the engine's packet budget, all jobs
 * together: 1e9 / gap_ns echo requests per second at most). The budget is shared round-robin
 * among the flows (icmp_job.flow) that have an echo due: with N such flows each gets about
 * 1/N of it, however many jobs each holds. Returns 0 or -EINVAL for a negative gap.
 * Thread-safe. */
int icmp_engine_set_send_gap(struct icmp_engine *e, int64_t gap_ns);

/*
 * Stops the thread, completes every unfinished job as cancelled (callbacks run), closes
 * the sockets and frees the engine. Accepts NULL.
 */
void icmp_engine_close(struct icmp_engine *engine);

/* The socket mode of a family (AF_INET / AF_INET6). Thread-safe. */
enum icmp_socket_mode icmp_engine_mode(const struct icmp_engine *engine, int family);

/*
 * Submits n jobs. Thread-safe: any number of callers may submit concurrently. Validates
 * each job first: returns -EINVAL (nothing submitted) for a malformed one. Once the engine
 * has failed, returns its icmp_engine_error() (nothing submitted, no callback). A job whose
 * family has no socket completes with error -EAFNOSUPPORT through its callback.
 */
int icmp_engine_submit(struct icmp_engine *engine, struct icmp_job *const *jobs, size_t n);

/*
 * Asks the engine to stop a submitted job: unsent echoes are abandoned, in-flight ones
 * settled as timed out, and the callback runs with cancelled set (unless the job
 * completed first). Thread-safe; returns at once, the callback may run on the engine
 * thread before or after it returns. Does nothing once the engine has failed.
 */
void icmp_engine_cancel(struct icmp_engine *engine, struct icmp_job *job);

/* Copies the engine's counters. Thread-safe. */
void icmp_engine_stats(const struct icmp_engine *engine, struct icmp_engine_stats *stats);

/*
 * 0 while the engine works, else the -errno that stopped it for good: its wait for events
 * (epoll_pwait2, or epoll_wait where that is missing) failed with something other than EINTR,
 * e.g. -EBADF or -EINVAL when its epoll descriptor was closed or replaced behind its back.
 * Waiting again would fail the same way, so rather than spin the engine settles every job it
 * holds with this error (callbacks run, on the engine thread), its thread ends, and
 * icmp_engine_submit() returns the error from then on; icmp_send_echo() returns it too.
 * Only icmp_engine_close() is left to call. Thread-safe.
 */
int icmp_engine_error(const struct icmp_engine *engine);

/* ---------------------------------------------------------------------------------------
 * The IcmpSendEcho contract.
 */

/* IP_OPTION_INFORMATION: may be NULL in icmp_send_echo (TTL 64, TOS 0, no flags). */
struct icmp_options {
    uint8_t ttl;
    uint8_t tos;
    uint8_t flags; /* ICMP_FLAG_DF */
};
#define ICMP_FLAG_DF 0x02 /* IP_FLAG_DF: don't fragment */

/*
 * ICMP_ECHO_REPLY: one record of the reply buffer. data points into the same buffer,
 * after the records.
 */
struct icmp_echo_reply {
    struct icmp_addr address; /* replier: the target, or the router of an ICMP error */
    enum icmp_status status;
    int64_t rtt_ns;  /* nanoseconds; Windows' RoundTripTime is rtt_ms */
    uint32_t rtt_ms; /* whole milliseconds, as Windows reports it */
    int16_t ttl;     /* reply TTL / hop limit 0-255; -1 when unknown (no answer) */
    uint16_t data_size;
    void *data;
    struct icmp_options options; /* options.ttl: ttl, or 0 when unknown */
};

/* The smallest reply buffer for request data of `size` bytes (one record + data + 8). */
#define ICMP_REPLY_BUFFER_SIZE(size) (sizeof(struct icmp_echo_reply) + (size_t)(size) + 8)

struct icmp_handle;

/*
 * IcmpCreateFile (AF_INET) / Icmp6CreateFile (AF_INET6): opens a handle with its own socket.
 * Returns 0, or -EACCES without any way to send ICMP, -EAFNOSUPPORT for another family,
 * -ENOMEM. A handle serves one call at a time.
 */
int icmp_open(struct icmp_handle **out, int family);

/* IcmpCloseHandle. Accepts NULL. */
void icmp_close(struct icmp_handle *handle);

/*
 * IcmpSendEcho: sends one echo request carrying `data` (size bytes, up to
 * ICMP_PAYLOAD_MAX - 16) to dst and waits up to timeout_ms for the answer. Returns the
 * number of records stored in reply_buffer (1 for an echo reply or an ICMP error), 0 when
 * none was (timed out, or the buffer is smaller than ICMP_REPLY_BUFFER_SIZE(size)): then
 * icmp_last_status() says why, and a first record holds that status when the buffer has
 * room for one. Returns -EINVAL for bad arguments, -errno for a system failure (after a
 * failed wait, the handle's engine is stopped: every later call returns that -errno).
 */
int icmp_send_echo(struct icmp_handle *handle, const struct icmp_addr *dst, const void *data,
                   uint16_t size, const struct icmp_options *options, void *reply_buffer,
                   size_t reply_size, uint32_t timeout_ms);

/* The status of the handle's last icmp_send_echo (GetLastError's role). */
enum icmp_status icmp_last_status(const struct icmp_handle *handle);

/* The socket mode the handle got. */
enum icmp_socket_mode icmp_handle_mode(const struct icmp_handle *handle);

#endif
