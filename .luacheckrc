-- luacheck settings for `make lint` (lua/ spec/ examples/ bench/
-- packaging/ tests/). Every exception names its reason.

-- One source runs on Lua 5.1 to 5.4 (and LuaJIT): accept the globals of
-- any of them; code picks the one it has (`table.unpack or unpack`).
std = "max"

-- Negated comparisons such as `not (v > 0)` are how the option checks
-- reject NaN; the rewrite luacheck proposes (`v <= 0`) would let NaN in.
files["lua/dps.lua"].ignore = { "581" }

files["spec/"].std = "+busted"
files["tests/"].std = "+busted"
