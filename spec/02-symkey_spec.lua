-- Symmetric-key provisioning end to end: libcurl over real TLS to the
-- emulator on loopback.
local dps = require "dps"
local H = require "helpers"

describe("symmetric key provisioning", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{
      enrollments = { H.sym_enrollment("dev-1") },
    })
  end)

  teardown(function()
    emu:stop()
  end)

  -- SRS_PROV_CLIENT_07_008, 07_013, 07_016: register, poll, callback.
  it("provisions an individual enrollment", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu)))
    local res, err, code = client:register()
    assert.is_nil(err, code)
    assert.are.equal("assigned", res.status)
    assert.are.equal("test-hub.azure-devices.net", res.assigned_hub)
    assert.are.equal("dev-1", res.device_id)
    assert.are.equal("dev-1", res.registration_id)
    assert.are.equal("initialAssignment", res.substatus)
    assert.is_string(res.etag)
    assert.is_string(res.created)
    assert.is_string(res.last_updated)
    assert.are.equal("HostName=test-hub.azure-devices.net;DeviceId=dev-1;" ..
                     "SharedAccessKey=" .. H.key, res.connection_string)
    client:close()
  end)

  it("signs the SAS token as docs/protocol.md §5 describes", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    client:close()
    local reqs = emu:requests()
    assert.are.equal("PUT", reqs[1].method)
    assert.are.equal("/" .. H.scope .. "/registrations/dev-1/register",
                     reqs[1].path)
    assert.are.equal("2021-06-01", reqs[1].query["api-version"])
    local auth = reqs[1].headers.Authorization
    assert.matches("^SharedAccessSignature sr=0ne00000A0A%%2fregistrations" ..
                   "%%2fdev%-1&sig=[^&]+&se=%d+&skn=registration$", auth)
    assert.matches("^dps/", reqs[1].headers["User-Agent"])
    assert.are.equal("application/json", reqs[1].headers.Accept)
  end)

  -- docs/protocol.md §9 #6: the official client signs once and never renews.
  it("reuses its SAS token while fresh and renews it before expiry", function()
    local function expiries()
      local out = {}
      for _, r in ipairs(emu:requests()) do
        out[#out + 1] = tonumber(r.headers.Authorization:match("se=(%d+)"))
      end
      return out
    end
    emu:configure(H.config{ polls = 2, enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    client:close()
    local se = expiries()
    assert.are.equal(3, #se)
    assert.are.equal(se[1], se[3]) -- one token for the whole registration
    -- A 60 s token is always within its renewal margin: signed anew for
    -- each request, so its expiry moves with the clock.
    emu:configure(H.config{ polls = 2, enrollments = { H.sym_enrollment("dev-1") } })
    client = assert(dps.new(H.client_config(emu, { sas_ttl = 60 })))
    assert(client:register())
    client:close()
    se = expiries()
    assert.are.equal(3, #se)
    assert.is_true(se[3] > se[1])
  end)

  it("derives the device key from a group key in the client", function()
    emu:configure(H.config{ enrollments = {
      { type = "symmetric_key_group", group_id = "g1",
        primary_key = H.group_key } } })
    local client = assert(dps.new(H.client_config(emu, {
      symmetric_key = H.NONE, group_key = H.group_key,
      registration_id = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6" })))
    local res, err = client:register()
    assert.is_nil(err)
    assert.are.equal("sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", res.device_id)
    -- docs/protocol.md KAT-1: the derived key, as in Microsoft's docs.
    assert.matches("SharedAccessKey=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=",
                   res.connection_string, 1, true)
    client:close()
  end)

  it("sends the custom payload and returns the service's payload", function()
    emu:configure(H.config{ enrollments = {
      H.sym_enrollment("dev-1", { payload = "echo" }) } })
    local client = assert(dps.new(H.client_config(emu, {
      payload = { site = "north", model = "x1", n = 3 } })))
    local res = assert(client:register())
    local sent = require("cjson").decode(emu:requests()[1].body)
    assert.are.same({ site = "north", model = "x1", n = 3 }, sent.payload)
    assert.is_table(res.payload)
    client:close()
  end)

  it("returns a fixed enrollment payload as a table", function()
    emu:configure(H.config{ enrollments = {
      H.sym_enrollment("dev-1", { payload = { fw = "2.1", tags = { "a" } } }) } })
    local client = assert(dps.new(H.client_config(emu)))
    local res = assert(client:register())
    assert.are.same({ fw = "2.1", tags = { "a" } }, res.payload)
    client:close()
  end)

  it("polls no sooner than the Retry-After the service sends", function()
    emu:configure(H.config{ retry_after = 2, polls = 2,
                            enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    client:close()
    local reqs = emu:requests()
    assert.are.equal(3, #reqs)
    for i = 2, #reqs do
      assert.are.equal("GET", reqs[i].method)
      assert.is_true(reqs[i].time - reqs[i - 1].time >= 2.0 - 0.01)
    end
  end)

  it("reads a Retry-After given as an HTTP-date against the answer's Date", function()
    -- Three seconds after now, in the IMF-fixdate form (C locale names).
    local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 3)
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1", {
      faults = { { kind = "retry_after", value = when, on = "register" } } }) } })
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    client:close()
    local reqs = emu:requests()
    assert.are.equal(202, reqs[1].status)
    -- The date was 2-3 s ahead of the answer (whole seconds): the poll
    -- waited for it, where the enrollment's own Retry-After is 1 s and the
    -- official client would have taken the date for 1 s as well.
    assert.is_true(reqs[2].time - reqs[1].time >= 1.5,
                   "polled after " .. (reqs[2].time - reqs[1].time) .. " s")
  end)

  it("reuses one TLS connection for the register request and its polls", function()
    emu:configure(H.config{ polls = 2, enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    client:close()
    local reqs = emu:requests()
    assert.are.equal(3, #reqs)
    assert.are.equal(reqs[1].conn_id, reqs[3].conn_id)
  end)

  -- SRS_PROV_CLIENT_07_017: errors reach the callback with a reason.
  it("reports a disabled enrollment as DISABLED", function()
    emu:configure(H.config{ enrollments = {
      H.sym_enrollment("dev-1", { enabled = false }) } })
    local client = assert(dps.new(H.client_config(emu)))
    local res, err, code = client:register()
    assert.is_nil(res)
    assert.are.equal("DISABLED", code)
    assert.is_string(err)
    client:close()
  end)

  it("reports a wrong key as DEV_AUTH_ERROR with the service's errorCode", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu, { symmetric_key = H.other_key })))
    local res, err, code, details = client:register()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code)
    assert.matches("401", err)
    assert.are.equal(401002, details.error_code)
    assert.are.equal(401, details.http_status)
    assert.is_string(details.tracking_id)
    client:close()
  end)

  it("maps failed registrations to the C API's results", function()
    local cases = { [400208] = "HUB_NOT_SPECIFIED", [400209] = "UNAUTHORIZED",
                    [400207] = "ERROR" }
    for ec, want in pairs(cases) do
      emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1", {
        faults = { { kind = "failed", error_code = ec,
                     error_message = "allocation says no" } } }) } })
      local client = assert(dps.new(H.client_config(emu)))
      local res, err, code, details = client:register()
      assert.is_nil(res)
      assert.are.equal(want, code)
      assert.matches("allocation says no", err, 1, true)
      assert.are.equal(ec, details.error_code)
      client:close()
    end
  end)

  it("can register again on the same client after a failure", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1", {
      faults = { { kind = "status", status = 404, times = 1 } } }) } })
    local client = assert(dps.new(H.client_config(emu)))
    local res, _, code = client:register()
    assert.is_nil(res)
    assert.are.equal("DEV_AUTH_ERROR", code)
    assert.are.equal(1, #emu:requests()) -- a 404 is not retried
    res = assert(client:register())
    assert.are.equal("assigned", res.status)
    client:close()
  end)
end)
