/*
 * The batch echo engine: every job of every caller, on one ICMP socket per family.
 *
 * Model. Callers submit jobs under a mutex and wake the engine thread through an eventfd;
 * everything else belongs to that thread alone, which loops over four steps: take new
 * jobs and cancel requests, expire echoes whose time is up, send what is due, and wait in
 * epoll until the next reply, send time or timeout. (fping has the same two queues: one
 * of pings to send, one of pings waiting for their reply.)
 *
 * - A global gap between any two sends paces a large batch so it does not overflow its own
 *   queues and lose replies; it is also the packet budget callers set. The budget is shared
 *   round-robin among flows (icmp_job.flow: the exporter gives each /probe client one, and
 *   its static targets one together), so one caller's thousand jobs cannot starve another's
 *   one: each flow keeps its jobs in a min-heap by next send time, flows with an echo due
 *   wait in a ring and send one echo per turn, the others in a min-heap by their earliest
 *   job's time. A job's own timing (its interval) holds within its flow. A third heap holds
 *   the jobs' deadlines, so a job past its deadline stops at once whatever its turn. Each
 *   send costs O(log n) (n jobs or flows).
 * - Each family has one random identifier and 65,536 sequence numbers; an echo in flight
 *   owns the slot of its sequence number, which says which job and echo it belongs to and
 *   when it was sent. Sequence numbers are handed out round-robin, so a slot is reused as
 *   late as possible and late replies and duplicates can still be recognised by it.
 * - Echoes waiting for a reply sit in a second min-heap keyed by their deadline; entries
 *   carry the slot's generation, so a stale entry (the slot was answered and reused) is
 *   skipped when it comes up.
 * - A reply counts only if its identifier, sequence, source address and whole payload
 *   (our nonce, the send stamp, then the data) match; an ICMP error likewise, with the
 *   destination it quotes and as much of the payload as it quotes. Everything else is
 *   counted as duplicate, late, corrupt or foreign, never as success.
 * - An error may quote too little to hold our nonce: RFC 792 asks only for the IP header and
 *   8 bytes (our ICMP header), and older routers send no more. Such a short quote settles an
 *   echo only while it waits, to the destination quoted, and only if the quoted checksum is
 *   the one that echo carried (it covers the nonce and the send stamp): see
 *   short_quote_matches. It never counts as a reply, and nothing else of it is counted but
 *   foreign.
 * - Addresses match with their zone only where both sides have one (same_host): the kernel
 *   gives a link-local source the zone of its interface, a quoted header carries none.
 *
 * Time. Round-trip times are kernel stamps on both sides: the receive stamp (SO_TIMESTAMPNS)
 * minus the software transmit stamp (SO_TIMESTAMPING with OPT_ID, read from the error
 * queue). Where the kernel gives no transmit stamp, the stamp taken just before sendmsg()
 * stands in; it reads 15-50 us high, the time sendmsg takes to reach the device. Those
 * stamps are CLOCK_REALTIME, the wall clock, which jumps when someone (or NTP, at start-up)
 * sets it; deadlines, timeouts and pacing are CLOCK_MONOTONIC, which does not, and sockets
 * have no monotonic stamps. The difference of two realtime stamps is exact while no step
 * falls between them and off by the whole step when one does. So the engine reads both
 * clocks (icmp__clocks) when it sends an echo and again when it reads the answer: the offset
 * realtime - monotonic changes between the two readings by exactly the steps in between, and
 * icmp__echo_time takes that change off the realtime difference. The RTT is then a monotonic
 * duration, and the late decision (an answer read after its deadline, before its expiry ran)
 * compares the answer's monotonic arrival with the monotonic deadline: a wall-clock step
 * while an echo is out moves neither, only one inside the microseconds between a kernel
 * stamp and the reading beside it would. A change of the offset within the readings' own
 * uncertainty (a thread preempted between two clock reads) is no step, so without a step the
 * RTT is the plain difference of the kernel's stamps. The cost is three vDSO clock reads per
 * send and per answer matched, no system call. icmp__echo_time is pure, so tests can step a
 * simulated wall clock; tests/core/test_clock.c moves CLOCK_MONOTONIC for real, inside a
 * time namespace.
 *
 * The slot table, heaps and buffers are allocated up front or grow geometrically: no
 * allocation per echo.
 *
 * A wait that fails (anything but EINTR) is the end of the engine: EBADF, EINVAL and EFAULT
 * say its epoll descriptor or memory is no longer what it was, and waiting again would fail
 * at once, forever, in a loop that spins. So the failure is made sticky (icmp_engine_error),
 * every job held completes with it as its error, the thread ends, and submits are refused
 * with it: callers learn of it at once instead of waiting on probes that never end.
 */
#include "core/icmp_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <linux/net_tstamp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SEQ_SPACE       65536
#define RECV_BUF_SIZE   (65536 + 512)
#define SOCKET_BUF_SIZE (4 * 1024 * 1024)
#define RETRY_NS        1000000 /* after EAGAIN/ENOBUFS on send, or no free sequence */
#define ICMP_HEADER_LEN 8
#define FLOW_FREE_MAX   256 /* flows kept for reuse; more are freed once empty */

enum slot_state {
    SLOT_FREE = 0,
    SLOT_WAITING,  /* sent, no answer yet */
    SLOT_ANSWERED, /* answered; further matching replies are duplicates */
    SLOT_EXPIRED,  /* timed out; a matching reply now is late */
};

struct slot {
    struct icmp_job *job;          /* NULL once the job completed */
    struct icmp__echo_clock clock; /* send and transmit stamps, deadline (clock.sent.rt is also
                                     in the payload) */
    uint32_t tx_key;               /* SO_TIMESTAMPING OPT_ID key of the send */
    uint32_t echo;                 /* index into job->results */
    uint32_t gen;                  /* bumped at every reuse; matches timeout heap entries */
    uint8_t state;
};

struct timeout_entry {
    int64_t deadline;
    uint32_t gen;
    uint16_t seq;
};

struct family {
    int af;
    int fd;
    enum icmp_socket_mode mode;
    uint16_t id;
    int df; /* current IP_MTU_DISCOVER choice on an IPv4 socket: -1 unknown, 0, 1 */
    uint32_t cursor;
    struct slot *slots; /* SEQ_SPACE entries */
    bool tx_stamps;     /* the kernel stamps our sends (SO_TIMESTAMPING) */
    uint32_t tx_key;    /* OPT_ID key the kernel gives the next send */
    uint16_t *tx_seq;   /* SEQ_SPACE entries: tx key (mod 65536) -> sequence number */
    struct timeout_entry *timeouts;
    size_t n_timeouts, cap_timeouts;
};

enum job_state {
    JOB_QUEUED = 1, /* submitted, not yet taken by the engine thread */
    JOB_SENDING,    /* in the send heap */
    JOB_WAITING,    /* everything sent or abandoned; replies outstanding */
    JOB_DONE,
};

/*
 * An indexed min-heap of pointers: each element knows its own index (index_of), so it can be
 * removed or re-keyed in O(log n). The flows' job heaps, the heap of waiting flows and the
 * deadline heap are all of this kind.
 */
struct iheap {
    void **v;
    size_t n, cap;
    int64_t (*key)(const void *elem);
    uint32_t *(*index_of)(void *elem);
};

/*
 * A flow (icmp_job.flow): jobs sharing one turn of the round-robin. Its jobs wait in a heap by
 * next send time; the flow itself is in the ready ring while its earliest job is due, in the
 * engine's heap of waiting flows otherwise, and on the free list once it has no job.
 */
struct icmp__flow {
    uint64_t key;                             /* 0: one job's own flow, in no table */
    struct iheap jobs;                        /* its jobs in JOB_SENDING, by priv.next_send */
    struct icmp__flow *ring_next, *ring_prev; /* NULL: not in the ready ring */
    struct icmp__flow *hash_next;             /* table chain, or the free list */
    uint32_t timer_index;                     /* in icmp_engine.flow_timers */
};

struct icmp_engine {
    struct family fam[2]; /* [0] IPv4, [1] IPv6 */
    int epfd;
    int evfd;
    bool threaded;
    bool no_thread; /* driven by icmp_send_echo: never threaded */
    bool no_pwait2; /* epoll_pwait2 is missing here: epoll_wait with milliseconds */
    pthread_t thread;
    uint64_t nonce;
    _Atomic int64_t gap_ns; /* icmp_engine_set_send_gap may change it from any thread */
    int64_t next_send_ok;   /* monotonic: pacing */

