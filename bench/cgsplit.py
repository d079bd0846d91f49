"""Where the instructions of one callgrind run go.

    cgsplit.py CALLGRIND_OUT

Prints the inclusive cost of the phases of a registration (dynamic
loading, OpenSSL set-up, DRBG seeding, TLS handshake, CA file, SAS) and
the self cost per shared object, grouped: the dynamic loader, OpenSSL,
libc, the Lua interpreter, libcurl, json-c, dps itself (core.so or the
C example), and everything else Debian's libcurl loads.
"""
import collections
import re
import subprocess
import sys

PHASES = [
    ("dl_open_worker", "dynamic loading of a module and its libraries (dlopen)"),
    ("_dl_start", "dynamic loading at process start"),
    ("OPENSSL_init_crypto", "OpenSSL initialisation (config, providers, error strings)"),
    ("RAND_bytes_ex", "DRBG seeding (first random bytes)"),
    ("SSL_do_handshake", "TLS handshake"),
    ("X509_STORE_load_file_ex", "loading the CA file"),
    ("dps_sas_token", "SAS token (HMAC-SHA256)"),
]


def self_by_object(path):
    costs, names = collections.Counter(), {}
    ob, after_call = None, False
    with open(path) as f:
        for line in f:
            m = re.match(r"^c?ob=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("ob="):
                    ob = m.group(1)
                continue
            if line.startswith("calls="):
                after_call = True
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                if after_call:          # the inclusive cost of a call
                    after_call = False
                    continue
                parts = line.split()
                if len(parts) > 1 and ob is not None:
                    costs[names.get(ob, ob)] += int(parts[1])
    return costs


def group_of(obj):
    base = obj.rsplit("/", 1)[-1]
    for prefix, group in (("ld-linux", "dynamic loader (ld.so)"),
                          ("libcrypto", "OpenSSL (libcrypto, libssl)"),
                          ("libssl", "OpenSSL (libcrypto, libssl)"),
                          ("libc.so", "libc (malloc, strings)"),
                          ("lua", "Lua interpreter and lua-cjson"),
                          ("liblua", "Lua interpreter and lua-cjson"),
                          ("libcurl", "libcurl"),
                          ("libjson-c", "json-c"),
                          ("core.so", "dps (our code)"),
                          ("provision_c", "dps (our code)"),
                          ("floor", "the floor program")):
        if base.startswith(prefix):
            return group
    return "other libraries Debian's libcurl loads"


def phases(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if not m:
            continue
        fn = m.group(2).split(":")[-1].split(" ")[0]
        if fn not in found:
            found[fn] = int(m.group(1).replace(",", ""))
    return found


def main(path):
    costs = self_by_object(path)
    total = sum(costs.values())
    print("  instructions (callgrind): %d Ir for the whole process" % total)
    inc = phases(path)
    print("  by phase (inclusive):")
    for fn, label in PHASES:
        if fn in inc:
            print("    %-58s %11d Ir %5.1f%%" % (label, inc[fn], 100.0 * inc[fn] / total))
    groups = collections.Counter()
    for obj, n in costs.items():
        groups[group_of(obj)] += n
    print("  by shared object (self):")
    for g, n in groups.most_common():
        print("    %-58s %11d Ir %5.1f%%" % (g, n, 100.0 * n / total))


if __name__ == "__main__":
    main(sys.argv[1])
