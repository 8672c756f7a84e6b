/*
 * core/: the batched ICMP echo engine, modelled on Windows' IcmpSendEcho.
 *
 * This header is the whole public surface of the engine. It knows nothing of HTTP,
 * Prometheus or JSON.
 */
#ifndef ICMP_H
#define ICMP_H

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

#endif
