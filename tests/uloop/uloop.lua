-- A stand-in for OpenWrt's `uloop` Lua module (libubox-lua) built on
-- cqueues, so that examples/provision_uloop.lua runs unchanged on a
-- Debian host. It keeps the semantics that matter to a client of uloop:
--   uloop.init(), uloop.run(), uloop.cancel()
--   uloop.fd_add(fd, cb(handle, events), flags) -> handle:delete()
--   uloop.timer(cb [, ms]) -> timer:set(ms), timer:cancel()
-- timer:cancel(), like libubox's, releases the timer for good; set()
-- takes whole milliseconds. uloop.run() gives up (with an error) after
-- uloop.max_run_s seconds, so a test never hangs.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local socket = require "cqueues.socket"

local M = { ULOOP_READ = 1, ULOOP_WRITE = 2, max_run_s = 60 }
local cq
local running = false
local live_fds = {}  -- fd -> number of live handles, to check for leaks

local function check_init()
  assert(cq, "uloop.init() not called")
end

function M.init()
  cq = cq or cqueues.new()
  return true
end

function M.fd_add(fd, cb, flags)
  check_init()
  assert(type(fd) == "number" and fd % 1 == 0, "fd must be an integer")
  assert(type(cb) == "function", "invalid arg list")
  assert(type(flags) == "number" and flags > 0 and flags <= 3, "flags cannot be zero")
  local events = (flags % 2 == 1 and "r" or "") .. (flags >= 2 and "w" or "")
  local handle = { fd = fd, deleted = false, wake = condition.new() }
  -- cqueues keeps descriptors registered with the kernel and fails on
  -- one closed under it, which the client does (libcurl closes sockets
  -- inside step()); epoll under uloop just forgets it. Watching a
  -- duplicate, owned here, keeps uloop's behaviour.
  local dup = assert(socket.dup(fd))
  local pollable = { pollfd = dup:pollfd(), events = events }
  live_fds[fd] = (live_fds[fd] or 0) + 1

  function handle.delete()
    if handle.deleted then return end
    handle.deleted = true
    live_fds[fd] = live_fds[fd] - 1
    if live_fds[fd] == 0 then live_fds[fd] = nil end
    cq:cancel(pollable.pollfd)
    dup:close()
    handle.wake:signal()
  end

  cq:wrap(function()
    while not handle.deleted do
      local ready = cqueues.poll(pollable, handle.wake)
      if handle.deleted then break end
      if ready == pollable then cb(handle, flags) end
    end
  end)
  return handle
end

function M.timer(cb, ms)
  check_init()
  assert(type(cb) == "function", "invalid arg list")
  local t = { deadline = nil, dead = false, wake = condition.new() }

  function t.set(_, set_ms)
    assert(not t.dead, "timer used after cancel()")
    assert(type(set_ms) == "number" and set_ms % 1 == 0,
           "timer:set takes whole milliseconds")
    t.deadline = cqueues.monotime() + set_ms / 1000
    t.wake:signal()
    return t
  end

  function t.cancel()
    t.dead, t.deadline = true, nil
    t.wake:signal()
  end

  cq:wrap(function()
    while not t.dead do
      local wait = t.deadline and t.deadline - cqueues.monotime()
      if wait and wait <= 0 then
        t.deadline = nil
        cb()
      elseif wait then
        cqueues.poll(t.wake, wait)
      else
        cqueues.poll(t.wake)
      end
    end
  end)
  if ms and ms ~= 0 then t:set(ms) end
  return t
end

function M.run()
  check_init()
  running = true
  local give_up = cqueues.monotime() + M.max_run_s
  while running do
    if cqueues.monotime() > give_up then
      running = false
      error("uloop.run: still running after " .. M.max_run_s .. " s")
    end
    local ok, err = cq:step(1)
    if not ok then
      running = false
      error(err, 0)
    end
  end
  return true
end

function M.cancel()
  running = false
end

-- For tests: how many fd handles are alive.
function M.live_fd_count()
  local n = 0
  for _, c in pairs(live_fds) do n = n + c end
  return n
end

return M