    /* shared with submitters, under lock */
    pthread_mutex_t lock;
    struct icmp_job *incoming, *incoming_tail;
    struct icmp_job **cancels;
    size_t n_cancels, cap_cancels;
    bool stopping;
    bool waiting;      /* the engine thread sleeps (or is about to) in epoll: wake it */
    _Atomic int error; /* 0, or the -errno of the failed wait that stopped the engine; set
                          once, under lock (submit checks it there), read anywhere */

    /* engine thread only */
    struct icmp__flow *ready;       /* ring of flows with an echo due; the head sends next */
    struct iheap flow_timers;       /* flows with jobs, none due: by their next send time */
    struct iheap deadlines;         /* jobs sending, with a deadline: by deadline_ns */
    struct icmp__flow **flow_table; /* flows of nonzero keys, chained; flow_buckets a power
                                       of two */
    size_t flow_buckets, n_flows;
    struct icmp__flow *flow_free; /* flows without jobs, kept for reuse */
    size_t n_flow_free;           /* at most FLOW_FREE_MAX: a burst's flows are freed */
    struct icmp_job *active;      /* every taken, unfinished job (doubly linked) */
    uint8_t *sendbuf;
    uint8_t *recvbuf;

    struct {
        _Atomic uint64_t jobs, sent, send_errors, duplicates, late, corrupt, foreign, in_flight;
        _Atomic uint64_t replies[ICMP_STATUS_LIMIT];
    } stats;
};

static struct family *family_of(struct icmp_engine *e, int af)
{
    if (af == AF_INET)
        return &e->fam[0];
    if (af == AF_INET6)
        return &e->fam[1];
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Heaps.
 */

static void iheap_set(struct iheap *h, size_t i, void *elem)
{
    h->v[i] = elem;
    *h->index_of(elem) = (uint32_t)i;
}

static void iheap_up(struct iheap *h, size_t i)
{
    void *elem = h->v[i];
    int64_t k = h->key(elem);

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->key(h->v[parent]) <= k)
            break;
        iheap_set(h, i, h->v[parent]);
        i = parent;
    }
    iheap_set(h, i, elem);
}

static void iheap_down(struct iheap *h, size_t i)
{
    void *elem = h->v[i];
    int64_t k = h->key(elem);

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= h->n)
            break;
        if (r < h->n && h->key(h->v[r]) < h->key(h->v[l]))
            m = r;
        if (h->key(h->v[m]) >= k)
            break;
        iheap_set(h, i, h->v[m]);
        i = m;
    }
    iheap_set(h, i, elem);
}

/* The element's key changed: restores the order. */
static void iheap_fix(struct iheap *h, size_t i)
{
    void *elem = h->v[i];

    iheap_up(h, i);
    iheap_down(h, *h->index_of(elem));
}

static bool iheap_contains(struct iheap *h, void *elem)
{
    size_t i = *h->index_of(elem);

    return i < h->n && h->v[i] == elem;
}

static int iheap_push(struct iheap *h, void *elem)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 4; /* most flows hold one job */
        void **v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    iheap_set(h, h->n++, elem);
    iheap_up(h, h->n - 1);
    return 0;
}

/* Removes elem if it is at its index in h (does nothing otherwise). */
static void iheap_remove(struct iheap *h, void *elem)
{
    size_t i = *h->index_of(elem);

    if (!iheap_contains(h, elem))
        return;
    h->n--;
    if (i != h->n) {
        iheap_set(h, i, h->v[h->n]);
        iheap_fix(h, i);
    }
}

static void *iheap_top(const struct iheap *h)
{
    return h->n > 0 ? h->v[0] : NULL;
}

static int64_t job_send_key(const void *job)
{
    return ((const struct icmp_job *)job)->priv.next_send;
}

static uint32_t *job_flow_index(void *job)
{
    return &((struct icmp_job *)job)->priv.heap_index;
}

static int64_t job_deadline_key(const void *job)
{
    return ((const struct icmp_job *)job)->deadline_ns;
}

static uint32_t *job_deadline_index(void *job)
{
    return &((struct icmp_job *)job)->priv.deadline_index;
}

/* The next send time of a flow: that of its earliest job (a flow in a heap is never empty). */
static int64_t flow_key(const void *flow)
{
    return job_send_key(iheap_top(&((const struct icmp__flow *)flow)->jobs));
}

static uint32_t *flow_timer_index(void *flow)
{
    return &((struct icmp__flow *)flow)->timer_index;
}

/* ---------------------------------------------------------------------------------------
 * Flows: the send budget shared round-robin (see the model comment).
 */

static size_t flow_bucket(const struct icmp_engine *e, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (e->flow_buckets - 1);
}

/* The flow of key (0: a new flow of its own), created when needed. NULL: out of memory. */
static struct icmp__flow *flow_get(struct icmp_engine *e, uint64_t key)
{
    struct icmp__flow *fl;

    if (key != 0) {
        for (fl = e->flow_table[flow_bucket(e, key)]; fl != NULL; fl = fl->hash_next)
            if (fl->key == key)
                return fl;
        if (e->n_flows >= e->flow_buckets) {
            /* Grow the table: rehash every chain into twice the buckets. */
            size_t nb = 2 * e->flow_buckets;
            struct icmp__flow **t = calloc(nb, sizeof(*t));
            if (t == NULL)
                return NULL;
            for (size_t b = 0; b < e->flow_buckets; b++) {
                while ((fl = e->flow_table[b]) != NULL) {
                    e->flow_table[b] = fl->hash_next;
                    size_t nbk = (size_t)((fl->key * 0x9e3779b97f4a7c15ull) >> 32) & (nb - 1);
                    fl->hash_next = t[nbk];
                    t[nbk] = fl;
                }
            }
            free(e->flow_table);
            e->flow_table = t;
            e->flow_buckets = nb;
        }
    }
    fl = e->flow_free;
    if (fl != NULL) {
        e->flow_free = fl->hash_next;
        e->n_flow_free--;
    } else {
        fl = calloc(1, sizeof(*fl));
        if (fl == NULL)
            return NULL;
        fl->jobs.key = job_send_key;
        fl->jobs.index_of = job_flow_index;
    }
    fl->key = key;
    fl->ring_next = fl->ring_prev = NULL;
    fl->timer_index = UINT32_MAX;
    fl->hash_next = NULL;
    if (key != 0) {
        size_t b = flow_bucket(e, key);
        fl->hash_next = e->flow_table[b];
        e->flow_table[b] = fl;
        e->n_flows++;
    }
    return fl;
}

static bool flow_in_ring(const struct icmp__flow *fl)
{
    return fl->ring_next != NULL;
}

/* Appends fl at the ring's tail: it sends after every flow already due. */
static void ring_append(struct icmp_engine *e, struct icmp__flow *fl)
{
    if (e->ready == NULL) {
        fl->ring_next = fl->ring_prev = fl;
        e->ready = fl;
        return;
    }
    fl->ring_next = e->ready;
    fl->ring_prev = e->ready->ring_prev;
    fl->ring_prev->ring_next = fl;
    e->ready->ring_prev = fl;
}

static void ring_remove(struct icmp_engine *e, struct icmp__flow *fl)
{
    if (!flow_in_ring(fl))
        return;
    if (fl->ring_next == fl) {
        e->ready = NULL;
    } else {
        fl->ring_prev->ring_next = fl->ring_next;
        fl->ring_next->ring_prev = fl->ring_prev;
        if (e->ready == fl)
            e->ready = fl->ring_next;
    }
    fl->ring_next = fl->ring_prev = NULL;
}

/*
 * Puts a flow where it belongs after its jobs changed: nowhere (and freed for reuse) when it
 * has no job left, in the ready ring when its earliest job is due, else in the heap of
 * waiting flows. A flow already in the ring stays where it is (send_due moves it on when its
 * turn finds nothing due).
 */
