/*
 * Provisions a device with a symmetric key from C alone, the way code
 * written for the official low-level client does: Create, SetOption,
 * Register_Device, then DoWork until the callback fires. Instead of
 * calling DoWork in a busy loop it sleeps in poll(2) on the descriptors
 * and timeout the client reports.
 *
 *   provision_c ENDPOINT ID_SCOPE REGISTRATION_ID KEY [CA_FILE]
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "prov_device_ll_client.h"

typedef struct {
    bool done;
    PROV_DEVICE_RESULT result;
} outcome;

static void on_registered(PROV_DEVICE_RESULT result, const char *hub,
                          const char *device_id, void *ctx)
{
    outcome *o = ctx;
    o->done = true;
    o->result = result;
    if (result == PROV_DEVICE_RESULT_OK)
        printf("assigned: hub=%s device_id=%s\n", hub, device_id);
}

static void on_status(PROV_DEVICE_REG_STATUS status, void *ctx)
{
    static const char *const names[] = {"connected", "registering",
                                        "assigning", "assigned", "error",
                                        "hub not specified"};
    (void)ctx;
    printf("status: %s\n", names[status]);
}

/* Sleeps until the client has work: a ready socket or its next timer. */
static void wait_for_work(PROV_DEVICE_LL_HANDLE h)
{
    PROV_DEVICE_POLLFD fds[4];
    struct pollfd pfd[4];
    size_t n = 0, i;
    long timeout = Prov_Device_LL_Get_Timeout_Ms(h);

    Prov_Device_LL_Get_Pollfds(h, fds, 4, &n);
    if (n > 4)
        n = 4;
    for (i = 0; i < n; i++) {
        pfd[i].fd = fds[i].fd;
        pfd[i].events = fds[i].events;
        pfd[i].revents = 0;
    }
    if (timeout < 0 || timeout > 1000)
        timeout = 1000;
    poll(pfd, (nfds_t)n, (int)timeout);
}

int main(int argc, char **argv)
{
    outcome o = {false, PROV_DEVICE_RESULT_ERROR};
    PROV_DEVICE_LL_HANDLE h;
    uint32_t deadline = 60;
    int rounds;

    if (argc < 5) {
        fprintf(stderr, "usage: %s ENDPOINT ID_SCOPE REGISTRATION_ID KEY "
                "[CA_FILE]\n", argv[0]);
        return 2;
    }
    h = Prov_Device_LL_Create(argv[1], argv[2], Prov_Device_HTTP_Protocol);
    if (!h) {
        fprintf(stderr, "invalid endpoint or scope\n");
        return 2;
    }
    if (Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, argv[3]) ||
        Prov_Device_LL_SetOption(h, PROV_OPTION_SYMMETRIC_KEY, argv[4]) ||
        Prov_Device_LL_SetOption(h, PROV_OPTION_DEADLINE, &deadline) ||
        (argc > 5 && Prov_Device_LL_SetOption(h, OPTION_TRUSTED_CERT,
                                              argv[5])) ||
        Prov_Device_LL_Register_Device(h, on_registered, &o, on_status,
                                       NULL)) {
        fprintf(stderr, "error: %s\n", Prov_Device_LL_Get_Error(h)->message);
        Prov_Device_LL_Destroy(h);
        return 1;
    }
    /* Bounded: the client's own deadline ends it long before this. */
    for (rounds = 0; !o.done && rounds < 100000; rounds++) {
        Prov_Device_LL_DoWork(h);
        if (!o.done)
            wait_for_work(h);
    }
    if (o.result != PROV_DEVICE_RESULT_OK) {
        const PROV_DEVICE_ERROR_INFO *e = Prov_Device_LL_Get_Error(h);
        fprintf(stderr, "failed: %s: %s\n",
                Prov_Device_LL_Result_Name(e->result), e->message);
    }
    Prov_Device_LL_Destroy(h);
    return o.result == PROV_DEVICE_RESULT_OK ? 0 : 1;
}
