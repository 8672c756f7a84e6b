/*
 * The reload holder: readers keep the configuration they took while reloads swap others
 * in; a failed reload keeps the current one and is counted. Run under ASan, a reader
 * touching a freed configuration would abort the test.
 */
#include "config/config.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define READERS 4
#define RELOADS 300

static char dir[] = "/tmp/icmpx_slot_XXXXXX";
static char path_a[128], path_b[128], path_bad[128];
static struct config_slot *slot;
static atomic_bool stop;
static atomic_long reads;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Each configuration has exactly one module, "a" (count 2) or "b" (count 3). */
static void *reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        struct config *cfg = config_slot_get(slot);
        size_t n;
        const struct config_module *m = config_modules(cfg, &n);
        const struct config_target *t;

        if (n != 1 || !((strcmp(m->name, "a") == 0 && m->count == 2) ||
                        (strcmp(m->name, "b") == 0 && m->count == 3)))
            TEST_FAIL_AT("inconsistent configuration");
        /* Hold it across a possible swap, then read it again. */
        usleep(50);
        t = config_targets(cfg, &n);
        if (n != 1 || t[0].module != m || strcmp(t[0].target, "192.0.2.1") != 0)
            TEST_FAIL_AT("configuration changed under a reader");
        config_unref(cfg);
        atomic_fetch_add(&reads, 1);
    }
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t threads[READERS];
    struct config_reload_status st;
    char err[512];
    int failures = 0;

    for (int i = 0; i < READERS; i++)
        REQUIRE(pthread_create(&threads[i], NULL, reader, NULL) == 0);
    for (int i = 0; i < RELOADS; i++) {
        const char *path = i % 3 == 0 ? path_a : i % 3 == 1 ? path_b : path_bad;
        int rc = config_slot_reload(slot, path, err, sizeof(err));
        if (path == path_bad) {
            CHECK_EQ(rc, -EINVAL);
            failures++;
        } else {
            CHECK_EQ(rc, 0);
        }
        usleep(100);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(threads[i], NULL);
    CHECK_GT(atomic_load(&reads), 0);
    config_slot_status(slot, &st);
    CHECK_EQ(st.failures_total, failures);
    CHECK_EQ(st.successes_total, 1 + RELOADS - failures);
    CHECK(!st.last_success); /* the last reload was of the bad file */
}

int main(void)
{
    struct config *initial = NULL, *before, *after, *held;
    struct config_reload_status st, st2;
    char err[512];
    size_t n;

    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path_a, sizeof(path_a), "%s/a.json", dir);
    snprintf(path_b, sizeof(path_b), "%s/b.json", dir);
    snprintf(path_bad, sizeof(path_bad), "%s/bad.json", dir);
    write_file(path_a, "{\"modules\": {\"a\": {\"icmp\": {\"count\": 2, \"interval\": \"1s\"}}},"
                       " \"targets\": [{\"target\": \"192.0.2.1\", \"module\": \"a\"}]}");
    write_file(path_b, "{\"modules\": {\"b\": {\"icmp\": {\"count\": 3, \"interval\": \"1s\"}}},"
                       " \"targets\": [{\"target\": \"192.0.2.1\", \"module\": \"b\"}]}");
    write_file(path_bad, "{\"modules\": {\"a\": {\"icmp\": {\"count\": 0}}}}");

    REQUIRE(config_load_file(path_a, &initial, err, sizeof(err)) == 0);
    slot = config_slot_new(initial);
    REQUIRE(slot != NULL);
    config_slot_status(slot, &st);
    CHECK(st.last_success);
    CHECK_GT(st.last_success_seconds, 1.5e9);
    CHECK_EQ(st.failures_total, 0);
    CHECK_EQ(st.successes_total, 1);

    /* A failed reload keeps the current configuration, counts, and says why. */
    before = config_slot_get(slot);
    CHECK_EQ(config_slot_reload(slot, path_bad, err, sizeof(err)), -EINVAL);
    {
        char expected[256];
        snprintf(expected, sizeof(expected),
                 "%s:1:38: modules.a.icmp.count: expected an integer in 1..1000, got 0", path_bad);
        CHECK_STR_EQ(err, expected);
    }
    after = config_slot_get(slot);
    CHECK(after == before);
    config_unref(after);
    config_slot_status(slot, &st2);
    CHECK(!st2.last_success);
    CHECK_EQ(st2.failures_total, 1);
    CHECK(st2.last_success_seconds == st.last_success_seconds);
    CHECK_EQ(config_slot_reload(slot, "/nonexistent/x.json", err, sizeof(err)), -ENOENT);
    CHECK_STR_EQ(err, "/nonexistent/x.json: cannot open: No such file or directory");

    /* A good reload swaps; the holder of the old one still reads it intact. */
    held = before;
    CHECK_EQ(config_slot_reload(slot, path_b, err, sizeof(err)), 0);
    after = config_slot_get(slot);
    CHECK(after != held);
    CHECK(config_module_find(after, "b") != NULL);
    CHECK(config_module_find(held, "a") != NULL);
    CHECK_EQ(config_module_find(held, "a")->count, 2);
    config_unref(held); /* the last reference to "a": freed here, not earlier */
    config_unref(after);
    config_slot_status(slot, &st);
    CHECK(st.last_success);
    CHECK_GE(st.last_success_seconds, st2.last_success_seconds);
    CHECK_EQ(st.successes_total, 2);

    /* NULL path: the embedded default. */
    CHECK_EQ(config_slot_reload(slot, NULL, err, sizeof(err)), 0);
    after = config_slot_get(slot);
    CHECK(config_module_find(after, "icmp") != NULL);
    config_targets(after, &n);
    CHECK_EQ(n, 2);
    config_unref(after);
    CHECK_EQ(config_slot_reload(slot, path_a, err, sizeof(err)), 0);

    config_slot_free(slot);
    slot = config_slot_new(NULL);
    CHECK(slot == NULL);
    config_slot_free(NULL);

    REQUIRE(config_load_file(path_a, &initial, err, sizeof(err)) == 0);
    slot = config_slot_new(initial);
    REQUIRE(slot != NULL);
    test_concurrent();
    config_slot_free(slot);

    unlink(path_a);
    unlink(path_b);
    unlink(path_bad);
    rmdir(dir);
    return TEST_DONE();
}
