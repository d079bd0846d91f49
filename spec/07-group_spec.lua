-- dps.group: many clients on one driver. Sharing (connections reused, TLS
-- sessions resumed, as the emulator sees them), the max_connections cap,
-- close and collection from callbacks, and a mixed group of symmetric-key
-- and X.509 clients.
local dps = require "dps"
local H = require "helpers"
local cjson = require "cjson"

local P = H.pki
local function pki(name) return P .. "/" .. name end

local N = 12

local function fleet_config(extra)
  local enrollments = {
    { type = "symmetric_key_group", group_id = "fleet", primary_key = H.group_key },
    { type = "x509", registration_id = "x509-device-01",
      certificate = pki("device-01.pem") },
    { type = "x509_group", group_id = "root-group",
      ca_certificate = pki("root-ca.pem") },
  }
  for _, e in ipairs(extra or {}) do enrollments[#enrollments + 1] = e end
  return H.config{ enrollments = enrollments }
end

-- Descriptors this process has open now (Linux /proc).
local function open_fds()
  local p = io.popen("ls /proc/$PPID/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("*l"))
  p:close()
  return n
end

describe("dps.group", function()
  local emu

  setup(function() emu = H.start_emulator(fleet_config()) end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:configure(fleet_config()) end)

  local function stats()
    return cjson.decode(emu:control("GET", "/_emulator/stats"))
  end

  local function member(group, i, fields)
    local f = { symmetric_key = H.NONE, group_key = H.group_key,
                registration_id = "fleet-dev-" .. i, group = group }
    for k, v in pairs(fields or {}) do f[k] = v end
    return assert(dps.new(H.client_config(emu, f)))
  end

  -- Starts n members; returns clients and a results table.
  local function start_fleet(group, n)
    local clients, results = {}, {}
    for i = 1, n do
      clients[i] = member(group, i)
      assert(clients[i]:start(function(res, err, code)
        results[i] = res or { status = "failed", err = err, code = code }
      end))
    end
    return clients, results
  end

  local function count_assigned(results, n)
    local k = 0
    for i = 1, n do
      if results[i] and results[i].status == "assigned" then k = k + 1 end
    end
    return k
  end

  describe("validation", function()
    it("rejects bad options, naming them", function()
      assert.has_error(function() dps.group{ max_connections = -1 } end,
        "dps.group: 'group.max_connections' must be an integer from 0 (no cap) to 65535")
      assert.has_error(function() dps.group{ bogus = 1 } end,
        "dps.group: unknown key 'group.bogus'")
      assert.has_error(function() dps.group(5) end,
        "dps.group: expects an options table or nothing, got number")
    end)

    it("rejects a group that is not one", function()
      local ok, err = pcall(dps.new, H.client_config(emu, { group = {} }))
      assert.is_false(ok)
      assert.matches("'group' must be a dps.group", err)
    end)

    it("rejects bad wait/run arguments", function()
      local g = dps.group()
      assert.has_error(function() g:wait(-1) end)
      assert.has_error(function() g:run("x") end)
      g:close()
    end)
  end)

  it("registers a fleet over shared connections with resumed TLS sessions",
    function()
      local g = dps.group{ max_connections = 2 }
      local clients, results = start_fleet(g, N)
      assert.is_true(g:is_busy())
      assert.is_true(g:run(30))
      assert.is_false(g:is_busy())
      assert.equal(N, count_assigned(results, N))
      for i = 1, N do
        assert.equal("fleet-dev-" .. i, results[i].device_id)
        assert.matches("SharedAccessKey=", results[i].connection_string)
      end
      local s = stats()
      -- 2 PUTs + 1 GET per device would be 3N connections without reuse.
      assert.is_true(s.tcp_connections <= 2 * 2,
                     "connections: " .. s.tcp_connections)
      assert.is_true(s.peak_open_connections <= 2 + 1)
      -- One full handshake; the group's later connections resume.
      assert.equal(1, s.tls_handshakes_full)
      assert.equal(s.tcp_connections - 1, s.tls_handshakes_resumed)
      assert.is_true(s.tls_handshakes_resumed >= 1)
      local reqs = emu:requests()
      assert.equal(2 * N, #reqs)
      for _, c in ipairs(clients) do c:close() end
      g:close()
    end)

  it("keeps descriptors bounded by max_connections, not by the fleet",
    function()
      local g = dps.group{ max_connections = 3 }
      local before = open_fds()
      local clients, results = start_fleet(g, 30)
      local most_fds, most_polled = 0, 0
      for _ = 1, 3000 do -- bounded
        g:step()
        most_polled = math.max(most_polled, #g:pollfds())
        most_fds = math.max(most_fds, open_fds() - before)
        if not g:is_busy() then break end
        g:wait(0.5)
      end
      assert.equal(30, count_assigned(results, 30))
      assert.is_true(most_polled <= 3, "polled: " .. most_polled)
      -- The cap plus a small constant (curl's wake-up pipe, the ls).
      assert.is_true(most_fds <= 3 + 4, "descriptors: " .. most_fds)
      assert.is_true(stats().peak_open_connections <= 3 + 1)
      for _, c in ipairs(clients) do c:close() end
      g:close()
    end)

  it("max_connections = 0 lifts the cap; one client uses one connection",
    function()
      local g = dps.group{ max_connections = 0 }
      local clients, results = start_fleet(g, 1)
      assert.is_true(g:run(30))
      assert.equal(1, count_assigned(results, 1))
      local s = stats()
      assert.equal(1, s.tcp_connections)
      clients[1]:close()
      local more
      clients, more = start_fleet(g, 6)
      assert.is_true(g:run(30))
      assert.equal(6, count_assigned(more, 6))
      for _, c in ipairs(clients) do c:close() end
      g:close()
    end)

  it("gives each X.509 client its own connection in a mixed group", function()
    local g = dps.group{ max_connections = 8 }
    local clients, results = start_fleet(g, 4)
    local x509 = {
      { cert = pki("device-01.pem"), key = pki("device-01.key") },
      { cert = pki("group-device-01-chain.pem"), key = pki("group-device-01.key") },
      { cert = pki("group-device-02-chain.pem"), key = pki("group-device-02.key") },
    }
    for j, x in ipairs(x509) do
      local i = 4 + j
      clients[i] = assert(dps.new(H.client_config(emu, {
        symmetric_key = H.NONE, registration_id = H.NONE, x509 = x, group = g })))
      assert(clients[i]:start(function(res, err, code)
        results[i] = res or { status = "failed", err = err, code = code }
      end))
    end
    assert.is_true(g:run(30))
    assert.equal(7, count_assigned(results, 7))
    -- Which connections carried which identity: an X.509 connection
    -- carries one certificate only, and never a SAS-signed request.
    local by_conn = {}
    for _, r in ipairs(emu:requests()) do
      local who = r.client_cert_cn
      if who == nil or who == cjson.null then who = "sas" end
      local seen = by_conn[r.conn_id]
      if seen then
        assert.equal(seen, who, "connection " .. r.conn_id .. " mixed " ..
                     seen .. " and " .. who)
      end
      by_conn[r.conn_id] = who
    end
    local x509_conns = {}
    for _, who in pairs(by_conn) do
      if who ~= "sas" then x509_conns[who] = (x509_conns[who] or 0) + 1 end
    end
    local n = 0
    for _ in pairs(x509_conns) do n = n + 1 end
    assert.equal(3, n)
    for _, c in ipairs(clients) do c:close() end
    g:close()
  end)

  describe("from callbacks", function()
    it("closing a client, another client and collecting one is safe", function()
      local g = dps.group{ max_connections = 2 }
      local clients, results = {}, {}
      for i = 1, 6 do clients[i] = member(g, i) end
      -- 1 closes itself on its first status; 2 closes 3; 4 is dropped.
      assert(clients[1]:start(function() results[1] = "result" end,
        function(_) clients[1]:close() end))
      assert(clients[2]:start(function(res) results[2] = res
        clients[3]:close() end))
      assert(clients[3]:start(function(res) results[3] = res end))
      assert(clients[4]:start(function(res) results[4] = res end))
      clients[4] = nil
      for i = 5, 6 do
        assert(clients[i]:start(function(res) results[i] = res end))
      end
      collectgarbage()
      collectgarbage()
      assert.is_true(g:run(30))
      assert.is_nil(results[1])
      assert.equal("assigned", results[2].status)
      assert.equal("assigned", results[5].status)
      assert.equal("assigned", results[6].status)
      assert.has_error(function() clients[1]:step() end,
                       "attempt to use a closed dps client")
      g:close()
    end)

    it("dropped clients collected from a callback never stall the group",
      function()
        local g = dps.group{ max_connections = 2 }
        local kept, results = {}, {}
        for i = 1, 10 do
          local c = member(g, i)
          assert(c:start(function(res) results[i] = res end, function()
            collectgarbage()
          end))
          if i % 2 == 0 then kept[i] = c end
        end
        assert.is_true(g:run(30))
        for i = 2, 10, 2 do
          assert.equal("assigned", results[i].status)
          kept[i]:close()
        end
        g:close()
      end)

    it("closing the group aborts the others and makes clients raise", function()
      local g = dps.group{ max_connections = 2 }
      local clients, results = {}, {}
      for i = 1, 5 do
        clients[i] = member(g, i)
        assert(clients[i]:start(function(res)
          results[i] = res
          g:close()
        end))
      end
      assert.is_false(g:run(30))
      local delivered = 0
      for i = 1, 5 do if results[i] then delivered = delivered + 1 end end
      assert.equal(1, delivered)
      assert.has_error(function() g:step() end, "attempt to use a closed dps group")
      assert.has_error(function() clients[1]:start(function() end) end,
                       "attempt to use a client of a closed dps group")
      assert.has_error(function() dps.new(H.client_config(emu, { group = g })) end)
      for _, c in ipairs(clients) do c:close() end
    end)

    it("refuses step, wait and run of the group from a callback", function()
      local g = dps.group()
      local c = member(g, 1)
      local seen
      assert(c:start(function() end, function(status)
        if status == "registering" then
          seen = { pcall(g.step, g) }
          seen[3] = select(2, pcall(g.wait, g, 0))
          seen[4] = select(2, pcall(g.run, g, 0))
        end
      end))
      assert.is_true(g:run(30))
      assert.is_false(seen[1])
      assert.matches("step%(%) called from inside a dps callback", seen[2])
      assert.matches("wait%(%) called from inside", seen[3])
      assert.matches("run%(%) called from inside", seen[4])
      c:close()
      g:close()
    end)

    it("reports a callback error from step and run; the others go on", function()
      local g = dps.group()
      local clients, results = {}, {}
      for i = 1, 3 do
        clients[i] = member(g, i)
        assert(clients[i]:start(function(res)
          results[i] = res
          if i == 2 then error("boom in 2") end
        end))
      end
      local errs = {}
      for _ = 1, 100 do
        local ok, err, code = g:run(30)
        if ok then break end
        errs[#errs + 1] = { err, code }
      end
      assert.equal(1, #errs)
      assert.matches("boom in 2", errs[1][1])
      assert.equal("CALLBACK_ERROR", errs[1][2])
      assert.equal(3, count_assigned(results, 3))
      for _, c in ipairs(clients) do c:close() end
      g:close()
    end)
  end)

  it("register() on a grouped client drives the group until it is done",
    function()
      local g = dps.group()
      local others, results = start_fleet(g, 3)
      local c = member(g, 99)
      local res, err = c:register()
      assert.is_table(res, err)
      assert.equal("fleet-dev-99", res.device_id)
      assert.is_true(g:run(30))
      assert.equal(3, count_assigned(results, 3))
      for _, o in ipairs(others) do o:close() end
      c:close()
      g:close()
    end)

  it("register() returns CLOSED when a callback closes the group", function()
    local g = dps.group()
    local other = member(g, 1)
    assert(other:start(function() end, function(status)
      if status == "registering" then g:close() end
    end))
    local c = member(g, 2)
    local res, err, code = c:register()
    assert.is_nil(res)
    assert.equal("CLOSED", code)
    assert.matches("group closed", err)
  end)

  it("a host loop works from pollfds() and timeout()", function()
    local g = dps.group()
    local _, results = start_fleet(g, 3)
    local posix_ok = true
    for _ = 1, 2000 do
      g:step()
      if not g:is_busy() then break end
      local t = g:timeout()
      local fds = g:pollfds()
      assert.is_table(fds)
      for _, f in ipairs(fds) do
        assert.is_number(f.fd)
        posix_ok = posix_ok and (f.read or f.write)
      end
      -- No poll binding here: sleep what timeout() says, bounded.
      g:wait(t and math.min(t, 0.2) or 0.2)
    end
    assert.is_true(posix_ok)
    assert.equal(3, count_assigned(results, 3))
    assert.is_nil(g:timeout())
    g:close()
  end)

  -- The C program runs without the sanitizer runtime of the asan run;
  -- a Lua subprocess keeps it (it loads the same instrumented module).
  local function run_cmd(cmd, keep_env)
    local p = io.popen((keep_env and "" or "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS ") ..
                       "timeout 60 " .. cmd .. " 2>&1; echo rc=$?")
    local out = p:read("*a")
    p:close()
    return out
  end

  it("works from C: a fleet through Prov_Device_LL_Group_*", function()
    local out = run_cmd(("build/fleet_c %s %s %s %s 20 2 c-dev-"):format(
      emu.endpoint, H.scope, H.group_key, H.ca))
    assert.matches("assigned=20 of 20", out)
    assert.matches("rc=0", out)
    local s = stats()
    assert.is_true(s.tcp_connections <= 4, "connections: " .. s.tcp_connections)
    assert.equal(1, s.tls_handshakes_full)
  end)

  it("examples/fleet.lua provisions a fleet", function()
    local out = run_cmd(("env DPS_ENDPOINT=%s DPS_ID_SCOPE=%s DPS_GROUP_KEY=%s " ..
      "DPS_TRUSTED_CERTS=%s DPS_FLEET_SIZE=5 DPS_MAX_CONNECTIONS=2 %s examples/fleet.lua")
      :format(emu.endpoint, H.scope, H.group_key, H.ca, H.lua), true)
    assert.matches("fleet: 5 assigned, 0 failed of 5", out)
    assert.matches("rc=0", out)
  end)

  it("a client that is not grouped behaves as before", function()
    local c = assert(dps.new(H.client_config(emu, {
      symmetric_key = H.NONE, group_key = H.group_key,
      registration_id = "alone" })))
    local res = assert(c:register())
    assert.equal("alone", res.device_id)
    c:close()
  end)
end)
