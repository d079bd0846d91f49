--- Azure IoT Hub Device Provisioning Service client.
--
-- The idiomatic layer over the C binding `dps.core`: one validated config
-- table instead of order-dependent setters, results as Lua tables with
-- snake_case fields, failures as `nil, message, code, details`.
--
-- Blocking, with `client:register()`; or from the script's own loop:
-- `client:start(on_result, on_status)`, then `client:step()` and
-- `client:wait(max_s)`, or `client:pollfds()` and `client:timeout()` for a
-- host event loop (uloop, cqueues...).
--
-- Works on Lua 5.1 to 5.4; `local c <close> = dps.new{...}` on 5.4.
--
-- A failure is `nil, message, code, details`: `message` is readable and
-- holds no secret; `code` is one of `DEV_AUTH_ERROR`, `DISABLED`,
-- `HUB_NOT_SPECIFIED`, `UNAUTHORIZED`, `TIMEOUT`, `TRANSPORT`,
-- `KEY_ERROR`, `PARSING`, `ERROR`, `INVALID_ARG`, `INVALID_STATE`,
-- `MEMORY`, `CALLBACK_ERROR`; `details` is a table of what the service
-- said (`error_code`, `tracking_id`, `http_status`, `transport_code`,
-- `status`; absent when unknown).
--
-- @module dps
-- @usage
-- local dps = require "dps"
-- local client = assert(dps.new{
--   id_scope = "0ne00000A0A",
--   registration_id = "router-0042",
--   symmetric_key = os.getenv("DPS_SYMMETRIC_KEY"),
-- })
-- local res, err, code = client:register()
-- if res then print(res.assigned_hub, res.device_id) else print(err, code) end
-- client:close()

local core = require "dps.core"
local error, pairs, ipairs, pcall, select, setmetatable, tostring,
      type = error, pairs, ipairs, pcall, select, setmetatable,
      tostring, type
local getmetatable = getmetatable
local floor, ceil, huge = math.floor, math.ceil, math.huge
local unpack = table.unpack or unpack -- luacheck: ignore 143

-- JSON goes through the C core (json-c), not a Lua JSON module: payload
-- integers go out exactly (Lua 5.3+ integers, and every integral double
-- up to 2^53 on 5.1) and service integers come back as integers where
-- they fit, the closest float where they do not.
local json_encode, json_decode, null = core.json_encode, core.json_decode,
                                       core.null

local M = { _VERSION = core.VERSION }

-- dps.group objects (see the Group section below); known here so that
-- dps.new can check its 'group' key.
local Group = {}
Group.__index = Group
Group.__name = "dps group"

local DEFAULT_ENDPOINT = "global.azure-devices-provisioning.net"
local UINT32_MAX = 4294967295

-- ------------------------------------------------------------------------
-- Configuration: validated once, in full, before anything is created.
-- ------------------------------------------------------------------------

local function is_integer(v, lo, hi)
  return type(v) == "number" and v == floor(v) and v >= lo and v <= hi
end

local function check_string(v)
  if type(v) ~= "string" or v == "" then
    return "must be a non-empty string"
  end
  -- C sees a string up to its first NUL: a key or id would be cut short.
  if v:find("\0", 1, true) then
    return "must not contain a NUL byte"
  end
end

-- The service's rule (docs/protocol.md §2), checked here so a bad id is a
-- config error naming the key rather than a refusal from the C layer.
local function check_registration_id(v)
  local why = check_string(v)
  if why then return why end
  if #v > 128 or v:find("[^A-Za-z0-9%-%._:]")
     or not v:find("[A-Za-z0-9%-]$") then
    return "must be 1 to 128 characters of a-z A-Z 0-9 - . _ :, "
      .. "ending in a letter, digit or '-'"
  end
end

local function check_boolean(v)
  if type(v) ~= "boolean" then return "must be a boolean" end
end

-- Checks a sub-table's keys against `known` (name -> checker).
local function check_subtable(name, v, known, required)
  if type(v) ~= "table" then return "must be a table" end
  for k in pairs(v) do
    if not known[k] then
      return nil, ("unknown key '%s.%s'"):format(name, tostring(k))
    end
  end
  for k, check in pairs(known) do
    if v[k] ~= nil then
      local why = check(v[k])
      if why then return nil, ("'%s.%s' %s"):format(name, k, why) end
    elseif required[k] then
      return nil, ("'%s.%s' is required"):format(name, k)
    end
  end
