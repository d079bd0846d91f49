"""Certificate issuance of the 2025-07-01-preview api-version: the device
sends a PKCS#10 request (`csr`, Base64 DER) with its registration, and the
final `assigned` answer carries `registrationState.issuedCertificateChain`
(Base64 DER, leaf first). This module checks the request and issues the
leaf from a test issuing CA made at start-up (EC P-256, self-signed).
"""

import base64
import binascii
import datetime
import os
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CSR_API_VERSION = "2025-07-01-preview"
DEFAULT_VALIDITY_S = 30 * 24 * 3600


class CsrError(Exception):
    """The request is refused; the message goes to the device (HTTP 400)."""


def check_csr(value, registration_id):
    """Returns the parsed request, or raises CsrError saying what is wrong."""
    if not isinstance(value, str) or not value:
        raise CsrError("The csr must be a non-empty Base64 string.")
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CsrError("The csr is not Base64 (DER without PEM armour).") from None
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError:
        raise CsrError("The csr is not a DER PKCS#10 certificate signing request.") from None
    if not csr.is_signature_valid:
        raise CsrError("The csr signature is not valid.")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CsrError("The csr RSA key is shorter than 2048 bits.")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise CsrError("The csr key must be RSA or EC.")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = cns[0].value if len(cns) == 1 else None
    if cn != registration_id:
        raise CsrError(f"The csr subject CN '{cn}' does not equal the registration id "
                       f"'{registration_id}'.")
    return csr


def _b64(cert):
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


class Issuer:
    """The test issuing CA: loaded (load()), or made on first use."""

    def __init__(self):
        self._lock = threading.Lock()
        self._key = None
        self._cert = None

    def load(self, cert_path, key_path):
        """Issues from this CA (PEM files, e.g. make-test-pki's) instead of
        a fresh one."""
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        with self._lock:
            self._cert, self._key = cert, key

    def _ca(self):
        with self._lock:
            if self._cert is None:
                now = datetime.datetime.now(datetime.timezone.utc)
                key = ec.generate_private_key(ec.SECP256R1())
                name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                     "dps-emulator issuing CA")])
                self._cert = (
                    x509.CertificateBuilder()
                    .subject_name(name).issuer_name(name)
                    .public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(minutes=5))
                    .not_valid_after(now + datetime.timedelta(days=3650))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(
                        digital_signature=False, content_commitment=False,
                        key_encipherment=False, data_encipherment=False,
                        key_agreement=False, key_cert_sign=True, crl_sign=True,
                        encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                   critical=False)
                    .sign(key, hashes.SHA256()))
                self._key = key
            return self._key, self._cert

    def ca_pem(self):
        return self._ca()[1].public_bytes(serialization.Encoding.PEM).decode("ascii")

    def write_ca(self, path):
        """Writes the CA certificate (PEM) atomically to path."""
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(self.ca_pem())
        os.replace(tmp, path)

    def issue(self, csr, registration_id, validity_s=DEFAULT_VALIDITY_S):
        """[leaf, issuing CA] as Base64 DER: the leaf has CN = registration
        id, the request's public key and clientAuth."""
        ca_key, ca_cert = self._ca()
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            ski = x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        registration_id)]))
            .issuer_name(ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(seconds=validity_s))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(csr.public_key(), rsa.RSAPublicKey),
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
        return [_b64(leaf), _b64(ca_cert)]
