-- Shared by the specs: a local DPS emulator per spec file (real HTTPS on
-- 127.0.0.1, a free port), reconfigured per test through its control API.
local cjson = require "cjson"

local H = {}

H.pki = assert(os.getenv("DPS_TEST_PKI"), "run the specs with scripts/run-specs")
H.ca = H.pki .. "/root-ca.pem"
H.scope = "0ne00000A0A"
-- The interpreter the specs run on, for scripts run as subprocesses.
H.lua = os.getenv("DPS_TEST_LUA") or "lua"

-- Test keys: random bytes, Base64, nothing secret.
H.key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
H.other_key = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="
H.group_key = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="

-- Subprocesses must not inherit the sanitizer runtime preloaded into the
-- Lua interpreter by the sanitizer run.
local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  return "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS sh -c " ..
         shell_quote(cmd)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
H.read_file = read_file

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end
H.write_file = write_file

function H.sleep(s)
  os.execute("sleep " .. s)
end

function H.tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

function H.now()
  -- Wall time with sub-second resolution, without extra modules.
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

local Emulator = {}
Emulator.__index = Emulator

-- Starts an emulator with config (a Lua table); returns it once listening.
function H.start_emulator(config, extra_args)
  local dir = H.tmpname()
  os.execute("mkdir -p " .. dir)
  local emu = setmetatable({ dir = dir }, Emulator)
  write_file(dir .. "/config.json", cjson.encode(config or H.config{}))
  local cmd = string.format(
    "tools/dps-emulator/dps-emulator --config %s/config.json --port 0 " ..
    "--port-file %s/port --pki %s --log %s/log.jsonl --quiet " ..
    "--exit-after-idle 300 %s " ..
    ">%s/stdout 2>%s/stderr & echo $! >%s/pid",
    dir, dir, H.pki, dir, extra_args or "", dir, dir, dir)
  os.execute(sh(cmd))
  for _ = 1, 200 do -- bounded: 10 s
    local port = read_file(dir .. "/port")
    if port and tonumber(port) then
      emu.port = tonumber(port)
      break
    end
    H.sleep(0.05)
  end
  emu.pid = tonumber(read_file(dir .. "/pid"))
  assert(emu.port, "emulator did not start: " ..
         tostring(read_file(dir .. "/stderr")))
  emu.endpoint = "127.0.0.1:" .. emu.port
  return emu
end

function Emulator:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  os.execute("rm -rf " .. self.dir)
end

function Emulator:control(method, path, body)
  local out = self.dir .. "/control.out"
  local data = ""
  if body then
    write_file(self.dir .. "/control.json", body)
    data = "--data-binary @" .. self.dir .. "/control.json"
  end
  local cmd = string.format(
    "curl -sS --max-time 10 --cacert %s -X %s %s -o %s " ..
    "-H 'Content-Type: application/json' https://127.0.0.1:%d%s",
    H.ca, method, data, out, self.port, path)
  os.execute(sh(cmd))
  return read_file(out)
end

-- Replaces the emulator's configuration (and clears its state).
function Emulator:configure(config)
  self:control("PUT", "/_emulator/config", cjson.encode(config))
  self:control("DELETE", "/_emulator/log")
end

-- The device requests the emulator has seen (control calls excluded).
function Emulator:requests()
  local text = self:control("GET", "/_emulator/log")
  local ok, records = pcall(cjson.decode, text or "")
  assert(ok, "bad log from emulator: " .. tostring(text))
  return records
end

-- Starts tools/dps-emulator/connect-proxy (HTTP CONNECT, optional Basic
-- credentials); returns { port=, requests=function, stop=function }.
function H.start_proxy(user, password)
  local dir = H.tmpname()
  os.execute("mkdir -p " .. dir)
  local creds = user and ("--user " .. user .. " --password " .. password) or ""
  os.execute(sh(string.format(
    "tools/dps-emulator/connect-proxy --port 0 --port-file %s/port " ..
    "--log %s/log.jsonl --exit-after 300 %s >%s/out 2>&1 & echo $! >%s/pid",
    dir, dir, creds, dir, dir)))
  local proxy = { dir = dir }
  for _ = 1, 200 do -- bounded: 10 s
    proxy.port = tonumber(read_file(dir .. "/port") or "")
    if proxy.port then break end
    H.sleep(0.05)
  end
  proxy.pid = tonumber(read_file(dir .. "/pid"))
  assert(proxy.port, "proxy did not start: " .. tostring(read_file(dir .. "/out")))
  function proxy.requests()
    local out = {}
    for line in (read_file(dir .. "/log.jsonl") or ""):gmatch("[^\n]+") do
      out[#out + 1] = cjson.decode(line)
    end
    return out
  end
  function proxy.stop()
    if proxy.pid then os.execute("kill " .. proxy.pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. dir)
  end
  return proxy
end

-- A config table with one symmetric-key enrollment per entry.
function H.config(opts)
  opts = opts or {}
  local c = {
    id_scope = H.scope,
    default_hub = "test-hub.azure-devices.net",
    retry_after = opts.retry_after or 1,
    polls_before_assignment = opts.polls or 1,
    rate_limit_per_minute = opts.rate_limit or 0,
    rate_limit_window_s = opts.rate_window or 60,
    faults = opts.faults or {},
    enrollments = opts.enrollments or {},
  }
  return c
end

function H.sym_enrollment(id, fields)
  local e = { type = "symmetric_key", registration_id = id,
              primary_key = H.key, device_id = id }
  for k, v in pairs(fields or {}) do e[k] = v end
  return e
end

-- Marks a field to drop from a default config.
H.NONE = setmetatable({}, { __tostring = function() return "NONE" end })

-- The client config for a device of this emulator.
function H.client_config(emu, fields)
  local c = {
    id_scope = H.scope,
    registration_id = "dev-1",
    symmetric_key = H.key,
    global_endpoint = emu.endpoint,
    trusted_certs = H.ca,
    timeout = 20,
  }
  for k, v in pairs(fields or {}) do
    if v == H.NONE then c[k] = nil else c[k] = v end
  end
  return c
end

return H
