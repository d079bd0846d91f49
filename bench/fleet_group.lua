-- N group-key registrations in one Lua process, started at once, driven
-- either through one dps.group (MODE=group) or as separate clients the
-- way it was done before groups (MODE=separate: step every client, then
-- wait on one of them). Prints one line of figures; the caller adds CPU,
-- RSS and descriptors from outside.
--   lua5.4 bench/fleet_group.lua ENDPOINT CA N MODE MAX_CONNECTIONS GROUP_KEY PREFIX
local dps = require "dps"

local endpoint, ca, n, mode, cap, key, prefix =
  arg[1], arg[2], tonumber(arg[3]), arg[4], tonumber(arg[5]), arg[6], arg[7]
assert(endpoint and ca and n and (mode == "group" or mode == "separate")
       and cap and key and prefix,
       "usage: fleet_group.lua ENDPOINT CA N group|separate MAX_CONNECTIONS KEY PREFIX")

local group = mode == "group" and dps.group{ max_connections = cap } or nil
local clients, assigned, failed, first_err = {}, 0, 0, nil
for i = 1, n do
  clients[i] = assert(dps.new{
    id_scope = "0ne00000A0A", registration_id = prefix .. i, group_key = key,
    global_endpoint = endpoint, trusted_certs = ca, timeout = 280,
    group = group,
  })
  assert(clients[i]:start(function(res, err, code)
    if res then assigned = assigned + 1 else
      failed = failed + 1
      first_err = first_err or (tostring(err) .. " (" .. tostring(code) .. ")")
    end
  end))
end

local deadline = os.time() + 290
if group then
  assert(group:run(290))
else
  while assigned + failed < n and os.time() < deadline do
    local waiter
    for i = 1, n do
      local c = clients[i]
      if c:is_busy() then
        c:step()
        if not waiter and c:is_busy() then waiter = c end
      end
    end
    if waiter then waiter:wait(0.01) end
  end
end
for i = 1, n do clients[i]:close() end
if group then group:close() end
print(("assigned=%d of %d%s"):format(assigned, n,
      first_err and (", first failure: " .. first_err) or ""))
os.exit(assigned == n and 0 or 1)
