-- The README's option tables agree with the one list of options of the C
-- core (csrc/prov_option_list.h, seen through core.options()): every
-- option is documented once, with the C type SetOption takes, and every
-- dps.new key that maps to one is in the dps.new table with its type.
local core = require "dps.core"
local dps = require "dps"

local function read_readme()
  local f = assert(io.open("README.md", "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- The cells of each body row of the first table after `heading`.
local function table_after(text, heading)
  local at = assert(text:find(heading, 1, true), "README has " .. heading)
  local rows, seen = {}, false
  for line in (text:sub(at) .. "\n"):gmatch("(.-)\n") do
    if line:match("^|") then
      seen = true
      if not line:match("^|%-") then
        local cells = {}
        for cell in line:gmatch("|([^|]*)") do
          cells[#cells + 1] = cell:match("^%s*(.-)%s*$")
        end
        rows[#rows + 1] = cells
      end
    elseif seen then
      break
    end
  end
  table.remove(rows, 1) -- the header
  return rows
end

local function ticked(cell)
  local names = {}
  for name in cell:gsub("%b()", ""):gmatch("`([^`]+)`") do
    names[#names + 1] = name
  end
  return names
end

describe("the README's options tables", function()
  local readme = read_readme()
  local options = core.options()

  it("lists every C option once, with its value type, and no other", function()
    local documented = {}
    for _, row in ipairs(table_after(readme, "### Options")) do
      local c_type = row[2]:match("`([^`]+)`")
      for _, name in ipairs(ticked(row[1])) do
        assert.is_nil(documented[name], name .. " is documented twice")
        documented[name] = c_type
      end
    end
    for _, o in ipairs(options) do
      assert.are.equal(o.c_type, documented[o.name],
                       "README's C type of option '" .. o.name .. "'")
      documented[o.name] = nil
    end
    assert.are.same({}, documented, "README documents unknown options")
  end)

  it("lists every dps.new key that maps to an option, with its type", function()
    local documented = {}
    for _, row in ipairs(table_after(readme, "### `dps.new(config)`")) do
      local key = row[1]:match("^`([^`]+)`$")
      if key then documented[key] = row[2] end
    end
    for _, o in ipairs(options) do
      if o.key then
        local kind = documented[o.key]
        assert.is_not_nil(kind, "README's dps.new table lacks '" .. o.key .. "'")
        assert.truthy(kind:find(o.type, 1, true),
                      ("'%s' is documented as %s, the option is %s"):format(
                        o.key, kind, o.type))
        if o.type == "integer" then
          assert.truthy(kind:find(("%.0f..%.0f"):format(o.min, o.max), 1, true),
                        ("'%s': README's range %s, the option's %.0f..%.0f")
                          :format(o.key, kind, o.min, o.max))
        end
      end
    end
    -- And every documented key is one dps.new knows (a wrong value is an
    -- error about that key, never "unknown key").
    for key in pairs(documented) do
      local ok, err = pcall(dps.new, { [key] = function() end })
      assert.is_false(ok)
      assert.is_nil(err:find("unknown key", 1, true), key .. ": " .. err)
    end
  end)

  it("gives each option of the list a known type", function()
    local types = { string = true, boolean = true, integer = true, proxy = true }
    for _, o in ipairs(options) do
      assert.truthy(types[o.type], o.name)
      if o.type == "integer" then
        assert.truthy(o.min <= o.max, o.name)
      end
    end
  end)
end)
