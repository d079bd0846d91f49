"""The DPS device API as a transport-free core: a parsed Request goes in, a
Response (status, headers, body, fault to render) comes out. Sockets, TLS
and framing live in dps_http.py; this file holds the protocol rules
(docs/protocol.md §1-§7) and the per-registration state.
"""

import base64
import collections
import datetime
import json
import math
import os
import re
import threading
import time
import urllib.parse
import uuid

import dps_faults
import dps_issuer
import dps_sas
import dps_tpm
import dps_x509

API_VERSIONS = {"2019-03-31", "2021-06-01", "2021-10-01"}
_PREVIEW = re.compile(r"^\d{4}-\d{2}-\d{2}-preview$")

_ROUTES = [
    ("register", "PUT", re.compile(r"^/([^/]+)/registrations/([^/]+)/register/?$")),
    ("poll", "GET", re.compile(r"^/([^/]+)/registrations/([^/]+)/operations/([^/]+)/?$")),
    ("lookup", "POST", re.compile(r"^/([^/]+)/registrations/([^/]+)/?$")),
]

_STATUS_MESSAGES = {
    429: "Too many requests.", 500: "Internal server error.",
    502: "Bad gateway.", 503: "Service unavailable.", 504: "Gateway timeout.",
}

JSON_TYPE = "application/json; charset=utf-8"


def iso_utc(ts):
    """ISO-8601 with 7 fractional digits, as the service writes it."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def new_etag():
    return base64.b64encode(f'"{uuid.uuid4()}"'.encode()).decode("ascii")


def new_operation_id():
    return f"5.{os.urandom(8).hex()}.{uuid.uuid4()}"


class Request:
    def __init__(self, method, path, query, headers, body=b"", peer_chain=None):
        self.method = method
        self.path = path                  # without the query string
        self.query = query                # dict name -> first value
        self.headers = headers            # list of (name, value)
        self.body = body
        self.peer_chain = peer_chain or []  # client certs, leaf first

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


def override_reply(enrollment, body):
    """Test knob (enrollment "reply_overrides"): puts the configured,
    possibly hostile, values in place of the service-made fields."""
    o = enrollment.reply_overrides
    if not o or not isinstance(body, dict):
        return
    for field in ("operationId", "keyName"):
        if field in o and field in body:
            body[field] = o[field]
    state = body.get("registrationState")
    if "registrationId" in o and isinstance(state, dict):
        state["registrationId"] = o["registrationId"]


class Response:
    def __init__(self, status, body=None, headers=None):
        self.status = status
        self.body = body                  # JSON-able object or None
        self.headers = list(headers or [])
        self.fault = None                 # Fault to render at the HTTP layer
        self.delay = 0.0                  # seconds to hang before answering
        self.registration_id = None
        self.fault_names = []
        self.reason = None                # why a request was rejected (log only)

    def body_bytes(self):
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


class Reject(Exception):
    """Carries a finished error Response out of deep checks."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def error_response(status, code, message, now):
    """DPS ProvisioningServiceErrorDetails body (docs/protocol.md §3.4)."""
    body = {"errorCode": code, "trackingId": str(uuid.uuid4()),
            "message": message, "timestampUtc": iso_utc(now)}
    return Response(status, body, [("x-ms-error-code", str(code))])


