-- Payload numbers survive the round trip, end to end over HTTPS, on the
-- Lua this runs on (make test runs it on 5.4 and 5.1): integers go out
-- exactly (every integer up to 2^53 on 5.1, all 64-bit integers on
-- 5.3+); the service's integers come back as integers where they fit
-- and as the closest float where they do not, never clamped. Nesting is
-- limited to 64 levels, with a message saying so; sparse arrays and
-- mixed tables are refused naming the payload key.
local cjson = require "cjson"
local dps = require "dps"
local core = require "dps.core"
local H = require "helpers"

local HAS_INTEGERS = math.type ~= nil

-- n tables nested in each other, the innermost holding { leaf = 1 }.
local function nested(n)
  local root = { leaf = 1 }
  for _ = 2, n do root = { inner = root } end
  return root
end

local function nested_json(n)
  return string.rep('{"inner":', n - 1) .. '{"leaf":1}' .. string.rep("}", n - 1)
end

describe("payload numbers", function()
  local emu

  setup(function()
    emu = H.start_emulator(H.config{ enrollments = { H.sym_enrollment("dev-1") } })
  end)

  teardown(function()
    emu:stop()
  end)

  -- An enrollment echoing the device's payload, assigned at once.
  local function echo()
    emu:configure(H.config{ polls = 0,
      enrollments = { H.sym_enrollment("dev-1", { payload = "echo" }) } })
  end

  -- An enrollment returning payload_json (JSON text, sent verbatim).
  local function serve_raw(payload_json)
    local text = cjson.encode(H.config{ polls = 0,
      enrollments = { H.sym_enrollment("dev-1", { payload = "@PAYLOAD@" }) } })
    text = text:gsub('"@PAYLOAD@"', function() return payload_json end)
    emu:control("PUT", "/_emulator/config", text)
    emu:control("DELETE", "/_emulator/log")
  end

  local function register(payload, fields)
    fields = fields or {}
    fields.payload = payload
    local client = assert(dps.new(H.client_config(emu, fields)))
    local res, err, code = client:register()
    client:close()
    return res, err, code
  end

  -- The register request's body as the service received it.
  local function sent_body()
    for _, r in ipairs(emu:requests()) do
      if r.method == "PUT" then return r.body end
    end
  end

  it("sends integers up to 2^53 exactly, never in exponent form", function()
    echo()
    local res, err = register{ n = 356938035643809, max = 2^53, min = -2^53,
                               zero = 0, neg = -7, list = { 1, 2, 356938035643809 },
                               half = 1.5, tenth = 0.1, huge = 1e300 }
    assert(res, err)
    local body = sent_body()
    assert.matches('"n":356938035643809', body, 1, true)
    assert.matches('"max":9007199254740992', body, 1, true)
    assert.matches('"min":-9007199254740992', body, 1, true)
    assert.matches('"list":[1,2,356938035643809]', body, 1, true)
    assert.matches('"half":1.5', body, 1, true)
    assert.matches('"tenth":0.1', body, 1, true)
    assert.matches('"huge":1e+300', body, 1, true)
    assert.is_nil(body:find("e+14", 1, true))
    -- And back, through the service's echo.
    assert.are.equal(356938035643809, res.payload.n)
    assert.are.equal(2^53, res.payload.max)
    assert.are.equal(-2^53, res.payload.min)
    assert.are.equal(356938035643809, res.payload.list[3])
    assert.are.equal(0.1, res.payload.tenth)
    if HAS_INTEGERS then
      assert.are.equal("integer", math.type(res.payload.n))
      assert.are.equal("float", math.type(res.payload.half))
    end
  end)

  it("sends and receives every 64-bit integer exactly on Lua 5.3+", function()
    if not HAS_INTEGERS then return end
    echo()
    local odd = math.tointeger("9007199254740993") or tonumber("9007199254740993")
    local res, err = register{ max = math.maxinteger, min = math.mininteger, odd = odd }
    assert(res, err)
    local body = sent_body()
    assert.matches('"max":9223372036854775807', body, 1, true)
    assert.matches('"min":-9223372036854775808', body, 1, true)
    assert.matches('"odd":9007199254740993', body, 1, true)
    assert.are.equal(math.maxinteger, res.payload.max)
    assert.are.equal(math.mininteger, res.payload.min)
    assert.are.equal(odd, res.payload.odd)
    assert.are.equal("integer", math.type(res.payload.odd))
  end)

  it("returns service integers that do not fit as the closest float, never clamped", function()
    serve_raw('{"huge":123456789012345678901234567890,"neg":-99999999999999999999,'
              .. '"u64":18446744073709551615,"over":9223372036854775808,'
              .. '"i64":9223372036854775807,"small":42}')
    local res, err = register(nil)
    assert(res, err)
    local p = res.payload
    assert.are.equal(1.2345678901234568e+29, p.huge)
    assert.are.equal(-1e20, p.neg)
    assert.are.equal(2^64, p.u64)
    assert.are.equal(2^63, p.over)
    assert.are.equal(42, p.small)
    if HAS_INTEGERS then
      assert.are.equal("float", math.type(p.huge))
      assert.are.equal("float", math.type(p.u64))
      assert.are.equal("integer", math.type(p.small))
      assert.are.equal(math.maxinteger, p.i64)
      assert.are.equal("integer", math.type(p.i64))
    else
      assert.are.equal(2^63, p.i64) -- the closest double
    end
  end)

  it("sends and receives a payload nested 64 levels deep", function()
    echo()
    local res, err = register(nested(64))
    assert(res, err)
    local depth, v = 1, res.payload
    while v.inner do depth, v = depth + 1, v.inner end
    assert.are.equal(64, depth)
    assert.are.equal(1, v.leaf)
  end)

  it("refuses a payload nested deeper than 64 levels, saying so", function()
    local ok, err = pcall(dps.new, H.client_config(emu, { payload = nested(65) }))
    assert.is_false(ok)
    assert.matches("payload nested deeper than 64 levels", err, 1, true)
    assert.is_nil(err:find("not valid JSON", 1, true))
    -- A table that contains itself is the same error, not a hang.
    local loop = {}
    loop.again = loop
    ok, err = pcall(dps.new, H.client_config(emu, { payload = loop }))
    assert.is_false(ok)
    assert.matches("payload nested deeper than 64 levels", err, 1, true)
    -- The C API says the same about JSON text.
    local c = assert(core.create(emu.endpoint, H.scope, "http"))
    local set, msg, code = c:set_payload(nested_json(65))
    assert.is_nil(set)
    assert.are.equal("INVALID_ARG", code)
    assert.are.equal("payload nested deeper than 64 levels", msg)
    assert.is_true(c:set_payload(nested_json(64)))
    c:destroy()
  end)

  it("fails at once on a service payload nested deeper than 64 levels", function()
    serve_raw(nested_json(65))
    local res, err, code = register(nil)
    assert.is_nil(res)
    assert.are.equal("PARSING", code)
    assert.matches("payload is nested deeper than 64 levels", err, 1, true)
    assert.are.equal(1, #emu:requests()) -- not retried
  end)

  local REFUSED = {
    { "a sparse array", { tags = { [1] = "a", [3] = "c" } }, "'payload.tags' is a sparse array" },
    { "a sparse nested array", { a = { { x = { [2] = 1 } } } }, "'payload.a[1].x' is a sparse array" },
    { "a mixed table", { meta = { 1, 2, name = "x" } }, "'payload.meta' mixes array indexes and string keys" },
    { "a boolean key", { k = { [true] = 1 } }, "'payload.k' has a boolean key" },
    { "a fractional key", { k = { [1.5] = 1 } }, "'payload.k' has a number key" },
    { "NaN", { x = 0 / 0 }, "'payload.x' is NaN or infinite" },
    { "infinity", { x = math.huge }, "'payload.x' is NaN or infinite" },
    { "a function", { cb = print }, "'payload.cb' is a function" },
    { "a string that is not UTF-8", { s = "\255\254" }, "'payload.s' is a string that is not UTF-8" },
  }
  for _, case in ipairs(REFUSED) do
    it("refuses " .. case[1] .. ", naming the payload key", function()
      local ok, err = pcall(dps.new, H.client_config(emu, { payload = case[2] }))
      assert.is_false(ok)
      assert.matches("dps.new: " .. case[3], err, 1, true)
    end)
  end

  it("encodes dps.null as JSON null, keeping array positions", function()
    echo()
    assert.are.equal(cjson.null, dps.null)
    local res, err = register{ list = { 1, dps.null, 3 }, empty = {} }
    assert(res, err)
    assert.matches('"list":[1,null,3]', sent_body(), 1, true)
    assert.matches('"empty":{}', sent_body(), 1, true)
    assert.are.equal(dps.null, res.payload.list[2])
    assert.are.equal(3, res.payload.list[3])
  end)
end)
