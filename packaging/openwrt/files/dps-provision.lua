#!/usr/bin/lua
-- Provisions this device with Azure DPS once and caches the assignment.
--
--   dps-provision.lua [boot]   provision unless a cached assignment is valid
--   dps-provision.lua force    provision again, ignoring the cache (e.g. when
--                              the hub refuses the cached device: moved)
--   dps-provision.lua status   print the cached assignment (JSON)
--   dps-provision.lua clear    remove the cached assignment
--
-- Settings: UCI section dps.main (/etc/config/dps, see README.md). For a
-- test on a host without uci, DPS_UCI_FILE=/path/to/config names a file in
-- the same format. Exit codes: 0 done (or nothing to do yet: waiting for
-- NTP, disabled), 1 provisioning failed, 2 bad settings.
--
-- The DPS docs advise against provisioning on every boot: the service is
-- rate limited and each registration is a billable operation. So a valid
-- cached assignment (the library's cache, `dps.new{cache=}`) wins, unless
-- hub_check_cmd says the hub refuses the device. With certificate_key the
-- device also gets its operational certificate from DPS (a CSR).
local dps = require "dps"
local cjson = require "cjson"

local NTP_FLAG = "/var/run/dps-provision.ntp" -- touched by the ntp hotplug
local RETRYABLE = { TRANSPORT = true, TIMEOUT = true, ERROR = true,
                    PARSING = true, MEMORY = true }

local function log(fmt, ...)
  io.stderr:write("dps-provision: ", fmt:format(...), "\n")
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- UCI syntax values (host tests only) come single-quoted, a quote inside
-- as '\''.
local function unquote(v)
  local inner = v:match("^'(.*)'$")
  if not inner then return v end
  return (inner:gsub("'\\''", "'"))
end

-- Section dps.main from a file in UCI syntax (`option name 'value'` lines
-- inside `config dps 'main'`): for tests on a host without libuci-lua.
local function read_settings_file(path)
  local text = read_file(path)
  if not text then return nil, "cannot read " .. path end
  local o, in_main = {}, false
  for line in text:gmatch("[^\n]+") do
    local typ, name = line:match("^%s*config%s+(%S+)%s*(%S*)")
    if typ then
      in_main = typ == "dps" and unquote(name) == "main"
    elseif in_main then
      local k, v = line:match("^%s*option%s+([%w_]+)%s+(.-)%s*$")
      if k then o[k] = unquote(v) end
    end
  end
  return o
end

-- Options of section dps.main, read through libuci-lua (package
-- libuci-lua): no parsing of `uci show` output, whose quoting a value
-- with quotes or newlines would break. DPS_UCI_FILE names a file instead.
local function read_settings()
  local path = os.getenv("DPS_UCI_FILE")
  if path then return read_settings_file(path) end
  local ok, uci = pcall(require, "uci")
  if not ok then return nil, "libuci-lua is missing: install the libuci-lua package" end
  local section = uci.cursor():get_all("dps", "main")
  if not section then return nil, "no section 'main' in /etc/config/dps" end
  local o = {}
  for k, v in pairs(section) do
    -- Skip UCI's own fields (.name, .type, ...); a list keeps its last value.
    if k:sub(1, 1) ~= "." then
      o[k] = type(v) == "table" and v[#v] or v
    end
  end
  return o
end

local function number(o, k, default)
  if o[k] == nil or o[k] == "" then return default end
  local n = tonumber(o[k])
  if not n then error(("option '%s' must be a number, got '%s'"):format(k, o[k]), 0) end
  return n
end

-- The issued certificate's file: option certificate, else next to the key.
local function certificate_path(o)
  if o.certificate and o.certificate ~= "" then return o.certificate end
  return (o.certificate_key:gsub("%.key$", "")) .. ".crt"
end

-- The dps.new config from the UCI options.
local function client_config(o, cache_path)
  local c = {
    cache = cache_path,
    id_scope = o.id_scope,
    registration_id = o.registration_id,
    global_endpoint = o.global_endpoint,
    symmetric_key = o.symmetric_key,
    group_key = o.group_key,
    trusted_certs = o.trusted_certs,
    proxy = o.proxy,
    api_version = o.api_version,
    timeout = number(o, "timeout", 300),
    request_timeout = number(o, "request_timeout", nil),
    max_retries = number(o, "max_retries", nil),
  }
  if o.x509_cert or o.x509_key then
    -- File paths: libcurl with mbedTLS (OpenWrt's default) takes keys
    -- only from files.
    c.x509 = { cert = o.x509_cert, key = o.x509_key,
               key_password = o.x509_key_password }
  end
  if o.tpm == "1" then
    c.tpm = o.tpm_tcti and { tcti = o.tpm_tcti } or true
  end
  if o.certificate_key and o.certificate_key ~= "" then
    c.certificate_request = { key = o.certificate_key }
  end
  if o.payload and o.payload ~= "" then
    local ok, v = pcall(cjson.decode, o.payload)
    if not ok or type(v) ~= "table" then
      error("option 'payload' must be a JSON object", 0)
    end
    c.payload = v
  end
  for k, v in pairs(c) do
    if v == "" then c[k] = nil end
  end
  return c
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a hook command with the assignment in the environment; true if it
-- exited 0 (Lua 5.1 returns the status, 5.2+ true/nil).
local function run_hook(cmd, a)
  local env = ("DPS_ASSIGNED_HUB=%s DPS_DEVICE_ID=%s DPS_REGISTRATION_ID=%s; "
    .. "export DPS_ASSIGNED_HUB DPS_DEVICE_ID DPS_REGISTRATION_ID; "):format(
    shell_quote(a.assigned_hub), shell_quote(a.device_id),
    shell_quote(a.registration_id or ""))
  local r = os.execute(env .. cmd)
  return r == true or r == 0
end

local function make_dir_of(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then os.execute("mkdir -p " .. shell_quote(dir)) end
end

-- The issued chain (PEM) for the hub client, written through a temporary
-- file and a rename, and only when it changed.
local function write_certificate(o, res)
  if not res.issued_certificate then return end
  local path = certificate_path(o)
  if read_file(path) == res.issued_certificate then return end
  make_dir_of(path)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  local ok = f and f:write(res.issued_certificate)
  if f then f:close() end
  if ok then ok, err = os.rename(tmp, path) end
  if ok then
    log("issued certificate written to %s", path)
  else
    os.remove(tmp)
    log("assigned, but cannot write %s: %s", path, tostring(err))
  end
end

local function provision(o, cache_path)
  local cfg = client_config(o, cache_path)
  make_dir_of(cache_path)
  if cfg.certificate_request then make_dir_of(cfg.certificate_request.key) end
  local attempts = number(o, "attempts", 3)
  local wait = number(o, "retry_wait", 60)
  for attempt = 1, attempts do
    local client, err, code = dps.new(cfg)
    if not client then
      log("bad settings: %s (%s)", tostring(err), tostring(code))
      return 2
    end
    local res, details
    res, err, code, details = client:register()
    client:close()
    if res then
      -- The library wrote the cache (cfg.cache).
      log("assigned to hub %s as device %s (%s)", res.assigned_hub, res.device_id,
          tostring(res.substatus))
      write_certificate(o, res)
      if o.on_assigned and o.on_assigned ~= "" and not run_hook(o.on_assigned, res) then
        log("on_assigned hook failed: %s", o.on_assigned)
      end
      return 0
    end
    if code == "ERROR" and tostring(err):find("clock", 1, true) then
      log("%s; the ntp hotplug event will start this again", tostring(err))
      return 0
    end
    log("attempt %d of %d failed: %s (%s, HTTP %s, tracking id %s)", attempt,
        attempts, tostring(err), tostring(code),
        tostring(details and details.http_status or "-"),
        tostring(details and details.tracking_id or "-"))
    if not RETRYABLE[code] or attempt == attempts then return 1 end
    os.execute("sleep " .. math.floor(wait))
  end
  return 1
end

local function main(mode)
  local o, err = read_settings()
  if not o then log("%s", err); return 2 end
  local cache_path = o.cache or "/etc/dps/assignment.json"
  if mode == "status" then
    local text = read_file(cache_path)
    if not text then log("no cached assignment in %s", cache_path); return 1 end
    io.write(text)
    return 0
  elseif mode == "clear" then
    os.remove(cache_path)
    return 0
  elseif mode ~= "boot" and mode ~= "force" then
    log("unknown command '%s' (boot, force, status, clear)", tostring(mode))
    return 2
  end
  if o.enabled ~= "1" then
    log("disabled (set dps.main.enabled=1)")
    return 0
  end
  -- The cache answers only for these settings (endpoint, scope, id,
  -- attestation, and a still valid certificate for certificate_key).
  local client, cerr, ccode = dps.new(client_config(o, cache_path))
  if not client then
    log("bad settings: %s (%s)", tostring(cerr), tostring(ccode))
    return 2
  end
  local cached = mode == "boot" and client:cached()
  if cached then
    if not o.hub_check_cmd or o.hub_check_cmd == "" or run_hook(o.hub_check_cmd, cached) then
      log("cached assignment: hub %s, device %s; not provisioning again",
          cached.assigned_hub, cached.device_id)
      write_certificate(o, cached)
      client:close()
      return 0
    end
    log("hub check failed for the cached assignment; provisioning again")
  end
  if mode == "force" or cached then client:forget() end
  client:close()
  if o.wait_ntp ~= "0" and not file_exists(NTP_FLAG) then
    log("waiting for NTP to set the clock; the ntp hotplug event starts this again")
    return 0
  end
  return provision(o, cache_path)
end

local ok, rc = pcall(main, arg[1] or "boot")
if not ok then
  log("%s", tostring(rc))
  rc = 2
end
os.exit(rc)
