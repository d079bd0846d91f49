-- Provisions this device with a symmetric key and prints the assignment.
-- Settings come from the environment, so the script runs unchanged
-- against the local emulator (make demo) and the real service:
--   DPS_ID_SCOPE, DPS_REGISTRATION_ID, DPS_SYMMETRIC_KEY (or DPS_GROUP_KEY),
--   DPS_ENDPOINT (default: the global endpoint), DPS_TRUSTED_CERTS (CA file)
local dps = require "dps"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local client = assert(dps.new{
  id_scope        = assert(env("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
  registration_id = assert(env("DPS_REGISTRATION_ID"), "set DPS_REGISTRATION_ID"),
  symmetric_key   = env("DPS_SYMMETRIC_KEY"),
  group_key       = env("DPS_GROUP_KEY"),
  global_endpoint = env("DPS_ENDPOINT", "global.azure-devices-provisioning.net"),
  trusted_certs   = env("DPS_TRUSTED_CERTS"),
  payload         = { site = "north", model = "x1" },
  timeout         = 120,
})

local res, err, code = client:register()
client:close()
if not res then
  io.stderr:write(("provisioning failed: %s (%s)\n"):format(err, code))
  os.exit(1)
end
print(("assigned to %s as %s (%s)"):format(res.assigned_hub, res.device_id,
                                          res.substatus or "?"))
print("connection string: HostName=" .. res.assigned_hub .. ";DeviceId=" ..
      res.device_id .. ";SharedAccessKey=<device key>")
