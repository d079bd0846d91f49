-- Figures for certificates from DPS, the status lookup and the cache:
-- wall and CPU time per call against the emulator (answering at once).
-- Run by bench/certs; measurements only, nothing is asserted.
local dps = require "dps"

local endpoint, ca, dir, n = arg[1], arg[2], arg[3], tonumber(arg[4] or "20")
local KEY = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=" -- test key

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

local function config(extra)
  local c = { id_scope = "0ne00000A0A", registration_id = "bench-1",
              symmetric_key = KEY, global_endpoint = endpoint,
              trusted_certs = ca, timeout = 30 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- Median wall ms and mean CPU ms of f() over n runs (f gets the index).
local function measure(label, f)
  local walls, cpu0 = {}, os.clock()
  for i = 1, n do
    local t0 = now()
    f(i)
    walls[#walls + 1] = (now() - t0) * 1000
  end
  local cpu = (os.clock() - cpu0) * 1000 / n
  table.sort(walls)
  print(("%-44s median %7.1f ms wall, %6.2f ms CPU"):format(label,
        walls[math.ceil(n / 2)], cpu))
end

local function register(cfg)
  local c = assert(dps.new(cfg))
  local res, err = c:register()
  c:close()
  assert(res, err)
  return res
end

measure("register(), no CSR", function() register(config()) end)
measure("register(), CSR, key created (EC P-256)", function(i)
  register(config{ certificate_request = { key = dir .. "/new-" .. i .. ".key" } })
end)
measure("register(), CSR, existing EC key", function()
  register(config{ certificate_request = { key = dir .. "/new-1.key" } })
end)
os.execute("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "
           .. dir .. "/rsa.key 2>/dev/null")
measure("register(), CSR, existing RSA-2048 key", function()
  register(config{ certificate_request = { key = dir .. "/rsa.key" } })
end)
measure("lookup()", function()
  local c = assert(dps.new(config()))
  assert(c:lookup())
  c:close()
end)
local cache = dir .. "/assignment.json"
register(config{ cache = cache })
measure("register() answered from the cache", function()
  assert(register(config{ cache = cache }).from_cache)
end)
register(config{ cache = dir .. "/c2.json",
                 certificate_request = { key = dir .. "/new-1.key" } })
measure("register() from the cache, with certificate", function()
  assert(register(config{ cache = dir .. "/c2.json",
    certificate_request = { key = dir .. "/new-1.key" } }).from_cache)
end)
