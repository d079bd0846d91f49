-- The same registration driven by the script's own loop: step() never
-- blocks, wait() sleeps until the client has work (a socket or its next
-- timer), at most the given seconds. A host event loop (uloop, cqueues)
-- would watch client:pollfds() and client:timeout() instead.
local dps = require "dps"

local client = assert(dps.new{
  id_scope        = assert(os.getenv("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
  registration_id = assert(os.getenv("DPS_REGISTRATION_ID"), "set DPS_REGISTRATION_ID"),
  symmetric_key   = assert(os.getenv("DPS_SYMMETRIC_KEY"), "set DPS_SYMMETRIC_KEY"),
  global_endpoint = os.getenv("DPS_ENDPOINT") or "global.azure-devices-provisioning.net",
  trusted_certs   = os.getenv("DPS_TRUSTED_CERTS"),
})

local done, result, failure
client:start(function(res, err, code)
  done, result, failure = true, res, err and (err .. " (" .. code .. ")")
end, function(status)
  print("status: " .. status)
end)

while not done do
  client:step()
  if not done then client:wait(1.0) end
end
client:close()
if not result then
  io.stderr:write("provisioning failed: " .. failure .. "\n")
  os.exit(1)
end
print(("assigned to %s as %s"):format(result.assigned_hub, result.device_id))
