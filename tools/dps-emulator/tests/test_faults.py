"""Fault injection knobs, each observed over real HTTPS."""

import http.client
import json
import socket
import ssl
import time
import unittest

from helpers import GROUP_KEY, KEY1, EmulatorTestCase, base_config
import dps_sas  # noqa: E402


def sym(reg_id="dev-1", **extra):
    e = {"type": "symmetric_key", "registration_id": reg_id, "primary_key": KEY1}
    e.update(extra)
    return e


class FaultTest(EmulatorTestCase):
    def setUp(self):
        self.emu.clear_log()

    def use(self, enrollments, **top):
        self.emu.configure(base_config(enrollments, **top))
        self.emu.clear_log()

    def test_429_twice_then_ok_with_retry_after(self):
        self.use([sym(faults=[{"kind": "status", "status": 429, "times": 2, "retry_after": 3}])])
        for _ in range(2):
            r = self.emu.register("dev-1", KEY1)
            body = self.assertDpsError(r, 429, 429001)
            self.assertEqual(r.header("retry-after"), "3")
            self.assertTrue(body["trackingId"])
        self.assertEqual(self.emu.register("dev-1", KEY1).status, 202)
        self.assertEqual([e["fault"] for e in self.emu.log()],
                         [["status:429"], ["status:429"], None])

    def test_429_default_and_absent_retry_after(self):
        self.use([sym(retry_after=7, faults=[{"kind": "status", "status": 429},
                                             {"kind": "status", "status": 429, "retry_after": None}])])
        self.assertEqual(self.emu.register("dev-1", KEY1).header("retry-after"), "7")
        r = self.emu.register("dev-1", KEY1)
        self.assertEqual(r.status, 429)
        self.assertIsNone(r.header("retry-after"))

    def test_5xx_only_on_poll(self):
        self.use([sym(faults=[{"kind": "status", "status": 503, "on": "poll"},
                              {"kind": "status", "status": 500, "on": "poll", "error_code": 500123}])])
        r = self.emu.register("dev-1", KEY1)
        self.assertEqual(r.status, 202)
        op = r.json()["operationId"]
        self.assertDpsError(self.emu.poll("dev-1", op, KEY1), 503, 503001)
        self.assertDpsError(self.emu.poll("dev-1", op, KEY1), 500, 500123)
        self.assertEqual(self.emu.poll("dev-1", op, KEY1).status, 200)

    def test_times_minus_one_is_forever(self):
        self.use([sym(faults=[{"kind": "status", "status": 500, "times": -1}])])
        for _ in range(4):
            self.assertEqual(self.emu.register("dev-1", KEY1).status, 500)

    def test_close_without_response(self):
        self.use([sym(faults=[{"kind": "close"}])])
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
            self.emu.register("dev-1", KEY1)
        self.assertEqual(self.emu.register("dev-1", KEY1).status, 202)
        log = self.emu.log()
        self.assertIsNone(log[0]["status"])
        self.assertEqual(log[0]["fault"], ["close"])
        self.assertNotEqual(log[0]["conn_id"], log[1]["conn_id"])

    def test_close_mid_response_chunked_and_content_length(self):
        for framing in (False, True):
            self.use([sym(faults=[{"kind": "close_mid_response"}])], content_length=framing)
            with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
                self.emu.register("dev-1", KEY1)

    def test_hang(self):
        self.use([sym(faults=[{"kind": "hang", "seconds": 0.6}])])
        t = time.monotonic()
        r = self.emu.register("dev-1", KEY1)
        self.assertGreaterEqual(time.monotonic() - t, 0.55)
        self.assertEqual(r.status, 202)
        # A client with a shorter timeout gives up.
        self.use([sym(faults=[{"kind": "hang", "seconds": 2}])])
        conn = self.emu.connect()
        conn.timeout = 0.3
        with self.assertRaises((socket.timeout, TimeoutError, ssl.SSLError)):
            self.emu.register("dev-1", KEY1, conn=conn)
        conn.close()

    def test_malformed_json(self):
        self.use([sym(faults=[{"kind": "malformed_json"}])])
        r = self.emu.register("dev-1", KEY1)
        self.assertEqual(r.status, 202)
        with self.assertRaises(ValueError):
            json.loads(r.raw)

    def test_oversized(self):
        self.use([sym(faults=[{"kind": "oversized", "bytes": 200000}])])
        r = self.emu.register("dev-1", KEY1)
        self.assertGreaterEqual(len(r.raw), 200000)
        self.assertEqual(r.json()["status"], "assigning")

    def test_content_type(self):
        self.use([sym(faults=[{"kind": "content_type", "value": "text/html"}])])
        self.assertEqual(self.emu.register("dev-1", KEY1).header("content-type"), "text/html")

    def test_failed_registration(self):
        self.use([sym(faults=[{"kind": "failed", "error_code": 400208,
                               "error_message": "No hub"}])])
        op = self.emu.register("dev-1", KEY1).json()["operationId"]
        p = self.emu.poll("dev-1", op, KEY1)
        self.assertEqual(p.status, 200)
        res = p.json()
        self.assertEqual(res["status"], "failed")
        self.assertEqual(res["operationId"], op)
        st = res["registrationState"]
        self.assertEqual((st["errorCode"], st["errorMessage"], st["status"]),
                         (400208, "No hub", "failed"))
        self.assertNotIn("assignedHub", st)
        # Only once: the next registration succeeds.
        self.use([sym(polls_before_assignment=0, faults=[{"kind": "failed"}])])
        r = self.emu.register("dev-1", KEY1).json()
        self.assertEqual((r["status"], r["registrationState"]["errorCode"]), ("failed", 400207))
        self.assertEqual(self.emu.register("dev-1", KEY1).json()["status"], "assigned")

    def test_retry_after_verbatim(self):
        date = "Wed, 21 Oct 2026 07:28:00 GMT"
        self.use([sym(faults=[{"kind": "retry_after", "value": date}])])
        r = self.emu.register("dev-1", KEY1)
        self.assertEqual(r.header("retry-after"), date)
        self.assertEqual(self.emu.register("dev-1", KEY1).header("retry-after"), "1")

    def test_global_faults_and_order(self):
        self.use([sym()], faults=[{"kind": "status", "status": 503},
                                  {"kind": "status", "status": 429, "times": 2}])
        got = [self.emu.register("dev-1", KEY1).status for _ in range(4)]
        self.assertEqual(got, [503, 429, 429, 202])

    def test_group_faults_count_per_device(self):
        self.use([{"type": "symmetric_key_group", "group_id": "g", "primary_key": GROUP_KEY,
                   "faults": [{"kind": "status", "status": 429}]}])
        for rid in ("dev-a", "dev-b"):
            key = dps_sas.derive_device_key(GROUP_KEY, rid)
            self.assertEqual(self.emu.register(rid, key).status, 429)
            self.assertEqual(self.emu.register(rid, key).status, 202)

    def test_rate_limit(self):
        self.use([sym()], rate_limit_per_minute=2)
        self.assertEqual(self.emu.register("dev-1", KEY1).status, 202)
        self.assertEqual(self.emu.register("dev-1", KEY1).status, 202)
        r = self.emu.register("dev-1", KEY1)
        self.assertDpsError(r, 429)
        self.assertGreaterEqual(int(r.header("retry-after")), 1)
        self.assertLessEqual(int(r.header("retry-after")), 60)

    def test_bad_fault_config_rejected(self):
        status, body = self.emu.control("PUT", "config",
                                        base_config([sym(faults=[{"kind": "nope"}])]))
        self.assertEqual(status, 400)
        self.assertIn("nope", body["error"])


if __name__ == "__main__":
    unittest.main()
