-- A TPM challenge's keyName goes into the Authorization header of the
-- next request: a hostile one (CR/LF, '&', spaces) fails the
-- registration with PARSING before any header is built. Real TPM flow:
-- swtpm on loopback, the emulator's reply_overrides knob.
local dps = require "dps"
local H = require "helpers"
local cjson = require "cjson"

local function sh(cmd)
  return "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS " ..
         "TSS2_LOG=all+none sh -c " .. string.format("%q", cmd)
end

local function run(cmd)
  local p = assert(io.popen(sh(cmd) .. " 2>/dev/null; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)rc=(%d+)%s*$")
  return body or out, tonumber(rc) == 0
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function tpm_ready()
  if not require("dps.core").tpm_available() then
    return nil, "this build of dps.core has no TPM support"
  end
  local _, ok = run("command -v swtpm >/dev/null")
  if not ok then return nil, "swtpm is not installed" end
  return true
end

local ready, why = tpm_ready()
if not ready then
  describe("TPM keyName", function()
    pending("skipped: " .. why)
  end)
  return
end

describe("TPM keyName", function()
  local emu, tpm

  setup(function()
    local dir = H.tmpname()
    local out, ok = run("tests/tpm/swtpm-start " .. q(dir))
    local port = tonumber(out:match("(%d+)%s*$"))
    tpm = { dir = dir }
    if not ok or not port then
      run("tests/tpm/swtpm-stop " .. q(dir) .. "; rm -rf " .. q(dir))
      error("swtpm did not start")
    end
    tpm.tcti = "swtpm:host=127.0.0.1,port=" .. port
    emu = H.start_emulator(H.config{})
  end)

  teardown(function()
    if emu then emu:stop() end
    if tpm then run("tests/tpm/swtpm-stop " .. q(tpm.dir) .. "; rm -rf " .. q(tpm.dir)) end
  end)

  local function register()
    local client = assert(dps.new(H.client_config(emu, {
      symmetric_key = H.NONE, registration_id = H.NONE, max_retries = 0,
      tpm = { tcti = tpm.tcti } })))
    local res, err, code = client:register()
    client:close()
    return res, err, code
  end

  it("refuses a keyName that would break the Authorization header", function()
    -- First run: no enrollment; the request shows the EK.
    emu:configure(H.config{})
    local _, _, code = register()
    assert.are.equal("DEV_AUTH_ERROR", code)
    local ek = cjson.decode(emu:requests()[1].body).tpm.endorsementKey
    for _, name in ipairs{ "registration\r\nX-Injected: 1", "a&skn=b", "two words" } do
      emu:configure(H.config{ enrollments = { { type = "tpm", endorsement_key = ek,
        reply_overrides = { keyName = name } } } })
      local res, err
      res, err, code = register()
      assert.is_nil(res)
      assert.are.equal("PARSING", code, err)
      assert.matches("keyName", err, 1, true)
      assert.is_nil(err:find("[\r\n]"))
      -- Only the challenged PUT went out: no header was built from it.
      local reqs = emu:requests()
      assert.are.equal(1, #reqs)
      assert.is_nil(reqs[1].headers.Authorization)
    end
    -- And the service's usual keyName still works end to end.
    emu:configure(H.config{ enrollments = { { type = "tpm", endorsement_key = ek } } })
    local res, err = register()
    assert(res, err)
  end)
end)
