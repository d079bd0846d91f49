"""TPM attestation: the 401 challenge, activation of the blob with a
software TPM (tests/tpm_soft.py), SAS signed with the recovered key, and the
final hub-key blob. Also unit checks of dps_tpm against docs/protocol.md."""

import base64
import os
import subprocess
import tempfile
import unittest

from helpers import PYTHON, SCOPE, TOOL_DIR, EmulatorTestCase, base_config
import dps_sas   # noqa: E402
import dps_tpm   # noqa: E402
import tpm_soft  # noqa: E402

KAT5_EK = ("AToAAQALAAMAsgAgg3GXZ0SEs/gakMyNRqXXJP1S124GUgtk8qHaGzMUaaoABgCAAEMAEAgAAAAAAAEAopqgkUBwtpr1"
           "sCgVJcEZxsJtpmtOAt9K7SjGFe4hsp6DJ/dd2E5UFzBC+Jp8Fzqf5ukRBkqrAgIuAvHRsruIedk1uarJSLhbDpFL"
           "HxFd7iDNcYfrvdgVNT2T9zrvkh2y04WuRQg2D5qf0tZF82jeTjR/YJK7uWhaRwWOwZ3b1XD9l6wFOrwK/Ic0PEsj"
           "neFXQzL0n9uKyuHmHNz+wHppmOiMAabvnXXEin9ou7/iowY/+YhFm3j7atsVvxMI5HEM3Mq+W4imUuzPxVX7fZH+"
           "oWPKP5ofpWBTf+MdttGby1AjGnv8JE69JriOYoZG2/4qbsfv9M7a7NFrBlaW7Rt36w==")

_TPM = None


def soft_tpm():
    """RSA key generation is slow-ish: share one software TPM per run."""
    global _TPM
    if _TPM is None:
        _TPM = (tpm_soft.SoftTpm(), tpm_soft.SoftTpm())
    return _TPM


def b64(data):
    return base64.b64encode(data).decode("ascii")


class TpmBlobUnitTest(unittest.TestCase):
    def test_kat5_registration_id(self):
        ek = base64.b64decode(KAT5_EK)
        self.assertEqual(dps_tpm.registration_id_from_ek(ek),
                         "6rek5qncnygnkzflohxz4u6zlfly6ktm4klsc7xrbgvesqyllnfa")
        # Our EK template builder reproduces the C SDK's EK bytes exactly.
        pub, _name = dps_tpm.parse_rsa_public(ek)
        self.assertEqual(dps_tpm.rsa_tpm2b_public(pub.public_numbers().n, "ek"), ek)
        self.assertTrue(KAT5_EK.startswith("AToAAQALAAMAsgAg"))
        srk = dps_tpm.rsa_tpm2b_public(pub.public_numbers().n, "srk")
        self.assertTrue(b64(srk).startswith("ARoAAQALAAMEcgAA"))
        self.assertEqual(len(srk), 284)

    def test_blob_layout_and_round_trip(self):
        tpm, _ = soft_tpm()
        key = os.urandom(32)
        blob = dps_tpm.build_activation_blob(tpm.ek_pub, tpm.srk_pub, key, b"uri-text")
        sizes = [len(p) for p in dps_tpm.split_activation_blob(blob)]
        self.assertEqual(sizes, [52, 256, 142, 256, 80, 8])   # docs/protocol.md §6.4
        self.assertEqual(tpm.activate(blob), key)
        self.assertEqual(tpm.last_uri, b"uri-text")

    def test_blob_for_other_tpm_fails(self):
        tpm, other = soft_tpm()
        blob = dps_tpm.build_activation_blob(tpm.ek_pub, tpm.srk_pub, os.urandom(32))
        with self.assertRaises(Exception):
            other.activate(blob)

    def test_kdfa_known_structure(self):
        # Two 32-byte blocks, counter-mode: the first block is independent of `bits`
        # only through the trailing length field, so 256 and 512 differ.
        k = b"k" * 32
        self.assertEqual(len(dps_tpm.kdfa(k, b"STORAGE", b"u", b"", 128)), 16)
        self.assertNotEqual(dps_tpm.kdfa(k, b"X", b"", b"", 256),
                            dps_tpm.kdfa(k, b"X", b"", b"", 512)[:32])

    def test_cli(self):
        tpm, _ = soft_tpm()
        with tempfile.TemporaryDirectory() as d:
            ek, srk, out = (os.path.join(d, n) for n in ("ek.pub", "srk.pub", "blob.bin"))
            with open(ek, "wb") as f:
                f.write(tpm.ek_pub)
            with open(srk, "w") as f:
                f.write(b64(tpm.srk_pub))        # Base64 text is accepted too
            key = os.urandom(32)
            cli = os.path.join(TOOL_DIR, "dps_tpm.py")
            subprocess.run([PYTHON, cli, "blob", "--ek", ek, "--srk", srk, "--key", key.hex(),
                            "--out", out], check=True, timeout=30)
            with open(out, "rb") as f:
                self.assertEqual(tpm.activate(f.read()), key)
            rid = subprocess.run([PYTHON, cli, "regid", "--ek", ek], check=True, timeout=30,
                                 capture_output=True, text=True).stdout.strip()
            self.assertEqual(rid, tpm.registration_id)


