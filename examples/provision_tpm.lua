-- Provisions this device with its TPM 2.0 and prints the assignment.
-- The client reads (or creates) the EK and SRK, answers the service's
-- challenge inside the TPM and keeps the IoT Hub key there: no key ever
-- reaches this script. Settings come from the environment:
--   DPS_ID_SCOPE
--   DPS_TPM_TCTI        default: the kernel resource manager
--                       (device:/dev/tpmrm0); a software TPM:
--                       swtpm:host=127.0.0.1,port=2321
--   DPS_REGISTRATION_ID optional: defaults to the EK-derived id
--   DPS_ENDPOINT        default: the global endpoint
--   DPS_TRUSTED_CERTS   CA file for the service's certificate
local dps = require "dps"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

if not dps.tpm_available() then
  io.stderr:write("this dps build has no TPM support (built without tpm2-tss)\n")
  os.exit(1)
end

local tcti = env("DPS_TPM_TCTI")
local client, err, code = dps.new{
  id_scope        = assert(env("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
  registration_id = env("DPS_REGISTRATION_ID"),
  tpm             = tcti and { tcti = tcti } or true,
  global_endpoint = env("DPS_ENDPOINT", "global.azure-devices-provisioning.net"),
  trusted_certs   = env("DPS_TRUSTED_CERTS"),
  timeout         = 120,
}
if not client then
  io.stderr:write(("cannot create the client: %s (%s)\n"):format(err, code))
  os.exit(1)
end

local res
res, err, code = client:register()
if not res then
  local regid = client:registration_id()
  client:close()
  io.stderr:write(("provisioning%s failed: %s (%s)\n"):format(
    regid and " " .. regid or "", err, code))
  if code == "DEV_AUTH_ERROR" then
    io.stderr:write("is this TPM enrolled? Its endorsement key: " ..
                    "tpm2_readpublic -c 0x81010001 -o ek.pub\n")
  end
  os.exit(1)
end
print(("assigned to %s as %s (%s)"):format(res.assigned_hub, res.device_id,
                                          res.substatus or "?"))
print("registration id: " .. res.registration_id)

-- An IoT Hub SAS token, signed inside the TPM with the hub key the
-- service sent. It is a credential: say what it is, never print it.
local ttl = 3600
local token
token, err, code = client:hub_sas_token(ttl)
client:close()
if not token then
  io.stderr:write(("cannot sign an IoT Hub SAS token: %s (%s)\n"):format(err, code))
  os.exit(1)
end
local se = tonumber(token:match("&se=(%d+)"))
print(("IoT Hub SAS token: %d characters, expires %s"):format(#token,
  se and os.date("!%Y-%m-%dT%H:%M:%SZ", se) or "?"))
