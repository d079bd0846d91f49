"""Emulator configuration: parse and validate the JSON config once into
Config / Enrollment objects, so request handling never meets bad input.
Schema: README.md "Config file".
"""

import base64
import binascii
import json
import os

import dps_faults
import dps_sas
import dps_tpm
import dps_x509


class ConfigError(ValueError):
    pass


TYPES = {"symmetric_key", "symmetric_key_group", "x509", "x509_group", "tpm"}

# Keys every enrollment may carry (besides type-specific ones).
_COMMON = {"type", "device_id", "assigned_hub", "payload", "enabled",
           "polls_before_assignment", "retry_after", "faults", "reply_overrides"}
# Service-made reply fields a test may replace with hostile values.
_OVERRIDABLE = {"operationId", "registrationId", "keyName"}
_SPECIFIC = {
    "symmetric_key": {"registration_id", "primary_key", "secondary_key"},
    "symmetric_key_group": {"group_id", "primary_key", "secondary_key"},
    "x509": {"registration_id", "certificate"},
    "x509_group": {"group_id", "ca_certificate"},
    "tpm": {"registration_id", "endorsement_key"},
}
_TOP = {"id_scope", "default_hub", "retry_after", "polls_before_assignment",
        "rate_limit_per_minute", "rate_limit_window_s", "faults", "enrollments",
        "content_length", "certificate_issuance", "issued_certificate_validity_s"}


def _b64_key(value, where):
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a Base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ConfigError(f"{where} is not valid Base64") from None
    if not raw:
        raise ConfigError(f"{where} is empty")
    return value


class Enrollment:
    """One enrollment. `index` identifies it for fault counters."""

    def __init__(self, spec, index, config, base_dir):
        where = f"enrollments[{index}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be an object")
        self.type = spec.get("type")
        if self.type not in TYPES:
            raise ConfigError(f"{where}: unknown type {self.type!r}")
        unknown = set(spec) - _COMMON - _SPECIFIC[self.type]
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        self.index = index
        self.is_group = self.type.endswith("_group")
        self.registration_id = spec.get("registration_id")
        self.group_id = spec.get("group_id")
        if self.is_group and not self.group_id:
            raise ConfigError(f"{where}: group enrollments need 'group_id'")
        if self.type in ("symmetric_key", "x509") and not self.registration_id:
            raise ConfigError(f"{where}: needs 'registration_id'")

        self.primary_key = self.secondary_key = None
        if self.type.startswith("symmetric_key"):
            self.primary_key = _b64_key(spec.get("primary_key"), f"{where}.primary_key")
            if spec.get("secondary_key") is not None:
                self.secondary_key = _b64_key(spec["secondary_key"], f"{where}.secondary_key")

        self.certificates = []
        try:
            if self.type == "x509":
                self.certificates = dps_x509.load_certs(_need(spec, "certificate", where), base_dir)
            elif self.type == "x509_group":
                self.certificates = dps_x509.load_certs(_need(spec, "ca_certificate", where), base_dir)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{where}: cannot load certificate: {e}") from None

        self.endorsement_key = None
        if self.type == "tpm":
            try:
                self.endorsement_key = base64.b64decode(
                    _need(spec, "endorsement_key", where), validate=True)
                dps_tpm.parse_rsa_public(self.endorsement_key)
            except (binascii.Error, ValueError) as e:
                raise ConfigError(f"{where}: bad endorsement_key: {e}") from None
            if not self.registration_id:
                self.registration_id = dps_tpm.registration_id_from_ek(self.endorsement_key)

        self.device_id = spec.get("device_id")          # None: use registration id
        self.assigned_hub = spec.get("assigned_hub", config.default_hub)
        self.payload = spec.get("payload")              # JSON value, "echo" or None
        self.reply_overrides = _overrides(spec.get("reply_overrides"), where)
        self.enabled = bool(spec.get("enabled", True))
        self.polls_before_assignment = _int(spec, "polls_before_assignment",
                                            config.polls_before_assignment, where)
        self.retry_after = spec.get("retry_after", config.retry_after)
        try:
            self.faults = dps_faults.parse_faults(empty_as_list(spec.get("faults")), where)
        except dps_faults.FaultError as e:
            raise ConfigError(str(e)) from None

    def keys(self, registration_id):
        """Base64 keys a SAS for this registration id may be signed with."""
        keys = [k for k in (self.primary_key, self.secondary_key) if k]
        if self.type == "symmetric_key_group":
            return [dps_sas.derive_device_key(k, registration_id) for k in keys]
        return keys

    def fault_key(self, registration_id):
        """Counter owner: per enrollment, per device for groups."""
        return (self.index, registration_id.lower() if self.is_group else "")

    def label(self):
        return self.group_id if self.is_group else self.registration_id


