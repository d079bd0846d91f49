--- dps: Azure IoT Hub Device Provisioning Service client.
--
-- The idiomatic layer over the C binding `dps.core`: one validated config
-- table instead of order-dependent setters, results as Lua tables with
-- snake_case fields, failures as `nil, message, code, details`.
--
--   local client = assert(dps.new{ id_scope = ..., registration_id = ...,
--                                   symmetric_key = ... })
--   local res, err, code, details = client:register()   -- blocking
--
-- or, from the script's own loop: client:start(on_result, on_status), then
-- client:step() / client:wait(max_s), or client:pollfds() /
-- client:timeout() for a host event loop (uloop, cqueues...).
--
-- Works on Lua 5.1 to 5.4; `local c <close> = dps.new{...}` on 5.4.

local core = require "dps.core"
local cjson = require "cjson"

local error, pairs, ipairs, pcall, select, setmetatable, tostring,
      type = error, pairs, ipairs, pcall, select, setmetatable,
      tostring, type
local getmetatable = getmetatable
local floor, ceil, huge = math.floor, math.ceil, math.huge
local unpack = table.unpack or unpack -- luacheck: ignore 143

-- A private cjson instance: settings made here never leak into the
-- script's own `require "cjson"`.
local json = cjson.new()
-- lua-cjson encodes {} as an object by default; the OpenResty fork makes
-- it configurable, so say what we mean where the switch exists.
if json.encode_empty_table_as_object then
  json.encode_empty_table_as_object(true)
end

local M = { _VERSION = core.VERSION }

-- dps.group objects (see the Group section below); known here so that
-- dps.new can check its 'group' key.
local Group = {}
Group.__index = Group
Group.__name = "dps group"

local DEFAULT_ENDPOINT = "global.azure-devices-provisioning.net"
local UINT32_MAX = 4294967295

---------------------------------------------------------------------------
-- Configuration: validated once, in full, before anything is created.
---------------------------------------------------------------------------

local function is_integer(v, lo, hi)
  return type(v) == "number" and v == floor(v) and v >= lo and v <= hi
end

local function check_string(v)
  if type(v) ~= "string" or v == "" then
    return "must be a non-empty string"
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
    if not parse_proxy(v) then return PROXY_FORM end
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

local X509_KEYS = { cert = check_string, key = check_string,
                    key_password = check_string }
local TPM_KEYS = { tcti = check_string }

local CHECKS = {
  id_scope = check_string,
  registration_id = check_string,
  symmetric_key = check_string,
  group_key = check_string,
  x509 = function(v)
    return check_subtable("x509", v, X509_KEYS, { cert = true, key = true })
  end,
  tpm = function(v)
    if v == true then return end
    return check_subtable("tpm", v, TPM_KEYS, {})
  end,
  global_endpoint = check_string,
  trusted_certs = check_string,
  payload = function(v)
    if type(v) ~= "table" then return "must be a table" end
    local ok, why = pcall(json.encode, v)
    if not ok then
      return "cannot be encoded as JSON: " .. tostring(why)
    end
  end,
  timeout = function(v)
    if type(v) ~= "number" or not (v > 0) then
      return "must be a positive number"
    end
    if v ~= huge and v > UINT32_MAX then
      return "must be at most " .. UINT32_MAX .. " (or math.huge)"
    end
  end,
  request_timeout = function(v)
    if not is_integer(v, 1, 255) then
      return "must be an integer from 1 to 255"
    end
  end,
  sas_ttl = function(v)
    if not is_integer(v, 1, UINT32_MAX) then
      return "must be a positive integer"
    end
  end,
  max_retries = function(v)
    if not is_integer(v, 0, UINT32_MAX) then
      return "must be a non-negative integer"
    end
  end,
  proxy = check_proxy,
  logtrace = check_boolean,
  insecure_skip_tls_verify = check_boolean,
  api_version = check_string,
  group = function(v)
    if getmetatable(v) ~= Group then return "must be a dps.group" end
    if v._closed then return "is a closed dps.group" end
  end,
}

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

