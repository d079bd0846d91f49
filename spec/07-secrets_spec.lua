-- No secret in any message: every secret-bearing option is fed garbage
-- (Base64 with and without line breaks, DER bytes, short text, wrong
-- passwords) and everything the client says is searched for it: the
-- dps.new error, register()'s message and details, last_error(), and the
-- logtrace output on stderr. Each case runs in its own process so its
-- whole output can be captured.
local H = require "helpers"

local function lua_literal(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      parts[#parts + 1] = ("[%s] = %s"):format(lua_literal(k), lua_literal(x))
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

local RUNNER = [[
local dps = require "dps"
local cfg = dofile(arg[1])
local ok, c, err, code = pcall(dps.new, cfg)
print("new", ok, tostring(c), tostring(err), tostring(code))
if ok and c then
  local res, rerr, rcode, details = c:register()
  print("register", tostring(res), tostring(rerr), tostring(rcode))
  for k, v in pairs(details or {}) do print("details", k, tostring(v)) end
  for k, v in pairs(c:last_error()) do print("last_error", k, tostring(v)) end
  print("token", c:hub_sas_token(60))
  c:close()
end
]]

-- Runs one config in a fresh interpreter; returns all it printed.
local function run(cfg)
  local dir = H.tmpname()
  os.execute("mkdir -p " .. dir)
  H.write_file(dir .. "/runner.lua", RUNNER)
  H.write_file(dir .. "/cfg.lua", "return " .. lua_literal(cfg))
  os.execute(("%s %s/runner.lua %s/cfg.lua >%s/out 2>&1"):format(
    H.lua, dir, dir, dir))
  local out = H.read_file(dir .. "/out") or ""
  os.execute("rm -rf " .. dir)
  return out
end

-- Whether out holds the secret, or any 10-byte piece of it.
local function leaks(out, secret)
  if out:find(secret, 1, true) then return true end
  for i = 1, #secret - 9, 3 do
    if out:find(secret:sub(i, i + 9), 1, true) then return true end
  end
  return false
end

local function b64_lines(s, width)
  local out = {}
  for i = 1, #s, width do out[#out + 1] = s:sub(i, i + width - 1) end
  return table.concat(out, "\n") .. "\n"
end

local DER_B64 = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCq7ZtVyXm3s9f2"
  .. "Qx8LkRj0tGVyYmFnZVByaXZhdGVLZXlNYXRlcmlhbEZvclRlc3RpbmdPbmx5AAAA"
local DER_BYTES = "\48\130\4\189\2\1\0\48\13\6\9\42\134\72\134\247\13\1\1\1\5\0"
  .. "\4\130\4\167\48\130\4\163\2\1\0\2\130\1\1\0\170\237\155\85\201"

describe("no secret in any message", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  teardown(function()
    emu:stop()
  end)

  local function base(fields)
    local c = H.client_config(emu, { logtrace = true, max_retries = 0, timeout = 15 })
    for k, v in pairs(fields) do
      if v == H.NONE then c[k] = nil else c[k] = v end
    end
    return c
  end

  local function x509(key, cert, password)
    return base{ symmetric_key = H.NONE, registration_id = H.NONE,
                 x509 = { cert = cert or H.pki .. "/device-01.pem", key = key,
                          key_password = password } }
  end

  local CASES = {
    { "a symmetric_key that is not Base64", "SymKeyGarbage!!Secret#Value%%",
      function(s) return base{ symmetric_key = s } end },
    { "a wrong symmetric_key", "d3JvbmctYnV0LXZhbGlkLWJhc2U2NC1rZXktdGV4dA==",
      function(s) return base{ symmetric_key = s } end },
    { "a group_key that is not Base64", "GroupKeyGarbage$$Secret^^Value",
      function(s) return base{ symmetric_key = H.NONE, group_key = s } end },
    { "x509.key as Base64 DER without line breaks", DER_B64,
      function(s) return x509(s) end, "x509.key: not a readable file and not PEM text" },
    { "x509.key as Base64 DER with line breaks", b64_lines(DER_B64, 64),
      function(s) return x509(s) end, "x509.key: not a readable file and not PEM text" },
    { "x509.key as DER bytes", DER_BYTES:gsub("%z", "\1"),
      function(s) return x509(s) end, "x509.key: not a readable file and not PEM text" },
    { "x509.key as DER bytes with NULs", DER_BYTES,
      function(s) return x509(s) end, "dps.new: 'x509.key' must not contain a NUL byte" },
    { "x509.key as short Base64", "c2hvcnQta2V5LXRleHQ=",
      function(s) return x509(s) end, "x509.key: not a readable file and not PEM text" },
    { "x509.key as Base64 starting with '/'", "/9j/4AAQSkZJRgABAQsecret+key==",
      function(s) return x509(s) end, "x509.key: not a readable file and not PEM text" },
    { "x509.cert as Base64 text", DER_B64:sub(1, 60) .. "\n" .. DER_B64:sub(61),
      function(s) return x509(H.pki .. "/device-01.key", s) end,
      "x509.cert: not a readable file and not PEM text" },
    { "a wrong x509.key_password", "Wrong-Key-Passw0rd-Garbage",
      function(s) return x509(H.pki .. "/device-01-encrypted.key", nil, s) end },
    { "trusted_certs as Base64 text", b64_lines(DER_B64, 76),
      function(s) return base{ trusted_certs = s } end,
      "trusted_certs: not a readable file and not PEM text" },
  }

  for _, case in ipairs(CASES) do
    it(case[1], function()
      local out = run(case[3](case[2]))
      assert.is_false(leaks(out, case[2]), out)
      -- The run did fail, and said something.
      assert.is_truthy(("\n" .. out):find("\nregister\tnil\t")
                       or ("\n" .. out):find("\nnew\tfalse\t"), out)
      if case[4] then assert.matches(case[4], out, 1, true) end
    end)
  end

  it("a wrong proxy password, as a URL and as a table", function()
    local proxy = H.start_proxy("alice", "s3cret")
    local secret = "Wrong-Proxy-Passw0rd-Garbage"
    local ok, err = pcall(function()
      for _, p in ipairs{
        "http://alice:" .. secret .. "@127.0.0.1:" .. proxy.port,
        { host = "127.0.0.1", port = proxy.port, username = "alice", password = secret },
      } do
        local out = run(base{ proxy = p })
        assert.is_false(leaks(out, secret), out)
        assert.matches("\nregister\tnil\t", "\n" .. out)
      end
    end)
    proxy.stop()
    assert(ok, err)
  end)

  it("NUL bytes in secrets: the dps.new error names the key only", function()
    for _, fields in ipairs{
      { symmetric_key = "Secret\0KeyMaterial-ABCDEFGH" },
      { symmetric_key = H.NONE, registration_id = H.NONE,
        x509 = { cert = H.pki .. "/device-01.pem", key = "Secret\0KeyMaterial-ABCDEFGH" } },
    } do
      local out = run(base(fields))
      assert.is_false(leaks(out, "KeyMaterial-ABCDEFGH"), out)
      assert.matches("must not contain a NUL byte", out, 1, true)
    end
  end)
end)
