-- Bad networks and a throttling service: the client retries what a retry
-- can fix, boundedly, and says clearly what it cannot.
local dps = require "dps"
local H = require "helpers"

local function with_faults(faults, extra)
  local c = H.config(extra or {})
  c.enrollments = { H.sym_enrollment("dev-1", { faults = faults }) }
  return c
end

describe("resilience", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  teardown(function()
    emu:stop()
  end)

  it("waits out 429 throttling with its Retry-After, then succeeds", function()
    emu:configure(with_faults{ { kind = "status", status = 429, times = 2,
                                 retry_after = 1, on = "register" } })
    local client = assert(dps.new(H.client_config(emu)))
    local res, err = client:register()
    assert.is_nil(err)
    assert.are.equal("assigned", res.status)
    local reqs = emu:requests()
    assert.are.equal(429, reqs[1].status)
    assert.are.equal(429, reqs[2].status)
    assert.are.equal("PUT", reqs[3].method)
    assert.is_true(reqs[2].time - reqs[1].time >= 1.0 - 0.01)
    assert.is_true(reqs[3].time - reqs[2].time >= 1.0 - 0.01)
    client:close()
  end)

  -- One fault, once; the registration must still end assigned.
  local recoverable = {
    { "retries a 503 and succeeds",
      { kind = "status", status = 503, times = 1, retry_after = 1 } },
    { "survives a connection closed without an answer", { kind = "close" } },
    { "survives a connection closed mid-response", { kind = "close_mid_response" } },
    { "retries a malformed JSON answer", { kind = "malformed_json" } },
    { "refuses an oversized answer without running out of memory",
      { kind = "oversized", bytes = 4000000 } },
    { "tolerates a wrong content type on a JSON answer",
      { kind = "content_type", value = "text/html" } },
  }
  for _, case in ipairs(recoverable) do
    it(case[1], function()
      emu:configure(with_faults{ case[2] })
      local client = assert(dps.new(H.client_config(emu)))
      local res, err = client:register()
      client:close()
      assert.is_nil(err)
      assert.are.equal("assigned", res.status)
      assert.is_not_nil(emu:requests()[1].fault)
    end)
  end

  it("retries a poll that failed with 500", function()
    emu:configure(with_faults{ { kind = "status", status = 500, times = 1,
                                 retry_after = 1, on = "poll" } })
    local client = assert(dps.new(H.client_config(emu)))
    assert(client:register())
    local reqs = emu:requests()
    assert.are.equal("GET", reqs[2].method)
    assert.are.equal(500, reqs[2].status)
    assert.are.equal("GET", reqs[3].method)
    client:close()
  end)

  it("gives up after max_retries failures in a row", function()
    emu:configure(with_faults{ { kind = "status", status = 503, times = -1,
                                 retry_after = 1 } })
    local client = assert(dps.new(H.client_config(emu, { max_retries = 2 })))
    local res, err, code, details = client:register()
    assert.is_nil(res)
    assert.are.equal("ERROR", code)
    assert.matches("503", err)
    assert.are.equal(503, details.http_status)
    assert.are.equal(3, #emu:requests())
    client:close()
  end)

  it("ends with TIMEOUT within the configured time", function()
    emu:configure(with_faults{ { kind = "hang", seconds = 30, times = -1 } })
    local client = assert(dps.new(H.client_config(emu, { timeout = 2 })))
    local t0 = H.now()
    local res, err, code = client:register()
    local took = H.now() - t0
    assert.is_nil(res)
    assert.are.equal("TIMEOUT", code)
    assert.matches("2 s", err)
    assert.is_true(took >= 2 - 0.05, "took " .. took)
    -- Generous: a loaded CI machine must not fail it, a hang still does.
    assert.is_true(took < 8, "took " .. took)
    client:close()
  end)

  it("honours a service-wide rate limit like a fleet booting at once", function()
    local c = H.config{ rate_limit = 2, rate_window = 3 }
    c.enrollments = { H.sym_enrollment("dev-1"), H.sym_enrollment("dev-2"),
                      H.sym_enrollment("dev-3") }
    emu:configure(c)
    local clients, results = {}, {}
    for i = 1, 3 do
      clients[i] = assert(dps.new(H.client_config(emu, {
        registration_id = "dev-" .. i, timeout = 15 })))
      clients[i]:start(function(res, err, code)
        results[i] = res or { err = err, code = code }
      end)
    end
    for _ = 1, 2000 do -- bounded; each wait is at most 0.1 s
      local pending = false
      for i = 1, 3 do
        if not results[i] then
          pending = true
          clients[i]:step()
          clients[i]:wait(0.01)
        end
      end
      if not pending then break end
    end
    local throttled = 0
    for _, r in ipairs(emu:requests()) do
      if r.status == 429 then throttled = throttled + 1 end
    end
    assert.is_true(throttled >= 1)
    for i = 1, 3 do
      assert.are.equal("assigned", results[i].status, tostring(results[i].err))
      clients[i]:close()
    end
  end)

  it("fails with TRANSPORT naming the certificate when the CA is unknown", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu, {
      trusted_certs = H.pki .. "/unknown-ca.pem" })))
    local res, err, code = client:register()
    assert.is_nil(res)
    assert.are.equal("TRANSPORT", code)
    assert.matches("certificate", err)
    assert.are.equal(0, #emu:requests())
    client:close()
  end)

  it("can skip TLS verification only through an 'insecure' option", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local client = assert(dps.new(H.client_config(emu, {
      trusted_certs = H.NONE, insecure_skip_tls_verify = true })))
    assert(client:register())
    client:close()
  end)

  it("goes through an HTTP CONNECT proxy with credentials", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local proxy = H.start_proxy("alice", "s3cret")
    local ok, err = pcall(function()
      local client = assert(dps.new(H.client_config(emu, {
        proxy = "http://alice:s3cret@127.0.0.1:" .. proxy.port })))
      local res, rerr = client:register()
      client:close()
      assert.is_nil(rerr)
      assert.are.equal("dev-1", res.device_id)
      local seen = proxy.requests()
      assert.is_true(#seen >= 1)
      assert.are.equal("CONNECT", seen[1].method)
      assert.are.equal(emu.endpoint, seen[#seen].target)
      assert.is_true(seen[#seen].auth_ok)
      -- Wrong credentials: the proxy refuses, the client says so.
      client = assert(dps.new(H.client_config(emu, { max_retries = 0,
        proxy = { host = "127.0.0.1", port = proxy.port,
                  username = "alice", password = "wrong" } })))
      local res2, err2, code2 = client:register()
      client:close()
      assert.is_nil(res2)
      assert.are.equal("TRANSPORT", code2)
      assert.is_string(err2)
    end)
    proxy.stop()
    assert(ok, err)
  end)

  it("keeps keys, signatures and proxy credentials out of logtrace output", function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
    local proxy = H.start_proxy("alice", "s3cret")
    local out = H.tmpname()
    local script = H.tmpname() .. ".lua"
    H.write_file(script, string.format([[
      local dps = require "dps"
      local c = assert(dps.new{ id_scope = %q, registration_id = "dev-1",
        symmetric_key = %q, global_endpoint = %q, trusted_certs = %q,
        proxy = %q, logtrace = true, timeout = 20 })
      assert(c:register())
      print(c:hub_sas_token(60) and "signed")
    ]], H.scope, H.key, emu.endpoint, H.ca,
        "http://alice:s3cret@127.0.0.1:" .. proxy.port))
    os.execute(string.format("%s %s >%s 2>&1", H.lua, script, out))
    local log = H.read_file(out)
    os.remove(script); os.remove(out)
    proxy.stop()
    assert.matches("> PUT /0ne00000A0A/registrations/dev%-1/register", log)
    assert.matches("sig=%*%*%*", log)
    assert.matches("Proxy%-Authorization: %*%*%*", log)
    assert.is_nil(log:find(H.key, 1, true))
    assert.is_nil(log:find("sig=[A-Za-z0-9%%]+&"))
    -- Base64 of "alice:s3cret", as a Basic header would carry it.
    assert.is_nil(log:find("YWxpY2U6czNjcmV0", 1, true))
    assert.is_nil(log:find("s3cret", 1, true))
  end)
end)
