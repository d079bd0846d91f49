-- TPM provisioning end to end: a software TPM (swtpm, socket mode on a
-- free loopback port, fresh state per spec file) driven by tpm2-tss in
-- the client, against the emulator on loopback. The whole flow runs:
-- EK/SRK created and sent, the 401 challenge opened with
-- ActivateCredential, the identity key imported, the SAS signed inside the
-- TPM, the hub key imported, IoT Hub SAS tokens signed with it.
local dps = require "dps"
local H = require "helpers"
local cjson = require "cjson"

-- Subprocesses must not inherit the sanitizer runtime of the asan run,
-- and tpm2-tss tools should not log the errors we provoke on purpose.
local function sh(cmd)
  return "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS " ..
         "TSS2_LOG=all+none sh -c " .. string.format("%q", cmd)
end

-- Runs cmd; returns its stdout and whether it exited 0 (io.popen's
-- close() gives no status on 5.1, so the shell prints it).
local function run(cmd)
  local p = assert(io.popen(sh(cmd) .. " 2>/dev/null; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)rc=(%d+)%s*$")
  return body or out, tonumber(rc) == 0
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have(prog)
  local _, ok = run("command -v " .. prog .. " >/dev/null")
  return ok
end

local function tpm_ready()
  if not require("dps.core").tpm_available() then
    return nil, "this build of dps.core has no TPM support (built without " ..
                "tpm2-tss, or with TPM=0)"
  end
  for _, prog in ipairs{ "swtpm", "tpm2_readpublic" } do
    if not have(prog) then
      return nil, prog .. " is not installed (apt-get install swtpm tpm2-tools)"
    end
  end
  return true
end

-- A software TPM in a fresh state folder. Stopped only through its pid
-- file (tests/tpm/swtpm-stop), never by name.
local function start_swtpm()
  local dir = H.tmpname()
  local out, ok = run("tests/tpm/swtpm-start " .. q(dir))
  local port = tonumber(out:match("(%d+)%s*$"))
  local t = { dir = dir, port = port }
  if not ok or not port then
    run("tests/tpm/swtpm-stop " .. q(dir) .. "; rm -rf " .. q(dir))
    error("swtpm did not start: " .. tostring(H.read_file(dir .. "/swtpm.err")))
  end
  t.tcti = "swtpm:host=127.0.0.1,port=" .. port
  return t
end

local function stop_swtpm(t)
  if t and t.dir then
    run("tests/tpm/swtpm-stop " .. q(t.dir) .. "; rm -rf " .. q(t.dir))
    t.dir = nil
  end
end

-- A loopback port with nothing listening (bound, then released).
local function free_port()
  local out = run("/usr/bin/python3 -c 'import socket; s=socket.socket(); " ..
                  "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1]); s.close()'")
  return assert(tonumber(out:match("%d+")), "no free port")
end

-- tpm2_readpublic of a persistent handle: its output, or nil if empty.
local function readpublic(t, handle)
  local out, ok = run("TPM2TOOLS_TCTI=" .. q(t.tcti) ..
                      " tpm2_readpublic -c " .. handle)
  if ok then return out end
end

local function registration_id_of(ek_b64)
  local f = H.tmpname()
  H.write_file(f, ek_b64)
  local out, ok = run("/usr/bin/python3 tools/dps-emulator/dps_tpm.py regid --ek " .. q(f))
  os.remove(f)
  assert(ok, "dps_tpm.py regid failed")
  return (out:gsub("%s+$", ""))
end

-- Base64(HMAC-SHA256(Base64-decoded key, text)), computed by Python's
-- hmac: independent of the client's code.
local function hmac_b64(key_b64, text)
  local f = H.tmpname()
  H.write_file(f, text)
  local out, ok = run("/usr/bin/python3 -c 'import sys,hmac,hashlib,base64; " ..
    "k=base64.b64decode(sys.argv[1]); m=open(sys.argv[2],\"rb\").read(); " ..
    "print(base64.b64encode(hmac.new(k,m,hashlib.sha256).digest()).decode())' " ..
    q(key_b64) .. " " .. q(f))
  os.remove(f)
  assert(ok, "python3 hmac failed")
  return (out:gsub("%s+$", ""))
end

local function url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local HUB = "test-hub.azure-devices.net"

local function tpm_enrollment(ek, fields)
  local e = { type = "tpm", endorsement_key = ek }
  for k, v in pairs(fields or {}) do e[k] = v end
  return e
end

local ready, why = tpm_ready()
if not ready then
  describe("TPM provisioning", function()
    pending("skipped: " .. why)
  end)
  return
end

describe("TPM provisioning", function()
  local emu, tpm
  local ek, regid -- of `tpm`, learned from its first registration

  setup(function()
    tpm = start_swtpm()
    local ok, e = pcall(H.start_emulator, H.config{})
    if not ok then
      stop_swtpm(tpm)
      error(e, 0)
    end
    emu = e
  end)

  teardown(function()
    if emu then emu:stop() end
    stop_swtpm(tpm)
  end)

  local function tpm_client(t, fields)
    local f = { symmetric_key = H.NONE, registration_id = H.NONE,
                tpm = { tcti = t.tcti } }
    for k, v in pairs(fields or {}) do f[k] = v end
    return assert(dps.new(H.client_config(emu, f)))
  end

  -- A registration with no enrollment: the client sets the TPM up and
  -- sends EK and SRK; the service refuses the unknown EK. Returns the
  -- request the device sent.
  local function learn_ek(t)
    emu:configure(H.config{})
    local client = tpm_client(t)
    local res, err, code, details = client:register()
    local id = client:registration_id()
    client:close()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code, err)
    assert.are.equal(401002, details.error_code)
    local reqs = emu:requests()
    assert.are.equal(1, #reqs)
    local body = cjson.decode(reqs[1].body)
    return body.tpm.endorsementKey, id, reqs[1], body
  end

  local function ensure_enrolled()
    if not ek then ek, regid = learn_ek(tpm) end
    emu:configure(H.config{ enrollments = { tpm_enrollment(ek) } })
  end

  -- Checks a hub SAS token against the hub key the emulator handed out.
  local function assert_hub_token(token, device_id, ttl, t0)
    local sr, sig, se = token:match(
      "^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&se=(%d+)$")
    assert.is_string(sr, "bad token shape: " .. token)
    assert.are.equal(HUB .. "%2fdevices%2f" .. device_id, sr)
    se = tonumber(se)
    assert.is_true(se >= math.floor(t0) + ttl - 1 and se <= H.now() + ttl + 1)
    local regs = cjson.decode(emu:control("GET", "/_emulator/registrations"))
    local hub_key
    for _, r in ipairs(regs) do
      if r.device_id == device_id then hub_key = r.hub_key end
    end
    assert.is_string(hub_key)
    -- The HMAC covers the literal (URL-encoded) sr, "\n", se (docs/protocol.md §5).
    assert.are.equal(hmac_b64(hub_key, sr .. "\n" .. se), url_decode(sig))
    return hub_key
  end

  it("sets up a fresh TPM and sends its EK and SRK", function()
    -- Fresh state folder: no EK persisted yet.
    assert.is_nil(readpublic(tpm, "0x81010001"))
    local req, body
    ek, regid, req, body = learn_ek(tpm)
    assert.is_nil(req.headers.Authorization)
    assert.is_string(ek)
    assert.is_string(body.tpm.storageRootKey)
    assert.are.equal(regid, body.registrationId)
    -- Registration id: base32(sha256(EK)), lower case, no padding.
    assert.matches("^[a-z2-7]+$", regid)
    assert.are.equal(52, #regid)
    assert.are.equal(registration_id_of(ek), regid)
    assert.are.equal("/" .. H.scope .. "/registrations/" .. regid .. "/register",
                     req.path)
    -- The EK and SRK the client created are persisted.
    assert.is_string(readpublic(tpm, "0x81010001"))
    assert.is_string(readpublic(tpm, "0x81000001"))
  end)

  it("registers an enrolled TPM through the challenge", function()
    ensure_enrolled()
    local client = tpm_client(tpm)
    local res, err, code = client:register()
    assert.is_nil(err, code)
    assert.are.equal("assigned", res.status)
    assert.are.equal(HUB, res.assigned_hub)
    assert.are.equal(regid, res.device_id)
    assert.are.equal(regid, res.registration_id)
    assert.is_nil(res.connection_string) -- the key never leaves the TPM
    if res.tpm then assert.is_nil(res.tpm.authentication_key) end
    client:close()

    local reqs = emu:requests()
    assert.are.equal(3, #reqs)
    -- 1: no credentials, answered with the challenge.
    assert.are.equal("PUT", reqs[1].method)
    assert.is_nil(reqs[1].headers.Authorization)
    assert.are.equal(401, reqs[1].status)
    -- 2: the same PUT with a SAS signed by the activated identity key.
    assert.are.equal("PUT", reqs[2].method)
    assert.are.equal(202, reqs[2].status)
    assert.matches("^SharedAccessSignature sr=" .. H.scope ..
                   "%%2fregistrations%%2f" .. regid ..
                   "&sig=[^&]+&se=%d+&skn=registration$",
                   reqs[2].headers.Authorization)
    local body = cjson.decode(reqs[2].body)
    assert.are.equal(ek, body.tpm.endorsementKey)
    -- 3: the poll, with the same credentials.
    assert.are.equal("GET", reqs[3].method)
    assert.are.equal(200, reqs[3].status)
    assert.is_string(reqs[3].headers.Authorization)
  end)

  it("signs IoT Hub SAS tokens with the hub key inside the TPM", function()
    ensure_enrolled()
    local client = tpm_client(tpm)
    local res = assert(client:register())
    local t0 = H.now()
    local token, err, code = client:hub_sas_token(3600)
    client:close()
    assert.is_nil(err, code)
    assert.is_nil(token:find("skn=", 1, true))
    assert_hub_token(token, res.device_id, 3600, t0)
  end)

  -- Certificates from DPS work with a TPM too (spec/07 covers the rest);
  -- the status lookup does not: DPS authenticates a TPM only through a
  -- registration's challenge.
  it("gets an issued certificate for a CSR, and refuses lookup()", function()
    ensure_enrolled()
    local key = H.tmpname()
    local client = tpm_client(tpm, { certificate_request = { key = key } })
    local res, err, code = client:register()
    assert.is_nil(err, code)
    assert.are.equal(2, #res.issued_certificate_chain)
    local reqs = emu:requests()
    assert.are.equal("2025-07-01-preview", reqs[#reqs].query["api-version"])
    assert.is_string(cjson.decode(reqs[1].body).csr)
    local n = #reqs
    res, err, code = client:lookup()
    client:close()
    os.remove(key)
    assert.is_nil(res)
    assert.are.equal("ERROR", code)
    assert.matches("not available with TPM", err)
    assert.are.equal(n, #emu:requests())
  end)

  it("answers from the assignment cache and still signs hub tokens", function()
    ensure_enrolled()
    local cache = H.tmpname()
    local client = tpm_client(tpm, { cache = cache })
    local first = assert(client:register())
    client:close()
    local n = #emu:requests()
    client = tpm_client(tpm, { cache = cache })
    local res = assert(client:register())
    assert.is_true(res.from_cache)
    assert.are.equal(first.device_id, res.device_id)
    assert.are.equal(n, #emu:requests())
    local t0 = H.now()
    assert_hub_token(assert(client:hub_sas_token(600)), res.device_id, 600, t0)
    client:close()
    os.remove(cache)
  end)

  it("registers twice in a row on the same TPM, replacing the key", function()
    ensure_enrolled()
    local client = tpm_client(tpm)
    local res = assert(client:register())
    local key1 = assert_hub_token(assert(client:hub_sas_token(600)),
                                  res.device_id, 600, H.now() - 1)
    local pub1 = assert(readpublic(tpm, "0x81000100"))
    -- Again on the same client (the TPM stays open)...
    res = assert(client:register())
    local key2 = assert_hub_token(assert(client:hub_sas_token(600)),
                                  res.device_id, 600, H.now() - 1)
    client:close()
    local pub2 = assert(readpublic(tpm, "0x81000100"))
    -- ...and on a new client.
    client = tpm_client(tpm)
    res = assert(client:register())
    local key3 = assert_hub_token(assert(client:hub_sas_token(600)),
                                  res.device_id, 600, H.now() - 1)
    client:close()
    local pub3 = assert(readpublic(tpm, "0x81000100"))
    -- A fresh hub key each time, and the TPM signs with the newest.
    assert.are_not.equal(key1, key2)
    assert.are_not.equal(key2, key3)
    assert.are_not.equal(pub1, pub2)
    assert.are_not.equal(pub2, pub3)
  end)

  it("refuses a second TPM on the first one's enrollment (401002)", function()
    ensure_enrolled()
    local other = start_swtpm()
    finally(function() stop_swtpm(other) end)
    -- Claiming the first TPM's registration id with another EK.
    local client = tpm_client(other, { registration_id = regid })
    local res, err, code, details = client:register()
    client:close()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code, err)
    assert.are.equal(401002, details.error_code)
    local reqs = emu:requests()
    assert.are.equal(1, #reqs)
    local sent = cjson.decode(reqs[1].body).tpm.endorsementKey
    assert.is_string(sent)
    assert.are_not.equal(ek, sent)
    -- With its own (EK-derived) registration id it is simply unknown.
    emu:control("DELETE", "/_emulator/log")
    client = tpm_client(other)
    res, err, code, details = client:register()
    local other_id = client:registration_id()
    client:close()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code, err)
    assert.are.equal(401002, details.error_code)
    assert.are_not.equal(regid, other_id)
    assert.are.equal(registration_id_of(
      cjson.decode(emu:requests()[1].body).tpm.endorsementKey), other_id)
  end)

  it("names the TCTI when no TPM is reachable (KEY_ERROR)", function()
    emu:configure(H.config{})
    local tcti = "swtpm:host=127.0.0.1,port=" .. free_port()
    local client = tpm_client({ tcti = tcti })
    local t0 = H.now()
    local res, err, code = client:register()
    client:close()
    assert.is_nil(res)
    assert.are.equal("KEY_ERROR", code)
    assert.matches(tcti, err, 1, true)
    assert.are.equal(0, #emu:requests())
    assert.is_true(H.now() - t0 < 10)
  end)

  it("has no hub SAS token before a registration", function()
    local client = tpm_client(tpm)
    local token, err, code = client:hub_sas_token(3600)
    client:close()
    assert.is_nil(token)
    assert.is_string(err)
    assert.are.equal("INVALID_STATE", code)
  end)
end)
