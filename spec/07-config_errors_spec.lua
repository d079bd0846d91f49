-- Config errors name the key: a NUL byte, or any value the C layer would
-- refuse, is a `dps.new: '<key>' ...` error raised at the caller, never
-- an error from inside lua/dps.lua. No service is needed.
local dps = require "dps"
local H = require "helpers"

local BASE = {
  id_scope = H.scope,
  registration_id = "dev-1",
  symmetric_key = H.key,
  global_endpoint = "127.0.0.1:9",
}

local function config(fields)
  local c = {}
  for k, v in pairs(BASE) do c[k] = v end
  for k, v in pairs(fields) do
    if v == H.NONE then c[k] = nil else c[k] = v end
  end
  return c
end

-- The error dps.new raises for fields; fails the test if it returns.
local function new_error(fields)
  local ok, err = pcall(dps.new, config(fields))
  if ok and err then err:close() end
  assert.is_false(ok, "dps.new accepted the config")
  return tostring(err)
end

local function from_caller(err)
  assert.is_nil(err:find("dps.lua", 1, true), err)
  assert.is_nil(err:find("set_option", 1, true), err)
  assert.is_nil(err:find("bad argument", 1, true), err)
end

describe("dps.new names the key of a refused value", function()
  local NUL_CASES = {
    { "registration_id", { registration_id = "dev\0-1" } },
    { "id_scope", { id_scope = "0ne\0" } },
    { "global_endpoint", { global_endpoint = "127.0.0.1\0:9" } },
    { "symmetric_key", { symmetric_key = H.key .. "\0" } },
    { "group_key", { symmetric_key = H.NONE, group_key = "\0" .. H.group_key } },
    { "trusted_certs", { trusted_certs = "/etc/ssl\0/x.pem" } },
    { "api_version", { api_version = "2021-06-01\0" } },
    { "x509.cert", { symmetric_key = H.NONE, x509 = { cert = "a\0b", key = "k" } } },
    { "x509.key", { symmetric_key = H.NONE, x509 = { cert = "c", key = "k\0y" } } },
    { "x509.key_password", { symmetric_key = H.NONE,
                             x509 = { cert = "c", key = "k", key_password = "p\0w" } } },
    { "tpm.tcti", { symmetric_key = H.NONE, tpm = { tcti = "device:\0/dev/tpm0" } } },
    { "proxy.host", { proxy = { host = "pr\0xy", port = 3128 } } },
    { "proxy.password", { proxy = { host = "proxy", port = 3128,
                                    username = "u", password = "pa\0ss" } } },
    { "proxy", { proxy = "http://user:pa%00ss@proxy:3128" } },
  }
  for _, case in ipairs(NUL_CASES) do
    it("a NUL byte in '" .. case[1] .. "'", function()
      local err = new_error(case[2])
      assert.matches("dps.new: '" .. case[1] .. "'", err, 1, true)
      assert.matches("NUL", err, 1, true)
      from_caller(err)
    end)
  end

  -- Values of the right type that the C layer refuses.
  local C_CASES = {
    { "registration_id", { registration_id = "dev 1" } },
    { "registration_id", { registration_id = "dev/../1" } },
    { "registration_id", { registration_id = "dev-1." } },
    { "registration_id", { registration_id = string.rep("a", 129) } },
    { "registration_id", { registration_id = "d\195\169v" } },
    { "sas_ttl", { sas_ttl = 30 } },
    { "sas_ttl", { sas_ttl = 31536001 } },
    { "max_retries", { max_retries = 1001 } },
  }
  for _, case in ipairs(C_CASES) do
    it("a value of '" .. case[1] .. "' the C layer refuses", function()
      local err = new_error(case[2])
      assert.matches("dps.new: '" .. case[1] .. "'", err, 1, true)
      from_caller(err)
    end)
  end

  it("raises at the line of the dps.new call", function()
    local ok, err = pcall(function()
      local c = dps.new(config{ registration_id = "a\0b" }) -- not a tail call
      return c
    end)
    assert.is_false(ok)
    assert.matches("07%-config_errors_spec%.lua:%d+: dps%.new: 'registration_id'", err)
  end)

  it("still accepts the limits themselves", function()
    for _, fields in ipairs{
      { registration_id = string.rep("a", 128) },
      { registration_id = "a.b_c:d-" },
      { sas_ttl = 60 }, { sas_ttl = 31536000 },
      { max_retries = 0 }, { max_retries = 1000 },
    } do
      local c = assert(dps.new(config(fields)))
      c:close()
    end
  end)
end)
