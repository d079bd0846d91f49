-- The Lua layer: wrong arguments raise errors that name them; closing,
-- stepping and collecting are safe from anywhere, callbacks included.
local dps = require "dps"
local H = require "helpers"

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

-- Drives a started client until the result callback ran (bounded).
local function run(client, box, limit_s)
  for _ = 1, (limit_s or 20) * 10 do
    if box.done then return true end
    client:step()
    if box.done then return true end
    client:wait(0.1)
  end
  return box.done
end

describe("the Lua API", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:configure(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  describe("dps.new rejects", function()
    local cases = {
      { "a non-table config", nil, "table" },
      { "an unknown key", { bogus = 1 }, "bogus" },
      { "a missing id_scope", { id_scope = H.NONE }, "id_scope" },
      { "a non-string id_scope", { id_scope = 42 }, "id_scope" },
      { "a bad timeout", { timeout = -1 }, "timeout" },
      { "a non-number timeout", { timeout = "soon" }, "timeout" },
      { "two attestations", { group_key = H.group_key }, "symmetric_key" },
      { "no attestation", { symmetric_key = H.NONE }, "exactly one of" },
      { "a non-table payload of the wrong type", { payload = print }, "payload" },
      { "a bad registration_id type", { registration_id = {} }, "registration_id" },
      { "a bad logtrace", { logtrace = "yes" }, "logtrace" },
      { "a bad x509 table", { symmetric_key = H.NONE, x509 = { cert = 1 } }, "x509" },
      { "a bad tpm table", { symmetric_key = H.NONE, tpm = { tcti = 5 } }, "tpm" },
      { "a bad proxy", { proxy = 17 }, "proxy" },
      { "a bad max_retries", { max_retries = 1.5 }, "max_retries" },
      { "a bad sas_ttl", { sas_ttl = 0 }, "sas_ttl" },
      { "a bad trusted_certs", { trusted_certs = true }, "trusted_certs" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local cfg = case[2] and H.client_config(emu, case[2]) or nil
        local msg = err_of(dps.new, cfg)
        assert.matches(case[3], msg, 1, true)
      end)
    end
  end)

  it("names the bad argument of every method", function()
    local c = assert(dps.new(H.client_config(emu)))
    assert.matches("start", err_of(c.start, c, 42))
    assert.matches("start", err_of(c.start, c, function() end, "x"))
    assert.matches("wait", err_of(c.wait, c, -1))
    assert.matches("wait", err_of(c.wait, c, "long"))
    assert.matches("hub_sas_token", err_of(c.hub_sas_token, c, "x"))
    assert.matches("register", err_of(c.register, c, 42))
    c:close()
  end)

  it("raises on any method of a closed client; close is idempotent", function()
    local c = assert(dps.new(H.client_config(emu)))
    c:close()
    c:close()
    for _, m in ipairs{ "register", "start", "step", "wait", "pollfds",
                        "timeout", "hub_sas_token" } do
      assert.matches("closed dps client", err_of(c[m], c, function() end))
    end
  end)

  it("drives a registration with start/step/wait and reports statuses", function()
    local c = assert(dps.new(H.client_config(emu)))
    local box, statuses = {}, {}
    c:start(function(res, err, code)
      box.done, box.res, box.err, box.code = true, res, err, code
    end, function(s) statuses[#statuses + 1] = s end)
    assert.is_true(run(c, box))
    assert.is_nil(box.err)
    assert.are.equal("dev-1", box.res.device_id)
    assert.are.same({ "registering", "connected", "assigning", "assigned" }, statuses)
    c:close()
  end)

  it("exposes descriptors and the next timeout for host loops", function()
    emu:configure(H.config{ retry_after = 2, enrollments = { H.sym_enrollment("dev-1") } })
    local c = assert(dps.new(H.client_config(emu)))
    assert.is_nil(c:timeout()) -- nothing scheduled while idle
    assert.are.same({}, c:pollfds())
    local box = {}
    c:start(function(res) box.done, box.res = true, res end)
    local saw_fd, saw_long_wait = false, false
    for _ = 1, 400 do
      c:step()
      if box.done then break end
      local fds, t = c:pollfds(), c:timeout()
      for _, f in ipairs(fds) do
        assert.is_number(f.fd)
        assert.is_true(f.read or f.write)
        saw_fd = true
      end
      -- While waiting out Retry-After: no socket, one long timer.
      if #fds == 0 and t and t > 1.5 then saw_long_wait = true end
      c:wait(0.1)
    end
    assert.is_true(box.done)
    assert.is_true(saw_fd)
    assert.is_true(saw_long_wait)
    c:close()
  end)

  it("sleeps instead of spinning while a Retry-After runs", function()
    emu:configure(H.config{ retry_after = 2, enrollments = { H.sym_enrollment("dev-1") } })
    local c = assert(dps.new(H.client_config(emu)))
    local box, steps = {}, 0
    c:start(function() box.done = true end)
    for _ = 1, 1000 do
      steps = steps + 1
      c:step()
      if box.done then break end
      c:wait() -- no limit: only the client's own descriptors and timers
    end
    assert.is_true(box.done)
    -- A handful of wake-ups (connect, TLS, answers, one timer): not a loop.
    assert.is_true(steps < 60, "woke " .. steps .. " times")
    c:close()
  end)

  it("survives closing the client inside its own result callback", function()
    local c = assert(dps.new(H.client_config(emu)))
    local box = {}
    c:start(function(res)
      c:close()
      box.done, box.res = true, res
    end)
    assert.is_true(run(c, box) or box.done)
    assert.are.equal("dev-1", box.res.device_id)
    assert.matches("closed dps client", err_of(c.step, c))
  end)

  it("survives closing the client inside a status callback", function()
    local c = assert(dps.new(H.client_config(emu)))
    local box = {}
    c:start(function() box.result_called = true end, function(s)
      if s == "connected" then c:close(); box.done = true end
    end)
    for _ = 1, 200 do
      if box.done then break end
      c:step()
      if box.done then break end
      c:wait(0.1)
    end
    assert.is_true(box.done)
    assert.is_nil(box.result_called)
  end)

  it("refuses step() from inside a callback without breaking the client", function()
    local c = assert(dps.new(H.client_config(emu)))
    local box = {}
    c:start(function(res)
      box.inner_ok, box.inner_err = pcall(c.step, c)
      box.done, box.res = true, res
    end)
    assert.is_true(run(c, box))
    assert.is_false(box.inner_ok)
    assert.matches("inside a dps callback", tostring(box.inner_err))
    assert.are.equal("dev-1", box.res.device_id)
    -- The same client registers again afterwards.
    assert(c:register())
    c:close()
  end)

  it("reports an error raised in a callback and keeps working", function()
    local c = assert(dps.new(H.client_config(emu)))
    local box = {}
    c:start(function() box.done = true; error("boom in callback") end)
    local reported
    for _ = 1, 200 do
      local ok, err, code = c:step()
      if not ok and err then reported = { err, code } end
      if box.done then break end
      c:wait(0.1)
    end
    assert.is_true(box.done)
    assert.is_table(reported)
    assert.matches("boom in callback", reported[1])
    assert.are.equal("CALLBACK_ERROR", reported[2])
    assert(c:register())
    c:close()
  end)

  it("is collected safely with a request in flight", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local c = assert(dps.new(H.client_config(emu)))
      c:start(function() end)
      c:step()
      weak[1] = c
    end
    for _ = 1, 5 do collectgarbage("collect") end
    assert.is_nil(weak[1])
  end)

  it("closes with <close> on Lua 5.4", function()
    if not _VERSION:find("5.4") then
      pending("<close> exists on Lua 5.4 only")
      return
    end
    local chunk = assert(load([[
      local dps, cfg = ...
      local held
      do
        local c <close> = assert(dps.new(cfg))
        held = c
      end
      return pcall(held.step, held)
    ]]))
    local ok, err = chunk(dps, H.client_config(emu))
    assert.is_false(ok)
    assert.matches("closed dps client", err)
  end)

  it("signs an IoT Hub SAS token after a symmetric-key assignment", function()
    local c = assert(dps.new(H.client_config(emu)))
    assert.is_nil((c:hub_sas_token(60)))
    local res = assert(c:register())
    local token = assert(c:hub_sas_token(3600))
    assert.matches("^SharedAccessSignature sr=test%-hub%.azure%-devices%.net%%2fdevices%%2fdev%-1&sig=[^&]+&se=%d+$",
                   token)
    assert.are.equal("dev-1", res.device_id)
    c:close()
  end)

  it("returns the version", function()
    assert.matches("^%d+%.%d+%.%d+", dps.version())
  end)
end)
