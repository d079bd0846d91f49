-- X.509 provisioning end to end: TLS client authentication through
-- libcurl against the emulator on loopback, and the checks the client
-- makes on the certificate and key before it sends anything.
local dps = require "dps"
local H = require "helpers"

local P = H.pki

local function pki(name) return P .. "/" .. name end

-- The enrollments every test starts from: one individual enrollment, and
-- a group whose enrolled CA is the root (so a group device must send the
-- intermediate along with its leaf).
local function x509_config(extra)
  local enrollments = {
    { type = "x509", registration_id = "x509-device-01",
      certificate = pki("device-01.pem") },
    { type = "x509", registration_id = "x509-expired-01",
      certificate = pki("expired-device.pem") },
    { type = "x509", registration_id = "x509-mismatch-01",
      certificate = pki("mismatch-device.pem") },
    { type = "x509_group", group_id = "root-group",
      ca_certificate = pki("root-ca.pem") },
  }
  for _, e in ipairs(extra or {}) do enrollments[#enrollments + 1] = e end
  return H.config{ enrollments = enrollments }
end

-- A client config for X.509 (no symmetric key, registration id from
-- the certificate unless fields says otherwise).
local function x509_client(emu, x509, fields)
  local f = { symmetric_key = H.NONE, registration_id = H.NONE, x509 = x509 }
  for k, v in pairs(fields or {}) do f[k] = v end
  return H.client_config(emu, f)
end

local DEVICE_01 = { cert = pki("device-01.pem"), key = pki("device-01.key") }

-- Does the libcurl this build links take certificates and keys from
-- memory? OpenSSL and wolfSSL do; for others the client must say
-- "pass a file path" instead.
-- (Asked once, of the curl tool, which links the same libcurl here; run
-- without the sanitizer runtime the asan run preloads, like every
-- subprocess of the specs. A build over another libcurl, such as the
-- router stack's, names its TLS backend in DPS_TEST_CURL_SSL.)
local pem_blobs
local function curl_takes_pem_blobs()
  if pem_blobs == nil then
    local line = os.getenv("DPS_TEST_CURL_SSL")
    if not line then
      local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS " ..
                         "timeout 10 curl --version 2>/dev/null")
      line = p and p:read("*l") or ""
      if p then p:close() end
    end
    pem_blobs = line:find("OpenSSL", 1, true) ~= nil or
                line:find("wolfSSL", 1, true) ~= nil
  end
  return pem_blobs
end

describe("X.509 provisioning", function()
  local emu

  setup(function()
    emu = H.start_emulator(x509_config())
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:configure(x509_config())
  end)

  -- Registers and asserts failure before any request: KEY_ERROR and an
  -- emulator that saw nothing. Returns the message.
  local function fails_before_request(x509, fields)
    local client, err, code = dps.new(x509_client(emu, x509, fields))
    if client then
      local res
      res, err, code = client:register()
      client:close()
      assert.is_nil(res)
    end
    assert.are.equal("KEY_ERROR", code)
    assert.is_string(err)
    assert.are.equal(0, #emu:requests())
    return err
  end

  it("provisions an individual enrollment, with the CN as registration id", function()
    local client = assert(dps.new(x509_client(emu, DEVICE_01)))
    local res, err, code = client:register()
    assert.is_nil(err, code)
    assert.are.equal("assigned", res.status)
    assert.are.equal("test-hub.azure-devices.net", res.assigned_hub)
    assert.are.equal("x509-device-01", res.registration_id)
    assert.are.equal("x509-device-01", res.device_id)
    assert.are.equal("x509-device-01", client:registration_id())
    assert.are.equal("HostName=test-hub.azure-devices.net;" ..
                     "DeviceId=x509-device-01;x509=true", res.connection_string)
    client:close()
    local reqs = emu:requests()
    assert.are.equal("/" .. H.scope .. "/registrations/x509-device-01/register",
                     reqs[1].path)
    assert.are.equal("x509-device-01", reqs[1].client_cert_cn)
    assert.are.same({ registrationId = "x509-device-01" },
                    require("cjson").decode(reqs[1].body))
  end)

  it("sends no Authorization header on any X.509 request", function()
    local client = assert(dps.new(x509_client(emu, DEVICE_01)))
    assert(client:register())
    client:close()
    local reqs = emu:requests()
    assert.are.equal(2, #reqs) -- the PUT and one poll
    assert.are.equal("PUT", reqs[1].method)
    assert.are.equal("GET", reqs[2].method)
    for _, r in ipairs(reqs) do
      assert.is_nil(r.headers.Authorization)
      assert.is_nil(r.headers.authorization)
      assert.are.equal("x509-device-01", r.client_cert_cn)
    end
  end)

  it("returns the service's x509 section as a table", function()
    local client = assert(dps.new(x509_client(emu, DEVICE_01)))
    local res = assert(client:register())
    client:close()
    assert.is_table(res.x509)
    assert.is_table(res.x509.certificate_info)
    assert.are.equal("CN=x509-device-01", res.x509.certificate_info.subject_name)
    assert.are.equal("CN=DPS Test Root CA", res.x509.certificate_info.issuer_name)
    assert.matches("^%x+$", res.x509.certificate_info.sha256_thumbprint)
  end)

  it("provisions a group enrollment through the intermediate CA chain", function()
    local client = assert(dps.new(x509_client(emu, {
      cert = pki("group-device-01-chain.pem"),
      key = pki("group-device-01.key") })))
    local res, err, code = client:register()
    assert.is_nil(err, code)
    assert.are.equal("assigned", res.status)
    assert.are.equal("x509-group-device-01", res.registration_id)
    assert.are.equal("x509-group-device-01", res.device_id)
    assert.are.equal("root-group", res.x509.enrollment_group_id)
    assert.are.equal("CN=DPS Test Intermediate CA",
                     res.x509.certificate_info.issuer_name)
    assert.are.equal("CN=DPS Test Root CA",
                     res.x509.signing_certificate_info.subject_name)
    client:close()
    assert.are.equal("x509-group-device-01", emu:requests()[1].client_cert_cn)
  end)

  it("needs the chain when the root is enrolled: the leaf alone is refused", function()
    -- Shows that the client really sends the intermediate in the test
    -- above: without it the emulator cannot chain the leaf to the root.
    local client = assert(dps.new(x509_client(emu, {
      cert = pki("group-device-01.pem"), key = pki("group-device-01.key") })))
    local res, _, code, details = client:register()
    client:close()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code)
    assert.are.equal(401002, details.error_code)
  end)

  it("provisions a group device by its leaf when the intermediate is enrolled", function()
    emu:configure(H.config{ enrollments = {
      { type = "x509_group", group_id = "int-group",
        ca_certificate = pki("intermediate-ca.pem") } } })
    local client = assert(dps.new(x509_client(emu, {
      cert = pki("group-device-02.pem"), key = pki("group-device-02.key") })))
    local res, err, code = client:register()
    client:close()
    assert.is_nil(err, code)
    assert.are.equal("x509-group-device-02", res.device_id)
    assert.are.equal("int-group", res.x509.enrollment_group_id)
  end)

  it("reports a certificate no enrollment knows as DEV_AUTH_ERROR 401002", function()
    local client = assert(dps.new(x509_client(emu, {
      cert = pki("unknown-device.pem"), key = pki("unknown-device.key") })))
    local res, err, code, details = client:register()
    client:close()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code)
    assert.matches("401", err)
    assert.are.equal(401002, details.error_code)
    assert.are.equal(401, details.http_status)
    assert.is_string(details.tracking_id)
    -- The emulator saw the request: the refusal is the service's.
    local reqs = emu:requests()
    assert.are.equal(1, #reqs)
    assert.are.equal("x509-unknown-01", reqs[1].client_cert_cn)
  end)

  it("takes the certificate and key as PEM text instead of paths", function()
    local x509 = { cert = H.read_file(pki("device-01.pem")),
                   key = H.read_file(pki("device-01.key")) }
    assert.matches("^%-%-%-%-%-BEGIN", x509.cert)
    local client = assert(dps.new(x509_client(emu, x509)))
    local res, err, code = client:register()
    client:close()
    if curl_takes_pem_blobs() then
      assert.is_nil(err, code)
      assert.are.equal("x509-device-01", res.device_id)
      assert.are.equal("x509-device-01", emu:requests()[1].client_cert_cn)
    else
      -- A backend without blob support: a clear error, nothing sent.
      assert.is_nil(res)
      assert.are.equal("KEY_ERROR", code)
      assert.matches("file path", err, 1, true)
      assert.are.equal(0, #emu:requests())
    end
  end)

  -- Pending on a transport fix (reported to the lead): csrc/dps_http.c
  -- is_pem() wants "-----BEGIN" at the start, dps_x509_openssl.c accepts it
  -- anywhere, so this text passes the pre-check as PEM and then goes to
  -- libcurl as a *file name*; curl's error echoes the start of the key.
  -- Turn these into it() once dps_http.c hands libcurl the text from its
  -- first "-----BEGIN" on.
  local BAG = "Bag Attributes\n    localKeyID: 01 02 03\n"
  it("takes PEM text with a leading 'Bag Attributes' block", function()
    local client = assert(dps.new(x509_client(emu, {
      cert = BAG .. H.read_file(pki("device-01.pem")),
      key = BAG .. H.read_file(pki("device-01.key")) })))
    local res, err, code = client:register()
    client:close()
    if curl_takes_pem_blobs() then
      assert.is_nil(err, code)
      assert.are.equal("x509-device-01", res.device_id)
    else
      assert.is_nil(res)
      assert.are.equal("KEY_ERROR", code)
      assert.matches("file path", err, 1, true)
    end
  end)

  it("never puts key text in an error message", function()
    local key = H.read_file(pki("device-01.key"))
    local body = key:match("KEY%-%-%-%-%-\n(%S+)")
    local client = assert(dps.new(x509_client(emu, {
      cert = pki("device-01.pem"), key = BAG .. key })))
    local _, err = client:register()
    client:close()
    if err then
      assert.is_nil(err:find("PRIVATE KEY", 1, true))
      assert.is_nil(err:find(body:sub(1, 12), 1, true))
    end
  end)

  it("opens an encrypted key with the right key_password (path and PEM)", function()
    for _, key in ipairs{ pki("device-01-encrypted.key"),
                          H.read_file(pki("device-01-encrypted.key")) } do
      local client = assert(dps.new(x509_client(emu, {
        cert = pki("device-01.pem"), key = key, key_password = "secret" })))
      local res, err, code = client:register()
      client:close()
      if key:find("BEGIN", 1, true) and not curl_takes_pem_blobs() then
        assert.are.equal("KEY_ERROR", code)
      else
        assert.is_nil(err, code)
        assert.are.equal("x509-device-01", res.device_id)
      end
    end
  end)

  it("refuses a wrong key_password with KEY_ERROR before any request", function()
    local err = fails_before_request{ cert = pki("device-01.pem"),
                                      key = pki("device-01-encrypted.key"),
                                      key_password = "not-the-password" }
    assert.matches("password", err)
    assert.is_nil(err:find("not-the-password", 1, true))
  end)

  it("says an encrypted key needs a key_password", function()
    local err = fails_before_request{ cert = pki("device-01.pem"),
                                      key = pki("device-01-encrypted.key") }
    assert.matches("encrypted", err)
    assert.matches("password", err)
  end)

  it("refuses an expired certificate with KEY_ERROR before any request", function()
    local err = fails_before_request{ cert = pki("expired-device.pem"),
                                      key = pki("expired-device.key") }
    assert.matches("expired", err)
    assert.matches("2020%-01%-02", err)
  end)

  it("refuses a key that does not match the certificate", function()
    local err = fails_before_request{ cert = pki("mismatch-device.pem"),
                                      key = pki("mismatch-device.key") }
    assert.matches("does not match", err)
  end)

  it("names an unreadable certificate or key path", function()
    local missing = pki("no-such-device.pem")
    local err = fails_before_request{ cert = missing, key = pki("device-01.key") }
    assert.matches(missing, err, 1, true)
    assert.matches("certificate", err)

    missing = pki("no-such-device.key")
    err = fails_before_request{ cert = pki("device-01.pem"), key = missing }
    assert.matches(missing, err, 1, true)
    assert.matches("key", err)

    -- A directory opens but cannot be read (EISDIR); running as root
    -- makes a chmod 000 file readable, so a directory is the portable
    -- unreadable path.
    err = fails_before_request{ cert = P, key = pki("device-01.key") }
    assert.matches(P, err, 1, true)
  end)

  it("names a certificate file that is not PEM", function()
    local path = H.tmpname()
    H.write_file(path, "this is not a certificate\n")
    local ok, err = pcall(fails_before_request,
                          { cert = path, key = pki("device-01.key") })
    os.remove(path)
    assert(ok, err)
    assert.matches("not valid PEM", err, 1, true)
    assert.matches(path, err, 1, true)
  end)

  it("lets an explicit registration_id override the certificate's CN", function()
    local client = assert(dps.new(x509_client(emu, DEVICE_01, {
      registration_id = "custom-reg-id" })))
    assert.are.equal("custom-reg-id", client:registration_id())
    local res, _, code, details = client:register()
    client:close()
    -- The URL and body carry the given id; the emulator, like DPS,
    -- insists on CN == registration id and refuses.
    local reqs = emu:requests()
    assert.are.equal(1, #reqs)
    assert.are.equal("/" .. H.scope .. "/registrations/custom-reg-id/register",
                     reqs[1].path)
    assert.are.equal("custom-reg-id",
                     require("cjson").decode(reqs[1].body).registrationId)
    assert.are.equal("x509-device-01", reqs[1].client_cert_cn)
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code)
    assert.are.equal(401002, details.error_code)
  end)

  it("registers with an explicit registration_id equal to the CN", function()
    emu:configure(x509_config())
    local client = assert(dps.new(x509_client(emu, DEVICE_01, {
      registration_id = "x509-device-01" })))
    local res, err, code = client:register()
    client:close()
    assert.is_nil(err, code)
    assert.are.equal("x509-device-01", res.device_id)
  end)

  it("can register twice on one client", function()
    local client = assert(dps.new(x509_client(emu, DEVICE_01)))
    assert(client:register())
    local res, err, code = client:register()
    client:close()
    assert.is_nil(err, code)
    assert.are.equal("x509-device-01", res.device_id)
    assert.are.equal(4, #emu:requests())
  end)

  it("has no key to sign an IoT Hub SAS token with", function()
    local client = assert(dps.new(x509_client(emu, DEVICE_01)))
    assert(client:register())
    local token, err, code = client:hub_sas_token(3600)
    client:close()
    assert.is_nil(token)
    assert.is_string(err)
    assert.is_string(code)
  end)

  it("rejects an x509 table without a key in dps.new", function()
    local ok, err = pcall(dps.new, x509_client(emu, { cert = pki("device-01.pem") }))
    assert.is_false(ok)
    assert.matches("'x509.key' is required", err, 1, true)
  end)
end)
