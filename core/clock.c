/*
 * The engine's clocks (see icmp_internal.h): the kernel stamps packets in CLOCK_REALTIME,
 * the engine measures in CLOCK_MONOTONIC. A wall-clock step shows as a change of the offset
 * realtime - monotonic, which icmp__clocks_now reads with its uncertainty; the timing of an
 * answer is a pure function of such readings, so a step can be tested without setting the
 * clock.
 */
#include "core/icmp_internal.h"

#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void icmp__clocks_now(struct icmp__clocks *now)
{
    /* The realtime reading lies between the two monotonic ones: the offset is known to half
     * their distance, however long the thread was preempted in between. */
    int64_t before = read_clock(CLOCK_MONOTONIC);

    now->rt = read_clock(CLOCK_REALTIME);
    int64_t after = read_clock(CLOCK_MONOTONIC);
    now->mono = before + (after - before) / 2;
    now->err = (after - before + 1) / 2;
}

int64_t icmp__echo_time(const struct icmp__echo_clock *echo, int64_t rx_rt,
                        const struct icmp__clocks *read, bool *late)
{
    /* How far the wall clock was stepped between the send and the read. A change within the
     * two readings' uncertainty is no step: then the realtime difference of the stamps is
     * exact, and measurement noise must not bend it (an RTT of 20 us would go negative). */
    int64_t step = (read->rt - read->mono) - (echo->sent.rt - echo->sent.mono);
    int64_t noise = read->err + echo->sent.err;
    int64_t start = echo->tx_rt >= 0 ? echo->tx_rt : echo->sent.rt;

    if (step >= -noise && step <= noise)
        step = 0;
    *late = echo->sent.mono + (rx_rt - echo->sent.rt) - step > echo->deadline;
    return rx_rt - start - step;
}
