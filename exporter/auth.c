/*
 * HTTP basic authentication against the bcrypt hashes of web.basic_auth_users, with the
 * semantics of Prometheus' exporter-toolkit: every path needs credentials once users are
 * configured, a wrong name costs the same bcrypt as a wrong password, and a good pair is
 * remembered so a scrape every few seconds does not pay a bcrypt (tens of milliseconds at
 * cost 10) each time.
 *
 * bcrypt is slow on purpose, so it never runs on the HTTP thread: one worker thread takes
 * verifications from a bounded queue while the connection is suspended (as a probe waits on
 * the engine). One thread also caps what unauthenticated clients can make us burn at one
 * core; past AUTH_QUEUE_MAX waiting checks, the caller answers 503.
 *
 * The queue is shared fairly between client addresses (an IPv6 client is its /64), so a
 * flood of wrong passwords cannot lock a valid user out: each address holds at most
 * AUTH_PER_CLIENT waiting checks; the worker serves addresses in turn (start-time fair
 * queueing: a check's tag is one past the later of the last tag served and its address's
 * newest waiting tag, and the lowest tag runs next), so a newcomer waits for about one
 * check per flooding address, not for the whole queue; and a full queue makes room for an
 * address holding fewer checks than another by dropping (503) that other's newest.
 * At shutdown the waiting checks are dropped (503), not run: only the one running finishes.
 *
 * The cache holds no password: an entry is SHA-256 over a per-process random key, the user,
 * the password and the user's hash (so a changed hash in a reloaded configuration misses).
 * Comparisons of names and digests run in constant time.
 */
#include "exporter/auth.h"

#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include "exporter/client.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#define AUTH_QUEUE_MAX  64
#define AUTH_PER_CLIENT 8
#define AUTH_CACHE      64
#define DIGEST_LEN      32

struct auth_job {
    struct auth_job *next;
    char *user, *password, *hash; /* one allocation, wiped before it is freed */
    size_t size;
    bool known; /* the user exists (else hash is a stand-in, and the answer is no) */
    struct client_key client;
    uint64_t tag; /* fair-queueing order: the lowest runs next */
    auth_done_fn done;
    void *arg;
};

struct auth {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct auth_job *head; /* waiting checks, in arrival order */
    size_t queued;
    uint64_t served_tag; /* the tag of the check last taken by the worker */
    bool stopping;
    pthread_t thread;
    bool started;
    unsigned char key[32];
    unsigned char cache[AUTH_CACHE][DIGEST_LEN]; /* good pairs; all-zero = empty */
    size_t cache_next;
};

