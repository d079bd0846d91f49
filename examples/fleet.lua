-- Provisions a fleet of devices of one enrollment group from one process,
-- the way a gateway provisions the devices behind it: every client joins
-- one dps.group, so they share a few connections (at most
-- max_connections) and resume TLS sessions instead of a handshake each.
-- Settings come from the environment:
--   DPS_ID_SCOPE, DPS_GROUP_KEY (the enrollment group's key),
--   DPS_FLEET_SIZE (default 10), DPS_FLEET_PREFIX (default "device-"),
--   DPS_MAX_CONNECTIONS (default 16), DPS_ENDPOINT, DPS_TRUSTED_CERTS
local dps = require "dps"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local size = tonumber(env("DPS_FLEET_SIZE", "10"))
local prefix = env("DPS_FLEET_PREFIX", "device-")
local group = dps.group{ max_connections = tonumber(env("DPS_MAX_CONNECTIONS", "16")) }

-- The clients stay referenced until the run ends (each closes itself).
local clients, failed, assigned = {}, 0, 0
for i = 1, size do
  local id = prefix .. i
  local client = assert(dps.new{
    id_scope        = assert(env("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
    registration_id = id,
    group_key       = assert(env("DPS_GROUP_KEY"), "set DPS_GROUP_KEY"),
    global_endpoint = env("DPS_ENDPOINT", "global.azure-devices-provisioning.net"),
    trusted_certs   = env("DPS_TRUSTED_CERTS"),
    timeout         = 300,
    group           = group,
  })
  clients[i] = client
  assert(client:start(function(res, err, code)
    if res then
      assigned = assigned + 1
      print(("%s: assigned to %s as %s"):format(id, res.assigned_hub, res.device_id))
      -- res.connection_string holds the device key: store it, never log it.
    else
      failed = failed + 1
      io.stderr:write(("%s: failed: %s (%s)\n"):format(id, err, code))
    end
    client:close()  -- safe from inside the callback
  end))
end

-- Blocks until every registration ended. A host event loop would instead
-- watch group:pollfds() and group:timeout() and call group:step().
local done, err = group:run()
group:close()
print(("fleet: %d assigned, %d failed of %d"):format(assigned, failed, #clients))
if not done then io.stderr:write(tostring(err), "\n") end
os.exit(failed == 0 and done and 0 or 1)
