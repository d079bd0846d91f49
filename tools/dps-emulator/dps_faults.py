"""Fault injection: validated fault specs and their per-key countdowns.

A fault list belongs either to the whole service (config "faults") or to one
enrollment. Counters are kept per (owner, registration id) so that devices of
one group enrollment do not consume each other's faults. On each request the
first fault in list order that applies to the request and still has
`times` left fires (only one per request); `retry_after` faults are
modifiers and are consumed separately, by each response that carries a
Retry-After header.
"""

import threading

KINDS = {
    "status", "close", "close_mid_response", "hang", "malformed_json",
    "oversized", "content_type", "failed", "retry_after",
}
OPS = {"register", "poll", "lookup", "any"}

# Keys each kind may carry besides kind/times/on (for early, clear errors).
_EXTRA_KEYS = {
    "status": {"status", "retry_after", "error_code", "message"},
    "close": set(),
    "close_mid_response": set(),
    "hang": {"seconds"},
    "malformed_json": set(),
    "oversized": {"bytes"},
    "content_type": {"value"},
    "failed": {"error_code", "error_message"},
    "retry_after": {"value"},
}

_ABSENT = object()


class FaultError(ValueError):
    pass


class Fault:
    """One validated fault spec (see README "Fault kinds")."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise FaultError("fault must be an object")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r}")
        unknown = set(spec) - {"kind", "times", "on"} - _EXTRA_KEYS[kind]
        if unknown:
            raise FaultError(f"fault {kind}: unknown keys {sorted(unknown)}")
        self.kind = kind
        self.times = spec.get("times", 1)
        if not isinstance(self.times, int) or self.times < -1:
            raise FaultError("fault 'times' must be an integer >= -1")
        # A failed registration is decided when the operation is created.
        self.on = spec.get("on", "register" if kind == "failed" else "any")
        if self.on not in OPS:
            raise FaultError(f"fault 'on' must be one of {sorted(OPS)}")
        self.status = spec.get("status", 500)
        if kind == "status" and not (isinstance(self.status, int) and 100 <= self.status <= 599):
            raise FaultError("fault 'status' must be an HTTP status code")
        # _ABSENT lets "retry_after": null mean "send no header at all".
        self.retry_after = spec.get("retry_after", _ABSENT)
        self.error_code = spec.get("error_code")
        self.message = spec.get("message")
        self.error_message = spec.get("error_message", "Custom allocation failed")
        self.seconds = float(spec.get("seconds", 5))
        self.bytes = int(spec.get("bytes", 2_000_000))
        self.value = spec.get("value")
        if kind in ("content_type", "retry_after") and self.value is None:
            raise FaultError(f"fault {kind} needs 'value'")
        if kind == "failed" and self.error_code is None:
            self.error_code = 400207

    def applies_to(self, op):
        return self.on == "any" or self.on == op

    def retry_after_header(self, default):
        """Retry-After for a 'status' fault: explicit value, none (null), or
        the enrollment default for 429 only (5xx usually carry none)."""
        if self.retry_after is _ABSENT:
            return str(default) if self.status == 429 else None
        if self.retry_after is None:
            return None
        return str(self.retry_after)

    def describe(self):
        return self.kind if self.kind != "status" else f"status:{self.status}"


def parse_faults(specs, where):
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise FaultError(f"{where}: 'faults' must be a list")
    out = []
    for i, spec in enumerate(specs):
        try:
            out.append(Fault(spec))
        except FaultError as e:
            raise FaultError(f"{where}: faults[{i}]: {e}") from None
    return out


class FaultCounters:
    """Remaining `times` per (owner key, fault index); thread-safe."""

    def __init__(self):
        self._used = {}
        self._lock = threading.Lock()

    def _take(self, key, index, fault):
        used = self._used.get((key, index), 0)
        if fault.times != -1 and used >= fault.times:
            return False
        self._used[(key, index)] = used + 1
        return True

    def pick(self, faults, key, op):
        """The fault that fires for this request, or None."""
        with self._lock:
            for i, fault in enumerate(faults):
                if fault.kind == "retry_after" or not fault.applies_to(op):
                    continue
                if self._take(key, i, fault):
                    return fault
        return None

    def retry_after_override(self, faults, key, op):
        """Verbatim Retry-After value from a pending retry_after fault."""
        with self._lock:
            for i, fault in enumerate(faults):
                if fault.kind == "retry_after" and fault.applies_to(op):
                    if self._take(key, i, fault):
                        return str(fault.value)
        return None
