-- Builds and installs dps with `luarocks make` from a checkout. The C
-- module needs libcurl, json-c and libcrypto (and tpm2-tss for TPM
-- support, used when pkg-config finds it; TPM=0 leaves it out).
package = "dps"
version = "0.1.0-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Azure IoT Hub Device Provisioning Service client (C core, Lua API)",
  detailed = [[
    Provisions a device with Azure DPS over HTTPS: symmetric key, X.509
    or TPM 2.0 attestation; non-blocking core with a blocking register()
    and a step()/wait()/pollfds() interface for event loops.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson",
}
-- libcurl, json-c and libcrypto are found by the Makefile through
-- pkg-config (Debian keeps curl.h in a multiarch directory LuaRocks
-- does not search).
external_dependencies = {
  JSONC = { header = "json-c/json.h" },
  OPENSSL = { header = "openssl/hmac.h" },
}
build = {
  type = "make",
  build_target = "dps/core.so",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA_VERSION = "$(LUA_VERSION)",
  },
  install_target = "install",
  install_variables = {
    LUA_CMOD = "$(LIBDIR)",
    LUA_LMOD = "$(LUADIR)",
  },
}
