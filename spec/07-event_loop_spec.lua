-- The client inside a host event loop: the pattern of
-- examples/provision_uloop.lua (a watcher per pollfds() entry, a timer
-- from timeout(), step() from both) on a real event loop, cqueues, behind
-- a uloop-compatible module (tests/uloop/uloop.lua).
local dps = require "dps"
local H = require "helpers"

package.path = "tests/uloop/?.lua;" .. package.path
local uloop = require "uloop"

local function with_faults(faults)
  local c = H.config{ retry_after = 1 }
  c.enrollments = { H.sym_enrollment("dev-1", { faults = faults }) }
  return c
end

-- Drives client in uloop as the example does. hooks.on_step(fds) sees the
-- descriptors after each step. Returns what on_result got and the steps.
local function run_in_uloop(client, hooks)
  hooks = hooks or {}
  local loop = { steps = 0, fd_sets = {} }
  local watchers, timer, step = {}, nil, nil

  local function unwatch_all()
    for i = #watchers, 1, -1 do
      watchers[i]:delete()
      watchers[i] = nil
    end
  end

  local function arm_timer(seconds)
    if timer then timer:cancel(); timer = nil end
    if seconds then
      timer = uloop.timer(function() step("timer") end)
      timer:set(math.ceil(seconds * 1000))
    end
  end

  local function rearm()
    unwatch_all()
    if loop.finished or client:is_closed() then
      arm_timer(nil)
      return
    end
    local fds = client:pollfds()
    local seen = {}
    for _, p in ipairs(fds) do
      local flags = (p.read and uloop.ULOOP_READ or 0) +
                    (p.write and uloop.ULOOP_WRITE or 0)
      seen[#seen + 1] = p.fd
      if flags ~= 0 then
        watchers[#watchers + 1] = uloop.fd_add(p.fd, function() step("fd") end, flags)
      end
    end
    loop.fd_sets[#loop.fd_sets + 1] = table.concat(seen, ",")
    arm_timer(client:timeout())
  end

  function step(source)
    if loop.finished or client:is_closed() then return end
    loop.steps = loop.steps + 1
    if hooks.before_step then hooks.before_step(source) end
    if client:is_closed() then
      rearm()
      return
    end
    local ok, err = client:step()
    if not ok then loop.step_error = err end
    rearm()
  end

  assert(client:start(function(res, err, code)
    loop.finished = true
    loop.res, loop.err, loop.code = res, err, code
    if hooks.close_in_result ~= false then client:close() end
    uloop.cancel()
  end, function(status)
    if hooks.on_status then hooks.on_status(status, loop) end
  end))
  rearm()
  uloop.run()
  unwatch_all()
  arm_timer(nil)
  return loop
end

-- is_closed(): the Lua layer has no such method; a closed client raises.
local function add_is_closed(client)
  function client.is_closed(self)
    return not pcall(self.is_busy, self)
  end
  return client
end

describe("a host event loop (uloop on cqueues)", function()
  local emu

  setup(function()
    uloop.init()
    emu = H.start_emulator(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  teardown(function()
    emu:stop()
  end)

  it("registers with step() driven by fd watchers and a timer", function()
    local client = add_is_closed(assert(dps.new(H.client_config(emu))))
    local loop = run_in_uloop(client)
    assert.is_nil(loop.err)
    assert.are.equal("assigned", loop.res.status)
    assert.are.equal("dev-1", loop.res.device_id)
    assert.is_true(client:is_closed())   -- closed inside its own callback
    assert.are.equal(0, uloop.live_fd_count())
    assert.has_error(function() client:pollfds() end,
                     "attempt to use a closed dps client")
  end)

  it("follows descriptors that change between steps", function()
    -- A dropped connection, then a Retry-After with no socket at all,
    -- then a fresh connection: the watched set must follow each change.
    emu:configure(with_faults{
      { kind = "close_mid_response", times = 1 },
      { kind = "status", status = 503, times = 1, retry_after = 1 },
    })
    local client = add_is_closed(assert(dps.new(H.client_config(emu))))
    local loop = run_in_uloop(client)
    assert.is_nil(loop.err)
    assert.are.equal("assigned", loop.res.status)
    local distinct, saw_empty, saw_socket = {}, false, false
    for _, set in ipairs(loop.fd_sets) do
      distinct[set] = true
      if set == "" then saw_empty = true else saw_socket = true end
    end
    local n = 0
    for _ in pairs(distinct) do n = n + 1 end
    assert.is_true(saw_empty, "never a step without sockets (Retry-After)")
    assert.is_true(saw_socket, "never a socket to watch")
    assert.is_true(n >= 2, "the watched set never changed")
    -- The waits were spent asleep in the loop, not spinning: a couple
    -- of dozen steps at most for four requests and a one-second wait.
    assert.is_true(loop.steps < 200, "busy loop: " .. loop.steps .. " steps")
    assert.are.equal(0, uloop.live_fd_count())
  end)

  it("survives a client closed from its status callback mid-registration", function()
    emu:configure(H.config{ polls = 2, retry_after = 1,
                            enrollments = { H.sym_enrollment("dev-1") } })
    local client = add_is_closed(assert(dps.new(H.client_config(emu))))
    local loop = run_in_uloop(client, {
      on_status = function(status, l)
        if status == "assigning" then
          client:close()        -- inside step(), inside a loop callback
          l.closed_at = status
          uloop.cancel()
        end
      end,
    })
    assert.are.equal("assigning", loop.closed_at)
    assert.is_nil(loop.res)     -- a closed client reports nothing more
    assert.is_true(client:is_closed())
    assert.are.equal(0, uloop.live_fd_count())
  end)

  it("survives a client closed by another loop callback with a request in flight", function()
    -- The emulator answers slowly: the request is in flight, its socket
    -- watched, when an unrelated timer closes the client.
    emu:configure(with_faults{ { kind = "hang", seconds = 2, times = 1 } })
    local client = add_is_closed(assert(dps.new(H.client_config(emu))))
    local sockets_at_close
    local closer = uloop.timer(function()
      sockets_at_close = #client:pollfds()
      client:close()
      uloop.cancel()
    end, 300)
    local loop = run_in_uloop(client)
    closer:cancel()
    assert.is_true(sockets_at_close > 0, "no request in flight at close")
    assert.is_nil(loop.res)
    assert.is_true(client:is_closed())
    assert.is_true(loop.steps >= 1)
    assert.are.equal(0, uloop.live_fd_count())
  end)

  it("runs examples/provision_uloop.lua through a retry", function()
    emu:configure(with_faults{ { kind = "status", status = 503, times = 1, retry_after = 1 } })
    local out_file = H.tmpname()
    local cmd = string.format(
      "LUA_PATH='lua/?.lua;tests/uloop/?.lua;;' DPS_ENDPOINT=%s " ..
      "DPS_ID_SCOPE=%s DPS_REGISTRATION_ID=dev-1 DPS_SYMMETRIC_KEY=%s " ..
      "DPS_TRUSTED_CERTS=%s %s examples/provision_uloop.lua >%s 2>&1; " ..
      "echo \"exit=$?\" >>%s",
      emu.endpoint, H.scope, H.key, H.ca, H.lua, out_file, out_file)
    os.execute(cmd)
    local out = H.read_file(out_file) or ""
    os.remove(out_file)
    assert.matches("status: assigning", out, 1, true)
    assert.matches("assigned to test-hub.azure-devices.net as dev-1", out, 1, true)
    assert.matches("exit=0", out, 1, true)
    assert.is_nil(out:find(H.key, 1, true))
  end)
end)
