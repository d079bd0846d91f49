-- A build without TPM support (make TPM=0) says so at run time, clearly,
-- and everything else still works.
local dps = require "dps"
local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else
    failed = failed + 1
    io.stderr:write("FAIL: " .. what .. "\n")
  end
end

check(dps.tpm_available() == false, "tpm_available() is false")
local client = assert(dps.new{ id_scope = "0ne00000A0A", tpm = {},
                               global_endpoint = "127.0.0.1:1" })
local res, err, code = client:register()
client:close()
check(res == nil, "register fails")
check(code == "KEY_ERROR", "code is KEY_ERROR, got " .. tostring(code))
check(tostring(err):find("no TPM support", 1, true) ~= nil,
      "message says the build has no TPM support: " .. tostring(err))
check(type(dps.new{ id_scope = "0ne00000A0A", registration_id = "d",
                    symmetric_key = "MTIz" }) == "table",
      "symmetric keys still work")
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
