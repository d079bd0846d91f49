"""Summarises the emulator's request log (JSON lines) from a byte offset on.

    logstats.py LOG OFFSET

Prints one line: requests, TLS connections (distinct conn_id), answers by
status, and the most requests seen within any one second (sliding window).
"""
import collections
import json
import sys


def main(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        records = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
    if not records:
        print("requests=0")
        return
    statuses = collections.Counter(str(r["status"]) for r in records)
    times = sorted(r["time"] for r in records)
    peak, lo = 0, 0
    for hi, t in enumerate(times):           # largest count within 1 s
        while t - times[lo] >= 1.0:
            lo += 1
        peak = max(peak, hi - lo + 1)
    methods = collections.Counter(r["method"] for r in records)
    print("requests=%d (%s) connections=%d statuses=%s 429s=%d max_req_per_s=%d span_s=%.2f" % (
        len(records),
        " ".join("%s:%d" % kv for kv in sorted(methods.items())),
        len({r["conn_id"] for r in records}),
        ",".join("%s:%d" % kv for kv in sorted(statuses.items())),
        statuses.get("429", 0), peak, times[-1] - times[0]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
