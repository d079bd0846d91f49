"""Certificate issuance (api-version 2025-07-01-preview): `csr` in the
register body, `issuedCertificateChain` in the assigned answer."""

import base64
import os
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers import KEY1, SCOPE, EmulatorTestCase, base_config, token

PREVIEW = "api-version=2025-07-01-preview"
ENROLLMENTS = [
    {"type": "symmetric_key", "registration_id": "dev-1", "primary_key": KEY1},
    {"type": "symmetric_key", "registration_id": "dev-now", "primary_key": KEY1,
     "polls_before_assignment": 0},
]


def make_csr(cn, key=None, sign_key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .sign(sign_key or key, hashes.SHA256()))
    return key, base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


class CsrTest(EmulatorTestCase):
    initial_config = base_config(ENROLLMENTS)

    def setUp(self):
        self.emu.configure(base_config(ENROLLMENTS))
        self.emu.clear_log()

    def put(self, reg_id, body, api=PREVIEW):
        return self.emu.request(
            "PUT", f"/{SCOPE}/registrations/{reg_id}/register?{api}", body,
            {"Authorization": token(KEY1, reg_id)})

    def poll(self, reg_id, op_id, api=PREVIEW):
        return self.emu.request(
            "GET", f"/{SCOPE}/registrations/{reg_id}/operations/{op_id}?{api}", None,
            {"Authorization": token(KEY1, reg_id)})

    def issuing_ca(self):
        status, body = self.emu.control("GET", "issuing-ca")
        self.assertEqual(status, 200)
        return x509.load_pem_x509_certificate(body["pem"].encode())

    def check_chain(self, chain, reg_id, key):
        self.assertEqual(len(chain), 2)
        leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        ca = x509.load_der_x509_certificate(base64.b64decode(chain[1]))
        self.assertEqual(ca, self.issuing_ca())
        self.assertEqual(leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         reg_id)
        self.assertEqual(leaf.issuer, ca.subject)
        self.assertEqual(
            leaf.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo),
            key.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)
        self.assertFalse(leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        # The CA's signature over the leaf.
        ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                               ec.ECDSA(leaf.signature_hash_algorithm))

    def test_issues_leaf_and_ca_on_the_final_answer(self):
        key, csr = make_csr("dev-1")
        r = self.put("dev-1", {"registrationId": "dev-1", "csr": csr})
        self.assertEqual(r.status, 202, r.raw)
        self.assertNotIn("issuedCertificateChain", r.raw.decode())
        p = self.poll("dev-1", r.json()["operationId"])
        self.assertEqual(p.status, 200, p.raw)
        st = p.json()["registrationState"]
        self.assertEqual(st["status"], "assigned")
        self.check_chain(st["issuedCertificateChain"], "dev-1", key)
        # Polling again gives the same certificate, not a new one.
        again = self.poll("dev-1", r.json()["operationId"]).json()
        self.assertEqual(again["registrationState"]["issuedCertificateChain"],
                         st["issuedCertificateChain"])

    def test_rsa_request_and_immediate_assignment(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _, csr = make_csr("dev-now", key)
        r = self.put("dev-now", {"registrationId": "dev-now", "csr": csr})
        self.assertEqual(r.status, 200, r.raw)
        chain = r.json()["registrationState"]["issuedCertificateChain"]
        leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        self.assertEqual(leaf.public_key().public_numbers(), key.public_key().public_numbers())
        self.issuing_ca().public_key().verify(
            leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))

    def test_no_chain_without_csr(self):
        r = self.put("dev-now", {"registrationId": "dev-now"})
        self.assertEqual(r.status, 200)
        self.assertNotIn("issuedCertificateChain", r.json()["registrationState"])

    def test_csr_needs_the_preview_api_version(self):
        _, csr = make_csr("dev-1")
        r = self.put("dev-1", {"registrationId": "dev-1", "csr": csr},
                     api="api-version=2021-06-01")
        body = self.assertDpsError(r, 400)
        self.assertIn("2025-07-01-preview", body["message"])

    def test_cn_must_equal_registration_id(self):
        _, csr = make_csr("someone-else")
        body = self.assertDpsError(self.put("dev-1", {"registrationId": "dev-1", "csr": csr}),
                                   400)
        self.assertIn("does not equal the registration id", body["message"])

    def test_bad_signature_and_garbage(self):
        key = ec.generate_private_key(ec.SECP256R1())
        good = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev-1")])).sign(
                key, hashes.SHA256())
        der = bytearray(good.public_bytes(serialization.Encoding.DER))
        der[-5] ^= 0x01  # inside the signature
        bad = base64.b64encode(bytes(der)).decode()
        body = self.assertDpsError(self.put("dev-1", {"registrationId": "dev-1", "csr": bad}),
                                   400)
        self.assertIn("csr", body["message"])
        for junk in ("not base64!", base64.b64encode(os.urandom(40)).decode(), 42,
                     "-----BEGIN CERTIFICATE REQUEST-----"):
            r = self.put("dev-1", {"registrationId": "dev-1", "csr": junk})
            self.assertDpsError(r, 400)

    def test_lookup_refuses_csr_and_omits_the_chain(self):
        key, csr = make_csr("dev-now")
        self.assertEqual(self.put("dev-now", {"registrationId": "dev-now", "csr": csr}).status,
                         200)
        auth = {"Authorization": token(KEY1, "dev-now")}
        r = self.emu.request("POST", f"/{SCOPE}/registrations/dev-now?{PREVIEW}",
                             {"registrationId": "dev-now", "csr": csr}, auth)
        self.assertDpsError(r, 400)
        r = self.emu.request("POST", f"/{SCOPE}/registrations/dev-now?{PREVIEW}",
                             {"registrationId": "dev-now"}, auth)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "assigned")
        self.assertNotIn("issuedCertificateChain", r.json())

    def test_service_without_the_preview(self):
        self.emu.configure(base_config(ENROLLMENTS, certificate_issuance=False))
        _, csr = make_csr("dev-1")
        body = self.assertDpsError(self.put("dev-1", {"registrationId": "dev-1", "csr": csr}),
                                   400, 400001)
        self.assertIn("not supported", body["message"])
        # Other api-versions are unaffected.
        r = self.put("dev-now", {"registrationId": "dev-now"}, api="api-version=2021-06-01")
        self.assertEqual(r.status, 200)

    def test_issues_from_the_pki_issuing_ca(self):
        from helpers import pki_path
        with open(pki_path("issuing-ca.pem"), "rb") as f:
            self.assertEqual(self.issuing_ca(), x509.load_pem_x509_certificate(f.read()))
        key, csr = make_csr("dev-now")
        chain = self.put("dev-now", {"registrationId": "dev-now", "csr": csr}).json()[
            "registrationState"]["issuedCertificateChain"]
        self.check_chain(chain, "dev-now", key)

    def test_issuing_ca_written_out(self):
        from helpers import Emulator
        path = os.path.join(self.emu.tmp, "issuing-ca.pem")
        with Emulator(base_config(ENROLLMENTS), ["--issuing-ca-out", path]) as emu:
            with open(path, "rb") as f:
                written = x509.load_pem_x509_certificate(f.read())
            status, body = emu.control("GET", "issuing-ca")
            self.assertEqual(x509.load_pem_x509_certificate(body["pem"].encode()), written)
            self.assertTrue(written.extensions.get_extension_for_class(
                x509.BasicConstraints).value.ca)


if __name__ == "__main__":
    unittest.main()
