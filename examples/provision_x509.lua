-- Provisions this device with an X.509 certificate (TLS client
-- authentication) and prints the assignment. Settings come from the
-- environment, so the script runs unchanged against the local emulator
-- and the real service:
--   DPS_ID_SCOPE
--   DPS_X509_CERT       certificate file (or PEM text); for a group
--                       enrollment, the leaf followed by its intermediates
--   DPS_X509_KEY        private key file (or PEM text)
--   DPS_X509_KEY_PASSWORD  only for an encrypted key
--   DPS_REGISTRATION_ID optional: defaults to the certificate's CN
--   DPS_ENDPOINT        default: the global endpoint
--   DPS_TRUSTED_CERTS   CA file for the service's certificate
local dps = require "dps"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local client, err, code = dps.new{
  id_scope        = assert(env("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
  registration_id = env("DPS_REGISTRATION_ID"),
  x509 = {
    cert         = assert(env("DPS_X509_CERT"), "set DPS_X509_CERT"),
    key          = assert(env("DPS_X509_KEY"), "set DPS_X509_KEY"),
    key_password = env("DPS_X509_KEY_PASSWORD"),
  },
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
local regid = client:registration_id()
client:close()
if not res then
  -- KEY_ERROR: the certificate or key is unusable (file, password,
  -- pairing, dates); nothing was sent.
  io.stderr:write(("provisioning%s failed: %s (%s)\n"):format(
    regid and " " .. regid or "", err, code))
  os.exit(1)
end
print(("assigned to %s as %s (%s)"):format(res.assigned_hub, res.device_id,
                                          res.substatus or "?"))
if res.x509 and res.x509.enrollment_group_id then
  print("enrollment group: " .. res.x509.enrollment_group_id)
end
if res.x509 and res.x509.certificate_info then
  print("certificate: " .. tostring(res.x509.certificate_info.subject_name) ..
        ", valid until " .. tostring(res.x509.certificate_info.not_after_utc))
end
-- The device authenticates to IoT Hub with the same certificate.
print("connection string: " .. res.connection_string)
