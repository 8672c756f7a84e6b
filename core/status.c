/*
 * The IP_STATUS vocabulary: names and Windows codes of enum icmp_status.
 *
 * The table is indexed by the enum value (the Windows code minus 11000), so a lookup is a
 * bounds check and one load. Gaps in the Windows numbering hold NULL.
 */
#include "core/icmp.h"

#include <stddef.h>

static const char *const status_names[] = {
    [ICMP_STATUS_SUCCESS] = "success",
    [ICMP_STATUS_BUF_TOO_SMALL] = "buf_too_small",
    [ICMP_STATUS_DEST_NET_UNREACHABLE] = "dest_net_unreachable",
    [ICMP_STATUS_DEST_HOST_UNREACHABLE] = "dest_host_unreachable",
    [ICMP_STATUS_DEST_PROT_UNREACHABLE] = "dest_prot_unreachable",
    [ICMP_STATUS_DEST_PORT_UNREACHABLE] = "dest_port_unreachable",
    [ICMP_STATUS_NO_RESOURCES] = "no_resources",
    [ICMP_STATUS_BAD_OPTION] = "bad_option",
    [ICMP_STATUS_HW_ERROR] = "hw_error",
    [ICMP_STATUS_PACKET_TOO_BIG] = "packet_too_big",
    [ICMP_STATUS_TIMED_OUT] = "timed_out",
    [ICMP_STATUS_BAD_REQ] = "bad_req",
    [ICMP_STATUS_BAD_ROUTE] = "bad_route",
    [ICMP_STATUS_TTL_EXPIRED_TRANSIT] = "ttl_expired_transit",
    [ICMP_STATUS_TTL_EXPIRED_REASSEM] = "ttl_expired_reassem",
    [ICMP_STATUS_PARAM_PROBLEM] = "param_problem",
    [ICMP_STATUS_SOURCE_QUENCH] = "source_quench",
    [ICMP_STATUS_OPTION_TOO_BIG] = "option_too_big",
    [ICMP_STATUS_BAD_DESTINATION] = "bad_destination",
    [ICMP_STATUS_DEST_UNREACHABLE] = "dest_unreachable",
    [ICMP_STATUS_TIME_EXCEEDED] = "time_exceeded",
    [ICMP_STATUS_BAD_HEADER] = "bad_header",
    [ICMP_STATUS_UNRECOGNIZED_NEXT_HEADER] = "unrecognized_next_header",
    [ICMP_STATUS_ICMP_ERROR] = "icmp_error",
    [ICMP_STATUS_DEST_SCOPE_MISMATCH] = "dest_scope_mismatch",
    [ICMP_STATUS_GENERAL_FAILURE] = "general_failure",
};

const char *icmp_status_name(enum icmp_status status)
{
    size_t i = (size_t)status;

    if (i >= sizeof(status_names) / sizeof(status_names[0]))
        return NULL;
    return status_names[i];
}

int icmp_status_code(enum icmp_status status)
{
    if (icmp_status_name(status) == NULL)
        return -1;
    return status == ICMP_STATUS_SUCCESS ? 0 : 11000 + (int)status;
}
