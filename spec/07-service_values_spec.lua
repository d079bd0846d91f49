-- Values the service sends back are checked before use, end to end over
-- HTTPS: a hostile assignedHub, deviceId, echoed registrationId or
-- operationId fails the registration with PARSING and a message quoting
-- it escaped; it reaches no connection string, no result callback and no
-- hub_sas_token resource. (The TPM keyName is covered in
-- tests/c/test_service_values.c.)
local core = require "dps.core"
local dps = require "dps"
local H = require "helpers"

local function enrollment(fields)
  return H.sym_enrollment("dev-1", fields)
end

-- Runs dowork/wait until the register callback fired (bounded).
local function drive(c, state, limit_s)
  for _ = 1, (limit_s or 20) * 20 do
    c:dowork()
    if state.done then return true end
    c:wait(0.05)
  end
  return false
end

describe("service values", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{ enrollments = { enrollment() } })
  end)

  teardown(function()
    emu:stop()
  end)

  local function serve(fields, polls)
    emu:configure(H.config{ enrollments = { enrollment(fields) },
                            polls = polls or 0 })
  end

  -- The registration through dps: nil, message, code; also checks the
  -- message holds no raw control byte and the client has nothing usable.
  local function refused(fields, polls)
    serve(fields, polls)
    local client = assert(dps.new(H.client_config(emu, { max_retries = 0 })))
    local res, err, code = client:register()
    assert.is_nil(res)
    assert.are.equal("PARSING", code)
    assert.is_nil(err:find("[%c]"), err)
    assert.are.equal("PARSING", client:last_error().result)
    assert.are.equal(err, client:last_error().message)
    local token, terr, tcode = client:hub_sas_token(60)
    assert.is_nil(token)
    assert.are.equal("INVALID_STATE", tcode, terr)
    client:close()
    return err
  end

  local HOSTILE_HUBS = {
    { "evil.example;SharedAccessKey=AAAA", '"evil.example;SharedAccessKey=AAAA"' },
    { "hub.example\r\nX-Injected: 1", '"hub.example\\x0D\\x0AX-Injected: 1"' },
    { "hub example.net", '"hub example.net"' },
    { "hub.example=1", '"hub.example=1"' },
    { string.rep("a", 63) .. "." .. string.rep("b", 200), 'aaaaaaa"...' },
  }
  for _, case in ipairs(HOSTILE_HUBS) do
    it("refuses the assignedHub " .. case[2], function()
      local err = refused{ assigned_hub = case[1] }
      assert.matches("assignedHub", err, 1, true)
      assert.matches(case[2], err, 1, true)
      assert.is_true(#err < 256)
    end)
  end

  local HOSTILE_IDS = {
    { "dev;SharedAccessKey=AAAA", '"dev;SharedAccessKey=AAAA"' },
    { "dev\nHostName=evil", '"dev\\x0AHostName=evil"' },
    { "dev/../../x", '"dev/../../x"' },
    { string.rep("d", 129), '"dddd' },
  }
  for _, case in ipairs(HOSTILE_IDS) do
    it("refuses the deviceId " .. case[2], function()
      local err = refused{ device_id = case[1] }
      assert.matches("deviceId", err, 1, true)
      assert.matches(case[2], err, 1, true)
    end)
  end

  it("refuses a hostile registrationId echoed back", function()
    local err = refused{ reply_overrides = { registrationId = "dev-1\r\nX: 1" } }
    assert.matches("registrationId", err, 1, true)
    assert.matches('"dev-1\\x0D\\x0AX: 1"', err, 1, true)
  end)

  it("refuses a hostile operationId before polling with it", function()
    local err = refused({ reply_overrides = { operationId = "op\r\nX-Injected: 1" } }, 1)
    assert.matches("operationId", err, 1, true)
    local methods = {}
    for _, r in ipairs(emu:requests()) do methods[#methods + 1] = r.method end
    assert.are.same({ "PUT" }, methods)
  end)

  it("URL-encodes a well-formed but unusual operationId", function()
    serve({ reply_overrides = { operationId = "op/1%2" } }, 1)
    local client = assert(dps.new(H.client_config(emu, { max_retries = 0 })))
    local res, err, code = client:register()
    client:close()
    -- The emulator knows no such operation: 404, after a poll whose path
    -- carries the id encoded.
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code, err)
    local polls = {}
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" then polls[#polls + 1] = r.path end
    end
    assert.are.equal(1, #polls)
    assert.are.equal("/operations/op%2f1%252", polls[1]:match("/operations/.*$"))
  end)

  it("never hands a refused hub or device id to the C result callback", function()
    serve{ assigned_hub = "evil.example;SharedAccessKey=AAAA",
           device_id = "dev;HostName=x" }
    local c = assert(core.create(emu.endpoint, H.scope, "http"))
    assert(c:set_option("registration_id", "dev-1"))
    assert(c:set_option("symmetric_key", H.key))
    assert(c:set_option("TrustedCerts", H.ca))
    assert(c:set_option("max_retries", 0))
    local state = {}
    assert(c:register_device(function(result, hub, device_id)
      state.done, state.result, state.hub, state.device = true, result, hub, device_id
    end))
    assert.is_true(drive(c, state))
    assert.are.equal("PARSING", state.result)
    assert.is_nil(state.hub)
    assert.is_nil(state.device)
    assert.is_nil(c:hub_connection_string())
    assert.is_nil(c:registration_state())
    local token, _, code = c:hub_sas_token(60)
    assert.is_nil(token)
    assert.are.equal("INVALID_STATE", code)
    c:destroy()
  end)

  it("still provisions with every character IoT Hub allows in a device id", function()
    local id = "a-:.+%_#*?!(),=@$'Z9"
    serve{ device_id = id, assigned_hub = "Hub-1.azure-devices.net" }
    local client = assert(dps.new(H.client_config(emu)))
    local res, err = client:register()
    assert(res, err)
    assert.are.equal(id, res.device_id)
    assert.are.equal("HostName=Hub-1.azure-devices.net;DeviceId=" .. id ..
                     ";SharedAccessKey=" .. H.key, res.connection_string)
    assert.is_string(client:hub_sas_token(60))
    client:close()
  end)
end)
