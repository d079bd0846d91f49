"""X.509 attestation checks done at the HTTP level, as the service does:
the TLS layer accepts any client certificate and records what was sent; this
module decides whether it matches an enrollment (docs/protocol.md §7).

Individual enrollment: the leaf must be the enrolled certificate.
Group enrollment: the leaf must chain to the enrolled CA (root or
intermediate), directly or through intermediates the client sent.
Both: subject CN == registration id (case-insensitive), all certificates on
the path inside their validity period.
"""

import base64
import datetime
import hashlib
import os

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

MAX_CHAIN_DEPTH = 8


class X509Error(Exception):
    """Certificate rejected; the message goes to the log, the client sees
    the service's generic 'Invalid certificate.'"""


def load_certs(text_or_path, base_dir="."):
    """PEM text, or a path (relative to base_dir) to a PEM/DER file.
    Returns a list of certificates (a file may hold several)."""
    if "-----BEGIN" in text_or_path:
        data = text_or_path.encode("ascii")
    else:
        path = text_or_path
        if not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        with open(path, "rb") as f:
            data = f.read()
    if b"-----BEGIN" in data:
        certs = x509.load_pem_x509_certificates(data) \
            if hasattr(x509, "load_pem_x509_certificates") else _load_pems(data)
    else:
        certs = [x509.load_der_x509_certificate(data)]
    if not certs:
        raise ValueError("no certificate found")
    return certs


def _load_pems(data):
    out = []
    marker = b"-----END CERTIFICATE-----"
    for chunk in data.split(marker)[:-1]:
        out.append(x509.load_pem_x509_certificate(chunk + marker + b"\n"))
    return out


def common_name(cert):
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


def _utc(dt):
    return dt.replace(tzinfo=datetime.timezone.utc) if dt.tzinfo is None else dt


def _check_validity(cert, now):
    if not (_utc(cert.not_valid_before) <= now <= _utc(cert.not_valid_after)):
        raise X509Error(f"certificate {cert.subject.rfc4514_string()} is outside "
                        "its validity period")


def signed_by(cert, issuer):
    """True when `issuer` (name and key) issued `cert`."""
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_cn(leaf, registration_id):
    cn = common_name(leaf)
    if cn is None or cn.lower() != registration_id.lower():
        raise X509Error(f"certificate CN {cn!r} does not match registration id "
                        f"{registration_id!r}")


def _der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def check_individual(chain, enrolled, registration_id, now=None):
    """chain[0] is the client's leaf. Raises X509Error when rejected."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    leaf = chain[0]
    if _der(leaf) not in {_der(c) for c in enrolled}:
        raise X509Error("client certificate is not the enrolled certificate")
    _check_cn(leaf, registration_id)
    _check_validity(leaf, now)


def check_group(chain, ca_certs, registration_id, now=None):
    """Walk from the leaf up through client-sent intermediates until a cert
    is issued by one of `ca_certs`. Returns that CA. Raises X509Error."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    leaf = chain[0]
    _check_cn(leaf, registration_id)
    intermediates = [c for c in chain[1:] if _is_ca(c)]
    current = leaf
    for _ in range(MAX_CHAIN_DEPTH):
        _check_validity(current, now)
        for ca in ca_certs:
            if _der(current) == _der(ca) and current is not leaf:
                return ca
            if signed_by(current, ca):
                _check_validity(ca, now)
                return ca
        parent = next((c for c in intermediates if signed_by(current, c)), None)
        if parent is None:
            break
        current = parent
    raise X509Error("certificate does not chain to the enrolled CA")


def _thumb(cert, algo):
    return algo(_der(cert)).hexdigest().upper()


def _iso(dt):
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def certificate_info(cert):
    """X509CertificateInfo (docs/protocol.md §3.2) for registrationState.x509."""
    return {
        "subjectName": cert.subject.rfc4514_string(),
        "sha1Thumbprint": _thumb(cert, hashlib.sha1),
        "sha256Thumbprint": _thumb(cert, hashlib.sha256),
        "issuerName": cert.issuer.rfc4514_string(),
        "notBeforeUtc": _iso(cert.not_valid_before),
        "notAfterUtc": _iso(cert.not_valid_after),
        "serialNumber": format(cert.serial_number, "X"),
        "version": cert.version.value + 1,
    }


def der_b64(cert):
    return base64.b64encode(_der(cert)).decode("ascii")
