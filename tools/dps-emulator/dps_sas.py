"""SAS token parsing and verification, done the way the service does it
(docs/protocol.md §5): HMAC over the *literal* received `sr` text, so the hex
case chosen by the client's URL encoder matters; the decoded `sr` must name
{scope}/registrations/{regId}; 5 minutes of clock skew are allowed on `se`.
"""

import base64
import binascii
import hashlib
import hmac
import time
import urllib.parse

PREFIX = "sharedaccesssignature "
CLOCK_SKEW_SECONDS = 300
KEY_NAME = "registration"


class SasError(Exception):
    """Token rejected; str(err) is a human message for the error body."""


def derive_device_key(group_key_b64, registration_id):
    """Group enrollment device key (docs/protocol.md §5.4), Base64 text."""
    key = base64.b64decode(group_key_b64)
    mac = hmac.new(key, registration_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def sign(key_b64_or_bytes, string_to_sign):
    """Base64 HMAC-SHA256 of a string-to-sign with a Base64 (or raw) key."""
    key = key_b64_or_bytes
    if isinstance(key, str):
        key = base64.b64decode(key)
    mac = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def make_token(key, scope, registration_id, expiry, skn=KEY_NAME, upper_hex=False):
    """Client-side token builder (C SDK style lowercase hex by default); used by
    tests and the README example, not by the server."""
    quoted = urllib.parse.quote(f"{scope}/registrations/{registration_id}", safe="!()*-._")
    sr = quoted if upper_hex else _lower_hex(quoted)
    sig = sign(key, f"{sr}\n{expiry}")
    sig_q = urllib.parse.quote(sig, safe="")
    sig_q = sig_q if upper_hex else _lower_hex(sig_q)
    token = f"SharedAccessSignature sr={sr}&sig={sig_q}&se={expiry}"
    if skn is not None:
        token += f"&skn={skn}"
    return token


def _lower_hex(text):
    out = []
    i = 0
    while i < len(text):
        if text[i] == "%" and i + 2 < len(text):
            out.append(text[i:i + 3].lower())
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class SasToken:
    """A parsed `Authorization: SharedAccessSignature ...` header."""

    def __init__(self, raw_sr, sig, se_text, skn):
        self.raw_sr = raw_sr          # exactly as received (still encoded)
        self.sig = sig                # URL-decoded Base64 signature
        self.se_text = se_text        # decimal text, as received
        self.skn = skn                # None when absent (skn is optional)

    @property
    def resource(self):
        return urllib.parse.unquote(self.raw_sr)


def parse(header_value):
    """Parse the header; raises SasError on anything malformed."""
    if header_value is None:
        raise SasError("Authorization header is missing")
    if not header_value.lower().startswith(PREFIX):
        raise SasError("Authorization is not a SharedAccessSignature")
    fields = {}
    for part in header_value[len(PREFIX):].strip().split("&"):
        if "=" not in part:
            raise SasError("malformed SharedAccessSignature field")
        name, value = part.split("=", 1)
        fields[name.strip().lower()] = value   # names are case-insensitive
    for required in ("sr", "sig", "se"):
        if required not in fields:
            raise SasError(f"SharedAccessSignature lacks '{required}'")
    # sr is deliberately NOT decoded here: the signature covers its literal text.
    return SasToken(fields["sr"], urllib.parse.unquote(fields["sig"]),
                    fields["se"], urllib.parse.unquote(fields["skn"])
                    if "skn" in fields else None)


def check_claims(token, scope, registration_id, now=None):
    """Expiry, resource and key-name checks that do not need the key."""
    now = time.time() if now is None else now
    try:
        expiry = int(token.se_text)
    except ValueError:
        raise SasError("SharedAccessSignature expiry is not a number")
    if expiry + CLOCK_SKEW_SECONDS < now:
        raise SasError("SharedAccessSignature is expired")
    expected = f"{scope}/registrations/"
    resource = token.resource
    if not (resource.startswith(expected) and
            resource[len(expected):].lower() == registration_id.lower()):
        raise SasError("SharedAccessSignature resource does not match the registration")
    if token.skn is not None and token.skn.lower() != KEY_NAME:
        raise SasError("SharedAccessSignature key name is not 'registration'")


def signature_matches(token, key):
    """True when `key` (Base64 text or raw bytes) produced token.sig."""
    try:
        expected = sign(key, f"{token.raw_sr}\n{token.se_text}")
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected.encode("ascii"),
                               token.sig.encode("utf-8", "replace"))


def mask_authorization(value):
    """Hide the signature of a SAS header for logs; never log key material."""
    if not value:
        return value
    parts = []
    for part in value.split("&"):
        head, sep, _rest = part.partition("=")
        if sep and head.strip().lower().endswith("sig"):
            parts.append(head + "=***")
        else:
            parts.append(part)
    return "&".join(parts)