/* Equal lengths compared without an early exit. */
static bool same_bytes(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char d = 0;

    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* Strings compared without an early exit on the first difference (lengths are not secret:
 * Go's subtle.ConstantTimeCompare, which exporter-toolkit uses, returns early on them too). */
static bool same_string(const char *a, const char *b)
{
    size_t n = strlen(a);

    return n == strlen(b) && same_bytes((const unsigned char *)a, (const unsigned char *)b, n);
}

static int digest(const struct auth *a, const char *user, const char *password, const char *hash,
                  unsigned char out[DIGEST_LEN])
{
    gnutls_hash_hd_t h;

    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return -ENOMEM;
    gnutls_hash(h, a->key, sizeof(a->key));
    gnutls_hash(h, user, strlen(user) + 1); /* the NULs keep the fields apart */
    gnutls_hash(h, password, strlen(password) + 1);
    gnutls_hash(h, hash, strlen(hash) + 1);
    gnutls_hash_deinit(h, out);
    return 0;
}

static bool cache_has(struct auth *a, const unsigned char d[DIGEST_LEN])
{
    bool hit = false;

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < AUTH_CACHE; i++)
        hit |= same_bytes(a->cache[i], d, DIGEST_LEN);
    pthread_mutex_unlock(&a->lock);
    return hit;
}

static void cache_put(struct auth *a, const unsigned char d[DIGEST_LEN])
{
    pthread_mutex_lock(&a->lock);
    memcpy(a->cache[a->cache_next], d, DIGEST_LEN);
    a->cache_next = (a->cache_next + 1) % AUTH_CACHE;
    pthread_mutex_unlock(&a->lock);
}

/* The hash to check the password against: the user's, or (unknown user) the first user's,
 * so that a wrong name takes as long as a wrong password. Every name is compared. */
static const char *find_hash(const struct config_web *web, const char *user, bool *known)
{
    const char *hash = web->users[0].bcrypt_hash;

    *known = false;
    for (size_t i = 0; i < web->n_users; i++) {
        if (same_string(web->users[i].name, user) && !*known) {
            hash = web->users[i].bcrypt_hash;
            *known = true;
        }
    }
    return hash;
}

static bool verify(struct crypt_data *cd, const char *password, const char *hash)
{
    const char *out;

    memset(cd, 0, sizeof(*cd));
    out = crypt_r(password, hash, cd);
    /* libxcrypt answers a failure with a string starting with '*', never the hash. */
    return out != NULL && out[0] == '$' && strlen(out) == strlen(hash) &&
           same_bytes((const unsigned char *)out, (const unsigned char *)hash, strlen(hash));
}

static void job_free(struct auth_job *j)
{
    if (j == NULL)
        return;
    explicit_bzero(j->user, j->size);
    free(j->user);
    free(j);
}

/* The waiting checks of client, and the highest tag among them (0: none). Under a->lock. */
static size_t client_queued(const struct auth *a, const struct client_key *client, uint64_t *newest)
{
    size_t n = 0;

    *newest = 0;
    for (const struct auth_job *j = a->head; j != NULL; j = j->next) {
        if (client_key_equal(&j->client, client)) {
            n++;
            if (j->tag > *newest)
                *newest = j->tag;
        }
    }
    return n;
}

/* The waiting check with the lowest tag (the earliest on a tie), NULL when none. */
static struct auth_job *queue_lowest(const struct auth *a)
{
    struct auth_job *best = NULL;

    for (struct auth_job *j = a->head; j != NULL; j = j->next) {
        if (best == NULL || j->tag <= best->tag) /* the list is newest first */
            best = j;
    }
    return best;
}

/* The newest check of the client holding the most, if it holds at least `than` + 2: dropping
 * it for a check of a client holding `than` leaves neither above the other. */
static struct auth_job *queue_victim(const struct auth *a, size_t than)
{
    struct auth_job *victim = NULL;
    size_t most = 0;

    for (struct auth_job *j = a->head; j != NULL; j = j->next) {
        uint64_t newest;
        size_t n = client_queued(a, &j->client, &newest);
        if (n > most && n >= than + 2 && j->tag == newest) {
            most = n;
            victim = j;
        }
    }
    return victim;
}

/* Unlinks j (a waiting check, or NULL) from the queue. Under a->lock. */
static struct auth_job *queue_take(struct auth *a, struct auth_job *j)
{
    for (struct auth_job **p = &a->head; j != NULL && *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            j->next = NULL;
            a->queued--;
            return j;
        }
    }
    return NULL;
}

static void *worker(void *arg)
{
    struct auth *a = arg;
    struct crypt_data *cd = malloc(sizeof(*cd)); /* 32 KiB: not on the stack */

    for (;;) {
        unsigned char d[DIGEST_LEN];
        struct auth_job *j;
        bool ok;

        pthread_mutex_lock(&a->lock);
        while (a->head == NULL && !a->stopping)
            pthread_cond_wait(&a->wake, &a->lock);
        j = a->stopping ? NULL : queue_take(a, queue_lowest(a));
        if (j != NULL)
            a->served_tag = j->tag;
        pthread_mutex_unlock(&a->lock);
        if (j == NULL)
            break; /* stopping: auth_stop answers what still waits */
        /* A pair checked while this one waited (a scrape's concurrent requests) is
         * remembered by now: no second bcrypt for it. */
        if (j->known && digest(a, j->user, j->password, j->hash, d) == 0 && cache_has(a, d)) {
            ok = true;
        } else {
            ok = cd != NULL && verify(cd, j->password, j->hash) && j->known;
            if (ok && digest(a, j->user, j->password, j->hash, d) == 0)
                cache_put(a, d);
        }
        explicit_bzero(d, sizeof(d));
        j->done(j->arg, ok ? AUTH_OK : AUTH_DENIED);
        job_free(j);
    }
    if (cd != NULL)
        explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return NULL;
}

