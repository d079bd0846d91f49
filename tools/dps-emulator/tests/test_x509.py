"""X.509 attestation: decided at the HTTP level after an accepting TLS
handshake, as the real service does (401/401002 'Invalid certificate.')."""

import unittest

from helpers import EmulatorTestCase, base_config, pki, pki_path


def _read(path):
    with open(path) as f:
        return f.read()


def enrollments():
    pki()
    return [
        {"type": "x509", "registration_id": "x509-device-01",
         "certificate": pki_path("device-01.pem"), "device_id": "x1"},
        {"type": "x509", "registration_id": "x509-device-02",
         "certificate": _read(pki_path("device-selfsigned.pem"))},   # inline PEM
        {"type": "x509", "registration_id": "x509-expired-01",
         "certificate": pki_path("expired-device.pem")},
        {"type": "x509_group", "group_id": "xg-root", "ca_certificate": pki_path("root-ca.pem"),
         "payload": "echo"},
    ]


class X509Test(EmulatorTestCase):
    def setUp(self):
        self.emu.configure(base_config(enrollments()))
        self.emu.clear_log()

    def reg(self, reg_id, cert, key=None, **kw):
        return self.emu.register(reg_id, cert=pki_path(cert),
                                 tls_key=pki_path(key or cert.replace("-chain", "").replace(".pem", ".key")),
                                 **kw)

    def test_individual_root_signed(self):
        conn = self.emu.connect(pki_path("device-01.pem"), pki_path("device-01.key"))
        r = self.emu.register("x509-device-01", conn=conn)
        self.assertEqual(r.status, 202, r.raw)
        p = self.emu.poll("x509-device-01", r.json()["operationId"], conn=conn)
        st = p.json()["registrationState"]
        self.assertEqual(st["deviceId"], "x1")
        info = st["x509"]["certificateInfo"]
        self.assertEqual(info["subjectName"], "CN=x509-device-01")
        self.assertEqual(len(info["sha256Thumbprint"]), 64)
        conn.close()
        log = self.emu.log()
        self.assertEqual(log[0]["client_cert_cn"], "x509-device-01")
        self.assertNotIn("Authorization", log[0]["headers"])

    def test_individual_self_signed(self):
        self.assertEqual(self.reg("x509-device-02", "device-selfsigned.pem").status, 202)

    def test_encrypted_key_works(self):
        ctx = self.emu.ssl_context(pki_path("device-01.pem"), pki_path("device-01-encrypted.key"),
                                   password="secret")
        conn = self.emu.connect(ctx=ctx)
        r = self.emu.register("x509-device-01", conn=conn)
        conn.close()
        self.assertEqual(r.status, 202)

    def test_group_via_intermediate_chain(self):
        r = self.reg("x509-group-device-01", "group-device-01-chain.pem",
                     body={"registrationId": "x509-group-device-01", "payload": {"k": 1}})
        self.assertEqual(r.status, 202, r.raw)
        p = self.emu.poll("x509-group-device-01", r.json()["operationId"],
                          cert=pki_path("group-device-01-chain.pem"),
                          tls_key=pki_path("group-device-01.key"))
        st = p.json()["registrationState"]
        self.assertEqual(st["x509"]["enrollmentGroupId"], "xg-root")
        self.assertEqual(st["x509"]["signingCertificateInfo"]["subjectName"], "CN=DPS Test Root CA")
        self.assertEqual(st["payload"], {"k": 1})

    def test_group_leaf_without_chain_is_rejected_for_root_ca(self):
        # The intermediate is missing, so the leaf cannot be tied to the root.
        self.assertDpsError(self.reg("x509-group-device-01", "group-device-01.pem"), 401, 401002)

    def test_group_enrolled_intermediate_accepts_leaf_only(self):
        self.emu.configure(base_config([{"type": "x509_group", "group_id": "xg-int",
                                         "ca_certificate": pki_path("intermediate-ca.pem")}]))
        self.assertEqual(self.reg("x509-group-device-02", "group-device-02.pem").status, 202)

    def test_unknown_ca(self):
        body = self.assertDpsError(self.reg("x509-unknown-01", "unknown-device.pem"), 401, 401002)
        self.assertEqual(body["message"], "Invalid certificate.")
        self.assertIn("x509", self.emu.log()[0]["reason"])

    def test_cn_mismatch(self):
        # Valid enrolled cert used for another registration id.
        self.assertDpsError(self.reg("x509-device-02", "device-01.pem"), 401, 401002)
        self.assertDpsError(self.reg("x509-group-device-02", "group-device-01-chain.pem"), 401, 401002)

    def test_expired(self):
        self.assertDpsError(self.reg("x509-expired-01", "expired-device.pem"), 401, 401002)

    def test_no_certificate(self):
        self.assertDpsError(self.emu.register("x509-device-01"), 401, 401002)


if __name__ == "__main__":
    unittest.main()
