"""The reply_overrides knob: hostile service-made values for client tests."""

import unittest

from helpers import KEY1, EmulatorTestCase, base_config

HOSTILE_OP = "op\r\nX-Injected: 1"
ENROLLMENTS = [
    {"type": "symmetric_key", "registration_id": "dev-1", "primary_key": KEY1,
     "device_id": "dev;SharedAccessKey=AAAA", "assigned_hub": "evil.net;x=1",
     "reply_overrides": {"operationId": HOSTILE_OP, "registrationId": "other id"}},
    {"type": "symmetric_key", "registration_id": "dev-2", "primary_key": KEY1},
]


class ReplyOverridesTest(EmulatorTestCase):
    initial_config = base_config(ENROLLMENTS)

    def setUp(self):
        self.emu.configure(base_config(ENROLLMENTS))

    def test_values_replaced_as_given(self):
        r = self.emu.register("dev-1", KEY1)
        self.assertEqual(r.status, 202)
        self.assertEqual(r.json()["operationId"], HOSTILE_OP)

    def test_assigned_values_unchecked(self):
        cfg = base_config(ENROLLMENTS, polls_before_assignment=0)
        self.emu.configure(cfg)
        st = self.emu.register("dev-1", KEY1).json()["registrationState"]
        self.assertEqual(st["registrationId"], "other id")
        self.assertEqual(st["deviceId"], "dev;SharedAccessKey=AAAA")
        self.assertEqual(st["assignedHub"], "evil.net;x=1")

    def test_other_enrollments_untouched(self):
        r = self.emu.register("dev-2", KEY1)
        self.assertRegex(r.json()["operationId"], r"^5\.")

    def test_bad_knob_refused(self):
        for bad in ({"status": "x"}, {"operationId": 5}, ["operationId"]):
            cfg = base_config([dict(ENROLLMENTS[1], reply_overrides=bad)])
            status, _ = self.emu.control("PUT", "config", cfg)
            self.assertEqual(status, 400, bad)


if __name__ == "__main__":
    unittest.main()
