"""HTTP/1.1 server: keep-alive connections over TLS, response framing the
way the real service frames it (chunked by default, Content-Length as an
option), fault rendering at the wire level, the request log, and the
/_emulator/ control API.
"""

import io
import json
import socket
import socketserver
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler

import dps_config
import dps_log
import dps_service
import dps_tls
import dps_x509

MAX_REQUEST_BODY = 1 << 20


class _RawIO(io.RawIOBase):
    """Lets io.BufferedReader read from a TLS connection adapter."""

    def __init__(self, conn):
        self._conn = conn

    def readable(self):
        return True

    def readinto(self, buf):
        return self._conn.recv_into(buf)


class _Writer:
    def __init__(self, conn):
        self._conn = conn

    def write(self, data):
        self._conn.sendall(data)
        return len(data)

    def flush(self):
        pass


def _chunked(body):
    """One data chunk plus the terminating chunk."""
    if not body:
        return b"0\r\n\r\n"
    return b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive: the client reuses one connection
    server_version = "dps-emulator"

    def version_string(self):
        return self.server_version

    # ---- connection set-up / tear-down ------------------------------

    def setup(self):
        srv = self.server
        self.conn_id = srv.next_conn_id()
        self.peer_chain = []
        self.conn = None
        self.tls_resumed = None
        self.counted = False      # counted in the stats at its first device request
        # The handler writes the headers and the body separately: with
        # Nagle on, the body waits for the client's delayed ACK (40 ms per
        # answer on a kept-alive connection).
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            if srv.tls is None:
                self.conn = dps_tls.PlainConn(self.request)
            else:
                self.conn, self.peer_chain, self.tls_resumed = \
                    srv.tls.accept(self.request)
        except Exception as e:   # handshake failure: nothing to serve
            srv.count("tls_handshakes_failed")
            srv.debug(f"conn {self.conn_id}: TLS handshake failed: {e}")
            self.rfile, self.wfile = io.BytesIO(b""), io.BytesIO()
            return
        self.rfile = io.BufferedReader(_RawIO(self.conn), 65536)
        self.wfile = _Writer(self.conn)

    def finish(self):
        if self.conn is not None:
            self.conn.close()
        self.server.connection_closed()

    def log_message(self, fmt, *args):
        self.server.debug(f"conn {self.conn_id}: " + fmt % args)

    # ---- request dispatch -------------------------------------------

    def do_ANY(self):
        started = time.time()
        self.server.last_activity = time.monotonic()
        path, _, qs = self.path.partition("?")
        query = {k: v[0] for k, v in urllib.parse.parse_qs(qs, keep_blank_values=True).items()}
        body = self._read_body()
        if body is None:
            return
        if path.startswith("/_emulator/"):
            self._control(path, body)
            return
        if not self.counted:
            # Counted here, not at accept: control-API calls (the test's
            # own curl) are not the device's connections.
            self.counted = True
            self.server.count("tcp_connections")
            if self.tls_resumed is not None:
                self.server.count("tls_handshakes_resumed" if self.tls_resumed
                                  else "tls_handshakes_full")
        req = dps_service.Request(self.command, path, query, list(self.headers.items()),
                                  body, self.peer_chain)
        resp = self.server.service.handle(req)
        if resp.delay:
            time.sleep(resp.delay)
        try:
            status = self._send(resp)
        except (OSError, ValueError) as e:
            # Client went away (e.g. after giving up on a hang): log, don't crash.
            self.server.debug(f"conn {self.conn_id}: write failed: {e}")
            status, self.close_connection = None, True
        except Exception as e:    # pyOpenSSL errors are not OSErrors
            self.server.debug(f"conn {self.conn_id}: write failed: {e!r}")
            status, self.close_connection = None, True
        cn = dps_x509.common_name(self.peer_chain[0]) if self.peer_chain else None
        self.server.log.add({
            "time": started,
            "conn_id": self.conn_id,
            "method": self.command,
            "path": path,
            "query": query,
            "headers": dps_log.mask_headers(self.headers.items()),
            "body": body.decode("utf-8", "replace"),
            "status": status,
            "fault": resp.fault_names or None,
            "registration_id": resp.registration_id,
            "client_cert_cn": cn,
            "tls_resumed": self.tls_resumed,
            "reason": resp.reason,
        })

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_ANY

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self.send_error(400, "bad chunk")
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(data) > MAX_REQUEST_BODY:
                    self.send_error(413)
                    return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        if length > MAX_REQUEST_BODY:
            self.send_error(413)
            return None
        return self.rfile.read(length) if length else b""

    # ---- response framing and wire-level faults ----------------------

    def _send(self, resp):
        """Write resp; returns the status sent (None if nothing was sent)."""
        fault = resp.fault
        kind = fault.kind if fault is not None else None
        if kind == "close":
            self.close_connection = True
            return None
        body = resp.body_bytes()
        ctype = dps_service.JSON_TYPE
        if kind == "malformed_json":
            body = body[: max(1, len(body) // 2)]     # cut mid-object: never valid
        elif kind == "oversized":
            padded = dict(resp.body or {})
            padded["padding"] = ""
            base = len(json.dumps(padded, separators=(",", ":")))
            padded["padding"] = "x" * max(0, fault.bytes - base)
            body = json.dumps(padded, separators=(",", ":")).encode("utf-8")
        elif kind == "content_type":
            ctype = fault.value
        use_length = self.server.content_length or self.server.service.config.content_length
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        if use_length:
            self.send_header("Content-Length", str(len(body)))
            payload = body
        else:
            self.send_header("Transfer-Encoding", "chunked")
            payload = _chunked(body)
        self.end_headers()
        if kind == "close_mid_response":
            # Headers and part of the body, then hang up.
            cut = len(payload) - len(body) // 2 - (7 if not use_length else 0)
            self.wfile.write(payload[: max(1, min(cut, len(payload) - 1))])
            self.close_connection = True
            return resp.status
        self.wfile.write(payload)
        return resp.status

    # ---- control API (/_emulator/...) -------------------------------

    def _reply(self, status, obj):
        data = json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", dps_service.JSON_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _control(self, path, body):
        srv = self.server
        route = (self.command, path.rstrip("/"))
        if route == ("GET", "/_emulator/health"):
            self._reply(200, {"status": "ok", "port": srv.server_address[1],
                              "id_scope": srv.service.config.id_scope,
                              "server_ca": srv.server_ca, "tls_backend":
                              srv.tls.backend if srv.tls else None})
        elif route == ("PUT", "/_emulator/config"):
            try:
                cfg = dps_config.Config(json.loads(body.decode("utf-8")), srv.config_dir)
            except (ValueError, dps_config.ConfigError) as e:
                self._reply(400, {"error": str(e)})
                return
            srv.apply_config(cfg)
            self._reply(200, {"status": "ok", "enrollments": len(cfg.enrollments)})
        elif route == ("GET", "/_emulator/config"):
            self._reply(200, srv.service.config.raw)
        elif route == ("GET", "/_emulator/log"):
            self._reply(200, srv.log.records())
        elif route == ("DELETE", "/_emulator/log"):
            srv.log.clear()
            srv.reset_stats()
            self._reply(200, {"status": "ok"})
        elif route == ("GET", "/_emulator/stats"):
            self._reply(200, srv.stats())
        elif route == ("GET", "/_emulator/issuing-ca"):
            self._reply(200, {"pem": srv.service.issuer.ca_pem()})
        elif route == ("GET", "/_emulator/registrations"):
            self._reply(200, srv.service.registrations_summary())
        else:
            self._reply(404, {"error": f"no control route {self.command} {path}"})


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True          # idle keep-alive connections must not block exit
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a fleet that
    # connects at once; each drop costs the client a 1 s retransmit.
    request_queue_size = 4096

    def __init__(self, port, service, log, tls, config_dir, content_length=False,
                 server_ca=None, verbose=False):
        self.service = service
        self.log = log
        self.tls = tls
        self.config_dir = config_dir
        self.content_length = content_length
        self.server_ca = server_ca
        self.verbose = verbose
        self._conn_counter = 0
        self._conn_lock = threading.Lock()
        self._stats = {}
        self.reset_stats()
        self.last_activity = time.monotonic()   # for --exit-after-idle
        super().__init__(("127.0.0.1", port), Handler)

    def next_conn_id(self):
        with self._conn_lock:
            self._conn_counter += 1
            self._stats["open_connections"] += 1
            self._stats["peak_open_connections"] = max(
                self._stats["peak_open_connections"], self._stats["open_connections"])
            return self._conn_counter

    def connection_closed(self):
        with self._conn_lock:
            self._stats["open_connections"] -= 1

    def count(self, name):
        with self._conn_lock:
            self._stats[name] += 1

    def stats(self):
        """Counters since the start or the last DELETE /_emulator/log:
        connections that carried device requests and how their TLS began
        (full handshake or resumed session), failed handshakes, and
        connections open now and at most (control calls included)."""
        with self._conn_lock:
            return dict(self._stats)

    def reset_stats(self):
        with self._conn_lock:
            open_now = self._stats.get("open_connections", 0)
            self._stats = {"tcp_connections": 0, "tls_handshakes_full": 0,
                           "tls_handshakes_resumed": 0, "tls_handshakes_failed": 0,
                           "open_connections": open_now,
                           "peak_open_connections": open_now}

    def apply_config(self, cfg):
        self.service.reset(cfg)
        if self.tls is not None:
            self.tls.trust_client_certs(
                [c for e in cfg.enrollments for c in e.certificates])

    def debug(self, text):
        if self.verbose:
            import sys
            print(f"dps-emulator: {text}", file=sys.stderr, flush=True)

    def handle_error(self, request, client_address):
        # A dropped client is routine here; tracebacks only with --verbose.
        if self.verbose:
            super().handle_error(request, client_address)

    def shutdown_request(self, request):
        # The handler already sent close_notify; now close the TCP socket.
        try:
            request.close()
        except OSError:
            pass