int auth_open(struct auth **out)
{
    struct auth *a = calloc(1, sizeof(*a));
    int rc;

    *out = NULL;
    if (a == NULL)
        return -ENOMEM;
    if (getrandom(a->key, sizeof(a->key), 0) != (ssize_t)sizeof(a->key)) {
        free(a);
        return -EIO;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    rc = pthread_create(&a->thread, NULL, worker, a);
    if (rc != 0) {
        pthread_cond_destroy(&a->wake);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return -rc;
    }
    a->started = true;
    *out = a;
    return 0;
}

void auth_stop(struct auth *a)
{
    if (a == NULL)
        return;
    struct auth_job *dropped;

    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    dropped = a->head; /* not run: a queue of bcrypts would hold shutdown for seconds */
    a->head = NULL;
    a->queued = 0;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    while (dropped != NULL) {
        struct auth_job *j = dropped;
        dropped = j->next;
        j->done(j->arg, AUTH_BUSY);
        job_free(j);
    }
    if (a->started)
        pthread_join(a->thread, NULL); /* after the check it is running, if any */
    a->started = false;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    auth_stop(a);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    explicit_bzero(a, sizeof(*a));
    free(a);
}

enum auth_result auth_check(struct auth *a, const struct config_web *web, const char *user,
                            const char *password, const struct sockaddr *client, auth_done_fn done,
                            void *arg)
{
    unsigned char d[DIGEST_LEN];
    struct auth_job *j, *victim = NULL;
    uint64_t newest;
    size_t mine;
    const char *hash;
    bool known, hit;
    size_t lu, lp, lh;

    if (web->n_users == 0)
        return AUTH_OK;
    if (user == NULL || password == NULL)
        return AUTH_DENIED;
    hash = find_hash(web, user, &known);
    if (digest(a, user, password, hash, d) < 0)
        return AUTH_BUSY;
    hit = known && cache_has(a, d);
    explicit_bzero(d, sizeof(d));
    if (hit)
        return AUTH_OK;
    if (done == NULL)
        return AUTH_PENDING; /* the caller only asked whether the slow check is needed */

    lu = strlen(user) + 1;
    lp = strlen(password) + 1;
    lh = strlen(hash) + 1;
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->user = malloc(lu + lp + lh)) == NULL) {
        free(j);
        return AUTH_BUSY;
    }
    j->size = lu + lp + lh;
    j->password = j->user + lu;
    j->hash = j->password + lp;
    memcpy(j->user, user, lu);
    memcpy(j->password, password, lp);
    memcpy(j->hash, hash, lh);
    j->known = known;
    j->client = client_key_of(client);
    j->done = done;
    j->arg = arg;

    pthread_mutex_lock(&a->lock);
    mine = client_queued(a, &j->client, &newest);
    if (!a->stopping && mine < AUTH_PER_CLIENT && a->queued >= AUTH_QUEUE_MAX)
        victim = queue_take(a, queue_victim(a, mine));
    if (a->stopping || mine >= AUTH_PER_CLIENT || a->queued >= AUTH_QUEUE_MAX) {
        pthread_mutex_unlock(&a->lock);
        job_free(j);
        return AUTH_BUSY;
    }
    j->tag = (newest > a->served_tag ? newest : a->served_tag) + 1;
    j->next = a->head;
    a->head = j; /* the order of the list does not matter: tags order the checks */
    a->queued++;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    if (victim != NULL) { /* its connection waits on it: answer 503 now, outside the lock */
        victim->done(victim->arg, AUTH_BUSY);
        job_free(victim);
    }
    return AUTH_PENDING;
}