end

local function check_port(v)
  if not is_integer(v, 1, 65535) then
    return "must be an integer from 1 to 65535"
  end
end

local PROXY_FORM = "must be 'http://[user:password@]host:port' or a table "
  .. "{host=, port=, username=, password=}"

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- "http://user:pass@host:port" (scheme optional) -> proxy table or nil.
local function parse_proxy(s)
  local rest = s:match("^[Hh][Tt][Tt][Pp]://(.*)$")
  if not rest then
    if s:find("://", 1, true) then return nil end -- https, socks...
    rest = s
  end
  rest = rest:gsub("/$", "")
  local userinfo, hostport = rest:match("^(.*)@([^@]*)$")
  hostport = hostport or rest
  -- "[v6]:port" keeps its brackets: they are what curl expects.
  local host, port = hostport:match("^(%[[^%]]+%]):(%d+)$")
  if not host then host, port = hostport:match("^([^:/%[%]]+):(%d+)$") end
  port = tonumber(port)
  if not host or check_port(port) then return nil end
  local p = { host = host, port = port }
  if userinfo then
    local user, pass = userinfo:match("^([^:]*):(.*)$")
    if not user or user == "" then return nil end
    p.username, p.password = unescape(user), unescape(pass)
  end
  return p
end

local PROXY_KEYS = { host = check_string, port = check_port,
                     username = check_string, password = check_string }

local function check_proxy(v)
  if type(v) == "string" then
    local p = parse_proxy(v)
    if not p then return PROXY_FORM end
    -- "%00" in the user info decodes to a NUL byte.
    for _, field in ipairs{ "host", "username", "password" } do
      if p[field] and p[field]:find("\0", 1, true) then
        return "must not contain a NUL byte (also not as %00)"
      end
    end
    return
  end
  if type(v) ~= "table" then return PROXY_FORM end
  local why, full = check_subtable("proxy", v, PROXY_KEYS,
                                   { host = true, port = true })
  if why or full then return why, full end
  if (v.username == nil) ~= (v.password == nil) then
    return nil, "'proxy.username' and 'proxy.password' go together"
  end
end

-- Keys and the endpoint are checked by the C layer's own rules, so that
-- dps.new refuses what could never work before anything is created.
local function check_key(v)
  local why = check_string(v)
  if why then return why end
  local _, reason = core.check_key(v)
  return reason
end

local function check_endpoint(v)
  local why = check_string(v)
  if why then return why end
  local _, reason = core.check_endpoint(v)
  return reason
end

local X509_KEYS = { cert = check_string, key = check_string,
                    key_password = check_string }
local TPM_KEYS = { tcti = check_string }
local CERTIFICATE_REQUEST_KEYS = { key = check_string }

-- The checks of every config key. Keys that map one to one to an option
-- of the C core take theirs from its option list (core.options(), from
-- csrc/prov_option_list.h), below; these are the composite ones.
local CHECKS = {
  id_scope = check_string,
  x509 = function(v)
    return check_subtable("x509", v, X509_KEYS, { cert = true, key = true })
  end,
  tpm = function(v)
    if v == true then return end
    return check_subtable("tpm", v, TPM_KEYS, {})
  end,
  global_endpoint = check_endpoint,
  payload = function(v)
    if type(v) ~= "table" then return "must be a table" end
    -- The message names the key: "'payload.a[2]' is a sparse array ...".
    local text, why = json_encode(v, "payload")
    if not text then return nil, why end
  end,
  timeout = function(v)
    if type(v) ~= "number" or not (v > 0) then
      return "must be a positive number"
    end
    if v ~= huge and v > UINT32_MAX then
      return "must be at most " .. UINT32_MAX .. " (or math.huge)"
    end
  end,
  proxy = check_proxy,
  group = function(v)
    if getmetatable(v) ~= Group then return "must be a dps.group" end
    if v._closed then return "is a closed dps.group" end
  end,
  certificate_request = function(v)
    return check_subtable("certificate_request", v, CERTIFICATE_REQUEST_KEYS,
                          { key = true })
  end,
}