class Registration:
    """State of one device's latest registration."""

    def __init__(self, registration_id, enrollment, now):
        self.registration_id = registration_id
        self.enrollment = enrollment
        self.created = now
        self.updated = now
        self.etag = new_etag()
        self.operation_id = new_operation_id()
        self.polls_left = max(enrollment.polls_before_assignment - 1, 0)
        self.finished = enrollment.polls_before_assignment == 0
        self.failure = None                # (error_code, message)
        self.device_payload = None
        self.cert_leaf = None
        self.signing_ca = None
        self.hub_key = None                # TPM: key wrapped in the final blob
        self.hub_key_blob = None
        self.csr = None                    # preview: the device's CSR
        self.issued_chain = None           # issued once, on assignment
        self.issue = None                  # callable(csr, reg_id) -> chain

    @property
    def status(self):
        if not self.finished:
            return "assigning"
        return "failed" if self.failure else "assigned"

    def state(self, include_chain=True):
        """registrationState / DeviceRegistrationResult (docs/protocol.md §3.2).
        The issued chain only answers the registration that sent the CSR."""
        if not self.finished:
            return {"registrationId": self.registration_id, "status": "assigning"}
        e = self.enrollment
        st = {"registrationId": self.registration_id,
              "createdDateTimeUtc": iso_utc(self.created)}
        if self.failure:
            st.update(status="failed", errorCode=self.failure[0],
                      errorMessage=self.failure[1])
        else:
            st.update(assignedHub=e.assigned_hub,
                      deviceId=e.device_id or self.registration_id,
                      status="assigned", substatus="initialAssignment")
        st.update(lastUpdatedDateTimeUtc=iso_utc(self.updated), etag=self.etag)
        if self.failure:
            return st
        payload = self.device_payload if e.payload == "echo" else e.payload
        if payload is not None:
            st["payload"] = payload
        if self.csr is not None and include_chain:
            if self.issued_chain is None:
                self.issued_chain = self.issue(self.csr, self.registration_id)
            st["issuedCertificateChain"] = self.issued_chain
        if e.type == "symmetric_key_group":
            st["symmetricKey"] = {"enrollmentGroupId": e.group_id}
        elif e.type in ("x509", "x509_group"):
            x = {}
            if self.cert_leaf is not None:
                x["certificateInfo"] = dps_x509.certificate_info(self.cert_leaf)
            if e.type == "x509_group":
                x["enrollmentGroupId"] = e.group_id
                if self.signing_ca is not None:
                    x["signingCertificateInfo"] = dps_x509.certificate_info(self.signing_ca)
            st["x509"] = x
        elif e.type == "tpm":
            st["tpm"] = {"authenticationKey": self.hub_key_blob}
        return st

    def summary(self):
        """For GET /_emulator/registrations (test inspection, may hold keys)."""
        e = self.enrollment
        return {
            "registration_id": self.registration_id,
            "enrollment_type": e.type,
            "enrollment": e.label(),
            "status": self.status,
            "operation_id": self.operation_id,
            "device_id": e.device_id or self.registration_id,
            "assigned_hub": e.assigned_hub,
            "hub_key": base64.b64encode(self.hub_key).decode() if self.hub_key else None,
            "device_payload": self.device_payload,
        }


