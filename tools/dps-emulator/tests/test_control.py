"""Process behaviour (start, port file, SIGTERM, SIGHUP, --help, generated
certificate), response framing switches, the control API and the log."""

import http.client
import json
import signal
import ssl
import subprocess
import time
import unittest

from helpers import (EMULATOR, KEY1, PYTHON, Emulator, EmulatorTestCase, base_config,
                     pki_path)

SYM = [{"type": "symmetric_key", "registration_id": "dev-1", "primary_key": KEY1}]


class ProcessTest(unittest.TestCase):
    def test_start_port_file_and_sigterm(self):
        emu = Emulator(base_config(SYM))
        try:
            # Start-up time is measured by bench/, not asserted here; this
            # bound only catches a start-up that hangs.
            self.assertLess(emu.ready_after, 15)
            self.assertEqual(emu.first_line, f"dps-emulator listening on 127.0.0.1:{emu.port}")
            self.assertEqual(emu.register("dev-1", KEY1).status, 202)
            idle = emu.connect()          # an idle keep-alive connection must not block exit
            idle.connect()
            emu.proc.send_signal(signal.SIGTERM)
            self.assertEqual(emu.proc.wait(5), 0)
            idle.close()
        finally:
            emu.stop()

    def test_exit_after_idle(self):
        emu = Emulator(base_config(SYM), args=("--exit-after-idle", "1"))
        try:
            self.assertEqual(emu.register("dev-1", KEY1).status, 202)
            # Exits by itself once a second passes without a request.
            self.assertEqual(emu.proc.wait(10), 0)
        finally:
            emu.stop()

    def test_help(self):
        out = subprocess.run([PYTHON, EMULATOR, "--help"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        for opt in ("--config", "--port", "--port-file", "--log", "--cert", "--key", "--pki",
                    "--client-ca", "--content-length", "--quiet"):
            self.assertIn(opt, out)

    def test_bad_config_exits_nonzero(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"enrollments": []}')
            f.flush()
            p = subprocess.run([PYTHON, EMULATOR, "--config", f.name], capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("id_scope", p.stderr)

    def test_generated_certificate(self):
        emu = Emulator(base_config(SYM), pki_dir=False)
        try:
            line = emu.proc.stdout.readline().strip()
            self.assertTrue(line.startswith("dps-emulator server CA: "), line)
            emu.ca = line.split(": ", 1)[1]
            self.assertEqual(emu.register("dev-1", KEY1).status, 202)
            # Untrusted by default: a client without that CA refuses the server.
            with self.assertRaises(ssl.SSLError):
                c = http.client.HTTPSConnection("localhost", emu.port, timeout=5,
                                                context=ssl.create_default_context())
                c.request("GET", "/_emulator/health")
        finally:
            emu.stop()

    def test_sighup_reloads_config(self):
        emu = Emulator(base_config(SYM))
        try:
            self.assertEqual(emu.register("dev-2", KEY1).status, 401)
            emu.write_config(base_config([dict(SYM[0], registration_id="dev-2")]))
            emu.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if emu.register("dev-2", KEY1).status == 202:
                    break
                time.sleep(0.05)
            else:
                self.fail("config not reloaded")
        finally:
            emu.stop()

    def test_stdlib_tls_fallback(self):
        # Without pyOpenSSL: symmetric keys and enrolled X.509 certs still work;
        # unknown certificates fail in the handshake (documented limitation).
        cfg = base_config(SYM + [{"type": "x509", "registration_id": "x509-device-01",
                                  "certificate": pki_path("device-01.pem")}])
        emu = Emulator(cfg, env={"DPS_EMULATOR_TLS_BACKEND": "stdlib"})
        try:
            self.assertEqual(emu.control("GET", "health")[1]["tls_backend"], "stdlib")
            self.assertEqual(emu.register("dev-1", KEY1).status, 202)
            r = emu.register("x509-device-01", cert=pki_path("device-01.pem"),
                             tls_key=pki_path("device-01.key"))
            self.assertEqual(r.status, 202)
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                emu.register("x509-unknown-01", cert=pki_path("unknown-device.pem"),
                             tls_key=pki_path("unknown-device.key"))
        finally:
            emu.stop()

    def test_content_length_flag(self):
        emu = Emulator(base_config(SYM), ["--content-length"])
        try:
            r = emu.register("dev-1", KEY1)
            self.assertEqual(r.header("content-length"), str(len(r.raw)))
            self.assertIsNone(r.header("transfer-encoding"))
        finally:
            emu.stop()


class ControlApiTest(EmulatorTestCase):
    initial_config = base_config(SYM)

    def setUp(self):
        self.emu.configure(base_config(SYM))
        self.emu.clear_log()

    def test_stats_count_connections_and_resumed_sessions(self):
        import socket
        ctx = self.emu.ssl_context()
        conn = self.emu.connect(ctx=ctx)
        self.assertEqual(self.emu.register("dev-1", KEY1, conn=conn).status, 202)
        self.assertEqual(self.emu.register("dev-1", KEY1, conn=conn).status, 202)
        session = conn.sock.session
        conn.close()
        # A second connection resuming the first one's TLS session.
        raw = socket.create_connection(("127.0.0.1", self.emu.port), timeout=10)
        tls = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        try:
            self.assertTrue(tls.session_reused)
            tls.sendall(b"GET /0ne00000A0A/registrations/dev-1/operations/x"
                        b"?api-version=2021-06-01 HTTP/1.1\r\nHost: localhost\r\n"
                        b"Connection: close\r\n\r\n")
            while tls.recv(4096):
                pass
        finally:
            tls.close()
        status, stats = self.emu.control("GET", "stats")
        self.assertEqual(status, 200)
        self.assertEqual(stats["tcp_connections"], 2)      # control calls not counted
        self.assertEqual(stats["tls_handshakes_full"], 1)
        self.assertEqual(stats["tls_handshakes_resumed"], 1)
        self.assertGreaterEqual(stats["peak_open_connections"], 1)
        resumed = [r["tls_resumed"] for r in self.emu.log()]
        self.assertEqual(resumed, [False, False, True])
        self.emu.clear_log()
        self.assertEqual(self.emu.control("GET", "stats")[1]["tcp_connections"], 0)

    def test_health(self):
        status, body = self.emu.control("GET", "health")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["port"], self.emu.port)

    def test_config_replace_and_get(self):
        self.assertEqual(self.emu.register("dev-9", KEY1).status, 401)
        cfg = base_config([dict(SYM[0], registration_id="dev-9")])
        self.emu.configure(cfg)
        self.assertEqual(self.emu.control("GET", "config")[1], cfg)
        self.assertEqual(self.emu.register("dev-9", KEY1).status, 202)
        self.assertEqual(self.emu.register("dev-1", KEY1).status, 401)
        status, body = self.emu.control("PUT", "config", {"id_scope": 5})
        self.assertEqual(status, 400)
        self.assertIn("id_scope", body["error"])
        # A rejected config leaves the previous one in force.
        self.assertEqual(self.emu.register("dev-9", KEY1).status, 202)

    def test_empty_object_accepted_as_empty_list(self):
        # Lua cjson encodes {} for an empty table.
        self.emu.configure({"id_scope": "0ne00000A0A", "enrollments": {}, "faults": {}})
        self.assertEqual(self.emu.register("dev-1", KEY1).status, 401)

    def test_config_resets_registrations(self):
        self.emu.register("dev-1", KEY1)
        self.assertEqual(len(self.emu.control("GET", "registrations")[1]), 1)
        self.emu.configure(base_config(SYM))
        self.assertEqual(self.emu.control("GET", "registrations")[1], [])

    def test_content_length_config_key(self):
        self.emu.configure(base_config(SYM, content_length=True))
        r = self.emu.register("dev-1", KEY1)
        self.assertEqual(r.header("content-length"), str(len(r.raw)))
        self.emu.configure(base_config(SYM))
        self.assertEqual(self.emu.register("dev-1", KEY1).header("transfer-encoding"), "chunked")

    def test_log_records_and_masking(self):
        conn = self.emu.connect()
        self.emu.register("dev-1", KEY1, conn=conn)
        self.emu.register("dev-1", KEY1, conn=conn)
        conn.close()
        self.emu.register("dev-1", KEY1)
        log = self.emu.log()
        self.assertEqual(len(log), 3)
        rec = log[0]
        for field in ("time", "method", "path", "query", "headers", "body", "conn_id", "status"):
            self.assertIn(field, rec)
        self.assertEqual(rec["method"], "PUT")
        self.assertEqual(rec["path"], "/0ne00000A0A/registrations/dev-1/register")
        self.assertEqual(rec["query"], {"api-version": "2021-06-01"})
        self.assertEqual(json.loads(rec["body"]), {"registrationId": "dev-1"})
        self.assertIn("sig=***", rec["headers"]["Authorization"])
        self.assertIsInstance(rec["time"], float)
        self.assertLessEqual(log[0]["time"], log[1]["time"])
        self.assertEqual(log[0]["conn_id"], log[1]["conn_id"])
        self.assertNotEqual(log[1]["conn_id"], log[2]["conn_id"])
        # The JSON-lines file says the same and never holds a signature or key.
        with open(self.emu.log_path) as f:
            text = f.read()
        lines = [json.loads(x) for x in text.splitlines()]
        self.assertGreaterEqual(len(lines), 3)
        self.assertNotIn(KEY1, text)
        self.assertNotRegex(text, r"sig=[^*&\"]")
        # Control requests are not logged; DELETE clears.
        self.emu.clear_log()
        self.assertEqual(self.emu.log(), [])

    def test_unknown_control_route(self):
        self.assertEqual(self.emu.control("GET", "nope")[0], 404)


if __name__ == "__main__":
    unittest.main()
