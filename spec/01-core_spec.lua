-- dps.core mirrors the C API one to one; each requirement of the original
-- low-level client (SRS_PROV_CLIENT_07_xxx, spec/SRS_TRACE.md) that still
-- means something is traced here.
local core = require "dps.core"
local H = require "helpers"

-- Runs dowork/wait until the register callback fired (bounded).
local function drive(c, state, limit_s)
  for _ = 1, (limit_s or 20) * 20 do
    c:dowork()
    if state.done then return true end
    c:wait(0.05)
  end
  return false
end

describe("dps.core (low-level API)", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  teardown(function()
    emu:stop()
  end)

  local function new_client()
    local c = assert(core.create(emu.endpoint, H.scope, "http"))
    c:set_option("registration_id", "dev-1")
    c:set_option("symmetric_key", H.key)
    c:set_option("TrustedCerts", H.ca)
    return c
  end

  it("reports its version", function()
    assert.matches("^%d+%.%d+%.%d+", core.version())
  end)

  -- SRS_PROV_CLIENT_07_001: a missing uri is refused.
  it("refuses a missing uri or scope with an error naming it", function()
    assert.has_error(function() core.create(nil, H.scope, "http") end)
    local ok, err = pcall(core.create, nil, H.scope, "http")
    assert.is_false(ok)
    assert.matches("uri", err)
    ok, err = pcall(core.create, emu.endpoint, nil, "http")
    assert.is_false(ok)
    assert.matches("scope_id", err)
    ok, err = pcall(core.create, emu.endpoint, H.scope, "amqp")
    assert.is_false(ok)
    assert.matches("protocol", err)
  end)

  -- SRS_PROV_CLIENT_07_003: an invalid endpoint gives no handle.
  it("returns nil, message for an endpoint it cannot use", function()
    local c, err, code = core.create("http://plain.example", H.scope, "http")
    assert.is_nil(c)
    assert.matches("endpoint", err)
    assert.are.equal("INVALID_ARG", code)
    c = core.create("host/with/path", H.scope, "http")
    assert.is_nil(c)
  end)

  -- SRS_PROV_CLIENT_07_002, 07_005, 07_006: create and destroy (twice).
  it("creates and destroys a handle; destroy is idempotent", function()
    local c = new_client()
    c:destroy()
    c:destroy()
    assert.has_error(function() c:dowork() end, "attempt to use a closed dps client")
  end)

  -- SRS_PROV_CLIENT_07_007: a callback is required.
  it("requires a register callback", function()
    local c = new_client()
    local ok, err = pcall(function() c:register_device(nil) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'register_device'", err, 1, true)
    c:destroy()
  end)

  -- SRS_PROV_CLIENT_07_008, 07_009, 07_011, 07_013, 07_016, 07_032.
  it("registers through dowork and calls back once with hub and device", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local c = new_client()
    local state, statuses = { calls = 0 }, {}
    assert.is_true(c:register_device(function(result, hub, device)
      state.done = true
      state.calls = state.calls + 1
      state.result, state.hub, state.device = result, hub, device
    end, function(status) statuses[#statuses + 1] = status end))
    -- Nothing is sent before dowork (07_008).
    assert.are.equal(0, #emu:requests())
    assert.is_true(drive(c, state))
    assert.are.equal("OK", state.result)
    assert.are.equal("test-hub.azure-devices.net", state.hub)
    assert.are.equal("dev-1", state.device)
    assert.are.equal(1, state.calls)
    assert.are.same({ "registering", "connected", "assigning", "assigned" }, statuses)
    local reqs = emu:requests()
    assert.are.equal("PUT", reqs[1].method)
    assert.are.same({ registrationId = "dev-1" }, require("cjson").decode(reqs[1].body))
    assert.are.equal("GET", reqs[2].method)
    c:destroy()
  end)

  -- SRS_PROV_CLIENT_07_010: dowork on an idle handle does nothing.
  it("does nothing on dowork while idle", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local c = new_client()
    assert.is_true(c:dowork())
    assert.are.equal(0, #emu:requests())
    c:destroy()
  end)

  -- SRS_PROV_CLIENT_07_017, 07_031: errors end in the callback, and a
  -- second registration while one runs is refused.
  it("reports a failure through the callback and refuses a second start", function()
    emu:configure(H.config{ enrollments = {} })
    local c = new_client()
    local state = {}
    assert.is_true(c:register_device(function(result)
      state.done, state.result = true, result
    end))
    local ok, err, code = c:register_device(function() end)
    assert.is_nil(ok)
    assert.matches("already", err)
    assert.are.equal("INVALID_STATE", code)
    assert.is_true(drive(c, state))
    assert.are.equal("DEV_AUTH_ERROR", state.result)
    local e = c:last_error()
    assert.are.equal("DEV_AUTH_ERROR", e.result)
    assert.are.equal(401, e.http_status)
    assert.are.equal(401002, e.error_code)
    c:destroy()
  end)

  it("refuses unknown options and wrong values", function()
    local c = new_client()
    local ok, err = pcall(function() c:set_option("no_such_option", "x") end)
    assert.is_false(ok)
    assert.matches("unknown option 'no_such_option'", err, 1, true)
    local code
    ok, err, code = c:set_option("registration_id", "bad id/with slash")
    assert.is_nil(ok)
    assert.matches("registration_id", err)
    assert.are.equal("INVALID_ARG", code)
    assert.has_error(function() c:set_option("provisioning_timeout", 300) end)
    assert.has_error(function() c:set_option("logtrace", "yes") end)
    c:destroy()
  end)

  it("sets, validates and clears the payload", function()
    local c = new_client()
    assert.is_true(c:set_payload('{"a":1}'))
    local ok, err = c:set_payload("{not json")
    assert.is_nil(ok)
    assert.matches("JSON", err)
    assert.is_true(c:set_payload(nil)) -- clears (the official client fails)
    assert.is_nil(c:get_payload())
    c:destroy()
  end)

  it("returns the service's payload after an assignment", function()
    emu:configure(H.config{ enrollments = {
      H.sym_enrollment("dev-1", { payload = { hello = "world" } }) } })
    local c = new_client()
    local state = {}
    c:register_device(function() state.done = true end)
    assert.is_true(drive(c, state))
    assert.are.same({ hello = "world" }, require("cjson").decode(c:get_payload()))
    assert.is_string(c:registration_state())
    c:destroy()
  end)

  it("refuses to register with the clock before its build date", function()
    -- faketime preloads its own library; the sanitizer run preloads ASan.
    if (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
      pending("faketime cannot preload beside the sanitizer runtime")
      return
    end
    local script = H.tmpname() .. ".lua"
    H.write_file(script, string.format([[
      local core = require "dps.core"
      local c = assert(core.create(%q, %q, "http"))
      c:set_option("registration_id", "dev-1")
      c:set_option("symmetric_key", %q)
      print(c:register_device(function() end))
    ]], emu.endpoint, H.scope, H.key))
    local out = H.tmpname()
    os.execute(string.format("faketime '2001-01-01 00:00:00' %s %s >%s 2>&1",
                             H.lua, script, out))
    local text = H.read_file(out) or ""
    os.remove(script); os.remove(out)
    assert.matches("clock is not set", text)
    assert.matches("ERROR", text)
  end)
end)