class Service:
    def __init__(self, config, clock=time.time):
        self.clock = clock
        self.lock = threading.RLock()
        # Kept across config changes: clients trust what it wrote out.
        self.issuer = dps_issuer.Issuer()
        self.reset(config)

    def reset(self, config):
        """New config: forget registrations, fault counters and rate window."""
        with self.lock:
            self.config = config
            self.registrations = {}        # regId.lower() -> Registration
            self.operations = {}           # operationId -> regId.lower()
            self.tpm_pending = {}          # regId.lower() -> {"key","srk"}
            self.counters = dps_faults.FaultCounters()
            self.rate_window = collections.deque()

    def registrations_summary(self):
        with self.lock:
            out = [r.summary() for r in self.registrations.values()]
            for rid, p in self.tpm_pending.items():
                for r in out:
                    if r["registration_id"].lower() == rid:
                        r["tpm_challenge_key"] = base64.b64encode(p["key"]).decode()
            return out

    # ---- entry point -------------------------------------------------

    def handle(self, req):
        now = self.clock()
        req.registration_id = None
        try:
            return self._handle(req, now)
        except Reject as r:
            r.response.registration_id = req.registration_id
            return r.response

    def _handle(self, req, now):
        op, scope, reg_id, op_id = self._route(req, now)
        req.registration_id = resp_reg = reg_id

        api = req.query.get("api-version")
        if not api:
            raise Reject(error_response(400, 400001, "The api-version query parameter is missing.", now))
        if (api not in API_VERSIONS and not _PREVIEW.match(api)) or \
                (api == dps_issuer.CSR_API_VERSION and not self.config.certificate_issuance):
            raise Reject(error_response(400, 400001, f"The api-version '{api}' is not supported.", now))

        cfg = self.config
        if op == "register":
            self._rate_limit(now)

        # Global faults fire before authentication, like a front end would.
        fault = self.counters.pick(cfg.faults, "global", op)
        delay = 0.0
        if fault is not None:
            early = self._fault_response(fault, cfg.retry_after, now, cfg.faults, "global", op)
            if early is not None:
                early.registration_id = resp_reg
                return early
            if fault.kind == "hang":
                delay = fault.seconds

        if scope != cfg.id_scope:
            raise Reject(error_response(404, 404201, "The ID scope was not found.", now))

        body = self._parse_body(req, reg_id, now)
        enrollment, auth = self._authenticate(op, scope, reg_id, req, body, now)
        csr = self._check_csr(op, api, body, reg_id, now)

        fault_key = enrollment.fault_key(reg_id)
        efault = None
        if fault is None:
            efault = self.counters.pick(enrollment.faults, fault_key, op)
            if efault is not None:
                early = self._fault_response(efault, enrollment.retry_after, now,
                                             enrollment.faults, fault_key, op)
                if early is not None:
                    early.registration_id = resp_reg
                    early.delay = delay
                    return early
                if efault.kind == "hang":
                    delay = efault.seconds
        fired = fault or efault

        with self.lock:
            if op == "register":
                resp = self._register(reg_id, enrollment, auth, body, fired, req, now, csr)
            elif op == "poll":
                resp = self._poll(reg_id, op_id, fired, now)
            else:
                resp = self._lookup(reg_id, enrollment, now)

        override_reply(enrollment, resp.body)
        if resp.status == 202:
            # Retry-After on every 202 (PUT and GET), possibly overridden.
            ra = (self.counters.retry_after_override(enrollment.faults, fault_key, op) or
                  self.counters.retry_after_override(cfg.faults, "global", op) or
                  str(enrollment.retry_after))
            resp.headers.append(("Retry-After", ra))
            host = req.header("host") or "global.azure-devices-provisioning.net"
            resp.headers.append(("Location", f"https://{host}/{scope}/registrations/"
                                 f"{urllib.parse.quote(reg_id, safe='')}/register"))
        if fired is not None and fired.kind in ("close", "close_mid_response",
                                                "malformed_json", "oversized",
                                                "content_type"):
            resp.fault = fired
        if fired is not None:
            resp.fault_names.append(fired.describe())
        resp.delay = delay
        resp.registration_id = resp_reg
        return resp

    # ---- helpers -------------------------------------------------------

    def _route(self, req, now):
        for op, method, rx in _ROUTES:
            m = rx.match(req.path)
            if m:
                if req.method != method:
                    raise Reject(error_response(405, 405000, "Method not allowed.", now))
                parts = [urllib.parse.unquote(g) for g in m.groups()]
                op_id = parts[2] if op == "poll" else None
                return op, parts[0], parts[1], op_id
        raise Reject(error_response(404, 404000, "Resource not found.", now))

    def _rate_limit(self, now):
        limit = self.config.rate_limit_per_minute
        if not limit:
            return
        window = self.config.rate_limit_window_s
        with self.lock:
            while self.rate_window and self.rate_window[0] <= now - window:
                self.rate_window.popleft()
            if len(self.rate_window) >= limit:
                wait = max(1, math.ceil(self.rate_window[0] + window - now))
                resp = error_response(429, 429001, "Registration rate limit exceeded.", now)
                resp.headers.append(("Retry-After", str(wait)))
                resp.fault_names.append("rate_limit")
                raise Reject(resp)
            self.rate_window.append(now)

    def _fault_response(self, fault, default_ra, now, faults, key, op):
        """A finished response for faults that replace the answer, else None."""
        if fault.kind != "status":
            return None
        status = fault.status
        code = fault.error_code or status * 1000 + 1
        message = fault.message or _STATUS_MESSAGES.get(status, "Injected error.")
        resp = error_response(status, code, message, now)
        ra = self.counters.retry_after_override(faults, key, op) or \
            fault.retry_after_header(default_ra)
        if ra is not None:
            resp.headers.append(("Retry-After", ra))
        resp.fault_names.append(fault.describe())
        return resp

    def _parse_body(self, req, reg_id, now):
        if req.method == "GET" or not req.body.strip():
            return {}
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Reject(error_response(400, 400002, "The request body is not valid JSON.", now))
        if not isinstance(body, dict):
            raise Reject(error_response(400, 400002, "The request body must be a JSON object.", now))
        body_id = body.get("registrationId")
        if body_id is not None and (not isinstance(body_id, str) or
                                    body_id.lower() != reg_id.lower()):
            raise Reject(error_response(
                400, 400003, "The registrationId in the body does not match the URL.", now))
        return body

    def _check_csr(self, op, api, body, reg_id, now):
        """The preview's `csr`: only on register, only with its api-version,
        and it must be a valid request for this registration id."""
        if "csr" not in body:
            return None
        if op != "register":
            raise Reject(error_response(
                400, 400011, "The csr field is not allowed on a status lookup.", now))
        if api != dps_issuer.CSR_API_VERSION:
            raise Reject(error_response(
                400, 400011, f"The csr field requires api-version "
                f"{dps_issuer.CSR_API_VERSION}; got '{api}'.", now))
        try:
            return dps_issuer.check_csr(body["csr"], reg_id)
        except dps_issuer.CsrError as e:
            resp = error_response(400, 400012, str(e), now)
            resp.reason = f"csr: {e}"
            raise Reject(resp)

    # ---- authentication (docs/protocol.md §5, §6.3, §7) ---------------------------

    def _authenticate(self, op, scope, reg_id, req, body, now):
        """Returns (enrollment, auth info dict) or raises Reject."""
        header = req.header("authorization")
        if header is not None:
            return self._auth_sas(scope, reg_id, header, body, now)
        tpm = body.get("tpm") if isinstance(body.get("tpm"), dict) else None
        if tpm is not None and op == "register":
            raise Reject(self._tpm_challenge(reg_id, tpm, now))
        if req.peer_chain:
            return self._auth_x509(reg_id, req.peer_chain, now)
        raise Reject(error_response(401, 401002, "Unauthorized: no credentials were presented.", now))

    def _auth_sas(self, scope, reg_id, header, body, now):
        cfg = self.config
        unauthorized = error_response(401, 401002, "Unauthorized.", now)
        try:
            token = dps_sas.parse(header)
            dps_sas.check_claims(token, scope, reg_id, now)
        except dps_sas.SasError as e:
            unauthorized.body["message"] = f"Unauthorized: {e}."
            unauthorized.reason = f"sas: {e}"
            raise Reject(unauthorized)

        # Individual enrollments win; groups only when there is none.
        candidates = []
        indiv = cfg.individual("symmetric_key", reg_id)
        tpm_e = cfg.individual("tpm", reg_id)
        if indiv is not None:
            candidates = [(indiv, k) for k in indiv.keys(reg_id)]
        elif tpm_e is not None:
            with self.lock:
                pending = self.tpm_pending.get(reg_id.lower())
            if pending is not None:
                candidates = [(tpm_e, pending["key"])]
            tpm = body.get("tpm")
            if isinstance(tpm, dict) and not self._ek_matches(tpm_e, tpm):
                raise Reject(unauthorized)
        else:
            for g in cfg.groups("symmetric_key_group"):
                candidates += [(g, k) for k in g.keys(reg_id)]
        for enrollment, key in candidates:
            if dps_sas.signature_matches(token, key):
                return enrollment, {"method": "sas"}
        unauthorized.body["message"] = "Unauthorized: the signature does not match any enrollment key."
        raise Reject(unauthorized)

    @staticmethod
    def _ek_matches(enrollment, tpm):
        try:
            ek = base64.b64decode(tpm.get("endorsementKey") or "", validate=True)
        except (ValueError, TypeError):
            return False
        return ek == enrollment.endorsement_key

    def _tpm_challenge(self, reg_id, tpm, now):
        """First TPM PUT: 401 with an activation blob wrapping a fresh key K
        (docs/protocol.md §3.5, §6.6). K is kept to verify the device's next SAS."""
        enrollment = self.config.individual("tpm", reg_id)
        if enrollment is None or not self._ek_matches(enrollment, tpm):
            return error_response(401, 401002, "Unauthorized: unknown endorsement key.", now)
        ek = enrollment.endorsement_key
        try:
            srk = base64.b64decode(tpm.get("storageRootKey") or "", validate=True)
            dps_tpm.parse_rsa_public(srk)
        except (ValueError, TypeError):
            return error_response(400, 400004, "The storage root key is invalid.", now)
        key = os.urandom(32)
        blob = dps_tpm.build_activation_blob(ek, srk, key)
        with self.lock:
            self.tpm_pending[reg_id.lower()] = {"key": key, "srk": srk}
        body = {"message": "Please authenticate with the activated key.",
                "authenticationKey": base64.b64encode(blob).decode("ascii"),
                "keyName": "registration"}
        override_reply(enrollment, body)
        return Response(401, body)

    def _auth_x509(self, reg_id, chain, now):
        cfg = self.config
        invalid = error_response(401, 401002, "Invalid certificate.", now)
        indiv = cfg.individual("x509", reg_id)
        try:
            if indiv is not None:
                dps_x509.check_individual(chain, indiv.certificates, reg_id)
                return indiv, {"method": "x509", "leaf": chain[0], "ca": None}
            last = dps_x509.X509Error("no enrollment for this certificate")
            for g in cfg.groups("x509_group"):
                try:
                    ca = dps_x509.check_group(chain, g.certificates, reg_id)
                    return g, {"method": "x509", "leaf": chain[0], "ca": ca}
                except dps_x509.X509Error as e:
                    last = e
            raise last
        except dps_x509.X509Error as e:
            invalid.reason = f"x509: {e}"
            raise Reject(invalid)

    # ---- operations ------------------------------------------------------

    def _register(self, reg_id, enrollment, auth, body, fault, req, now, csr=None):
        if not enrollment.enabled:
            return Response(200, {"operationId": "", "status": "disabled",
                                  "registrationState": {"registrationId": reg_id,
                                                        "status": "disabled"}})
        old = self.registrations.get(reg_id.lower())
        reg = Registration(reg_id, enrollment, now)
        if old is not None:
            self.operations.pop(old.operation_id, None)
            reg.created = old.created
        reg.device_payload = body.get("payload")
        if csr is not None:
            validity = self.config.issued_certificate_validity_s
            reg.csr = csr
            reg.issue = lambda c, rid: self.issuer.issue(c, rid, validity)
        if auth.get("method") == "x509":
            reg.cert_leaf, reg.signing_ca = auth["leaf"], auth["ca"]
        if fault is not None and fault.kind == "failed":
            reg.failure = (fault.error_code, fault.error_message)
        if enrollment.type == "tpm":
            pending = self.tpm_pending.get(reg_id.lower())
            srk = pending["srk"]
            tpm = body.get("tpm") or {}
            try:
                srk = base64.b64decode(tpm.get("storageRootKey") or "", validate=True) or srk
            except (ValueError, TypeError):
                pass
            reg.hub_key = os.urandom(32)
            blob = dps_tpm.build_activation_blob(enrollment.endorsement_key, srk, reg.hub_key)
            reg.hub_key_blob = base64.b64encode(blob).decode("ascii")
        self.registrations[reg_id.lower()] = reg
        self.operations[reg.operation_id] = reg_id.lower()
        if reg.finished:
            return self._final(reg)
        return Response(202, {"operationId": reg.operation_id, "status": "assigning"})

    def _final(self, reg):
        return Response(200, {"operationId": reg.operation_id, "status": reg.status,
                              "registrationState": reg.state()})

    def _poll(self, reg_id, op_id, fault, now):
        rid = self.operations.get(op_id)
        reg = self.registrations.get(rid) if rid else None
        if reg is None or rid != reg_id.lower():
            return error_response(404, 404203, "The operation was not found.", now)
        if fault is not None and fault.kind == "failed" and reg.failure is None:
            reg.failure = (fault.error_code, fault.error_message)
        if not reg.finished:
            if reg.polls_left > 0:
                reg.polls_left -= 1
                return Response(202, {"operationId": reg.operation_id, "status": "assigning",
                                      "registrationState": reg.state()})
            reg.finished = True
            reg.updated = now
        return self._final(reg)

    def _lookup(self, reg_id, enrollment, now):
        reg = self.registrations.get(reg_id.lower())
        if not enrollment.enabled:
            return Response(200, {"registrationId": reg_id, "status": "disabled"})
        if reg is None:
            return error_response(404, 404202, "The device registration was not found.", now)
        return Response(200, reg.state(include_chain=False))