static void flow_place(struct icmp_engine *e, struct icmp__flow *fl, int64_t now)
{
    if (fl->jobs.n == 0) {
        ring_remove(e, fl);
        iheap_remove(&e->flow_timers, fl);
        if (fl->key != 0) {
            struct icmp__flow **pp = &e->flow_table[flow_bucket(e, fl->key)];
            while (*pp != fl)
                pp = &(*pp)->hash_next;
            *pp = fl->hash_next;
            e->n_flows--;
        }
        if (e->n_flow_free >= FLOW_FREE_MAX) {
            free(fl->jobs.v);
            free(fl);
            return;
        }
        fl->hash_next = e->flow_free;
        e->flow_free = fl;
        e->n_flow_free++;
        return;
    }
    if (flow_in_ring(fl))
        return;
    if (flow_key(fl) <= now) {
        iheap_remove(&e->flow_timers, fl);
        ring_append(e, fl);
    } else if (iheap_contains(&e->flow_timers, fl)) {
        iheap_fix(&e->flow_timers, fl->timer_index);
    } else if (iheap_push(&e->flow_timers, fl) < 0) {
        /* No memory to wait in the heap: wait in the ring, where send_due retries it. */
        ring_append(e, fl);
    }
}

static void timeout_swap(struct family *f, size_t a, size_t b)
{
    struct timeout_entry t = f->timeouts[a];

    f->timeouts[a] = f->timeouts[b];
    f->timeouts[b] = t;
}

static int timeout_push(struct family *f, int64_t deadline, uint16_t seq, uint32_t gen)
{
    size_t i;

    if (f->n_timeouts == f->cap_timeouts) {
        size_t cap = f->cap_timeouts ? 2 * f->cap_timeouts : 1024;
        struct timeout_entry *t = realloc(f->timeouts, cap * sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        f->timeouts = t;
        f->cap_timeouts = cap;
    }
    i = f->n_timeouts++;
    f->timeouts[i] = (struct timeout_entry){.deadline = deadline, .gen = gen, .seq = seq};
    while (i > 0 && f->timeouts[(i - 1) / 2].deadline > f->timeouts[i].deadline) {
        timeout_swap(f, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static void timeout_pop(struct family *f)
{
    size_t i = 0;

    f->timeouts[0] = f->timeouts[--f->n_timeouts];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < f->n_timeouts && f->timeouts[l].deadline < f->timeouts[m].deadline)
            m = l;
        if (r < f->n_timeouts && f->timeouts[r].deadline < f->timeouts[m].deadline)
            m = r;
        if (m == i)
            return;
        timeout_swap(f, i, m);
        i = m;
    }
}

/* ---------------------------------------------------------------------------------------
 * Job completion.
 */

static void active_unlink(struct icmp_engine *e, struct icmp_job *job)
{
    struct icmp_job *prev = job->priv.prev, *next = job->priv.next;

    if (prev != NULL)
        prev->priv.next = next;
    else if (e->active == job)
        e->active = next;
    if (next != NULL)
        next->priv.prev = prev;
    job->priv.prev = job->priv.next = NULL;
}

/* Runs the callback: the job must have nothing in flight and be out of the send heap. */
static void complete(struct icmp_engine *e, struct icmp_job *job)
{
    for (uint32_t i = 0; i < job->count; i++) {
        const struct icmp_echo_result *r = &job->results[i];
        struct family *f = family_of(e, job->dst.family);
        if (r->sent && f != NULL && f->slots != NULL && f->slots[r->seq].job == job)
            f->slots[r->seq].job = NULL; /* later replies are counted engine-wide only */
        if (r->sent || r->send_errno != 0)
            atomic_fetch_add(&e->stats.replies[r->status], 1);
    }
    active_unlink(e, job);
    job->priv.state = JOB_DONE;
    job->on_done(job, job->arg);
}

static void maybe_complete(struct icmp_engine *e, struct icmp_job *job)
{
    if (job->priv.state == JOB_WAITING && job->priv.outstanding == 0)
        complete(e, job);
}

/* Stops sending for a job: the echoes not sent yet stay unsent (sent = false). */
static void stop_sending(struct icmp_engine *e, struct icmp_job *job)
{
    if (job->priv.state == JOB_SENDING) {
        struct icmp__flow *fl = job->priv.flow;
        iheap_remove(&fl->jobs, job);
        iheap_remove(&e->deadlines, job);
        flow_place(e, fl, icmp_now_ns());
        job->priv.flow = NULL;
    }
    job->priv.state = JOB_WAITING;
}

/* Settles an in-flight echo as timed out (its result already says TIMED_OUT). */
static void expire_slot(struct icmp_engine *e, struct slot *s)
{
    s->state = SLOT_EXPIRED;
    atomic_fetch_sub(&e->stats.in_flight, 1);
    if (s->job != NULL) {
        s->job->priv.outstanding--;
        maybe_complete(e, s->job);
    }
}

/* ---------------------------------------------------------------------------------------
 * Sockets.
 */

/* BPF for raw IPv4 sockets: echo replies with our identifier, and ICMP errors. */
static int attach_filter_v4(int fd, uint16_t id)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),        /* X = IP header length */
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),         /* A = ICMP type */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),  /* echo reply? */
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4),         /* A = identifier */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 5, 4), /* ours: accept, else drop */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 4, 0),  /* destination unreachable */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 11, 3, 0), /* time exceeded */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 12, 2, 0), /* parameter problem */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 1, 0),  /* source quench */
        BPF_STMT(BPF_RET | BPF_K, 0),                  /* drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffff),             /* accept */
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};

    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
        return -errno;
    return 0;
}

/* BPF for raw IPv6 sockets (data starts at the ICMPv6 header): likewise. */
static int attach_filter_v6(int fd, uint16_t id)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),          /* A = ICMPv6 type */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 129, 0, 2), /* echo reply? */
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),          /* A = identifier */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 3, 2),  /* ours: accept, else drop */
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 4, 1, 0),   /* above 4: not an error */
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 1, 1, 0),   /* errors are types 1..4 */
        BPF_STMT(BPF_RET | BPF_K, 0),                   /* drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffff),              /* accept */
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    struct icmp6_filter filter;

    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_PARAM_PROB, &filter);
    if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
        return -errno;
    return 0;
}

/*
 * Software transmit stamps on the error queue, each tagged with a per-socket key that
 * counts sends from 0 (OPT_ID) and carrying no copy of the packet (OPT_TSONLY). Setting
 * the option anew after switching it off restarts the count (see resync_tx_keys).
 */
static int enable_tx_stamps(int fd)
{
    int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
                SOF_TIMESTAMPING_OPT_TSONLY;

    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) < 0)
        return -errno;
    return 0;
}

/*
 * A failed sendmsg may or may not have used up a key, so after one our count and the
 * kernel's could differ: restart both at 0. Stamps still queued from before carry old keys;
 * the sanity check in take_tx_stamp keeps a mismatched one from being used.
 */
static void resync_tx_keys(struct family *f)
{
    int off = 0;

    if (!f->tx_stamps)
        return;
    setsockopt(f->fd, SOL_SOCKET, SO_TIMESTAMPING, &off, sizeof(off));
    f->tx_stamps = enable_tx_stamps(f->fd) == 0;
    f->tx_key = 0;
}

static uint16_t random_u16(void)
{
    uint16_t v = 0;

    while (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v) || v == 0)
        ;
    return v;
}

/*
 * Opens the socket of one family in the wanted mode (NONE: ping socket, else raw).
 * Ping sockets fail with EACCES when our group is outside net.ipv4.ping_group_range
 * (which also governs IPv6; root is not in the default "1 0"), and with
 * EPROTONOSUPPORT/EAFNOSUPPORT on kernels without them; raw sockets fail with EPERM
 * without CAP_NET_RAW.
 */
