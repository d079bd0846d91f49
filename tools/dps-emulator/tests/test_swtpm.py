"""Independent check of the activation blob against a real TPM
implementation (libtpms via swtpm + tpm2-tools), by the procedure of
docs/protocol.md §6.7. Skipped when swtpm / tpm2-tools are not installed."""

import base64
import hashlib
import hmac
import os
import shlex
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import helpers  # noqa: F401  (sets sys.path)
import dps_tpm  # noqa: E402

TOOLS = ("swtpm", "tpm2_createek", "tpm2_createprimary", "tpm2_readpublic",
         "tpm2_startauthsession", "tpm2_policysecret", "tpm2_activatecredential",
         "tpm2_import", "tpm2_load", "tpm2_hmac", "tpm2_flushcontext")
HAVE_TOOLS = all(shutil.which(t) for t in TOOLS)


def _free_port_pair():
    """Two adjacent free loopback ports (swtpm server + control)."""
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port >= 65535:
            continue
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port + 1))
            return port, port + 1
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free port pair")


@unittest.skipUnless(HAVE_TOOLS, "swtpm and tpm2-tools not installed")
class SwtpmBlobTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dps-emu-swtpm-")
        port, ctrl = _free_port_pair()
        self.swtpm = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.dir}",
             "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
             "--flags", "not-need-init,startup-clear"]
            # e.g. "--seccomp action=none" under qemu-user (scripts/run-cross)
            + shlex.split(os.environ.get("SWTPM_EXTRA_ARGS", "")),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = dict(os.environ, TPM2TOOLS_TCTI=f"swtpm:host=127.0.0.1,port={port}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def tearDown(self):
        self.swtpm.terminate()
        try:
            self.swtpm.wait(5)
        except subprocess.TimeoutExpired:
            self.swtpm.kill()
            self.swtpm.wait(5)
        shutil.rmtree(self.dir, True)

    def tpm(self, *args):
        p = subprocess.run(list(args), env=self.env, cwd=self.dir, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            self.fail(f"{' '.join(args)} failed: {p.stderr.strip()}")

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def test_blob_activates_in_libtpms(self):
        # EK (TCG default template == C SDK attributes/policy) and SRK (§6.1).
        self.tpm("tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub")
        self.tpm("tpm2_flushcontext", "-t")
        self.tpm("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "rsa2048:null:aes128cfb",
                 "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
                 "-c", "srk.ctx")
        self.tpm("tpm2_readpublic", "-c", "srk.ctx", "-o", "srk.pub")
        # The TPM has few transient slots: tools reload the saved contexts.
        self.tpm("tpm2_flushcontext", "-t")
        ek, srk = self.read("ek.pub"), self.read("srk.pub")
        self.assertEqual(len(ek), 316)
        self.assertEqual(base64.b64encode(srk)[:16], b"ARoAAQALAAMEcgAA")

        key = os.urandom(32)
        parts = dps_tpm.split_activation_blob(dps_tpm.build_activation_blob(ek, srk, key))
        id_object, secret, duplicate, in_sym_seed, id_pub, _uri = parts
        t2b = dps_tpm.tpm2b
        # tpm2_makecredential's file format: magic, version, ID object, secret.
        self.write("cred.blob", struct.pack(">II", 0xBADCC0DE, 1) + t2b(id_object) + t2b(secret))
        self.write("id.pub", t2b(id_pub))
        self.write("id.dpriv", t2b(duplicate))
        self.write("id.seed", t2b(in_sym_seed))

        self.tpm("tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
        self.tpm("tpm2_policysecret", "-S", "session.ctx", "-c", "e")
        self.tpm("tpm2_activatecredential", "-c", "srk.ctx", "-C", "ek.ctx", "-i", "cred.blob",
                 "-o", "inner.key", "-P", "session:session.ctx")
        self.tpm("tpm2_flushcontext", "session.ctx")
        self.assertEqual(len(self.read("inner.key")), 16)
        self.tpm("tpm2_flushcontext", "-t")

        self.tpm("tpm2_import", "-C", "srk.ctx", "-G", "aes", "-k", "inner.key",
                 "-u", "id.pub", "-i", "id.dpriv", "-s", "id.seed", "-r", "id.priv")
        self.tpm("tpm2_flushcontext", "-t")
        self.tpm("tpm2_load", "-C", "srk.ctx", "-u", "id.pub", "-r", "id.priv", "-c", "id.ctx")
        self.tpm("tpm2_flushcontext", "-t")
        data = b"0ne00111111%2fregistrations%2fmy-tpm-device\n1700000000"
        self.write("data.bin", data)
        self.tpm("tpm2_hmac", "-c", "id.ctx", "-g", "sha256", "-o", "mac.bin", "data.bin")
        self.assertEqual(self.read("mac.bin"), hmac.new(key, data, hashlib.sha256).digest())


if __name__ == "__main__":
    unittest.main()
