"""TLS for the emulator: server certificate set-up and per-connection
handshakes that *request* a client certificate without *requiring* or
*verifying* it.

Why pyOpenSSL: the real service rejects an unknown device certificate with
HTTP 401/401002, not with a failed handshake. Python's ssl module (3.11)
cannot accept an unverifiable client certificate and still hand it over,
so the preferred backend uses pyOpenSSL with a verify callback that accepts
everything, and the X.509 decision is made later by dps_x509.

Fallback (no python3-openssl): stdlib ssl with CERT_OPTIONAL and a trust
store of the enrolled certificates/CAs. Then an unknown certificate fails in
the handshake instead of giving 401, and only the leaf is visible.
"""

import datetime
import ipaddress
import os
import select
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

try:
    from OpenSSL import SSL  # python3-openssl
except ImportError:          # pragma: no cover - depends on the machine
    SSL = None
# Lets tests (and users without trust in pyOpenSSL) force the fallback.
if os.environ.get("DPS_EMULATOR_TLS_BACKEND") == "stdlib":
    SSL = None


def generate_server_cert(directory):
    """Throwaway CA + server cert for localhost/127.0.0.1 (EC P-256: fast).
    Returns (ca_path, cert_path, key_path)."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, pub, sign_key, ca, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(sign_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dps-emulator throwaway CA")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = build(name, ca_name, key.public_key(), ca_key, False,
                 [x509.DNSName("localhost"),
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    paths = [os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key")]
    pem = serialization.Encoding.PEM
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths[2], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return tuple(paths)


# A connection idle this long is closed, so abandoned keep-alive clients do
# not pin a thread forever. (Socket timeouts cannot be used with pyOpenSSL on
# blocking sockets, hence the select below.)
IDLE_TIMEOUT = 300.0


def _wait_readable(sock, timeout=IDLE_TIMEOUT):
    # poll, not select: a fleet of a thousand clients hands out
    # descriptors above FD_SETSIZE (1024), which select() cannot take.
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLPRI)
    return bool(p.poll(timeout * 1000))


class _PyOpenSSLConn:
    """Socket-like adapter over an OpenSSL.SSL.Connection."""

    def __init__(self, conn, sock):
        self._conn = conn
        self._sock = sock

    def recv_into(self, buf):
        try:
            if self._conn.pending() == 0 and not _wait_readable(self._sock):
                return 0
            return self._conn.recv_into(buf)
        except (SSL.ZeroReturnError, SSL.SysCallError, SSL.Error):
            return 0     # peer closed (cleanly or not): end of stream

    def sendall(self, data):
        self._conn.sendall(data)

    def close(self):
        try:
            self._conn.shutdown()   # close_notify; best effort
        except Exception:
            pass


class _StdConn:
    def __init__(self, sock):
        self._sock = sock

    def recv_into(self, buf):
        try:
            if not (hasattr(self._sock, "pending") and self._sock.pending()) and \
                    not _wait_readable(self._sock):
                return 0
            return self._sock.recv_into(buf)
        except (ssl.SSLError, OSError):
            return 0

    def sendall(self, data):
        self._sock.sendall(data)

    def close(self):
        try:
            self._sock.unwrap()
        except Exception:
            pass


class PlainConn(_StdConn):
    """No TLS at all (--no-tls, debugging only)."""

    def close(self):
        pass


class TlsServer:
    """Makes server-side TLS connections; one instance per emulator."""

    def __init__(self, cert_path, key_path, client_ca_paths=()):
        self.backend = "pyopenssl" if SSL is not None else "stdlib"
        self.cert_path, self.key_path = cert_path, key_path
        if SSL is not None:
            ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
            ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
            ctx.use_certificate_chain_file(cert_path)
            ctx.use_privatekey_file(key_path)
            ctx.check_privatekey()
            # Ask for a certificate, accept whatever comes (or nothing).
            ctx.set_verify(SSL.VERIFY_PEER, lambda *_args: True)
            ctx.set_session_id(b"dps-emulator")
            for path in client_ca_paths:
                from OpenSSL import crypto
                with open(path, "rb") as f:
                    ctx.add_client_ca(crypto.load_certificate(crypto.FILETYPE_PEM, f.read()))
            self._ctx = ctx
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(cert_path, key_path)
            ctx.verify_mode = ssl.CERT_OPTIONAL
            # Enrolled leaves and intermediates must work as trust anchors.
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            for path in client_ca_paths:
                ctx.load_verify_locations(cafile=path)
            self._ctx = ctx

    def trust_client_certs(self, certs):
        """Fallback backend only: enrolled certs become trust anchors."""
        if SSL is None:
            for cert in certs:
                pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
                self._ctx.load_verify_locations(cadata=pem)

    def accept(self, sock):
        """Handshake on an accepted socket. Returns (conn, peer_chain,
        resumed): resumed tells a resumed TLS session from a full
        handshake."""
        if SSL is not None:
            conn = SSL.Connection(self._ctx, sock)
            conn.set_accept_state()
            conn.do_handshake()
            resumed = bool(SSL._lib.SSL_session_reused(conn._ssl))
            chain = []
            leaf = conn.get_peer_certificate()
            if leaf is not None:
                chain.append(leaf.to_cryptography())
                # Server side: the peer chain excludes the leaf.
                for c in conn.get_peer_cert_chain() or []:
                    cc = c.to_cryptography()
                    if cc != chain[0]:
                        chain.append(cc)
            return _PyOpenSSLConn(conn, sock), chain, resumed
        tls = self._ctx.wrap_socket(sock, server_side=True)
        der = tls.getpeercert(binary_form=True)
        chain = [x509.load_der_x509_certificate(der)] if der else []
        return _StdConn(tls), chain, bool(tls.session_reused)


def make_temp_dir():
    return tempfile.mkdtemp(prefix="dps-emulator-")