-- The option calls a valid config maps to, in a fixed order: identity
-- first, then transport, then limits. Each entry: config key, then a
-- function returning (option name, value) pairs as a flat list.
local OPTIONS = {
  { "registration_id", function(v) return "registration_id", v end },
  { "symmetric_key", function(v) return "symmetric_key", v end },
  { "group_key", function(v) return "group_key", v end },
  { "x509", function(v)
      if v.key_password then
        return "x509certificate", v.cert, "x509privatekey", v.key,
               "x509privatekey_password", v.key_password
      end
      return "x509certificate", v.cert, "x509privatekey", v.key
    end },
  -- "" means the default TCTI (device:/dev/tpmrm0) and selects TPM.
  { "tpm", function(v) return "tpm_tcti", v ~= true and v.tcti or "" end },
  { "trusted_certs", function(v) return "TrustedCerts", v end },
  { "proxy", function(v)
      return "proxy_data", type(v) == "string" and parse_proxy(v) or v
    end },
  { "insecure_skip_tls_verify",
    function(v) return "insecure_skip_tls_verify", v end },
  { "api_version", function(v) return "api_version", v end },
  { "logtrace", function(v) return "logtrace", v end },
  -- math.huge: no deadline (0 in C); fractions round up.
  { "timeout", function(v)
      return "provisioning_deadline", v == huge and 0 or ceil(v)
    end },
  { "request_timeout", function(v) return "provisioning_timeout", v end },
  { "sas_ttl", function(v) return "sas_token_lifetime", v end },
  { "max_retries", function(v) return "max_retries", v end },
}

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

---------------------------------------------------------------------------
-- Results
---------------------------------------------------------------------------

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
  if v == cjson.null or v == json.null then return nil end
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
  local ok, v = pcall(json.decode, text)
  if ok then return v end
end

local function nonzero(v)
  if v ~= 0 and v ~= "" then return v end
end

---------------------------------------------------------------------------
-- Client
---------------------------------------------------------------------------

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
  if res.payload == cjson.null or res.payload == json.null then
    res.payload = nil
  end
  if res.assigned_hub and res.device_id then
    res.connection_string = connection_string(h, ctx, res.assigned_hub,
                                              res.device_id)
  end
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

--- Starts a registration; the work happens in step(). on_result is called
-- once, from step(): on_result(res) or on_result(nil, message, code,
-- details). on_status(status) gets "connected", "registering",
-- "assigning", "assigned", "error". Returns true or nil, message, code.
--
-- The core holds these closures in the registry until the result; they
-- capture ctx, never the client, so a client dropped with a registration
-- in flight is still collected (and its transfer aborted).
function Client:start(on_result, on_status)
  check_callback(on_result, 1, "start")
  check_callback(on_status, 2, "start", true)
  local h, ctx = open(self), self._ctx
  local status_cb
  if on_status then
    status_cb = function(status) on_status(status) end
  end
  local ok, err, code = h:register_device(
    function(result, hub, device_id, handle)
      if result == "OK" then
        on_result(success(handle, ctx, hub, device_id))
      else
        on_result(failure(handle, result))
      end
    end, status_cb)
  return ok, err, code
end

--- Advances the registration; never blocks. Returns true, or nil,
-- "callback error: ...", "CALLBACK_ERROR" when a callback raised (the
-- registration itself goes on). Raises when called from a callback.
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