-- A key's check from the type and range the C option list gives it.
local function option_check(o)
  if o.type == "boolean" then return check_boolean end
  if o.type == "integer" then
    local why = ("must be an integer from %.0f to %.0f"):format(o.min, o.max)
    return function(v)
      if not is_integer(v, o.min, o.max) then return why end
    end
  end
  if o.rule == "registration_id" then return check_registration_id end
  if o.rule == "base64_key" then return check_key end
  return check_string
end

local ATTESTATIONS = { "symmetric_key", "group_key", "x509", "tpm" }

-- Returns an error message (without the "dps.new: " prefix) or nil.
local function validate(cfg)
  if type(cfg) ~= "table" then
    return "expects a config table, got " .. type(cfg)
  end
  for k in pairs(cfg) do
    if type(k) ~= "string" or not CHECKS[k] then
      return ("unknown key '%s'"):format(tostring(k))
    end
  end
  for k, check in pairs(CHECKS) do
    if cfg[k] ~= nil then
      local why, full = check(cfg[k])
      if full then return full end
      if why then return ("'%s' %s"):format(k, why) end
    end
  end
  if cfg.id_scope == nil then return "'id_scope' is required" end
  local given = {}
  for _, k in ipairs(ATTESTATIONS) do
    if cfg[k] ~= nil then given[#given + 1] = "'" .. k .. "'" end
  end
  if #given ~= 1 then
    return ("exactly one of 'symmetric_key', 'group_key', 'x509', 'tpm' "
      .. "is required (got %s)"):format(#given == 0 and "none"
                                          or table.concat(given, " and "))
  end
  if (cfg.symmetric_key or cfg.group_key) and not cfg.registration_id then
    return ("'registration_id' is required with '%s'"):format(
      cfg.symmetric_key and "symmetric_key" or "group_key")
  end
end

-- The option calls a valid config maps to. Each entry: config key, then
-- a function returning (option name, value) pairs as a flat list. The
-- composite keys are here; the one-to-one keys are added below from the
-- C option list, in its order.
local OPTIONS = {
  { "x509", function(v)
      if v.key_password then
        return "x509certificate", v.cert, "x509privatekey", v.key,
               "x509privatekey_password", v.key_password
      end
      return "x509certificate", v.cert, "x509privatekey", v.key
    end },
  -- "" means the default TCTI (device:/dev/tpmrm0) and selects TPM.
  { "tpm", function(v) return "tpm_tcti", v ~= true and v.tcti or "" end },
  { "proxy", function(v)
      return "proxy_data", type(v) == "string" and parse_proxy(v) or v
    end },
  { "certificate_request",
    function(v) return "certificate_request_key", v.key end },
  -- math.huge: no deadline (0 in C); fractions round up.
  { "timeout", function(v)
      return "provisioning_deadline", v == huge and 0 or ceil(v)
    end },
}

for _, o in ipairs(core.options()) do
  if o.key then
    local name = o.name
    CHECKS[o.key] = option_check(o)
    OPTIONS[#OPTIONS + 1] = { o.key, function(v) return name, v end }
  end
end

-- Applies one config key's options; returns nil or (message, code).
local function apply(h, key, ...)
  for i = 1, select("#", ...), 2 do
    local name, value = select(i, ...)
    local ok, err, code = h:set_option(name, value)
    if not ok then
      return ("dps.new: '%s': %s"):format(key, err), code
    end
  end
end

-- ------------------------------------------------------------------------
-- Results
-- ------------------------------------------------------------------------

local RENAMED = {
  createdDateTimeUtc = "created",
  lastUpdatedDateTimeUtc = "last_updated",
}
-- Not for the caller: the TPM activation blob is consumed by the C core.
local DROPPED = { authenticationKey = true }

local function snake(k)
  if RENAMED[k] then return RENAMED[k] end
  return (k:gsub("([%l%d])(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower())
end

-- A decoded JSON value with object keys snake_cased and JSON null as nil.
-- The custom payload is the caller's data and is left as decoded.
local function convert(v)
  if v == null then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(k) == "string" then
      if not DROPPED[k] then
        local sk = snake(k)
        if sk == "payload" then out[sk] = x else out[sk] = convert(x) end
      end
    else
      out[k] = convert(x)
    end
  end
  return out
end

local function decode(text)
  if type(text) ~= "string" then return nil end
  return (json_decode(text))
end

local function nonzero(v)
  if v ~= 0 and v ~= "" then return v end
end

-- ------------------------------------------------------------------------
-- Client
-- ------------------------------------------------------------------------

--- A provisioning client, made by `dps.new`.
-- Methods on a closed client raise `attempt to use a closed dps client`.
-- @type Client

local Client = {}
Client.__index = Client
Client.__name = "dps client"

function Client:__tostring()
  return (tostring(self._h):gsub("^dps%.core client", "dps client"))
end

function Client:__close()
  self:close()
end

-- The IoT Hub connection string, where the attestation allows one: the
-- C core builds it for keys (with the derived key for a group), so no
-- key is kept on the Lua side. ctx says what the attestation is.
local function connection_string(h, ctx, hub, device_id)
  local s = h:hub_connection_string()
  if s then return s end
  if ctx.x509 then
    return ("HostName=%s;DeviceId=%s;x509=true"):format(hub, device_id)
  end
end

-- The result table of a successful registration; h is the core handle.
local function success(h, ctx, hub, device_id)
  local res = convert(decode(h:registration_state())) or {}
  res.assigned_hub = res.assigned_hub or hub
  res.device_id = res.device_id or device_id
  res.registration_id = res.registration_id or h:registration_id()
  res.status = res.status or "assigned"
  if res.payload == nil then res.payload = decode(h:get_payload()) end
  if res.payload == null then
    res.payload = nil
  end
  if res.assigned_hub and res.device_id then
    res.connection_string = connection_string(h, ctx, res.assigned_hub,
                                              res.device_id)
  end
  -- The chain as the C core checked it, PEM; never the raw Base64 DER.
  res.issued_certificate = h:issued_certificate()
  res.issued_certificate_chain = nil
  if res.issued_certificate then
    local chain = {}
    for pem in res.issued_certificate:gmatch(
        "%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-\n") do
      chain[#chain + 1] = pem
    end
    res.issued_certificate_chain = chain
  end
  if h:is_cached() then res.from_cache = true end
  return res
end

-- nil, message, code, details for a failed registration.
local function failure(h, code)
  local e = h:last_error()
  local state = convert(decode(h:registration_state())) or {}
  local details = {
    error_code = nonzero(e.error_code) or state.error_code,
    tracking_id = nonzero(e.tracking_id),
    http_status = nonzero(e.http_status),
    transport_code = nonzero(e.transport_code),
    status = state.status,
  }
  local msg = nonzero(e.message) or state.error_message
    or ("registration failed: " .. code)
  return nil, msg, code, details
end

-- The core handle of an open client. A closed client raises, with the
-- position of the caller's call (level 3: caller of the method).
local function open(self)
  if self._closed then error("attempt to use a closed dps client", 3) end
  local g = self._group
  if g and g._closed then
    error("attempt to use a client of a closed dps group", 3)
  end
  return self._h
end

local function check_callback(v, n, name, optional)
  if (v == nil and optional) or type(v) == "function" then return end
  error(("bad argument #%d to '%s' (function expected, got %s)"):format(
    n, name, type(v)), 3)
end

-- Starts a run of the core: register_device, lookup_device or
-- cached_assignment. The closures capture ctx, never the client (see
-- Client:start).
local function start_run(self, method, on_result, on_status)
  local h, ctx = open(self), self._ctx
  local lookup = method == "lookup_device"
  local status_cb
  if on_status then
    status_cb = function(status) on_status(status) end
  end
  local ok, err, code = h[method](h,
    function(result, hub, device_id, handle)
      if result == "OK" then
        on_result(success(handle, ctx, hub, device_id))
      elseif lookup and handle:last_error().http_status == 404 then
        local _, msg, _, details = failure(handle, result)
        on_result(nil, msg, "NOT_FOUND", details)
      else
        on_result(failure(handle, result))
      end
    end, status_cb)
  return ok, err, code
end

-- The core holds these closures in the registry until the result; they
-- capture ctx, never the client, so a client dropped with a registration
-- in flight is still collected (and its transfer aborted).

--- Starts a registration without blocking; the work happens in `step`.
-- @tparam function on_result called once, from `step`: `on_result(res)`
-- with the result table of `register`, or `on_result(nil, message, code,
-- details)`
-- @tparam[opt] function on_status called with `"connected"`,
-- `"registering"`, `"assigning"`, then `"assigned"` or `"error"`
-- @treturn[1] boolean `true` when the registration started
-- @return[2] `nil`
-- @treturn[2] string message
-- @treturn[2] string code, e.g. `INVALID_STATE` when one is running
-- @usage
-- local done = false
-- client:start(function(res, err) print(res and res.device_id or err); done = true end)
-- while not done do client:step(); client:wait(1) end
function Client:start(on_result, on_status)
  check_callback(on_result, 1, "start")
  check_callback(on_status, 2, "start", true)
  return start_run(self, "register_device", on_result, on_status)
end

--- Advances the registration: DNS, TLS, HTTP and timers; never blocks.
-- Raises when called from inside a callback.
-- @treturn[1] boolean `true`
-- @return[2] `nil` when a callback raised (the registration goes on)
-- @treturn[2] string `"callback error: ..."`
-- @treturn[2] string `"CALLBACK_ERROR"`
function Client:step()
  local h = open(self)
  if self._stepping then
    error("step() called from inside a dps callback", 2)
  end
  self._stepping = true
  local ok, err = pcall(h.dowork, h)
  self._stepping = false
  if ok then return true end
  if type(err) == "string" and err:find("^callback error: ") then
    return nil, err, "CALLBACK_ERROR"
  end
  error(err, 0)
end

--- Sleeps until the client has work (a socket or its next timer).
-- @tparam[opt] number max_s the longest sleep in seconds (default: no
-- limit but the client's own timer)
-- @treturn boolean `true` when `step` is due, `false` when `max_s` passed
-- or nothing is running
function Client:wait(max_s)
  local h = open(self)
  if max_s ~= nil and (type(max_s) ~= "number" or not (max_s >= 0)) then
    error("bad argument #1 to 'wait' (non-negative number of seconds "
          .. "expected, got " .. tostring(max_s) .. ")", 2)
  end
  -- A grouped client's sockets and timers are its group's.
  if self._group then
    if not h:is_busy() then return false end
    return self._group._g:wait(max_s)
  end
  local ok, err, code = h:wait(max_s)
  return ok, err, code
end

--- The descriptors a host event loop should watch (the group's, for a
-- client of a group); call `step` when one is ready.
-- @treturn table `{ {fd=, read=bool, write=bool}, ... }`
function Client:pollfds()
  local h = open(self)
  if self._group then return self._group._g:pollfds() end
  return h:pollfds()
end
--- When `step` is next needed (the group's, for a client of a group).
-- @treturn number|nil seconds (0: now), or `nil` when only the
-- descriptors matter or nothing runs
function Client:timeout()
  local h = open(self)
  if self._group then return self._group._g:timeout() end
  return h:timeout()
end
--- Whether a registration is running.
-- @treturn boolean
function Client:is_busy() return open(self):is_busy() end
--- The registration id in use (given, the certificate's CN, or derived
-- from the TPM's EK).
-- @treturn string
function Client:registration_id() return open(self):registration_id() end
--- What is known of the last failure.
-- @treturn table `{result=, message=, http_status=, error_code=,
-- tracking_id=, transport_code=}` (0 and `""` when unknown)
function Client:last_error() return open(self):last_error() end

--- An IoT Hub SAS token for the assigned device, signed with the device
-- key (or inside the TPM).
-- @tparam integer ttl lifetime in seconds
-- @tparam[opt] string resource the token's resource (default: the
-- assigned hub and device)
-- @treturn[1] string the token
-- @return[2] `nil` before an assignment or on failure
-- @treturn[2] string message
-- @treturn[2] string code
-- @usage local token = assert(client:hub_sas_token(3600))
function Client:hub_sas_token(ttl, resource)
  local h = open(self)
  if type(ttl) ~= "number" or ttl < 1 or ttl > UINT32_MAX
     or ttl ~= floor(ttl) then
    error("bad argument #1 to 'hub_sas_token' (ttl: integer number of "
          .. "seconds expected, got " .. tostring(ttl) .. ")", 2)
  end
  if resource ~= nil and type(resource) ~= "string" then
    error("bad argument #2 to 'hub_sas_token' (resource: string expected, "
          .. "got " .. type(resource) .. ")", 2)
  end
  local token, err, code = h:hub_sas_token(ttl, resource)
  return token, err, code
end

-- Runs register_device or lookup_device to the end (name: for errors).
local function run_blocking(self, method, name, on_status)
  local h, r = open(self), nil
  if self._stepping then
    error(name .. "() called from inside a dps callback", 3)
  end
  local ok, err, code = start_run(self, method, function(...)
    r = { n = select("#", ...), ... }
  end, on_status)
  if not ok then return nil, err, code end
  local cb_err
  -- A client of a group drives the whole group until it is done. A
  -- callback error seen then may be another client's: it is reported
  -- only when this client got no result.
  local group = self._group
  while not r do
    if group and group._closed then
      return nil, "dps group closed during " .. name .. "()", "CLOSED"
    end
    local stepped, e
    if group then stepped, e = group._g:step() else stepped, e = self:step() end
    if not stepped then cb_err = cb_err or e end
    if r then break end
    if self._closed then
      return nil, "dps client closed during " .. name .. "()", "CLOSED"
    end
    if group and group._closed then
      return nil, "dps group closed during " .. name .. "()", "CLOSED"
    end
    if not h:is_busy() then
      if cb_err then return nil, cb_err, "CALLBACK_ERROR" end
      return nil, "registration ended without a result", "ERROR"
    end
    local w, werr, wcode
    if group then w, werr, wcode = group._g:wait() else w, werr, wcode = h:wait() end
    if w == nil then return nil, werr, wcode end
    -- false: busy, yet neither a descriptor nor a timer to wait for;
    -- sleep a second rather than spin.
    if w == false then h:wait(1) end
  end
  if cb_err and not group then return nil, cb_err, "CALLBACK_ERROR" end
  return unpack(r, 1, r.n)
end

--- Registers and blocks until assigned, failed or timed out (the
-- config's `timeout`). With `cache`, a still valid cached assignment
-- answers at once.
-- @tparam[opt] function on_status as for `start`
-- @treturn[1] table the service's `registrationState` with snake_case
-- fields: `status`, `assigned_hub`, `device_id`, `registration_id`,
-- `substatus`, `etag`, `created`, `last_updated`, `payload` (decoded),
-- `connection_string` (keys and X.509; it holds the device key: do not
-- log it), `x509` (X.509 only), `issued_certificate` and
-- `issued_certificate_chain` (with `certificate_request`: the PEM chain,
-- leaf first, and its certificates one by one), `from_cache` (`true`
-- when the cache answered)
-- @return[2] `nil`
-- @treturn[2] string message, readable, without secrets
-- @treturn[2] string code (see the module's description)
-- @treturn[2] table details: `error_code`, `tracking_id`,
-- `http_status`, `transport_code`, `status`
-- @usage
-- local res, err, code, details = client:register()
-- if not res then error(("%s (%s)"):format(err, code)) end
function Client:register(on_status)
  check_callback(on_status, 1, "register", true)
  return run_blocking(self, "register_device", "register", on_status)
end

--- The Device Registration Status Lookup: blocks like `register`. Never
-- sends a CSR; updates the cache when one is configured. Not available
-- with TPM attestation.
-- @tparam[opt] function on_status as for `start`
-- @treturn[1] table the result table of `register`, when the device is
-- assigned
-- @return[2] `nil`
-- @treturn[2] string message
-- @treturn[2] string code: `NOT_FOUND` when the service knows no
-- registration, or another code
-- @treturn[2] table details, as for `register`
function Client:lookup(on_status)
  check_callback(on_status, 1, "lookup", true)
  return run_blocking(self, "lookup_device", "lookup", on_status)
end

--- The cached assignment (with `cache`), never asking the service. For
-- boot scripts that must not wait for the network.
-- @treturn[1] table the result table of `register`
-- @return[2] `nil`
-- @treturn[2] string message
-- @treturn[2] string code: `NOT_FOUND` when the cache holds no valid
-- assignment
-- @treturn[2] table details
-- @usage
-- local res = client:cached() or assert(client:register())
function Client:cached()
  local res, err, code, details = run_blocking(self, "cached_assignment",
                                               "cached")
  if not res and code == "ERROR" and (err:find("no valid cached assignment", 1, true)
      or err:find("no assignment cache", 1, true)) then
    return nil, err, "NOT_FOUND", details
  end
  return res, err, code, details
end

--- Removes the assignment cache file, so the next `register` asks the
-- service.
-- @treturn[1] boolean `true`
-- @return[2] `nil`
-- @treturn[2] string message
-- @treturn[2] string code
function Client:forget()
  local ok, err, code = open(self):forget_assignment()
  return ok, err, code
end

--- Closes the client, aborting a registration in flight; idempotent.
-- Also done by garbage collection and by `<close>` (Lua 5.4). Closing
-- from inside the client's own callback is safe.
function Client:close()
  self._closed = true
  return self._h:close()
end

---------------------------------------------------------------------------
-- Groups: many clients, one driver (see README "Fleets")
---------------------------------------------------------------------------

local GROUP_KEYS = {
  max_connections = function(v)
    if not is_integer(v, 0, 65535) then
      return "must be an integer from 0 (no cap) to 65535"
    end
  end,
}

--- Many clients, one driver, made by `dps.group`. Methods on a closed
-- group raise `attempt to use a closed dps group`.
-- @type Group

local function open_group(self)
  if self._closed then error("attempt to use a closed dps group", 3) end
  return self._g
end

--- Advances every client of the group; never blocks.
-- @treturn[1] boolean `true`
-- @return[2] `nil` when a callback raised
-- @treturn[2] string `"callback error: ..."`
-- @treturn[2] string `"CALLBACK_ERROR"`
function Group:step()
  return open_group(self):step()
end

--- Sleeps until some client of the group has work.
-- @tparam[opt] number max_s at most this many seconds
-- @treturn boolean `true` when `step` is due
function Group:wait(max_s)
  local g = open_group(self)
  if max_s ~= nil and (type(max_s) ~= "number" or not (max_s >= 0)) then
    error("bad argument #1 to 'wait' (non-negative number of seconds "
          .. "expected, got " .. tostring(max_s) .. ")", 2)
  end
  return g:wait(max_s)
end

--- Steps and waits until no client of the group is busy, or `max_s`
-- seconds passed. A callback error ends it (the clients go on; `run`
-- again to continue).
-- @tparam[opt] number max_s at most this many seconds
-- @treturn[1] boolean `true` when no client is busy, `false` at `max_s`
-- @return[2] `nil` when a callback raised
-- @treturn[2] string message
-- @treturn[2] string `"CALLBACK_ERROR"`
function Group:run(max_s)
  local g = open_group(self)
  if max_s ~= nil and (type(max_s) ~= "number" or not (max_s >= 0)) then
    error("bad argument #1 to 'run' (non-negative number of seconds "
          .. "expected, got " .. tostring(max_s) .. ")", 2)
  end
  return g:run(max_s)
end

--- The descriptors of all clients of the group, for a host event loop.
-- @treturn table `{ {fd=, read=bool, write=bool}, ... }`
function Group:pollfds() return open_group(self):pollfds() end
--- When `step` is next due.
-- @treturn number|nil seconds (0: now), or `nil` when nothing is scheduled
function Group:timeout() return open_group(self):timeout() end
--- Whether any client of the group is busy.
-- @treturn boolean
function Group:is_busy() return open_group(self):is_busy() end

--- Aborts what is in flight (no callbacks); clients of the group raise
-- afterwards. Idempotent; safe from a callback; also done by `<close>`.
function Group:close()
  self._closed = true
  return self._g:close()
end

function Group:__close() self:close() end

function Group:__tostring()
  return (tostring(self._g):gsub("^dps%.core group", "dps group"))
end

-- ------------------------------------------------------------------------
-- Module
-- ------------------------------------------------------------------------

--- Module functions.
-- @section module

--- Creates a client. The whole table is validated before anything is
-- created: an unknown key or a value of the wrong type raises an error
-- naming the key. Exactly one of `symmetric_key`, `group_key`, `x509`,
-- `tpm` must be given.
-- @tparam table cfg settings (the README's options table describes each):
--
--  * `id_scope` (string, required): the DPS instance's ID scope
--  * `registration_id` (string): required with keys
--  * `symmetric_key` (string): Base64 key of an individual enrollment
--  * `group_key` (string): Base64 key of an enrollment group
--  * `x509` (table): `{ cert=, key=, key_password= }`, paths or PEM text
--  * `tpm` (table or `true`): `{ tcti = "device:/dev/tpmrm0" }`
--  * `global_endpoint` (string): host, `host:port` or `https://host[:port]`
--  * `trusted_certs` (string): CA file path or PEM text
--  * `payload` (table): custom allocation payload, sent as JSON
--  * `timeout` (number): seconds for the whole registration (default 300)
--  * `request_timeout` (integer 0..255): seconds per request (default 30)
--  * `max_retries` (integer 0..1000): failed attempts in a row (default 10)
--  * `sas_ttl` (integer 60..31536000): SAS token lifetime in seconds
--    (default 3600)
--  * `proxy` (string or table): HTTP CONNECT proxy
--  * `logtrace` (boolean): trace to stderr, secrets masked
--  * `api_version` (string): DPS api-version (default `2021-06-01`;
--    `2025-07-01-preview` with `certificate_request`)
--  * `certificate_request` (table): `{ key = path }`, the operational key
--    of a certificate DPS issues
--  * `cache` (string): path of the assignment cache file
--  * `insecure_skip_tls_verify` (boolean): lab use only
--  * `group` (Group): a `dps.group` whose driver, connection pool and
--    caches the client shares
-- @treturn[1] Client the client
-- @return[2] `nil` when the C layer refuses a setting
-- @treturn[2] string message
-- @treturn[2] string code
-- @usage
-- local client = assert(dps.new{
--   id_scope = "0ne00000A0A",
--   x509 = { cert = "/etc/dps/device.pem", key = "/etc/dps/device.key" },
-- })
function M.new(cfg)
  local why = validate(cfg)
  if why then error("dps.new: " .. why, 2) end
  local h, err, code = core.create(cfg.global_endpoint or DEFAULT_ENDPOINT,
                                   cfg.id_scope, "http")
  if not h then return nil, err, code end
  for _, opt in ipairs(OPTIONS) do
    local key, map = opt[1], opt[2]
    if cfg[key] ~= nil then
      local e, c = apply(h, key, map(cfg[key]))
      if e then
        h:close()
        -- A value the C layer refuses is a config error like any other.
        if c == "INVALID_ARG" then error(e, 2) end
        return nil, e, c
      end
    end
  end
  if cfg.payload ~= nil then
    local ok, e, c = h:set_payload((json_encode(cfg.payload)))
    if not ok then
      h:close()
      return nil, "dps.new: 'payload': " .. e, c
    end
  end
  if cfg.group then
    local ok, e, c = cfg.group._g:attach(h)
    if not ok then
      h:close()
      return nil, "dps.new: 'group': " .. e, c
    end
  end
  return setmetatable({
    _h = h,
    _group = cfg.group,
    -- What a result's connection string needs; see start() on why it is
    -- a table of its own.
    _ctx = { x509 = cfg.x509 ~= nil },
  }, Client)
end

--- Creates a group of clients sharing one driver: one libcurl multi
-- handle, connection pool, DNS and TLS session cache, at most
-- `max_connections` sockets. Clients join with `dps.new{ group = g }`.
-- @tparam[opt] table opts `{ max_connections = n }`: 0..65535, 0 for no
-- cap (default 16)
-- @treturn Group the group
-- @usage local group = dps.group{ max_connections = 16 }
function M.group(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("dps.group: expects an options table or nothing, got "
          .. type(opts), 2)
  end
  local why, full = check_subtable("group", opts, GROUP_KEYS, {})
  if why or full then
    error("dps.group: " .. (full or why), 2)
  end
  return setmetatable({ _g = core.group(opts.max_connections) }, Group)
end

--- The library version.
-- @treturn string e.g. `"0.1.0"`
function M.version()
  return core.version()
end

--- JSON null in payloads (a NULL light userdata: lua-cjson's
-- `cjson.null` is the same value).
M.null = null

--- Whether this build can use a TPM (built with tpm2-tss).
-- @treturn boolean
function M.tpm_available()
  return core.tpm_available()
end

return M