class TpmFlowTest(EmulatorTestCase):
    def setUp(self):
        tpm, other = soft_tpm()
        self.tpm, self.other = tpm, other
        self.rid = tpm.registration_id
        self.emu.configure(base_config([
            {"type": "tpm", "endorsement_key": b64(tpm.ek_pub), "device_id": "tpm-dev",
             "payload": "echo"},
            {"type": "tpm", "registration_id": "named-tpm", "endorsement_key": b64(other.ek_pub)},
        ]))
        self.emu.clear_log()

    def body(self, tpm, rid=None, payload=None):
        b = {"registrationId": rid or tpm.registration_id,
             "tpm": {"endorsementKey": b64(tpm.ek_pub), "storageRootKey": b64(tpm.srk_pub)}}
        if payload is not None:
            b["payload"] = payload
        return b

    def test_challenge_activation_and_hub_key(self):
        conn = self.emu.connect()
        body = self.body(self.tpm, payload={"p": 1})
        r = self.emu.register(self.rid, body=body, conn=conn)
        self.assertEqual(r.status, 401)
        ch = r.json()
        self.assertEqual(ch["keyName"], "registration")
        self.assertNotIn("status", ch)
        self.assertIn("message", ch)
        k = self.tpm.activate(base64.b64decode(ch["authenticationKey"]))
        self.assertEqual(len(k), 32)

        auth = dps_sas.make_token(k, SCOPE, self.rid, int(__import__("time").time()) + 600,
                                  skn=ch["keyName"])
        r = self.emu.register(self.rid, body=body, auth=auth, conn=conn)
        self.assertEqual(r.status, 202, r.raw)
        p = self.emu.poll(self.rid, r.json()["operationId"], auth=auth, conn=conn)
        self.assertEqual(p.status, 200, p.raw)
        st = p.json()["registrationState"]
        self.assertEqual(st["deviceId"], "tpm-dev")
        self.assertEqual(st["payload"], {"p": 1})
        hub_key = self.tpm.activate(base64.b64decode(st["tpm"]["authenticationKey"]))
        conn.close()

        regs = self.emu.control("GET", "registrations")[1]
        rec = [x for x in regs if x["registration_id"] == self.rid][0]
        self.assertEqual(base64.b64decode(rec["hub_key"]), hub_key)
        self.assertEqual(base64.b64decode(rec["tpm_challenge_key"]), k)
        self.assertEqual(len({e["conn_id"] for e in self.emu.log()}), 1)

    def test_unknown_or_wrong_ek(self):
        # Another TPM's EK under this registration id.
        r = self.emu.register(self.rid, body=self.body(self.other, rid=self.rid))
        self.assertDpsError(r, 401, 401002)
        # An EK nobody enrolled, under its own derived id.
        stranger = tpm_soft.SoftTpm.__new__(tpm_soft.SoftTpm)
        stranger.ek_pub = dps_tpm.rsa_tpm2b_public(os.urandom(255) + b"\x01", "ek")
        stranger.srk_pub = self.tpm.srk_pub
        r = self.emu.register(stranger.registration_id, body=self.body(stranger))
        self.assertDpsError(r, 401, 401002)

    def test_sas_with_wrong_key_or_before_challenge(self):
        body = self.body(self.other, rid="named-tpm")
        bad = dps_sas.make_token(os.urandom(32), SCOPE, "named-tpm", 2_000_000_000)
        self.assertDpsError(self.emu.register("named-tpm", body=body, auth=bad), 401, 401002)
        r = self.emu.register("named-tpm", body=body)
        self.assertEqual(r.status, 401)
        self.assertIn("authenticationKey", r.json())
        self.assertDpsError(self.emu.register("named-tpm", body=body, auth=bad), 401, 401002)
        k = self.other.activate(base64.b64decode(r.json()["authenticationKey"]))
        good = dps_sas.make_token(k, SCOPE, "named-tpm", 2_000_000_000)
        self.assertEqual(self.emu.register("named-tpm", body=body, auth=good).status, 202)


if __name__ == "__main__":
    unittest.main()