--- Sleeps until the client has work or max_s seconds (default: no
-- limit but the client's own timer) passed. Returns true when step() is
-- due, false when max_s passed or nothing is running.
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

--- { {fd=, read=bool, write=bool}, ... } for a host event loop (the
-- group's, for a client of a group).
function Client:pollfds()
  local h = open(self)
  if self._group then return self._group._g:pollfds() end
  return h:pollfds()
end
--- Seconds until step() is due (0: now), or nil when nothing is scheduled.
function Client:timeout()
  local h = open(self)
  if self._group then return self._group._g:timeout() end
  return h:timeout()
end
function Client:is_busy() return open(self):is_busy() end
function Client:registration_id() return open(self):registration_id() end
--- {result=, message=, http_status=, error_code=, tracking_id=,
-- transport_code=} of the last failure (0 and "" when unknown).
function Client:last_error() return open(self):last_error() end

--- An IoT Hub SAS token for the assigned device (ttl in seconds).
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

--- Registers and blocks until assigned, failed or timed out (the config's
-- `timeout`). Returns the result table, or nil, message, code, details.
function Client:register(on_status)
  check_callback(on_status, 1, "register", true)
  local h, r = open(self), nil
  if self._stepping then
    error("register() called from inside a dps callback", 2)
  end
  local ok, err, code = self:start(function(...)
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
      return nil, "dps group closed during register()", "CLOSED"
    end
    local stepped, e
    if group then stepped, e = group._g:step() else stepped, e = self:step() end
    if not stepped then cb_err = cb_err or e end
    if r then break end
    if self._closed then
      return nil, "dps client closed during register()", "CLOSED"
    end
    if group and group._closed then
      return nil, "dps group closed during register()", "CLOSED"
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

--- Closes the client, aborting a registration in flight; idempotent.
-- Also done by garbage collection and by <close> (5.4).
function Client:close()
  self._closed = true
  return self._h:close()
end

---------------------------------------------------------------------------
-- Module
---------------------------------------------------------------------------

--- Creates a client from a config table (see README). A bad config
-- raises; a failure of the C layer returns nil, message, code.
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
        return nil, e, c
      end
    end
  end
  if cfg.payload ~= nil then
    local ok, e, c = h:set_payload(json.encode(cfg.payload))
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

local function open_group(self)
  if self._closed then error("attempt to use a closed dps group", 3) end
  return self._g
end

--- Advances every client of the group; never blocks. true, or nil,
-- "callback error: ...", "CALLBACK_ERROR" when a callback raised.
function Group:step()
  return open_group(self):step()
end

--- Sleeps until some client of the group has work, at most max_s
-- seconds. true when step() is due, false otherwise.
function Group:wait(max_s)
  local g = open_group(self)
  if max_s ~= nil and (type(max_s) ~= "number" or not (max_s >= 0)) then
    error("bad argument #1 to 'wait' (non-negative number of seconds "
          .. "expected, got " .. tostring(max_s) .. ")", 2)
  end
  return g:wait(max_s)
end

--- Steps and waits until no client of the group is busy (true) or
-- max_s seconds passed (false). A callback error ends it: nil, message,
-- "CALLBACK_ERROR" (the clients go on; run() again to continue).
function Group:run(max_s)
  local g = open_group(self)
  if max_s ~= nil and (type(max_s) ~= "number" or not (max_s >= 0)) then
    error("bad argument #1 to 'run' (non-negative number of seconds "
          .. "expected, got " .. tostring(max_s) .. ")", 2)
  end
  return g:run(max_s)
end

function Group:pollfds() return open_group(self):pollfds() end
function Group:timeout() return open_group(self):timeout() end
function Group:is_busy() return open_group(self):is_busy() end

--- Aborts what is in flight (no callbacks); clients of the group raise
-- afterwards. Idempotent; safe from a callback.
function Group:close()
  self._closed = true
  return self._g:close()
end

function Group:__close() self:close() end

function Group:__tostring()
  return (tostring(self._g):gsub("^dps%.core group", "dps group"))
end

--- A group of clients sharing one driver: one connection pool, DNS and
-- TLS session cache, at most max_connections sockets.
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

--- The library version ("0.1.0").
function M.version()
  return core.version()
end

--- True when this build can use a TPM (built with tpm2-tss).
function M.tpm_available()
  return core.tpm_available()
end

return M