static int open_family(struct family *f, enum icmp_socket_mode want)
{
    int proto = f->af == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    int on = 1, size = SOCKET_BUF_SIZE, fd = -1, rc;

    if (want != ICMP_MODE_RAW) {
        fd = socket(f->af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (fd >= 0) {
            f->mode = ICMP_MODE_DGRAM;
        } else if (want == ICMP_MODE_DGRAM) {
            return -errno;
        }
    }
    if (fd < 0) {
        fd = socket(f->af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (fd < 0)
            return -errno;
        f->mode = ICMP_MODE_RAW;
    }
    f->fd = fd;

    if (f->mode == ICMP_MODE_DGRAM) {
        /* The kernel puts the socket's "port" in the identifier field: bind a random one. */
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        for (int attempt = 0;; attempt++) {
            memset(&ss, 0, sizeof(ss));
            ss.ss_family = (sa_family_t)f->af;
            uint16_t port = attempt < 8 ? random_u16() : 0;
            if (f->af == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons(port);
            else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
            if (bind(fd, (struct sockaddr *)&ss,
                     f->af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) ==
                0)
                break;
            if (errno != EADDRINUSE || attempt >= 8)
                return -errno;
        }
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            return -errno;
        f->id = ntohs(f->af == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
        /* ICMP errors arrive on the error queue. */
        if (f->af == AF_INET)
            rc = setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on));
        else
            rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on));
        if (rc < 0)
            return -errno;
        /* An ICMPv6 error on the error queue comes without the IPv6 header it quotes; the
         * address it was sent to (ours, the quoted source) is what the quoted checksum's
         * pseudo-header needs to check a short quote (see short_quote_matches). */
        if (f->af == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) < 0)
            return -errno;
    } else {
        f->id = random_u16();
        rc = f->af == AF_INET ? attach_filter_v4(fd, f->id) : attach_filter_v6(fd, f->id);
        if (rc < 0)
            return rc;
    }

    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
        return -errno;
    f->tx_stamps = enable_tx_stamps(fd) == 0;
    if (f->af == AF_INET)
        rc = setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on));
    else
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on));
    if (rc < 0)
        return -errno;
    /* Room for a burst of replies: FORCE works with CAP_NET_ADMIN, else the sysctl cap. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    f->df = -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Sending.
 */

static void to_sockaddr(const struct icmp_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a->bytes, 4);
        *len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a->bytes, 16);
        sin6->sin6_scope_id = a->scope_id;
        *len = sizeof(*sin6);
    }
}

static void from_sockaddr(const struct sockaddr_storage *ss, struct icmp_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (ss->ss_family == AF_INET) {
        a->family = AF_INET;
        memcpy(a->bytes, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        a->family = AF_INET6;
        memcpy(a->bytes, &sin6->sin6_addr, 16);
        a->scope_id = sin6->sin6_scope_id;
    }
}

/* Picks a free sequence number (round-robin), or returns -1 when all are in flight. */
static int alloc_seq(struct family *f)
{
    for (uint32_t n = 0; n < SEQ_SPACE; n++) {
        uint16_t seq = (uint16_t)(f->cursor++ & 0xffff);
        if (f->slots[seq].state != SLOT_WAITING)
            return seq;
    }
    return -1;
}

/* A local send error as a status: what Windows reports for the same conditions. */
static enum icmp_status status_from_errno(int err)
{
    switch (err) {
    case ENETUNREACH:
    case ENETDOWN:
        return ICMP_STATUS_DEST_NET_UNREACHABLE;
    case EHOSTUNREACH:
    case EHOSTDOWN:
        return ICMP_STATUS_DEST_HOST_UNREACHABLE;
    case EMSGSIZE:
        return ICMP_STATUS_PACKET_TOO_BIG;
    case EACCES:
    case EPERM:
        return ICMP_STATUS_DEST_PROT_UNREACHABLE;
    case EADDRNOTAVAIL:
    case EINVAL:
        return ICMP_STATUS_BAD_REQ;
    default:
        return ICMP_STATUS_GENERAL_FAILURE;
    }
}

/* Sets don't-fragment on an IPv4 socket (IPv6 takes it per packet). */
static void set_df_v4(struct family *f, bool df)
{
    int want = df ? 1 : 0;
    int val = df ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT;

    if (f->df == want)
        return;
    if (setsockopt(f->fd, IPPROTO_IP, IP_MTU_DISCOVER, &val, sizeof(val)) == 0)
        f->df = want;
}

static void drain_errqueue(struct icmp_engine *e, struct family *f);

/* Appends one control message at offset `at` of buf; returns the new length. */
static size_t add_cmsg(char *buf, size_t at, int level, int type, const void *data, size_t len)
{
    struct cmsghdr *cm = (struct cmsghdr *)(void *)(buf + at);

    cm->cmsg_level = level;
    cm->cmsg_type = type;
    cm->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(cm), data, len);
    return at + CMSG_SPACE(len);
}

/*
 * Sends echo job->priv.next_echo. Returns 0 when it went out or failed for good (the
 * result says so), -EAGAIN when it should be tried again a little later.
 */
/* Sends of one echo before a send error is taken for real (see send_echo). */
#define SEND_ATTEMPTS 8

