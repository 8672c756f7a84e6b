/*
 * epoll_pwait2_shim: an LD_PRELOAD library for valgrind.sh only.
 *
 * Valgrind 3.19 (Debian 12) does not know the epoll_pwait2 system call (441): it warns on
 * every call and fails it with ENOSYS. The engine then gets no event and no sleep, and spins
 * (and the warnings fill gigabytes of log), so the Valgrind run would not exercise the code
 * that runs in production. This library replaces glibc's epoll_pwait2() wrapper with
 * epoll_pwait(), the timeout rounded up to whole milliseconds: the same events, a coarser
 * sleep. Nothing else uses it.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                 const struct timespec *timeout, const sigset_t *sigmask)
{
    int ms = -1;

    if (timeout != NULL) {
        int64_t ns = (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec;
        int64_t m = (ns + 999999) / 1000000;

        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000) {
            errno = EINVAL;
            return -1;
        }
        ms = m > INT32_MAX ? INT32_MAX : (int)m;
    }
    return epoll_pwait(epfd, events, maxevents, ms, sigmask);
}
