"""Shared test plumbing: one throwaway PKI per test run, and an Emulator
object that runs the real dps-emulator process on --port 0 and talks to it
over real HTTPS. Every wait is bounded.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL_DIR = os.path.dirname(HERE)
sys.path.insert(0, TOOL_DIR)
sys.path.insert(0, HERE)

import dps_sas  # noqa: E402

EMULATOR = os.path.join(TOOL_DIR, "dps-emulator")
MAKE_PKI = os.path.join(TOOL_DIR, "make-test-pki")
PYTHON = "/usr/bin/python3"
SCOPE = "0ne00000A0A"
API = "api-version=2021-06-01"
KEY1 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="      # 32 bytes
KEY2 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="      # 32 bytes
GROUP_KEY = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
START_TIMEOUT = 10.0
IO_TIMEOUT = 10.0

_pki_dir = None


def pki():
    """Directory made by make-test-pki, created once per test process."""
    global _pki_dir
    if _pki_dir is None:
        d = tempfile.mkdtemp(prefix="dps-emu-test-pki-")
        atexit.register(shutil.rmtree, d, True)
        subprocess.run([MAKE_PKI, d], check=True, stdout=subprocess.DEVNULL,
                       timeout=60)
        _pki_dir = d
    return _pki_dir


def pki_path(name):
    return os.path.join(pki(), name)


def token(key, reg_id, expiry=None, scope=SCOPE, **kw):
    expiry = int(time.time()) + 600 if expiry is None else expiry
    return dps_sas.make_token(key, scope, reg_id, expiry, **kw)


def base_config(enrollments, **top):
    cfg = {"id_scope": SCOPE, "default_hub": "test-hub.azure-devices.net",
           "retry_after": 1, "polls_before_assignment": 1, "enrollments": enrollments}
    cfg.update(top)
    return cfg


class Reply:
    def __init__(self, resp, raw):
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.raw = raw
        self.chunked = resp.chunked if hasattr(resp, "chunked") else None

    def json(self):
        return json.loads(self.raw.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())


class Emulator:
    """The real emulator process; `with Emulator(cfg) as emu: ...`."""

    def __init__(self, config, args=(), pki_dir=True, env=None):
        self.tmp = tempfile.mkdtemp(prefix="dps-emu-test-")
        self.config_path = os.path.join(self.tmp, "config.json")
        self.port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, "requests.jsonl")
        self.write_config(config)
        cmd = [PYTHON, EMULATOR, "--config", self.config_path, "--port", "0",
               "--port-file", self.port_file, "--log", self.log_path]
        if pki_dir:
            cmd += ["--pki", pki()]
        cmd += list(args)
        self.started = time.monotonic()
        full_env = dict(os.environ, **(env or {}))
        # stderr to a file: an unread pipe could fill up and block the emulator.
        self.stderr_path = os.path.join(self.tmp, "stderr.txt")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=full_env)
        self.port = self._wait_port()
        self.ready_after = time.monotonic() - self.started
        self.first_line = self.proc.stdout.readline().strip()
        self.ca = pki_path("root-ca.pem") if pki_dir else None

    def _wait_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            if self.proc.poll() is not None:
                with open(self.stderr_path) as f:
                    raise RuntimeError("emulator exited: " + f.read())
            time.sleep(0.01)
        self.proc.kill()
        raise RuntimeError("emulator did not start in time")

    def write_config(self, config):
        with open(self.config_path, "w") as f:
            json.dump(config, f)

    def ssl_context(self, cert=None, key=None, password=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert, key, password)
        return ctx

    def connect(self, cert=None, key=None, ctx=None):
        ctx = ctx or self.ssl_context(cert, key)
        return http.client.HTTPSConnection("localhost", self.port, context=ctx,
                                           timeout=IO_TIMEOUT)

    def request(self, method, path, body=None, headers=None, conn=None, cert=None, tls_key=None):
        own = conn is None
        conn = conn or self.connect(cert, tls_key)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return Reply(resp, raw)
        finally:
            if own:
                conn.close()

    # Device API helpers ------------------------------------------------
    def register(self, reg_id, key=None, body=None, conn=None, auth=None, **kw):
        headers = {}
        if auth is None and key is not None:
            auth = token(key, reg_id)
        if auth is not None:
            headers["Authorization"] = auth
        body = {"registrationId": reg_id} if body is None else body
        return self.request("PUT", f"/{SCOPE}/registrations/{reg_id}/register?{API}",
                            body, headers, conn=conn, **kw)

    def poll(self, reg_id, op_id, key=None, conn=None, auth=None, **kw):
        headers = {}
        if auth is None and key is not None:
            auth = token(key, reg_id)
        if auth is not None:
            headers["Authorization"] = auth
        return self.request("GET", f"/{SCOPE}/registrations/{reg_id}/operations/{op_id}?{API}",
                            None, headers, conn=conn, **kw)

    def lookup(self, reg_id, key=None, auth=None, **kw):
        headers = {}
        if auth is None and key is not None:
            auth = token(key, reg_id)
        if auth is not None:
            headers["Authorization"] = auth
        return self.request("POST", f"/{SCOPE}/registrations/{reg_id}?{API}",
                            {"registrationId": reg_id}, headers, **kw)

    # Control API --------------------------------------------------------
    def control(self, method, path, body=None):
        reply = self.request(method, "/_emulator/" + path, body)
        return reply.status, (reply.json() if reply.raw else None)

    def configure(self, config):
        status, body = self.control("PUT", "config", config)
        if status != 200:
            raise AssertionError(f"config rejected: {body}")

    def log(self):
        return self.control("GET", "log")[1]

    def clear_log(self):
        self.control("DELETE", "log")

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc.stdout.close()
        self._stderr.close()
        with open(self.stderr_path) as f:
            self.stderr_text = f.read()
        shutil.rmtree(self.tmp, True)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class EmulatorTestCase(unittest.TestCase):
    """One emulator per test class, reconfigured per test via the control API."""

    initial_config = base_config([])
    emulator_args = ()

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(cls.initial_config, cls.emulator_args)

    @classmethod
    def tearDownClass(cls):
        rc = cls.emu.stop()
        # A clean run leaves no tracebacks and exits 0 on SIGTERM.
        if "Traceback" in cls.emu.stderr_text or rc != 0:
            raise AssertionError(f"emulator rc={rc}, stderr:\n{cls.emu.stderr_text}")

    def assertDpsError(self, reply, status, code=None):
        self.assertEqual(reply.status, status, reply.raw)
        body = reply.json()
        for field in ("errorCode", "trackingId", "message", "timestampUtc"):
            self.assertIn(field, body)
        if code is not None:
            self.assertEqual(body["errorCode"], code)
        return body
