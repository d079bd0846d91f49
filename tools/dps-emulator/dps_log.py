"""Request log: one JSON object per device request, kept in memory (for
GET /_emulator/log) and appended to a JSON-lines file (--log F).

Secrets never reach it: the SAS `sig=` value is masked; keys are never
part of a request in the first place.
"""

import json
import threading

import dps_sas


def mask_headers(headers):
    """Header list -> dict with Authorization masked (repeated names joined)."""
    out = {}
    for name, value in headers:
        if name.lower() == "authorization":
            value = dps_sas.mask_authorization(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


class RequestLog:
    def __init__(self, path=None):
        self._records = []
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1) if path else None

    def add(self, record):
        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._records.append(record)
            if self._file:
                self._file.write(line + "\n")

    def records(self):
        with self._lock:
            return list(self._records)

    def clear(self):
        with self._lock:
            self._records.clear()

    def close(self):
        if self._file:
            self._file.close()
