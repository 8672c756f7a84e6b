/* The IP_STATUS vocabulary: names are stable label values, codes are Windows' numbers. */
#include "core/icmp.h"
#include "test.h"

#include <ctype.h>

int main(void)
{
    CHECK_STR_EQ(icmp_status_name(ICMP_STATUS_SUCCESS), "success");
    CHECK_EQ(icmp_status_code(ICMP_STATUS_SUCCESS), 0);
    CHECK_STR_EQ(icmp_status_name(ICMP_STATUS_TIMED_OUT), "timed_out");
    CHECK_EQ(icmp_status_code(ICMP_STATUS_TIMED_OUT), 11010);
    CHECK_EQ(icmp_status_code(ICMP_STATUS_BUF_TOO_SMALL), 11001);
    CHECK_EQ(icmp_status_code(ICMP_STATUS_TTL_EXPIRED_TRANSIT), 11013);
    CHECK_STR_EQ(icmp_status_name(ICMP_STATUS_TTL_EXPIRED_TRANSIT), "ttl_expired_transit");
    CHECK_EQ(icmp_status_code(ICMP_STATUS_DEST_SCOPE_MISMATCH), 11045);
    CHECK_EQ(icmp_status_code(ICMP_STATUS_GENERAL_FAILURE), 11050);
    CHECK_STR_EQ(icmp_status_name(ICMP_STATUS_GENERAL_FAILURE), "general_failure");

    /* Gaps in Windows' numbering and out-of-range values are not statuses. */
    CHECK(icmp_status_name((enum icmp_status)19) == NULL);
    CHECK_EQ(icmp_status_code((enum icmp_status)19), -1);
    CHECK(icmp_status_name((enum icmp_status)51) == NULL);
    CHECK(icmp_status_name((enum icmp_status) - 1) == NULL);

    /* Every defined name is a valid, unique, lower-case label value. */
    int defined = 0;
    for (int i = 0; i <= 50; i++) {
        const char *name = icmp_status_name((enum icmp_status)i);
        if (name == NULL)
            continue;
        defined++;
        for (const char *p = name; *p; p++)
            CHECK(islower((unsigned char)*p) || *p == '_');
        for (int j = 0; j < i; j++) {
            const char *other = icmp_status_name((enum icmp_status)j);
            if (other != NULL && strcmp(name, other) == 0)
                TEST_FAIL_AT("status %d and %d share the name %s", i, j, name);
        }
    }
    CHECK_EQ(defined, 26);
    return TEST_DONE();
}
