"""Symmetric-key attestation, endpoints and operation semantics."""

import time
import unittest

from helpers import (API, GROUP_KEY, KEY1, KEY2, SCOPE, EmulatorTestCase,
                     base_config, token)
import dps_sas  # noqa: E402  (path set up by helpers)

ENROLLMENTS = [
    {"type": "symmetric_key", "registration_id": "dev-1", "primary_key": KEY1,
     "secondary_key": KEY2, "device_id": "device-one", "assigned_hub": "hub-a.azure-devices.net"},
    {"type": "symmetric_key", "registration_id": "dev-echo", "primary_key": KEY1,
     "payload": "echo", "polls_before_assignment": 0},
    {"type": "symmetric_key", "registration_id": "dev-fixed", "primary_key": KEY1,
     "payload": {"greeting": "hello"}, "polls_before_assignment": 3, "retry_after": 2},
    {"type": "symmetric_key", "registration_id": "dev-off", "primary_key": KEY1, "enabled": False},
    {"type": "symmetric_key_group", "group_id": "g1", "primary_key": GROUP_KEY},
]


class SymmetricKeyTest(EmulatorTestCase):
    initial_config = base_config(ENROLLMENTS)

    def setUp(self):
        self.emu.configure(base_config(ENROLLMENTS))
        self.emu.clear_log()

    def test_register_poll_assigned_on_one_connection(self):
        conn = self.emu.connect()
        r = self.emu.register("dev-1", KEY1, conn=conn)
        self.assertEqual(r.status, 202)
        self.assertEqual(r.header("retry-after"), "1")
        self.assertIn("/0ne00000A0A/registrations/dev-1/register", r.header("location"))
        self.assertTrue(r.header("x-ms-request-id"))
        self.assertEqual(r.header("content-type"), "application/json; charset=utf-8")
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        body = r.json()
        self.assertEqual(body["status"], "assigning")
        self.assertRegex(body["operationId"], r"^5\.[0-9a-f]{16}\.[0-9a-f-]{36}$")
        p = self.emu.poll("dev-1", body["operationId"], KEY1, conn=conn)
        self.assertEqual(p.status, 200)
        res = p.json()
        self.assertEqual(res["status"], "assigned")
        self.assertEqual(res["operationId"], body["operationId"])
        st = res["registrationState"]
        self.assertEqual(st["assignedHub"], "hub-a.azure-devices.net")
        self.assertEqual(st["deviceId"], "device-one")
        self.assertEqual(st["registrationId"], "dev-1")
        self.assertEqual(st["substatus"], "initialAssignment")
        for f in ("createdDateTimeUtc", "lastUpdatedDateTimeUtc", "etag"):
            self.assertIn(f, st)
        self.assertRegex(st["createdDateTimeUtc"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
        self.assertNotIn("payload", st)
        conn.close()
        log = self.emu.log()
        self.assertEqual([e["status"] for e in log], [202, 200])
        self.assertEqual(log[0]["conn_id"], log[1]["conn_id"])

    def test_polls_before_assignment_and_retry_after(self):
        r = self.emu.register("dev-fixed", KEY1)
        op = r.json()["operationId"]
        self.assertEqual(r.header("retry-after"), "2")
        statuses = []
        for _ in range(3):
            p = self.emu.poll("dev-fixed", op, KEY1)
            statuses.append(p.status)
        self.assertEqual(statuses, [202, 202, 200])
        self.assertEqual(p.json()["registrationState"]["payload"], {"greeting": "hello"})
        # Polling a finished operation keeps answering the result.
        self.assertEqual(self.emu.poll("dev-fixed", op, KEY1).status, 200)

    def test_zero_polls_assigns_directly_and_echoes_payload(self):
        body = {"registrationId": "dev-echo", "payload": {"modelId": "dtmi:x;1", "n": [1, 2]}}
        r = self.emu.register("dev-echo", KEY1, body=body)
        self.assertEqual(r.status, 200)
        st = r.json()["registrationState"]
        self.assertEqual(st["payload"], body["payload"])
        self.assertEqual(st["deviceId"], "dev-echo")
        self.assertEqual(st["assignedHub"], "test-hub.azure-devices.net")

    def test_secondary_key_and_uppercase_encoding(self):
        self.assertEqual(self.emu.register("dev-1", KEY2).status, 202)
        auth = token(KEY1, "dev-1", upper_hex=True)
        self.assertIn("%2F", auth)
        self.assertEqual(self.emu.register("dev-1", auth=auth).status, 202)

    def test_registration_id_case_insensitive(self):
        self.assertEqual(self.emu.register("DEV-1", auth=token(KEY1, "DEV-1")).status, 202)

    def test_group_derived_key(self):
        rid = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
        dkey = dps_sas.derive_device_key(GROUP_KEY, rid)
        self.assertEqual(dkey, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=")   # KAT-1
        r = self.emu.register(rid, dkey)
        self.assertEqual(r.status, 202)
        p = self.emu.poll(rid, r.json()["operationId"], dkey)
        self.assertEqual(p.json()["registrationState"]["symmetricKey"],
                         {"enrollmentGroupId": "g1"})
        # The group key itself, or another device's derived key, is refused.
        self.assertDpsError(self.emu.register(rid, GROUP_KEY), 401, 401002)
        other = dps_sas.derive_device_key(GROUP_KEY, "other-device")
        self.assertDpsError(self.emu.register(rid, other), 401, 401002)

    def test_bad_signature(self):
        self.assertDpsError(self.emu.register("dev-1", "d3Jvbmcta2V5LXdyb25nLWtleQ=="), 401, 401002)

    def test_expired_token_with_skew(self):
        now = int(time.time())
        self.assertDpsError(self.emu.register("dev-1", auth=token(KEY1, "dev-1", now - 400)), 401, 401002)
        # Within the 5 minute skew: accepted.
        self.assertEqual(self.emu.register("dev-1", auth=token(KEY1, "dev-1", now - 200)).status, 202)

    def test_wrong_resource(self):
        # Token for another registration id, sent for dev-1.
        self.assertDpsError(self.emu.register("dev-1", auth=token(KEY1, "dev-echo")), 401, 401002)
        # Token for another scope.
        self.assertDpsError(self.emu.register("dev-1", auth=token(KEY1, "dev-1", scope="0neOTHER")), 401, 401002)

    def test_wrong_skn_and_no_skn(self):
        self.assertDpsError(self.emu.register("dev-1", auth=token(KEY1, "dev-1", skn="iothubowner")), 401, 401002)
        self.assertEqual(self.emu.register("dev-1", auth=token(KEY1, "dev-1", skn=None)).status, 202)

    def test_malformed_and_missing_authorization(self):
        self.assertDpsError(self.emu.register("dev-1", auth="Bearer abc"), 401, 401002)
        self.assertDpsError(self.emu.register("dev-1", auth="SharedAccessSignature sr=x"), 401, 401002)
        self.assertDpsError(self.emu.register("dev-1"), 401, 401002)

    def test_unknown_registration_and_scope(self):
        self.assertDpsError(self.emu.register("nobody", KEY1), 401, 401002)
        r = self.emu.request("PUT", f"/0neWRONG/registrations/dev-1/register?{API}",
                             {"registrationId": "dev-1"},
                             {"Authorization": token(KEY1, "dev-1", scope="0neWRONG")})
        self.assertDpsError(r, 404, 404201)

    def test_api_version_checks(self):
        auth = {"Authorization": token(KEY1, "dev-1")}
        r = self.emu.request("PUT", f"/{SCOPE}/registrations/dev-1/register",
                             {"registrationId": "dev-1"}, auth)
        self.assertDpsError(r, 400, 400001)
        r = self.emu.request("PUT", f"/{SCOPE}/registrations/dev-1/register?api-version=1999-01-01",
                             {"registrationId": "dev-1"}, auth)
        self.assertDpsError(r, 400)
        for v in ("2019-03-31", "2021-06-01", "2021-10-01", "2025-07-01-preview"):
            r = self.emu.request("PUT", f"/{SCOPE}/registrations/dev-1/register?api-version={v}",
                                 {"registrationId": "dev-1"}, auth)
            self.assertEqual(r.status, 202, v)

    def test_body_registration_id_mismatch_and_bad_json(self):
        r = self.emu.register("dev-1", KEY1, body={"registrationId": "dev-2"})
        self.assertDpsError(r, 400)
        r = self.emu.register("dev-1", KEY1, body=b"{not json")
        self.assertDpsError(r, 400)

    def test_disabled_enrollment(self):
        r = self.emu.register("dev-off", KEY1)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"operationId": "", "status": "disabled",
                                    "registrationState": {"registrationId": "dev-off",
                                                          "status": "disabled"}})

    def test_poll_requires_auth_and_known_operation(self):
        op = self.emu.register("dev-1", KEY1).json()["operationId"]
        self.assertDpsError(self.emu.poll("dev-1", op), 401, 401002)
        self.assertDpsError(self.emu.poll("dev-1", op, "d3Jvbmcta2V5LXdyb25nLWtleQ=="), 401, 401002)
        self.assertDpsError(self.emu.poll("dev-1", "5.0000000000000000.nope", KEY1), 404, 404203)
        # Someone else's operation id is not found for this registration.
        op2 = self.emu.register("dev-fixed", KEY1).json()["operationId"]
        self.assertDpsError(self.emu.poll("dev-1", op2, KEY1), 404, 404203)

    def test_status_lookup(self):
        self.assertDpsError(self.emu.lookup("dev-1", KEY1), 404, 404202)
        self.assertDpsError(self.emu.lookup("dev-1"), 401, 401002)
        op = self.emu.register("dev-1", KEY1).json()["operationId"]
        r = self.emu.lookup("dev-1", KEY1)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"registrationId": "dev-1", "status": "assigning"})
        self.emu.poll("dev-1", op, KEY1)
        r = self.emu.lookup("dev-1", KEY1)
        self.assertEqual(r.json()["status"], "assigned")
        self.assertEqual(r.json()["deviceId"], "device-one")

    def test_wrong_method_and_unknown_path(self):
        r = self.emu.request("GET", f"/{SCOPE}/registrations/dev-1/register?{API}")
        self.assertDpsError(r, 405)
        r = self.emu.request("GET", f"/nothing/here?{API}")
        self.assertDpsError(r, 404)


if __name__ == "__main__":
    unittest.main()
