-- Provisions this device and gets its operational certificate from DPS:
-- the client creates a key pair on the device (the private half never
-- leaves it), sends a certificate signing request with the registration,
-- and writes the certificate DPS issued next to the key, where an MQTT
-- client on the router reads both to connect to the IoT hub.
--
-- At boot it answers from the assignment cache (no request to DPS);
-- run it with --reprovision when the hub refuses the device.
--
-- Settings come from the environment:
--   DPS_ID_SCOPE, DPS_REGISTRATION_ID
--   DPS_SYMMETRIC_KEY or DPS_GROUP_KEY       attestation by key, or
--   DPS_X509_CERT and DPS_X509_KEY           a factory certificate, or
--   DPS_TPM_TCTI                             a TPM ("device:/dev/tpmrm0")
--   DPS_CERT_DIR     where key, certificate and cache go (default /etc/dps)
--   DPS_ENDPOINT     default: the global endpoint
--   DPS_TRUSTED_CERTS  CA file for the service's certificate
--
-- Files in DPS_CERT_DIR:
--   operational.key   the device's private key (created once, mode 0600)
--   operational.crt   the issued chain, PEM, leaf first
--   assignment.json   the cached assignment (no secret in it)
--   iothub.conf       HOST=, DEVICE_ID= for the MQTT client's scripts
local dps = require "dps"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

-- Writes text to path through a temporary file and a rename, so a reader
-- (or a power cut) never sees half a file.
local function write_atomically(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  f:close()
  if not ok then os.remove(tmp); return nil, werr end
  return os.rename(tmp, path)
end

local dir = env("DPS_CERT_DIR", "/etc/dps")
local paths = {
  key = dir .. "/operational.key",
  cert = dir .. "/operational.crt",
  cache = dir .. "/assignment.json",
  conf = dir .. "/iothub.conf",
}

local tpm
if env("DPS_TPM_TCTI") then tpm = { tcti = env("DPS_TPM_TCTI") } end
local x509
if env("DPS_X509_CERT") then
  x509 = { cert = env("DPS_X509_CERT"), key = env("DPS_X509_KEY") }
end

local client, err, code = dps.new{
  id_scope            = assert(env("DPS_ID_SCOPE"), "set DPS_ID_SCOPE"),
  registration_id     = env("DPS_REGISTRATION_ID"),
  symmetric_key       = env("DPS_SYMMETRIC_KEY"),
  group_key           = env("DPS_GROUP_KEY"),
  x509                = x509,
  tpm                 = tpm,
  global_endpoint     = env("DPS_ENDPOINT", "global.azure-devices-provisioning.net"),
  trusted_certs       = env("DPS_TRUSTED_CERTS"),
  certificate_request = { key = paths.key },
  cache               = paths.cache,
  timeout             = 120,
}
if not client then
  io.stderr:write(("cannot create the client: %s (%s)\n"):format(err, code))
  os.exit(1)
end

if arg and arg[1] == "--reprovision" then
  assert(client:forget())
end

local res
res, err, code = client:register()
client:close()
if not res then
  io.stderr:write(("provisioning failed: %s (%s)\n"):format(err, code))
  os.exit(1)
end

local ok, werr = write_atomically(paths.cert, res.issued_certificate)
if ok then
  ok, werr = write_atomically(paths.conf, ("HOST=%s\nDEVICE_ID=%s\n"):format(
    res.assigned_hub, res.device_id))
end
if not ok then
  io.stderr:write(("cannot write the certificate: %s\n"):format(werr))
  os.exit(1)
end

print(("%s %s as %s"):format(res.from_cache and "cached assignment:" or "assigned to",
                             res.assigned_hub, res.device_id))
print(("certificate: %s (%d in chain), key: %s"):format(
  paths.cert, #res.issued_certificate_chain, paths.key))
print(("mosquitto_pub -h %s -p 8883 -i %s -u '%s/%s/?api-version=2021-04-12' "
       .. "--cert %s --key %s --capath /etc/ssl/certs -t 'devices/%s/messages/events/' -m hello")
      :format(res.assigned_hub, res.device_id, res.assigned_hub, res.device_id,
              paths.cert, paths.key, res.device_id))
