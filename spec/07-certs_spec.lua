-- Certificates issued by DPS (a CSR with api-version 2025-07-01-preview),
-- the device registration status lookup and the assignment cache, end to
-- end over real HTTPS against the emulator. The issued certificates are
-- checked with the openssl tool, a second implementation.
local dps = require "dps"
local H = require "helpers"
local cjson = require "cjson"

local PREVIEW = "2025-07-01-preview"

-- Runs a shell command without the sanitizer runtime; returns its output.
local function run(cmd)
  local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS " ..
                     "sh -c '" .. cmd:gsub("'", "'\\''") .. "' 2>&1")
  local out = p:read("*a")
  p:close()
  return out
end

local function mode_of(path)
  return run("stat -c %a " .. path):match("%d+")
end

local function config(extra)
  local c = H.config{ enrollments = {
    H.sym_enrollment("dev-1"),
    H.sym_enrollment("dev-2"),
    { type = "symmetric_key_group", group_id = "g1", primary_key = H.group_key },
    { type = "x509", registration_id = "x509-device-01",
      certificate = H.pki .. "/device-01.pem" },
  } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- The request bodies the emulator saw, decoded.
local function bodies(emu)
  local out = {}
  for _, r in ipairs(emu:requests()) do
    local ok, b = pcall(cjson.decode, r.body or "")
    out[#out + 1] = { method = r.method, path = r.path,
                      api = r.query["api-version"], body = ok and b or nil }
  end
  return out
end

describe("certificates from DPS", function()
  local emu, dir, issuing_ca

  setup(function()
    dir = H.tmpname()
    os.execute("mkdir -p " .. dir)
    issuing_ca = dir .. "/issuing-ca.pem"
    emu = H.start_emulator(config(), "--issuing-ca-out " .. issuing_ca)
  end)

  teardown(function()
    emu:stop()
    os.execute("rm -rf " .. dir)
  end)

  before_each(function()
    emu:configure(config())
  end)

  -- A fresh directory per test: key files and caches never leak across.
  local n = 0
  local function fresh_dir()
    n = n + 1
    local d = dir .. "/t" .. n
    os.execute("mkdir -p " .. d)
    return d
  end

  it("creates the key (0600, atomically), sends a CSR and returns the chain",
     function()
    local d = fresh_dir()
    local key = d .. "/operational.key"
    local client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = key } })))
    local res, err, code = client:register()
    client:close()
    assert.is_nil(err, code)
    assert.are.equal("assigned", res.status)
    -- The key: PEM EC P-256, owner-only, and nothing else left in the dir.
    assert.are.equal("600", mode_of(key))
    assert.are.equal("operational.key\n", run("ls -A " .. d))
    assert.matches("ASN1 OID: prime256v1", run("openssl pkey -in " .. key ..
                                                " -noout -text"))
    -- The chain: PEM, leaf first, then the issuing CA.
    assert.are.equal(2, #res.issued_certificate_chain)
    assert.are.equal(table.concat(res.issued_certificate_chain),
                     res.issued_certificate)
    for _, pem in ipairs(res.issued_certificate_chain) do
      assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n", pem)
    end
    assert.are.equal(H.read_file(issuing_ca), res.issued_certificate_chain[2])
    -- With --pki, that is the test PKI's issuing CA.
    assert.are.equal(H.read_file(H.pki .. "/issuing-ca.pem"),
                     res.issued_certificate_chain[2])
    local leaf = d .. "/leaf.pem"
    H.write_file(leaf, res.issued_certificate_chain[1])
    -- CN = registration id, public key = the key file's, verifies to the
    -- emulator's issuing CA, good for client authentication.
    assert.matches("CN%s*=%s*dev%-1", run("openssl x509 -in " .. leaf ..
                                          " -noout -subject"))
    assert.are.equal(run("openssl pkey -in " .. key .. " -pubout"),
                     run("openssl x509 -in " .. leaf .. " -noout -pubkey"))
    assert.matches(": OK", run("openssl verify -purpose sslclient -CAfile " ..
                               issuing_ca .. " " .. leaf))
    -- On the wire: the CSR, Base64 DER without armour, and the preview
    -- api-version on every request of that registration.
    local reqs = bodies(emu)
    assert.are.equal(2, #reqs)
    for _, r in ipairs(reqs) do assert.are.equal(PREVIEW, r.api) end
    local csr = reqs[1].body.csr
    assert.matches("^[A-Za-z0-9+/]+=*$", csr)
    assert.are.equal("dev-1", reqs[1].body.registrationId)
  end)

  it("reuses an existing key, RSA or EC", function()
    local d = fresh_dir()
    local key = d .. "/op.key"
    local client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = key } })))
    assert(client:register())
    local before = H.read_file(key)
    local res = assert(client:register())
    client:close()
    assert.are.equal(before, H.read_file(key))
    H.write_file(d .. "/leaf.pem", res.issued_certificate_chain[1])
    assert.are.equal(run("openssl pkey -in " .. key .. " -pubout"),
                     run("openssl x509 -in " .. d .. "/leaf.pem -noout -pubkey"))
    -- An RSA key made elsewhere.
    local rsa = d .. "/rsa.key"
    run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. rsa)
    client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = rsa } })))
    res = assert(client:register())
    client:close()
    H.write_file(d .. "/rsa-leaf.pem", res.issued_certificate_chain[1])
    assert.are.equal(run("openssl pkey -in " .. rsa .. " -pubout"),
                     run("openssl x509 -in " .. d .. "/rsa-leaf.pem -noout -pubkey"))
  end)

  it("works with a group key and with X.509 attestation", function()
    local d = fresh_dir()
    local client = assert(dps.new(H.client_config(emu, {
      symmetric_key = H.NONE, group_key = H.group_key, registration_id = "grp-7",
      certificate_request = { key = d .. "/grp.key" } })))
    local res, err = client:register()
    client:close()
    assert.is_nil(err)
    assert.matches("CN%s*=%s*grp%-7", run("echo '" .. res.issued_certificate_chain[1] ..
                                          "' | openssl x509 -noout -subject"))
    client = assert(dps.new(H.client_config(emu, {
      symmetric_key = H.NONE, registration_id = H.NONE,
      x509 = { cert = H.pki .. "/device-01.pem", key = H.pki .. "/device-01.key" },
      certificate_request = { key = d .. "/x509-op.key" } })))
    res, err = client:register()
    client:close()
    assert.is_nil(err)
    assert.are.equal("x509-device-01", res.registration_id)
    assert.matches("CN%s*=%s*x509%-device%-01",
                   run("echo '" .. res.issued_certificate_chain[1] ..
                       "' | openssl x509 -noout -subject"))
  end)

  it("changes nothing without certificate_request", function()
    local client = assert(dps.new(H.client_config(emu)))
    local res = assert(client:register())
    client:close()
    assert.is_nil(res.issued_certificate)
    assert.is_nil(res.issued_certificate_chain)
    for _, r in ipairs(bodies(emu)) do
      assert.are.equal("2021-06-01", r.api)
      if r.body then assert.is_nil(r.body.csr) end
    end
  end)

  it("reports a service without the preview as a clear final error", function()
    emu:configure(config{ certificate_issuance = false })
    local d = fresh_dir()
    local client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = d .. "/op.key" } })))
    local res, err, code, details = client:register()
    client:close()
    assert.is_nil(res)
    assert.are.equal("ERROR", code)
    assert.matches("refused the certificate request", err)
    assert.matches(PREVIEW, err, 1, true)
    assert.are.equal(400, details.http_status)
    assert.are.equal(1, #emu:requests()) -- final: not retried
  end)

  it("fails register() naming the key path, never the key", function()
    local d = fresh_dir()
    local missing = d .. "/no/such/dir/op.key"
    local client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = missing } })))
    local res, err, code = client:register()
    assert.is_nil(res)
    assert.are.equal("KEY_ERROR", code)
    assert.truthy(err:find(missing, 1, true))
    client:close()
    local garbage = d .. "/garbage.key"
    H.write_file(garbage, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n" ..
                          "-----END PRIVATE KEY-----\n")
    client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = garbage } })))
    res, err, code = client:register()
    client:close()
    assert.is_nil(res)
    assert.are.equal("KEY_ERROR", code)
    assert.truthy(err:find(garbage, 1, true))
    assert.falsy(err:find("c2VjcmV0", 1, true))
    assert.are.equal(0, #emu:requests())
    -- The unusable file was left as it was.
    assert.matches("c2VjcmV0", H.read_file(garbage))
  end)

  it("examples/provision_csr.lua writes key and certificate for an MQTT client",
     function()
    local d = fresh_dir()
    local function example(extra)
      local out = d .. "/example.out"
      local ok = os.execute(string.format(
        "DPS_ID_SCOPE=%s DPS_REGISTRATION_ID=dev-1 DPS_SYMMETRIC_KEY=%s " ..
        "DPS_ENDPOINT=%s DPS_TRUSTED_CERTS=%s DPS_CERT_DIR=%s " ..
        "%s examples/provision_csr.lua %s >%s 2>&1",
        H.scope, H.key, emu.endpoint, H.ca, d, H.lua, extra or "", out))
      return ok == true or ok == 0, H.read_file(out)
    end
    local ok, out = example()
    assert.is_true(ok, out)
    assert.matches("assigned to test%-hub%.azure%-devices%.net as dev%-1", out)
    assert.are.equal("600", mode_of(d .. "/operational.key"))
    assert.are.equal("600", mode_of(d .. "/assignment.json"))
    local crt = d .. "/operational.crt"
    assert.matches("CN%s*=%s*dev%-1", run("openssl x509 -in " .. crt .. " -noout -subject"))
    assert.are.equal(run("openssl pkey -in " .. d .. "/operational.key -pubout"),
                     run("openssl x509 -in " .. crt .. " -noout -pubkey"))
    assert.matches(": OK", run("openssl verify -CAfile " .. issuing_ca .. " " .. crt))
    assert.are.equal("HOST=test-hub.azure-devices.net\nDEVICE_ID=dev-1\n",
                     H.read_file(d .. "/iothub.conf"))
    local requests = #emu:requests()
    -- A reboot: the cache answers, the files stay as they were.
    local cert_before = H.read_file(crt)
    ok, out = example()
    assert.is_true(ok, out)
    assert.matches("cached assignment", out)
    assert.are.equal(requests, #emu:requests())
    assert.are.equal(cert_before, H.read_file(crt))
    -- --reprovision asks the service again (same key, new certificate).
    ok, out = example("--reprovision")
    assert.is_true(ok, out)
    assert.matches("assigned to", out)
    assert.is_true(#emu:requests() > requests)
  end)

  it("validates the certificate_request table", function()
    assert.has_error(function()
      dps.new(H.client_config(emu, { certificate_request = "/tmp/k" }))
    end, "dps.new: 'certificate_request' must be a table")
    assert.has_error(function()
      dps.new(H.client_config(emu, { certificate_request = {} }))
    end, "dps.new: 'certificate_request.key' is required")
    assert.has_error(function()
      dps.new(H.client_config(emu, { certificate_request = { key = "k", x = 1 } }))
    end, "dps.new: unknown key 'certificate_request.x'")
  end)
end)

describe("status lookup", function()
  local emu

  setup(function() emu = H.start_emulator(config()) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:configure(config()) end)

  it("returns the assignment of a registered device", function()
    local client = assert(dps.new(H.client_config(emu)))
    local reg = assert(client:register())
    local res, err, code = client:lookup()
    client:close()
    assert.is_nil(err, code)
    assert.are.equal("assigned", res.status)
    assert.are.equal(reg.assigned_hub, res.assigned_hub)
    assert.are.equal(reg.device_id, res.device_id)
    assert.are.equal("dev-1", res.registration_id)
    assert.are.equal(reg.connection_string, res.connection_string)
    local reqs = bodies(emu)
    local last = reqs[#reqs]
    assert.are.equal("POST", last.method)
    assert.are.equal("/" .. H.scope .. "/registrations/dev-1", last.path)
    assert.are.equal("2021-06-01", last.api)
    assert.are.same({ registrationId = "dev-1" }, last.body)
  end)

  it("says NOT_FOUND for a device that never registered", function()
    local client = assert(dps.new(H.client_config(emu, { registration_id = "dev-2" })))
    local res, err, code, details = client:lookup()
    client:close()
    assert.is_nil(res)
    assert.are.equal("NOT_FOUND", code)
    assert.is_string(err)
    assert.are.equal(404, details.http_status)
  end)

  it("never sends a CSR", function()
    local key = H.tmpname()
    local client = assert(dps.new(H.client_config(emu, {
      certificate_request = { key = key } })))
    assert(client:register())
    local res = assert(client:lookup())
    client:close()
    os.remove(key)
    assert.is_nil(res.issued_certificate)
    local reqs = bodies(emu)
    assert.is_nil(reqs[#reqs].body.csr)
    assert.are.equal("2021-06-01", reqs[#reqs].api)
  end)
end)

describe("assignment cache", function()
  local emu, dir

  setup(function()
    dir = H.tmpname()
    os.execute("mkdir -p " .. dir)
    emu = H.start_emulator(config())
  end)
  teardown(function()
    emu:stop()
    os.execute("rm -rf " .. dir)
  end)
  before_each(function() emu:configure(config()) end)

  local n = 0
  local function cache_path()
    n = n + 1
    return dir .. "/assignment-" .. n .. ".json"
  end

  it("misses, stores (0600, no secret), then hits without a request", function()
    local cache = cache_path()
    local client = assert(dps.new(H.client_config(emu, { cache = cache })))
    local first = assert(client:register())
    assert.is_nil(first.from_cache)
    assert.are.equal(2, #emu:requests())
    assert.are.equal("600", mode_of(cache))
    local text = H.read_file(cache)
    assert.falsy(text:find(H.key, 1, true))
    assert.falsy(text:find("SharedAccessKey", 1, true))
    assert.falsy(text:find("sig=", 1, true))
    local second = assert(client:register())
    client:close()
    assert.are.equal(2, #emu:requests()) -- no new request
    assert.is_true(second.from_cache)
    assert.are.equal(first.assigned_hub, second.assigned_hub)
    assert.are.equal(first.device_id, second.device_id)
    assert.are.equal(first.connection_string, second.connection_string)
    -- A new client (a reboot) hits too.
    client = assert(dps.new(H.client_config(emu, { cache = cache })))
    assert.is_true(assert(client:register()).from_cache)
    client:close()
    assert.are.equal(2, #emu:requests())
  end)

  it("is stale for another registration id, id scope or key", function()
    local cache = cache_path()
    local client = assert(dps.new(H.client_config(emu, { cache = cache })))
    assert(client:register())
    client:close()
    emu:configure(config())
    client = assert(dps.new(H.client_config(emu, { cache = cache,
                                                   registration_id = "dev-2" })))
    local res = assert(client:register())
    client:close()
    assert.is_nil(res.from_cache)
    assert.are.equal("dev-2", res.device_id)
    assert.are.equal(2, #emu:requests())
    -- Another key for the same id (a re-enrolled device).
    emu:configure(config{ enrollments = {
      H.sym_enrollment("dev-2", { primary_key = H.other_key }) } })
    client = assert(dps.new(H.client_config(emu, { cache = cache,
      registration_id = "dev-2", symmetric_key = H.other_key })))
    res = assert(client:register())
    client:close()
    assert.is_nil(res.from_cache)
    assert.are.equal(2, #emu:requests())
    -- Another id scope.
    emu:configure(config{ id_scope = "0ne00000B0B", enrollments = {
      H.sym_enrollment("dev-2", { primary_key = H.other_key }) } })
    client = assert(dps.new(H.client_config(emu, { cache = cache,
      id_scope = "0ne00000B0B", registration_id = "dev-2",
      symmetric_key = H.other_key })))
    res = assert(client:register())
    client:close()
    assert.is_nil(res.from_cache)
    assert.are.equal(2, #emu:requests())
  end)

  it("forget() removes it, so the next register() asks the service", function()
    local cache = cache_path()
    local client = assert(dps.new(H.client_config(emu, { cache = cache })))
    assert(client:register())
    assert.is_true(client:forget())
    assert.is_nil(H.read_file(cache))
    assert.is_true(client:forget()) -- nothing to remove is fine
    emu:configure(config())
    local res = assert(client:register())
    client:close()
    assert.is_nil(res.from_cache)
    assert.are.equal(2, #emu:requests())
  end)

  it("keeps the issued certificate and checks it against the key", function()
    local cache = cache_path()
    local key = dir .. "/cache-op.key"
    local client = assert(dps.new(H.client_config(emu, { cache = cache,
      certificate_request = { key = key } })))
    local first = assert(client:register())
    local second = assert(client:register())
    assert.is_true(second.from_cache)
    assert.are.equal(first.issued_certificate, second.issued_certificate)
    assert.are.same(first.issued_certificate_chain, second.issued_certificate_chain)
    client:close()
    -- A new key: the cached certificate no longer fits, so register again.
    os.remove(key)
    emu:configure(config())
    client = assert(dps.new(H.client_config(emu, { cache = cache,
      certificate_request = { key = key } })))
    local third = assert(client:register())
    client:close()
    assert.is_nil(third.from_cache)
    assert.are_not.equal(first.issued_certificate, third.issued_certificate)
  end)

  it("misses once the issued certificate has expired", function()
    emu:configure(config{ issued_certificate_validity_s = 1 })
    local cache = cache_path()
    local key = dir .. "/short-op.key"
    local client = assert(dps.new(H.client_config(emu, { cache = cache,
      certificate_request = { key = key } })))
    assert(client:register())
    -- The leaf is valid from 5 minutes ago until 1 s after issuance.
    H.sleep(2)
    local res = assert(client:register())
    client:close()
    assert.is_nil(res.from_cache)
  end)

  it("cached() answers from the cache only, never asking the service", function()
    local cache = cache_path()
    local client = assert(dps.new(H.client_config(emu, { cache = cache })))
    local res, err, code = client:cached()
    assert.is_nil(res)
    assert.are.equal("NOT_FOUND", code)
    assert.matches("no valid cached assignment", err)
    assert.are.equal(0, #emu:requests())
    local reg = assert(client:register())
    res = assert(client:cached())
    assert.is_true(res.from_cache)
    assert.are.equal(reg.device_id, res.device_id)
    assert.are.equal(reg.connection_string, res.connection_string)
    assert.are.equal(2, #emu:requests())
    client:close()
    client = assert(dps.new(H.client_config(emu)))
    res, err, code = client:cached()
    client:close()
    assert.is_nil(res)
    assert.are.equal("NOT_FOUND", code)
    assert.matches("no assignment cache", err)
  end)

  it("a lookup refreshes it", function()
    local cache = cache_path()
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    client:close()
    client = assert(dps.new(H.client_config(emu, { cache = cache })))
    assert(client:lookup())
    local res = assert(client:register())
    client:close()
    assert.is_true(res.from_cache)
  end)
end)

describe("OpenWrt boot script with the library cache", function()
  local emu, dir

  setup(function()
    dir = H.tmpname()
    os.execute("mkdir -p " .. dir)
    emu = H.start_emulator(config())
  end)
  teardown(function()
    emu:stop()
    os.execute("rm -rf " .. dir)
  end)

  local function uci(extra)
    local lines = {
      "config dps 'main'",
      "\toption enabled '1'",
      "\toption id_scope '" .. H.scope .. "'",
      "\toption registration_id 'dev-1'",
      "\toption symmetric_key '" .. H.key .. "'",
      "\toption global_endpoint '" .. emu.endpoint .. "'",
      "\toption trusted_certs '" .. H.ca .. "'",
      "\toption wait_ntp '0'",
      "\toption attempts '1'",
      "\toption cache '" .. dir .. "/state/assignment.json'",
      "\toption certificate_key '" .. dir .. "/state/operational.key'",
    }
    for _, l in ipairs(extra or {}) do lines[#lines + 1] = "\t" .. l end
    H.write_file(dir .. "/dps.uci", table.concat(lines, "\n") .. "\n")
  end

  local function boot(mode)
    local out = dir .. "/boot.out"
    local r = os.execute(string.format(
      "DPS_UCI_FILE=%s/dps.uci %s packaging/openwrt/files/dps-provision.lua %s >%s 2>&1",
      dir, H.lua, mode or "boot", out))
    return r == true or r == 0, H.read_file(out)
  end

  it("registers once, then answers from the cache until the hub check fails",
     function()
    emu:configure(config())
    uci()
    local ok, out = boot()
    assert.is_true(ok, out)
    assert.matches("assigned to hub test%-hub", out)
    assert.matches("issued certificate written", out)
    local crt = dir .. "/state/operational.crt"
    assert.are.equal(run("openssl pkey -in " .. dir .. "/state/operational.key -pubout"),
                     run("openssl x509 -in " .. crt .. " -noout -pubkey"))
    assert.are.equal("600", mode_of(dir .. "/state/assignment.json"))
    local requests = #emu:requests()
    ok, out = boot()
    assert.is_true(ok, out)
    assert.matches("cached assignment: hub test%-hub%.azure%-devices%.net, device dev%-1", out)
    assert.are.equal(requests, #emu:requests())
    -- status prints the cache.
    ok, out = boot("status")
    assert.is_true(ok, out)
    assert.are.equal("dev-1", cjson.decode(out).registration_state.deviceId)
    -- The hub refuses the device: provision again.
    uci{ "option hub_check_cmd 'false'" }
    ok, out = boot()
    assert.is_true(ok, out)
    assert.matches("hub check failed", out)
    assert.matches("assigned to hub", out)
    assert.is_true(#emu:requests() > requests)
    requests = #emu:requests()
    -- force ignores the cache.
    uci()
    ok, out = boot("force")
    assert.is_true(ok, out)
    assert.is_true(#emu:requests() > requests)
    ok = boot("clear")
    assert.is_true(ok)
    assert.is_nil(H.read_file(dir .. "/state/assignment.json"))
  end)
end)