static int send_echo(struct icmp_engine *e, struct icmp_job *job, int64_t now)
{
    struct family *f = family_of(e, job->dst.family);
    uint32_t echo = job->priv.next_echo;
    struct icmp_echo_result *r = &job->results[echo];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 3 * CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct sockaddr_storage to;
    struct iovec iov;
    struct msghdr msg = {0};
    size_t clen = 0, len = ICMP_HEADER_LEN + job->payload_size;
    uint8_t *p = e->sendbuf;
    int seq, ttl = job->ttl, tos = job->tos;
    struct slot *s;
    struct icmp__clocks sent;

    seq = alloc_seq(f);
    if (seq < 0)
        return -EAGAIN;
    s = &f->slots[seq];

    /* Per-packet options as ancillary data: one shared socket serves every job. */
    memset(&control, 0, sizeof(control));
    if (f->af == AF_INET) {
        set_df_v4(f, job->dont_fragment);
        if (ttl != 0)
            clen = add_cmsg(control.buf, clen, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
        if (tos != 0)
            clen = add_cmsg(control.buf, clen, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
        if (job->src.family == AF_INET) {
            struct in_pktinfo pi = {0};
            memcpy(&pi.ipi_spec_dst, job->src.bytes, 4);
            clen = add_cmsg(control.buf, clen, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
        }
    } else {
        int df = job->dont_fragment ? 1 : 0;
        clen = add_cmsg(control.buf, clen, IPPROTO_IPV6, IPV6_DONTFRAG, &df, sizeof(df));
        if (ttl != 0)
            clen = add_cmsg(control.buf, clen, IPPROTO_IPV6, IPV6_HOPLIMIT, &ttl, sizeof(ttl));
        if (tos != 0)
            clen = add_cmsg(control.buf, clen, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
        if (job->src.family == AF_INET6) {
            struct in6_pktinfo pi = {0};
            memcpy(&pi.ipi6_addr, job->src.bytes, 16);
            pi.ipi6_ifindex = job->src.scope_id;
            clen = add_cmsg(control.buf, clen, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
        }
    }
    msg.msg_control = control.buf;
    msg.msg_controllen = clen;
    if (clen == 0)
        msg.msg_control = NULL;

    to_sockaddr(&job->dst, &to, &msg.msg_namelen);
    msg.msg_name = &to;
    iov.iov_base = p;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;

    /* ICMP header: type, code, checksum, identifier, sequence. */
    p[0] = f->af == AF_INET ? 8 : 128;
    p[1] = 0;
    p[2] = p[3] = 0;
    p[4] = (uint8_t)(f->id >> 8);
    p[5] = (uint8_t)f->id;
    p[6] = (uint8_t)(seq >> 8);
    p[7] = (uint8_t)seq;
    icmp__clocks_now(&sent);
    icmp__payload_fill(p + ICMP_HEADER_LEN, job->payload_size, e->nonce, sent.rt, (uint16_t)seq,
                       job->data);
    if (f->af == AF_INET && f->mode == ICMP_MODE_RAW) {
        /* The kernel checksums ICMPv6 and ping sockets; raw IPv4 is ours to do. */
        icmp__checksum_put(p, len);
    }

    if (sendmsg(f->fd, &msg, 0) < 0) {
        int err = errno;
        if (err == EAGAIN || err == ENOBUFS || err == EINTR)
            return -EAGAIN;
        /*
         * An ICMP error for an earlier echo leaves its errno pending on the socket
         * (sk_err), and the next send returns that instead of sending. The failed call
         * consumed it: another attempt tells a pending error from a real local one. While
         * errors pour in (someone else's flood of unreachables), a new one may be pending
         * again by the retry: a real local error fails every attempt, a stale one not
         * SEND_ATTEMPTS in a row. Each failed call may have used a transmit-stamp key:
         * restart the keys first, after taking the stamps already queued under the old
         * ones.
         */
        for (int attempt = 1; attempt < SEND_ATTEMPTS; attempt++) {
            drain_errqueue(e, f);
            resync_tx_keys(f);
            if (sendmsg(f->fd, &msg, 0) >= 0)
                goto sent;
            err = errno;
            if (err == EAGAIN || err == ENOBUFS || err == EINTR)
                return -EAGAIN;
        }
        r->status = status_from_errno(err);
        r->send_errno = err;
        atomic_fetch_add(&e->stats.send_errors, 1);
        drain_errqueue(e, f);
        resync_tx_keys(f);
        return 0;
    }
sent:
    s->job = job;
    s->echo = echo;
    s->clock.sent = sent;
    s->clock.tx_rt = -1;
    s->tx_key = f->tx_key;
    f->tx_seq[f->tx_key & 0xffff] = (uint16_t)seq;
    f->tx_key++;
    s->gen++;
    s->state = SLOT_WAITING;
    r->sent = true;
    r->sent_ns = sent.rt;
    r->seq = (uint16_t)seq;
    job->sent++;
    job->priv.outstanding++;
    atomic_fetch_add(&e->stats.sent, 1);
    atomic_fetch_add(&e->stats.in_flight, 1);
    {
        int64_t deadline = now + job->timeout_ns;
        if (job->deadline_ns != 0 && job->deadline_ns < deadline)
            deadline = job->deadline_ns;
        s->clock.deadline = deadline;
        if (timeout_push(f, deadline, (uint16_t)seq, s->gen) < 0) {
            /* Out of memory for the timeout: settle it now rather than wait forever. */
            expire_slot(e, s);
        }
    }
    return 0;
}

/* The earliest of t and the next job deadline. */
static int64_t before_deadline(const struct icmp_engine *e, int64_t t)
{
    const struct icmp_job *job = iheap_top(&e->deadlines);

    return job != NULL && job->deadline_ns < t ? job->deadline_ns : t;
}

/*
 * Sends whatever is due, within the pacing gap, one echo per ready flow in turn. Ends the
 * sending of jobs whose deadline passed. Returns the next time to come back.
 */
static int64_t send_due(struct icmp_engine *e)
{
    for (;;) {
        int64_t now = icmp_now_ns();
        struct icmp__flow *fl;
        struct icmp_job *job;

        /* The rest of a job whose deadline came would start after it. */
        while ((job = iheap_top(&e->deadlines)) != NULL && job->deadline_ns <= now) {
            stop_sending(e, job);
            maybe_complete(e, job);
        }
        /* Flows whose earliest job came due join the ring, behind those already waiting. */
        while ((fl = iheap_top(&e->flow_timers)) != NULL && flow_key(fl) <= now) {
            iheap_remove(&e->flow_timers, fl);
            ring_append(e, fl);
        }
        fl = e->ready;
        if (fl == NULL) {
            fl = iheap_top(&e->flow_timers);
            return before_deadline(e, fl != NULL ? flow_key(fl) : INT64_MAX);
        }
        if (e->next_send_ok > now)
            return before_deadline(e, e->next_send_ok);
        job = iheap_top(&fl->jobs);
        if (job->priv.next_send > now) {
            /* Its due job went (deadline, cancel): wait with the flows not due. */
            ring_remove(e, fl);
            flow_place(e, fl, now);
            continue;
        }
        if (send_echo(e, job, now) == -EAGAIN) {
            e->next_send_ok = now + RETRY_NS;
            return before_deadline(e, e->next_send_ok);
        }
        e->next_send_ok = now + atomic_load_explicit(&e->gap_ns, memory_order_relaxed);
        /* This flow had its turn: it goes behind the others (flow_place below, or
         * stop_sending's). */
        ring_remove(e, fl);
        if (++job->priv.next_echo >= job->count) {
            stop_sending(e, job);
            maybe_complete(e, job);
        } else {
            job->priv.next_send += job->interval_ns;
            iheap_fix(&fl->jobs, job->priv.heap_index);
            flow_place(e, fl, now);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Receiving.
 */

/* What came with one received message besides its bytes. */
struct rx_meta {
    struct sockaddr_storage from;     /* msg_name: the sender (error queue: the destination) */
    struct sockaddr_storage offender; /* error queue: who reported the error */
    struct sock_extended_err ee;      /* error queue: what it is (ee_origin 0: none) */
    int64_t rx_rt;                    /* the kernel's receive stamp (CLOCK_REALTIME) */
    int64_t tx_rt;                    /* error queue: a transmit stamp, or -1 */
    int ttl;                          /* TTL / hop limit of the packet, -1 when none came */
    struct icmp_addr local;           /* IPV6_PKTINFO: the address it was sent to (family 0:
                                         none) */
};

/*
 * Whether an address a packet names (a reply's source, an error's quoted destination) is the
 * job's target. A zone (scope id) tells apart only addresses that need one: the kernel gives a
 * link-local source the zone of the interface it came in on and a global source none, the IPv6
 * header quoted by an error carries none, and a target may carry one it does not need
 * (2001:db8::1%eth0, which getaddrinfo and icmp_addr_parse accept). So zones must agree only
 * where both sides have one: a reply from fe80::1 on another interface than the target's zone
 * is not the target's.
 */
static bool same_host(const struct icmp_addr *got, const struct icmp_addr *target)
{
    size_t n = target->family == AF_INET ? 4 : 16;

    return got->family == target->family && memcmp(got->bytes, target->bytes, n) == 0 &&
           (got->scope_id == 0 || target->scope_id == 0 || got->scope_id == target->scope_id);
}

/*
 * An ICMP error that quotes less of our echo than our payload's 16-byte header: RFC 792 asks
 * routers for the IP header and 8 bytes of the datagram (our ICMP header) only, and an IPv6
 * router may send as little. There is no nonce to prove it ours, so it may settle only an
 * echo still waiting for its answer, to the destination it quotes, and only if the checksum it
 * quotes is the one our echo carried: that checksum covers the nonce and the send stamp, so a
 * sender who did not see this echo guesses it at odds of 1 in 65,536 (and one who saw it could
 * as well have quoted it whole). The payload bytes it does quote must be ours too. An IPv6
 * checksum covers our source address, which a raw error quotes and a ping socket gives as the
 * error's IPV6_PKTINFO; without it the error cannot be checked and does not count.
 */
static bool short_quote_matches(const struct icmp_engine *e, const struct family *f,
                                const struct slot *s, const struct icmp__packet *pkt)
{
    const struct icmp_job *job = s->job;
    uint8_t head[ICMP_PAYLOAD_MIN];

    if (s->state != SLOT_WAITING || job == NULL || !same_host(&pkt->quoted_dst, &job->dst))
        return false;
    icmp__payload_fill(head, sizeof(head), e->nonce, s->clock.sent.rt, pkt->seq, NULL);
    if (pkt->payload_len > 0 && memcmp(pkt->payload, head, pkt->payload_len) != 0)
        return false;
    if (f->af == AF_INET6 && pkt->quoted_src.family != AF_INET6)
        return false;
    return pkt->quoted_cksum == icmp__echo_checksum(f->af, &pkt->quoted_src, &job->dst, f->id,
                                                    pkt->seq, e->nonce, s->clock.sent.rt, job->data,
                                                    job->payload_size);
}

/* Handles one parsed message: matches it to an echo of ours and settles or counts it. */
static void handle_packet(struct icmp_engine *e, struct family *f, const struct icmp__packet *pkt,
                          const struct rx_meta *m)
{
    struct slot *s = &f->slots[pkt->seq];
    struct icmp_job *job = s->job;
    struct icmp_echo_result *r;
    struct icmp__clocks read;
    int64_t rtt;
    bool late;

    if (pkt->id != f->id || s->state == SLOT_FREE) {
        atomic_fetch_add(&e->stats.foreign, 1);
        return;
    }
    if (pkt->is_error && pkt->payload_len < ICMP_PAYLOAD_MIN) {
        if (!short_quote_matches(e, f, s, pkt)) {
            atomic_fetch_add(&e->stats.foreign, 1);
            return;
        }
    } else {
        /* Our nonce and this slot's send stamp must be in the payload, or it is not ours. */
        if (!icmp__payload_check(
                pkt->payload,
                pkt->payload_len < ICMP_PAYLOAD_MIN ? pkt->payload_len : ICMP_PAYLOAD_MIN,
                ICMP_PAYLOAD_MIN, e->nonce, s->clock.sent.rt, pkt->seq, NULL, true)) {
            atomic_fetch_add(&e->stats.foreign, 1);
            return;
        }
        if (job == NULL) {
            /* The job completed: only the engine's counters learn of it. */
            if (s->state == SLOT_EXPIRED) {
                atomic_fetch_add(&e->stats.late, 1);
                s->state = SLOT_ANSWERED;
            } else {
                atomic_fetch_add(&e->stats.duplicates, 1);
            }
            return;
        }
        if (!same_host(pkt->is_error ? &pkt->quoted_dst : &pkt->from, &job->dst) ||
            !icmp__payload_check(pkt->payload, pkt->payload_len, job->payload_size, e->nonce,
                                 s->clock.sent.rt, pkt->seq, job->data, pkt->is_error)) {
            job->corrupt++;
            atomic_fetch_add(&e->stats.corrupt, 1);
            return;
        }
    }
    r = &job->results[s->echo];
    /* Right after the read of the message: a wall-clock step between its kernel stamp and
     * this reading is all that can skew its time (see the model comment). */
    icmp__clocks_now(&read);
    rtt = icmp__echo_time(&s->clock, m->rx_rt, &read, &late);
    if (s->state == SLOT_WAITING && late) {
        /* Stamped after its deadline, read before its expiry ran: late, not a success. */
        job->late++;
        atomic_fetch_add(&e->stats.late, 1);
        s->state = SLOT_ANSWERED;
        atomic_fetch_sub(&e->stats.in_flight, 1);
        job->priv.outstanding--;
        maybe_complete(e, job);
        return;
    }
    switch (s->state) {
    case SLOT_WAITING:
        r->status = pkt->status;
        r->from = pkt->from;
        r->rtt_ns = rtt;
        r->tx_stamped = s->clock.tx_rt >= 0;
        r->ttl = (int16_t)(m->ttl >= 0 ? m->ttl : pkt->has_ttl ? pkt->ttl : -1);
        if (pkt->is_error)
            job->errors++;
        else
            job->received++;
        s->state = SLOT_ANSWERED;
        atomic_fetch_sub(&e->stats.in_flight, 1);
        job->priv.outstanding--;
        maybe_complete(e, job);
        break;
    case SLOT_ANSWERED:
        r->duplicates++;
        job->duplicates++;
        atomic_fetch_add(&e->stats.duplicates, 1);
        break;
    case SLOT_EXPIRED:
        job->late++;
        atomic_fetch_add(&e->stats.late, 1);
        s->state = SLOT_ANSWERED;
        break;
    default:
        break;
    }
}

/* Reads one message (normal or error queue). Returns bytes, or -errno (-EAGAIN: empty). */
static ssize_t receive(struct icmp_engine *e, struct family *f, int flags, struct rx_meta *m)
{
    union {
        char buf[1024];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = e->recvbuf, .iov_len = RECV_BUF_SIZE};
    struct msghdr msg = {
        .msg_name = &m->from,
        .msg_namelen = sizeof(m->from),
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n = recvmsg(f->fd, &msg, flags | MSG_DONTWAIT);

    if (n < 0)
        return -errno;
    m->rx_rt = -1;
    m->tx_rt = -1;
    m->ttl = -1;
    m->ee.ee_origin = 0;
    m->local.family = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            m->rx_rt = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPING &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts; /* ts[0] of struct scm_timestamping: the software stamp */
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            if (ts.tv_sec != 0 || ts.tv_nsec != 0)
                m->tx_rt = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        } else if (((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TTL) ||
                    (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT)) &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(&m->ttl, CMSG_DATA(cm), sizeof(int));
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            memset(&m->local, 0, sizeof(m->local));
            m->local.family = AF_INET6;
            memcpy(m->local.bytes, &pi.ipi6_addr, 16);
        } else if (((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
                    (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)) &&
                   cm->cmsg_len >= CMSG_LEN(sizeof(m->ee))) {
            const struct sock_extended_err *src = (const void *)CMSG_DATA(cm);
            size_t room = cm->cmsg_len - CMSG_LEN(0) - sizeof(m->ee);
            memcpy(&m->ee, src, sizeof(m->ee));
            memset(&m->offender, 0, sizeof(m->offender));
            /* The offender's sockaddr follows the structure (SO_EE_OFFENDER). */
            if (room > 0)
                memcpy(&m->offender, src + 1,
                       room < sizeof(m->offender) ? room : sizeof(m->offender));
        }
    }
    if (m->rx_rt < 0) {
        struct icmp__clocks now;
        icmp__clocks_now(&now);
        m->rx_rt = now.rt;
    }
    return n;
}

/* A transmit stamp for the send with OPT_ID key `key`: keep it if it plausibly is that one's. */
static void take_tx_stamp(struct family *f, uint32_t key, int64_t stamp)
{
    struct slot *s = &f->slots[f->tx_seq[key & 0xffff]];

    if (s->state != SLOT_FREE && s->tx_key == key && s->clock.tx_rt < 0 &&
        stamp >= s->clock.sent.rt && stamp - s->clock.sent.rt < 1000000000)
        s->clock.tx_rt = stamp;
}

/*
 * The error queue: transmit stamps (both modes) and, on ping sockets, ICMP errors. Read
 * before the normal queue, so a reply finds its request's transmit stamp already taken.
 */
static void drain_errqueue(struct icmp_engine *e, struct family *f)
{
    struct rx_meta m;
    struct icmp__packet pkt;
    struct icmp_addr dst, off;
    bool icmp_error = false;

    for (;;) {
        ssize_t n = receive(e, f, MSG_ERRQUEUE, &m);
        if (n < 0)
            break;
        if (m.ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
            take_tx_stamp(f, m.ee.ee_data, m.tx_rt >= 0 ? m.tx_rt : m.rx_rt);
            continue;
        }
        if (m.ee.ee_origin != SO_EE_ORIGIN_ICMP && m.ee.ee_origin != SO_EE_ORIGIN_ICMP6)
            continue; /* a local error (e.g. EMSGSIZE): the send already reported it */
        icmp_error = true;
        from_sockaddr(&m.from, &dst);
        from_sockaddr(&m.offender, &off);
        if (icmp__parse_errqueue(f->af, m.ee.ee_type, m.ee.ee_code, &dst, &off, e->recvbuf,
                                 (size_t)n, &pkt) == 0) {
            /* The kernel rewrote our identifier on the way out; the quote shows its own. */
            pkt.id = f->id;
            /* The IPv6 header the error quotes is not given; the error went to our address. */
            pkt.quoted_src = m.local;
            handle_packet(e, f, &pkt, &m);
        } else {
            atomic_fetch_add(&e->stats.foreign, 1);
        }
    }
    if (icmp_error) {
        /* Clear the errno the errors left pending on the socket (see send_echo). */
        int pending;
        socklen_t plen = sizeof(pending);
        getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &pending, &plen);
    }
}

static void drain(struct icmp_engine *e, struct family *f)
{
    struct rx_meta m;
    struct icmp__packet pkt;
    struct icmp_addr src;

    if (f->mode == ICMP_MODE_DGRAM || f->tx_stamps)
        drain_errqueue(e, f);
    for (;;) {
        ssize_t n = receive(e, f, 0, &m);
        int rc;
        if (n < 0)
            break;
        from_sockaddr(&m.from, &src);
        if (f->mode == ICMP_MODE_DGRAM)
            rc = icmp__parse_dgram(f->af, e->recvbuf, (size_t)n, &src, &pkt);
        else if (f->af == AF_INET)
            rc = icmp__parse_v4_raw(e->recvbuf, (size_t)n, &pkt);
        else
            rc = icmp__parse_v6_raw(e->recvbuf, (size_t)n, &src, &pkt);
        if (rc == 0)
            handle_packet(e, f, &pkt, &m);
        else
            atomic_fetch_add(&e->stats.foreign, 1);
    }
}

/* Settles echoes whose time is up. Returns the next deadline. */
static int64_t expire_due(struct icmp_engine *e, struct family *f)
{
    int64_t now = icmp_now_ns();

    /* Replies already queued may be on time: read them before declaring anything lost. */
    if (f->n_timeouts > 0 && f->timeouts[0].deadline <= now)
        drain(e, f);

    while (f->n_timeouts > 0) {
        struct timeout_entry t = f->timeouts[0];
        struct slot *s;
        if (t.deadline > now)
            return t.deadline;
        timeout_pop(f);
        s = &f->slots[t.seq];
        if (s->gen != t.gen)
            continue; /* the slot has been reused since */
        if (s->state == SLOT_WAITING)
            expire_slot(e, s);
    }
    return INT64_MAX;
}

/* ---------------------------------------------------------------------------------------
 * Submissions and cancellation (engine thread side).
 */

static void take_job(struct icmp_engine *e, struct icmp_job *job)
{
    struct family *f = family_of(e, job->dst.family);

    atomic_fetch_add(&e->stats.jobs, 1);
    job->priv.prev = NULL;
    job->priv.next = e->active;
    if (e->active != NULL)
        e->active->priv.prev = job;
    e->active = job;
    if (f == NULL || f->fd < 0) {
        job->error = -EAFNOSUPPORT;
        job->priv.state = JOB_WAITING;
        complete(e, job);
        return;
    }
    job->priv.next_send = icmp_now_ns();
    job->priv.heap_index = job->priv.deadline_index = UINT32_MAX;
    job->priv.flow = flow_get(e, job->flow);
    if (job->priv.flow == NULL || iheap_push(&job->priv.flow->jobs, job) < 0 ||
        (job->deadline_ns != 0 && iheap_push(&e->deadlines, job) < 0)) {
        if (job->priv.flow != NULL) {
            iheap_remove(&job->priv.flow->jobs, job);
            flow_place(e, job->priv.flow, job->priv.next_send); /* frees it when empty */
        }
        job->priv.flow = NULL;
        job->error = -ENOMEM;
        job->priv.state = JOB_WAITING;
        complete(e, job);
        return;
    }
    job->priv.state = JOB_SENDING;
    flow_place(e, job->priv.flow, job->priv.next_send);
}

/*
 * Stops a job the engine thread holds (sending or waiting): unsent echoes are abandoned,
 * in-flight ones settle as timed out. The job is completed once, at the end (its callback
 * may free it); the caller has set why (cancelled, or error).
 */
static void abandon_job(struct icmp_engine *e, struct icmp_job *job)
{
    struct family *f = family_of(e, job->dst.family);

    stop_sending(e, job);
    for (uint32_t i = 0; f != NULL && f->slots != NULL && i < job->count; i++) {
        const struct icmp_echo_result *r = &job->results[i];
        struct slot *s = &f->slots[r->seq];
        if (r->sent && s->job == job && s->state == SLOT_WAITING) {
            s->state = SLOT_EXPIRED;
            atomic_fetch_sub(&e->stats.in_flight, 1);
            job->priv.outstanding--;
        }
    }
    job->priv.outstanding = 0; /* nothing of it is in flight any more */
    maybe_complete(e, job);
}

static void cancel_job(struct icmp_engine *e, struct icmp_job *job)
{
    if (job->priv.state != JOB_SENDING && job->priv.state != JOB_WAITING)
        return;
    job->cancelled = true;
    abandon_job(e, job);
}

static void take_requests(struct icmp_engine *e)
{
    struct icmp_job *list, **cancels;
    size_t n_cancels;

    pthread_mutex_lock(&e->lock);
    list = e->incoming;
    e->incoming = e->incoming_tail = NULL;
    cancels = e->cancels;
    n_cancels = e->n_cancels;
    e->cancels = NULL;
    e->n_cancels = e->cap_cancels = 0;
    pthread_mutex_unlock(&e->lock);

    while (list != NULL) {
        struct icmp_job *next = list->priv.next;
        take_job(e, list);
        list = next;
    }
    for (size_t i = 0; i < n_cancels; i++)
        cancel_job(e, cancels[i]);
    free(cancels);
}

/*
 * The wait failed for good (see the model comment): records err, then completes every job
 * with it, those queued included. From the moment err is set under the lock, submits are
 * refused, so no job arrives after the queue is taken, not even from a callback.
 */
static void fail_engine(struct icmp_engine *e, int err)
{
    pthread_mutex_lock(&e->lock);
    atomic_store(&e->error, err);
    pthread_mutex_unlock(&e->lock);
    take_requests(e);
    while (e->active != NULL) {
        e->active->error = err;
        abandon_job(e, e->active);
    }
}

/*
 * One round of the loop: take requests, settle what is due, send what is due, then wait
 * for the next event. `done` (the synchronous API) skips the wait once it is set.
 */
static void run_once(struct icmp_engine *e, const bool *done)
{
    struct epoll_event ev[4];
    int64_t next = INT64_MAX, t;
    struct timespec ts;
    uint64_t value;
    bool pending;
    int n, err = 0;

    take_requests(e);
    for (int i = 0; i < 2; i++) {
        if (e->fam[i].fd < 0)
            continue;
        t = expire_due(e, &e->fam[i]);
        if (t < next)
            next = t;
    }
    t = send_due(e);
    if (t < next)
        next = t;
    /* Echoes just sent have deadlines of their own. */
    for (int i = 0; i < 2; i++) {
        const struct family *f = &e->fam[i];
        if (f->n_timeouts > 0 && f->timeouts[0].deadline < next)
            next = f->timeouts[0].deadline;
    }

    if (done != NULL && *done)
        return;
    /*
     * Submitters write the eventfd only when the engine sleeps: a burst of a thousand
     * probes costs one wake-up, not a thousand writes and reads. Said under the lock, with
     * the queues checked there: a job queued before is seen here, one queued after sees
     * waiting and wakes us.
     */
    pthread_mutex_lock(&e->lock);
    pending = e->incoming != NULL || e->n_cancels > 0 || e->stopping;
    e->waiting = !pending;
    pthread_mutex_unlock(&e->lock);
    t = pending ? 0 : next - icmp_now_ns();
    if (t < 0)
        t = 0;
    ts.tv_sec = t / 1000000000;
    ts.tv_nsec = t % 1000000000;
    n = -1;
    if (!e->no_pwait2) {
        n = epoll_pwait2(e->epfd, ev, 4, next == INT64_MAX && !pending ? NULL : &ts, NULL);
        err = n < 0 ? errno : 0;
        /* Kernels before 5.11, seccomp profiles that predate it, and Valgrind 3.19 lack
         * epoll_pwait2: fall back for good to millisecond waits (rounded up, never a spin). */
        if (err == ENOSYS || err == EPERM)
            e->no_pwait2 = true;
    }
    if (e->no_pwait2) {
        int ms = next == INT64_MAX && !pending      ? -1
                 : t > (int64_t)INT32_MAX * 1000000 ? INT32_MAX
                                                    : (int)((t + 999999) / 1000000);
        n = epoll_wait(e->epfd, ev, 4, ms);
        err = n < 0 ? errno : 0;
    }
    pthread_mutex_lock(&e->lock);
    e->waiting = false;
    pthread_mutex_unlock(&e->lock);
    if (err != 0 && err != EINTR) {
        fail_engine(e, -err);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 < 2) {
            drain(e, &e->fam[ev[i].data.u32]);
        } else if (read(e->evfd, &value, sizeof(value)) < 0) {
            /* EAGAIN: already read. */
        }
    }
}

static void *engine_thread(void *arg)
{
    struct icmp_engine *e = arg;
    bool stop = false;

    /* Wake-ups on time for pacing and timeouts: the default 50 us slack is too coarse. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    while (!stop) {
        run_once(e, NULL);
        pthread_mutex_lock(&e->lock);
        stop = e->stopping || atomic_load(&e->error) != 0;
        pthread_mutex_unlock(&e->lock);
    }
    return NULL;
}

void icmp__engine_run_until(struct icmp_engine *e, const bool *done)
{
    /* A failed engine has completed every job, this one's too: the check is a backstop. */
    while (!*done && atomic_load(&e->error) == 0)
        run_once(e, done);
}

/* ---------------------------------------------------------------------------------------
 * Public API.
 */

int icmp_engine_open(struct icmp_engine **out, const struct icmp_engine_options *options)
{
    struct icmp_engine_options defaults = {.min_send_gap_ns = ICMP_DEFAULT_SEND_GAP_NS};
    const struct icmp_engine_options *o = options != NULL ? options : &defaults;
    struct icmp_engine *e;
    int rc = -ENOMEM, opened = 0, first_error = 0;
    bool lock_ready = false;

    if (out == NULL || o->min_send_gap_ns < 0)
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->epfd = e->evfd = -1;
    e->fam[0].af = AF_INET;
    e->fam[1].af = AF_INET6;
    e->fam[0].fd = e->fam[1].fd = -1;
    atomic_init(&e->gap_ns, o->min_send_gap_ns);
    atomic_init(&e->error, 0);
    if (pthread_mutex_init(&e->lock, NULL) != 0)
        goto fail;
    lock_ready = true;
    e->sendbuf = malloc(ICMP_HEADER_LEN + ICMP_PAYLOAD_MAX);
    e->recvbuf = malloc(RECV_BUF_SIZE);
    e->flow_buckets = 64;
    e->flow_table = calloc(e->flow_buckets, sizeof(*e->flow_table));
    e->flow_timers = (struct iheap){.key = flow_key, .index_of = flow_timer_index};
    e->deadlines = (struct iheap){.key = job_deadline_key, .index_of = job_deadline_index};
    if (e->sendbuf == NULL || e->recvbuf == NULL || e->flow_table == NULL)
        goto fail;
    while (getrandom(&e->nonce, sizeof(e->nonce), 0) != (ssize_t)sizeof(e->nonce))
        ;

    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->epfd < 0 || e->evfd < 0) {
        rc = -errno;
        goto fail;
    }
    {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 2};
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    for (uint32_t i = 0; i < 2; i++) {
        struct family *f = &e->fam[i];
        enum icmp_socket_mode want = i == 0 ? o->mode4 : o->mode6;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (o->families != 0 && o->families != f->af)
            continue;
        rc = open_family(f, want);
        if (rc < 0) {
            if (f->fd >= 0)
                close(f->fd);
            f->fd = -1;
            f->mode = ICMP_MODE_NONE;
            if (first_error == 0)
                first_error = rc;
            continue;
        }
        f->slots = calloc(SEQ_SPACE, sizeof(*f->slots));
        f->tx_seq = calloc(SEQ_SPACE, sizeof(*f->tx_seq));
        if (f->slots == NULL || f->tx_seq == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        f->cursor = random_u16();
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, f->fd, &ev) < 0) {
            rc = -errno;
            goto fail;
        }
        opened++;
    }
    if (opened == 0) {
        /* Report "no permission" plainly whichever of the fallbacks failed last. */
        rc = first_error == -EPERM || first_error == -EACCES ? -EACCES : first_error;
        goto fail;
    }
    e->no_thread = o->no_thread;
    if (!o->no_thread && !o->start_later) {
        rc = icmp_engine_start(e);
        if (rc < 0)
            goto fail;
    }
    *out = e;
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (e->fam[i].fd >= 0)
            close(e->fam[i].fd);
        free(e->fam[i].slots);
        free(e->fam[i].tx_seq);
    }
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->evfd >= 0)
        close(e->evfd);
    if (lock_ready)
        pthread_mutex_destroy(&e->lock);
    free(e->sendbuf);
    free(e->recvbuf);
    free(e->flow_table);
    free(e);
    return rc;
}

static void wake(struct icmp_engine *e)
{
    uint64_t one = 1;

    if (write(e->evfd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is already non-zero, the engine will wake. */
    }
}

int icmp_engine_set_send_gap(struct icmp_engine *e, int64_t gap_ns)
{
    if (gap_ns < 0)
        return -EINVAL;
    atomic_store(&e->gap_ns, gap_ns);
    return 0;
}

int icmp_engine_start(struct icmp_engine *e)
{
    int rc;

    if (e->threaded || e->no_thread)
        return -EALREADY;
    rc = -pthread_create(&e->thread, NULL, engine_thread, e);
    if (rc < 0)
        return rc;
    e->threaded = true;
    wake(e); /* jobs may have been submitted before */
    return 0;
}

void icmp_engine_close(struct icmp_engine *e)
{
    if (e == NULL)
        return;
    if (e->threaded) {
        pthread_mutex_lock(&e->lock);
        e->stopping = true;
        pthread_mutex_unlock(&e->lock);
        wake(e);
        pthread_join(e->thread, NULL);
    }
    /* Jobs still queued or running complete as cancelled. */
    take_requests(e);
    while (e->active != NULL)
        cancel_job(e, e->active);
    for (int i = 0; i < 2; i++) {
        if (e->fam[i].fd >= 0)
            close(e->fam[i].fd);
        free(e->fam[i].slots);
        free(e->fam[i].tx_seq);
        free(e->fam[i].timeouts);
    }
    close(e->epfd);
    close(e->evfd);
    pthread_mutex_destroy(&e->lock);
    free(e->cancels);
    while (e->flow_free != NULL) {
        struct icmp__flow *fl = e->flow_free;
        e->flow_free = fl->hash_next;
        free(fl->jobs.v);
        free(fl);
    }
    free(e->flow_table);
    free(e->flow_timers.v);
    free(e->deadlines.v);
    free(e->sendbuf);
    free(e->recvbuf);
    free(e);
}

enum icmp_socket_mode icmp_engine_mode(const struct icmp_engine *engine, int family)
{
    if (engine == NULL)
        return ICMP_MODE_NONE;
    if (family == AF_INET)
        return engine->fam[0].mode;
    if (family == AF_INET6)
        return engine->fam[1].mode;
    return ICMP_MODE_NONE;
}

static bool job_valid(const struct icmp_job *j)
{
    return j != NULL && (j->dst.family == AF_INET || j->dst.family == AF_INET6) &&
           (j->src.family == 0 || j->src.family == j->dst.family) && j->count >= 1 &&
           j->interval_ns >= 0 && j->timeout_ns > 0 && j->deadline_ns >= 0 &&
           j->payload_size >= ICMP_PAYLOAD_MIN && j->payload_size <= ICMP_PAYLOAD_MAX &&
           j->results != NULL && j->on_done != NULL;
}

int icmp_engine_submit(struct icmp_engine *e, struct icmp_job *const *jobs, size_t n)
{
    bool sleeping;
    int failed;

    if (e == NULL || (jobs == NULL && n > 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!job_valid(jobs[i]))
            return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        struct icmp_job *j = jobs[i];
        j->error = 0;
        j->cancelled = false;
        j->sent = j->received = j->errors = j->duplicates = j->late = j->corrupt = 0;
        memset(&j->priv, 0, sizeof(j->priv));
        j->priv.state = JOB_QUEUED;
        for (uint32_t k = 0; k < j->count; k++) {
            j->results[k] = (struct icmp_echo_result){
                .status = ICMP_STATUS_TIMED_OUT, .rtt_ns = -1, .sent_ns = -1, .ttl = -1};
        }
    }
    pthread_mutex_lock(&e->lock);
    failed = atomic_load(&e->error);
    if (failed != 0) {
        pthread_mutex_unlock(&e->lock);
        return failed; /* nothing would ever run them */
    }
    for (size_t i = 0; i < n; i++) {
        if (e->incoming_tail != NULL)
            e->incoming_tail->priv.next = jobs[i];
        else
            e->incoming = jobs[i];
        e->incoming_tail = jobs[i];
    }
    sleeping = e->waiting;
    e->waiting = false; /* one wake-up is enough */
    pthread_mutex_unlock(&e->lock);
    if (sleeping)
        wake(e);
    return 0;
}

void icmp_engine_cancel(struct icmp_engine *e, struct icmp_job *job)
{
    bool sleeping;

    if (e == NULL || job == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    if (atomic_load(&e->error) != 0) {
        /* The failure completed every job it had: nothing is left to cancel. */
        pthread_mutex_unlock(&e->lock);
        return;
    }
    if (e->n_cancels == e->cap_cancels) {
        size_t cap = e->cap_cancels ? 2 * e->cap_cancels : 16;
        struct icmp_job **c = realloc(e->cancels, cap * sizeof(*c));
        if (c == NULL) {
            /* Without memory the cancel is dropped: the job still ends at its deadline. */
            pthread_mutex_unlock(&e->lock);
            return;
        }
        e->cancels = c;
        e->cap_cancels = cap;
    }
    e->cancels[e->n_cancels++] = job;
    sleeping = e->waiting;
    e->waiting = false;
    pthread_mutex_unlock(&e->lock);
    if (sleeping)
        wake(e);
}

int icmp_engine_error(const struct icmp_engine *e)
{
    return e != NULL ? atomic_load(&e->error) : 0;
}

void icmp_engine_stats(const struct icmp_engine *e, struct icmp_engine_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (e == NULL)
        return;
    s->jobs = atomic_load(&e->stats.jobs);
    s->sent = atomic_load(&e->stats.sent);
    s->send_errors = atomic_load(&e->stats.send_errors);
    s->duplicates = atomic_load(&e->stats.duplicates);
    s->late = atomic_load(&e->stats.late);
    s->corrupt = atomic_load(&e->stats.corrupt);
    s->foreign = atomic_load(&e->stats.foreign);
    s->in_flight = atomic_load(&e->stats.in_flight);
    for (int i = 0; i < ICMP_STATUS_LIMIT; i++)
        s->replies[i] = atomic_load(&e->stats.replies[i]);
}