def empty_as_list(value):
    """Lua's cjson encodes an empty table as {}: accept it as an empty list."""
    return [] if value == {} else value


def _overrides(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - _OVERRIDABLE or \
            not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{where}: 'reply_overrides' must map some of "
                          f"{sorted(_OVERRIDABLE)} to strings")
    return dict(value)


def _need(spec, key, where):
    if not spec.get(key):
        raise ConfigError(f"{where}: needs '{key}'")
    return spec[key]


def _int(spec, key, default, where):
    value = spec.get(key, default)
    if not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: '{key}' must be a non-negative integer")
    return value


class Config:
    def __init__(self, data, base_dir="."):
        if not isinstance(data, dict):
            raise ConfigError("config must be a JSON object")
        unknown = set(data) - _TOP
        if unknown:
            raise ConfigError(f"unknown top-level keys {sorted(unknown)}")
        self.raw = data
        self.id_scope = data.get("id_scope")
        if not isinstance(self.id_scope, str) or not self.id_scope:
            raise ConfigError("'id_scope' is required")
        self.default_hub = data.get("default_hub", "test-hub.azure-devices.net")
        self.retry_after = data.get("retry_after", 1)
        self.polls_before_assignment = _int(data, "polls_before_assignment", 1, "config")
        self.rate_limit_per_minute = _int(data, "rate_limit_per_minute", 0, "config")
        # The real quota counts per minute; specs shrink the window so a
        # throttled fleet recovers within seconds.
        self.rate_limit_window_s = _int(data, "rate_limit_window_s", 60, "config")
        if self.rate_limit_window_s < 1:
            raise ConfigError("'rate_limit_window_s' must be at least 1")
        self.content_length = bool(data.get("content_length", False))
        # Certificate issuance (api-version 2025-07-01-preview); false makes
        # a service that does not know that api-version.
        self.certificate_issuance = bool(data.get("certificate_issuance", True))
        self.issued_certificate_validity_s = _int(
            data, "issued_certificate_validity_s", 30 * 24 * 3600, "config")
        if self.issued_certificate_validity_s < 1:
            raise ConfigError("'issued_certificate_validity_s' must be at least 1")
        try:
            self.faults = dps_faults.parse_faults(empty_as_list(data.get("faults")), "config")
        except dps_faults.FaultError as e:
            raise ConfigError(str(e)) from None
        specs = empty_as_list(data.get("enrollments", []))
        if not isinstance(specs, list):
            raise ConfigError("'enrollments' must be a list")
        self.enrollments = [Enrollment(s, i, self, base_dir) for i, s in enumerate(specs)]

    # Look-ups used by authentication. Individual enrollments win over
    # groups, as in the real service.
    def individual(self, etype, registration_id):
        rid = registration_id.lower()
        for e in self.enrollments:
            if e.type == etype and e.registration_id and e.registration_id.lower() == rid:
                return e
        return None

    def groups(self, etype):
        return [e for e in self.enrollments if e.type == etype]


def load_file(path):
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    return Config(data, os.path.dirname(os.path.abspath(path)))
