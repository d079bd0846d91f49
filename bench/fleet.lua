-- N clients in one Lua process register at once against a rate-limited
-- emulator, driven by one start/step/wait loop (like spec/03's rate-limit
-- test). Prints "assigned=K of N, seconds=T".
--   lua5.4 bench/fleet.lua ENDPOINT CA_FILE N KEY
local dps = require "dps"

local endpoint, ca, n, key = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(endpoint and ca and n and key, "usage: fleet.lua ENDPOINT CA N KEY")

local function now() -- wall time with sub-second resolution, no extra modules
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

local t0 = now()
local clients, results = {}, {}
for i = 1, n do
  clients[i] = assert(dps.new{
    id_scope = "0ne00000A0A", registration_id = "fleet-" .. i,
    symmetric_key = key, global_endpoint = endpoint, trusted_certs = ca,
    timeout = 55,
  })
  assert(clients[i]:start(function(res, err, code)
    results[i] = res or { status = "failed", err = err, code = code }
  end))
end

-- Bounded twice: by rounds and by a wall-clock deadline. Each wait() is at
-- most 5 ms and returns early when that client has work.
local deadline = os.time() + 58
for _ = 1, 100000 do
  local pending = false
  for i = 1, n do
    if not results[i] then
      pending = true
      clients[i]:step()
      if not results[i] then clients[i]:wait(0.005) end
    end
  end
  if not pending or os.time() > deadline then break end
end
local took = now() - t0

local assigned = 0
for i = 1, n do
  local r = results[i]
  if r and r.status == "assigned" then
    assigned = assigned + 1
  elseif r then
    io.stderr:write(("fleet-%d: %s (%s)\n"):format(i, tostring(r.err), tostring(r.code)))
  end
  clients[i]:close()
end
print(("assigned=%d of %d, seconds=%.2f"):format(assigned, n, took))
os.exit(assigned == n and 0 or 1)
