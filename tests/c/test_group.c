/*
 * The group C API without a service: argument and state rules, and
 * registrations of a group against a closed loopback port (each ends in
 * its callback with TRANSPORT), with handles and the group destroyed
 * from inside callbacks. The end-to-end fleet runs in spec/07.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prov_device_ll_group.h"
#include "testing.h"

#define KEY "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
#define FLEET 6

typedef struct {
    int calls;
    PROV_DEVICE_RESULT result;
    PROV_DEVICE_LL_HANDLE destroy_handle; /* destroyed in the callback */
    PROV_DEVICE_LL_GROUP_HANDLE destroy_group;
} outcome;

static void on_result(PROV_DEVICE_RESULT r, const char *hub, const char *device,
                      void *ctx)
{
    outcome *o = ctx;
    (void)hub;
    (void)device;
    o->calls++;
    o->result = r;
    if (o->destroy_handle)
        Prov_Device_LL_Destroy(o->destroy_handle);
    if (o->destroy_group)
        Prov_Device_LL_Group_Destroy(o->destroy_group);
}

static PROV_DEVICE_LL_HANDLE make_refused(const char *id)
{
    PROV_DEVICE_LL_HANDLE h = Prov_Device_LL_Create(
        "127.0.0.1:1", "0ne00000A0A", Prov_Device_HTTP_Protocol);
    uint32_t none = 0;

    Prov_Device_LL_SetOption(h, PROV_REGISTRATION_ID, id);
    Prov_Device_LL_SetOption(h, PROV_OPTION_SYMMETRIC_KEY, KEY);
    Prov_Device_LL_SetOption(h, PROV_OPTION_MAX_RETRIES, &none);
    return h;
}

