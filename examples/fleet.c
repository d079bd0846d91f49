/*
 * Provisions a fleet of devices of one enrollment group from C: one
 * handle per device, all attached to one group, driven by one loop that
 * sleeps in poll(2) on the group's descriptors (at most max_connections
 * of them, whatever the fleet size).
 *
 *   fleet_c ENDPOINT ID_SCOPE GROUP_KEY CA_FILE N [MAX_CONNECTIONS [PREFIX]]
 *
 * Prints "assigned=K of N" and exits 0 when all were assigned.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "prov_device_ll_group.h"

static int assigned, failed;

static void on_registered(PROV_DEVICE_RESULT result, const char *hub,
                          const char *device_id, void *ctx)
{
    (void)hub;
    (void)device_id;
    (void)ctx;
    if (result == PROV_DEVICE_RESULT_OK)
        assigned++;
    else
        failed++;
}

int main(int argc, char **argv)
{
    PROV_DEVICE_LL_GROUP_HANDLE group;
    PROV_DEVICE_LL_HANDLE *h;
    PROV_DEVICE_POLLFD fds[256];
    struct pollfd p[256];
    uint32_t cap;
    long n, i, rounds;
    char id[64];

    if (argc < 6) {
        fprintf(stderr,
                "usage: %s ENDPOINT ID_SCOPE GROUP_KEY CA_FILE N "
                "[MAX_CONNECTIONS [PREFIX]]\n",
                argv[0]);
        return 2;
    }
    n = atol(argv[5]);
    cap =
        argc > 6 ? (uint32_t)atol(argv[6]) : PROV_GROUP_DEFAULT_MAX_CONNECTIONS;
    if (n <= 0 || cap > 256 || !(group = Prov_Device_LL_Group_Create()) ||
        !(h = calloc((size_t)n, sizeof(*h))))
        return 2;
    Prov_Device_LL_Group_SetOption(group, PROV_GROUP_OPTION_MAX_CONNECTIONS,
                                   &cap);
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s%ld", argc > 7 ? argv[7] : "fleet-", i + 1);
        h[i] =
            Prov_Device_LL_Create(argv[1], argv[2], Prov_Device_HTTP_Protocol);
        if (!h[i] || Prov_Device_LL_SetOption(h[i], PROV_REGISTRATION_ID, id) ||
            Prov_Device_LL_SetOption(h[i], PROV_OPTION_GROUP_KEY, argv[3]) ||
            Prov_Device_LL_SetOption(h[i], OPTION_TRUSTED_CERT, argv[4]) ||
            Prov_Device_LL_Group_Attach(group, h[i]) ||
            Prov_Device_LL_Register_Device(h[i], on_registered, NULL, NULL,
                                           NULL)) {
            fprintf(stderr, "%s: cannot start: %s\n", id,
                    h[i] ? Prov_Device_LL_Get_Error(h[i])->message : "memory");
            failed++;
        }
    }
    /* The host loop: Prov_Device_LL_Group_Run(group, -1) does the same. */
    for (rounds = 0; rounds < 10000000 && Prov_Device_LL_Group_Is_Busy(group);
         rounds++) {
        size_t k, count = 0;
        long t;
        Prov_Device_LL_Group_DoWork(group);
        if (!Prov_Device_LL_Group_Is_Busy(group))
            break;
        Prov_Device_LL_Group_Get_Pollfds(group, fds, 256, &count);
        for (k = 0; k < count && k < 256; k++) {
            p[k].fd = fds[k].fd;
            p[k].events = fds[k].events;
        }
        t = Prov_Device_LL_Group_Get_Timeout_Ms(group);
        poll(p, count < 256 ? count : 256, t < 0 || t > 1000 ? 1000 : (int)t);
    }
    for (i = 0; i < n; i++)
        Prov_Device_LL_Destroy(h[i]);
    free(h);
    Prov_Device_LL_Group_Destroy(group);
    printf("assigned=%d of %ld\n", assigned, n);
    return assigned == n ? 0 : 1;
}
