-- Provisioning inside OpenWrt's uloop event loop (package libubox-lua),
-- the loop procd, netifd and most OpenWrt Lua daemons run in. The client
-- never blocks the loop: uloop watches the client's sockets
-- (client:pollfds()) and a timer (client:timeout()), and both call
-- client:step().
--
--   DPS_ID_SCOPE=0ne... DPS_REGISTRATION_ID=... DPS_SYMMETRIC_KEY=... \
--     lua examples/provision_uloop.lua
--
-- Optional: DPS_ENDPOINT (host:port), DPS_TRUSTED_CERTS (CA file).
local uloop = require "uloop"
local dps = require "dps"

uloop.init()

local client = assert(dps.new{
  id_scope        = assert(os.getenv("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
  registration_id = assert(os.getenv("DPS_REGISTRATION_ID"), "set DPS_REGISTRATION_ID"),
  symmetric_key   = assert(os.getenv("DPS_SYMMETRIC_KEY"), "set DPS_SYMMETRIC_KEY"),
  global_endpoint = os.getenv("DPS_ENDPOINT") or "global.azure-devices-provisioning.net",
  trusted_certs   = os.getenv("DPS_TRUSTED_CERTS"),
})

local finished = false     -- set by the result callback, which closes the client
local exit_code = 1
local watchers = {}        -- uloop fd handles for the current pollfds()
local timer                -- a uloop timer for client:timeout(), or nil
local step

local function unwatch_all()
  for i = #watchers, 1, -1 do
    watchers[i]:delete()
    watchers[i] = nil
  end
end

-- libubox's timer:cancel() also releases the callback, so a cancelled
-- timer is never set again: each deadline gets a fresh timer.
local function arm_timer(seconds)
  if timer then
    timer:cancel()
    timer = nil
  end
  if seconds then
    timer = uloop.timer(function() step() end)
    timer:set(math.ceil(seconds * 1000))  -- whole milliseconds; 0: next turn
  end
end

-- After every step: watch exactly the descriptors the client lists now
-- and arm the timer for its next deadline. The watchers are rebuilt each
-- time rather than diffed: libcurl closes and opens sockets between
-- steps, and a new socket may get the number of a closed one, which
-- epoll (under uloop) has already forgotten.
local function rearm()
  unwatch_all()
  if finished then
    arm_timer(nil)
    return
  end
  for _, p in ipairs(client:pollfds()) do
    -- ULOOP_READ and ULOOP_WRITE are distinct bits: + is | here (Lua 5.1).
    local flags = (p.read and uloop.ULOOP_READ or 0) +
                  (p.write and uloop.ULOOP_WRITE or 0)
    if flags ~= 0 then
      watchers[#watchers + 1] = uloop.fd_add(p.fd, function() step() end, flags)
    end
  end
  arm_timer(client:timeout())  -- nil: only the sockets matter now
end

function step()
  if finished then return end
  local ok, err = client:step()
  if not ok then io.stderr:write(err, "\n") end
  rearm()
end

client:start(function(res, err, code)
  -- Runs inside client:step(), itself inside a uloop callback: closing
  -- the client here is safe (it is freed once the step returns).
  finished = true
  if res then
    print(("assigned to %s as %s"):format(res.assigned_hub, res.device_id))
    exit_code = 0
  else
    io.stderr:write(("provisioning failed: %s (%s)\n"):format(err, code))
  end
  client:close()
  uloop.cancel()
end, function(status)
  print("status: " .. status)
end)

rearm()
uloop.run()
unwatch_all()
os.exit(exit_code)