static void test_arguments(void)
{
    PROV_DEVICE_LL_GROUP_HANDLE g = Prov_Device_LL_Group_Create();
    PROV_DEVICE_LL_HANDLE h = make_refused("dev-1");
    uint32_t cap = 4;
    size_t n = 99;

    CHECK(g != NULL);
    Prov_Device_LL_Group_Destroy(NULL);
    Prov_Device_LL_Group_DoWork(NULL);
    CHECK(!Prov_Device_LL_Group_Is_Busy(NULL));
    CHECK_INT(Prov_Device_LL_Group_Get_Timeout_Ms(NULL), -1);
    CHECK_INT(Prov_Device_LL_Group_Attach(NULL, h),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Group_Attach(g, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Group_Detach(NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Group_SetOption(g, "bogus", &cap),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Group_SetOption(
                  g, PROV_GROUP_OPTION_MAX_CONNECTIONS, NULL),
              PROV_DEVICE_RESULT_INVALID_ARG);
    CHECK_INT(Prov_Device_LL_Group_SetOption(
                  g, PROV_GROUP_OPTION_MAX_CONNECTIONS, &cap),
              PROV_DEVICE_RESULT_OK);
    CHECK_INT(Prov_Device_LL_Group_Get_Pollfds(g, NULL, 0, &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(Prov_Device_LL_Group_Get_Pollfds(g, NULL, 1, &n),
              PROV_DEVICE_RESULT_INVALID_ARG);
    /* An idle group: nothing to wait for, nothing busy. */
    CHECK_INT(Prov_Device_LL_Group_Get_Timeout_Ms(g), -1);
    CHECK_INT(Prov_Device_LL_Group_Wait(g, -1), 0);
    CHECK(Prov_Device_LL_Group_Run(g, 1000));
    CHECK_INT(Prov_Device_LL_Group_Attach(g, h), PROV_DEVICE_RESULT_OK);
    CHECK_INT(Prov_Device_LL_Group_Attach(g, h), PROV_DEVICE_RESULT_OK);
    {
        PROV_DEVICE_LL_GROUP_HANDLE other = Prov_Device_LL_Group_Create();
        CHECK_INT(Prov_Device_LL_Group_Attach(other, h),
                  PROV_DEVICE_RESULT_INVALID_STATE);
        Prov_Device_LL_Group_Destroy(other);
    }
    CHECK_INT(Prov_Device_LL_Group_Detach(h), PROV_DEVICE_RESULT_OK);
    CHECK_INT(Prov_Device_LL_Group_Attach(g, h), PROV_DEVICE_RESULT_OK);
    /* Destroying an attached handle detaches it. */
    Prov_Device_LL_Destroy(h);
    Prov_Device_LL_Group_Destroy(g);
}

/* A fleet against a refused port: every callback comes once, with
 * TRANSPORT, from the group's DoWork; handles stay reusable. */
static void test_refused_fleet(void)
{
    PROV_DEVICE_LL_GROUP_HANDLE g = Prov_Device_LL_Group_Create();
    PROV_DEVICE_LL_HANDLE h[FLEET];
    outcome o[FLEET];
    char id[16];
    int i;

    memset(o, 0, sizeof(o));
    for (i = 0; i < FLEET; i++) {
        snprintf(id, sizeof(id), "dev-%d", i);
        h[i] = make_refused(id);
        CHECK_INT(Prov_Device_LL_Group_Attach(g, h[i]), 0);
        CHECK_INT(
            Prov_Device_LL_Register_Device(h[i], on_result, &o[i], NULL, NULL),
            0);
    }
    CHECK(Prov_Device_LL_Group_Is_Busy(g));
    CHECK_INT(Prov_Device_LL_Group_Get_Timeout_Ms(g), 0);
    {
        uint32_t cap = 2;
        CHECK_INT(Prov_Device_LL_Group_SetOption(
                      g, PROV_GROUP_OPTION_MAX_CONNECTIONS, &cap),
                  PROV_DEVICE_RESULT_INVALID_STATE);
    }
    CHECK_INT(Prov_Device_LL_Group_Detach(h[0]),
              PROV_DEVICE_RESULT_INVALID_STATE);
    CHECK(Prov_Device_LL_Group_Run(g, 20000));
    for (i = 0; i < FLEET; i++) {
        CHECK_INT(o[i].calls, 1);
        CHECK_INT(o[i].result, PROV_DEVICE_RESULT_TRANSPORT);
        CHECK(!Prov_Device_LL_Is_Busy(h[i]));
    }
    /* Again, with handles destroying themselves and their neighbours
     * from their callbacks. */
    memset(o, 0, sizeof(o));
    o[0].destroy_handle = h[0];
    o[1].destroy_handle = h[2];
    for (i = 0; i < FLEET; i++)
        if (i != 2)
            CHECK_INT(Prov_Device_LL_Register_Device(h[i], on_result, &o[i],
                                                     NULL, NULL),
                      0);
    CHECK(Prov_Device_LL_Group_Run(g, 20000));
    for (i = 3; i < FLEET; i++)
        CHECK_INT(o[i].calls, 1);
    for (i = 3; i < FLEET; i++)
        Prov_Device_LL_Destroy(h[i]);
    Prov_Device_LL_Destroy(h[1]);
    Prov_Device_LL_Group_Destroy(g);
}

/* The group destroyed from a callback: the others are aborted without a
 * callback, Run returns false, and the handles work alone afterwards. */
static void test_group_destroyed_in_callback(void)
{
    PROV_DEVICE_LL_GROUP_HANDLE g = Prov_Device_LL_Group_Create();
    PROV_DEVICE_LL_HANDLE h[FLEET];
    outcome o[FLEET];
    int i, delivered = 0;

    memset(o, 0, sizeof(o));
    for (i = 0; i < FLEET; i++) {
        h[i] = make_refused("dev");
        o[i].destroy_group = g;
        Prov_Device_LL_Group_Attach(g, h[i]);
        CHECK_INT(
            Prov_Device_LL_Register_Device(h[i], on_result, &o[i], NULL, NULL),
            0);
    }
    CHECK(!Prov_Device_LL_Group_Run(g, 20000));
    for (i = 0; i < FLEET; i++) {
        delivered += o[i].calls;
        CHECK(!Prov_Device_LL_Is_Busy(h[i]));
    }
    CHECK_INT(delivered, 1);
    /* Alone now: a registration runs with the handle's own DoWork. */
    memset(&o[0], 0, sizeof(o[0]));
    CHECK_INT(
        Prov_Device_LL_Register_Device(h[0], on_result, &o[0], NULL, NULL), 0);
    for (i = 0; i < 2000 && !o[0].calls; i++) {
        Prov_Device_LL_DoWork(h[0]);
        poll(NULL, 0, 5);
    }
    CHECK_INT(o[0].calls, 1);
    for (i = 0; i < FLEET; i++)
        Prov_Device_LL_Destroy(h[i]);
}

/* Destroyed from a callback run by the member's own DoWork. */
static void test_group_destroyed_from_member_dowork(void)
{
    PROV_DEVICE_LL_GROUP_HANDLE g = Prov_Device_LL_Group_Create();
    PROV_DEVICE_LL_HANDLE h = make_refused("dev");
    outcome o;
    int i;

    memset(&o, 0, sizeof(o));
    o.destroy_group = g;
    Prov_Device_LL_Group_Attach(g, h);
    CHECK_INT(Prov_Device_LL_Register_Device(h, on_result, &o, NULL, NULL), 0);
    for (i = 0; i < 2000 && !o.calls; i++) {
        Prov_Device_LL_DoWork(h);
        poll(NULL, 0, 5);
    }
    CHECK_INT(o.calls, 1);
    Prov_Device_LL_Destroy(h);
}

int main(void)
{
    RUN(test_arguments);
    RUN(test_refused_fleet);
    RUN(test_group_destroyed_in_callback);
    RUN(test_group_destroyed_from_member_dowork);
    return testing_done();
}
