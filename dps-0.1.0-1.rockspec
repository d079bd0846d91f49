-- Builds and installs dps with `luarocks make` from a checkout.
--
--   luarocks make                 keys and X.509; no TPM support
--   luarocks make TPM=1           with TPM 2.0 support (needs tpm2-tss:
--                                 libtss2-dev on Debian)
--
-- TPM support is a choice made here, never guessed from what the build
-- host has installed (without TPM=1 LuaRocks warns "unmatched variable
-- TPM" and the build leaves it out). The C module needs libcurl (7.84 or
-- newer), json-c and OpenSSL's libcrypto; the Makefile asks pkg-config
-- for their flags and gets the directories LuaRocks found as well.
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
-- Found through their libraries: Debian keeps curl.h in a multiarch
-- include directory LuaRocks does not search, while the compiler does.
external_dependencies = {
  CURL = { library = "curl" },
  JSONC = { library = "json-c" },
  OPENSSL = { library = "crypto" },
}
build = {
  type = "make",
  build_target = "dps/core.so",
  build_variables = {
    CFLAGS = "$(CFLAGS) -I$(CURL_INCDIR) -I$(JSONC_INCDIR) -I$(OPENSSL_INCDIR)",
    LDFLAGS = "-L$(CURL_LIBDIR) -L$(JSONC_LIBDIR) -L$(OPENSSL_LIBDIR)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    TPM = "$(TPM)",
    CRYPTO = "openssl",
  },
  install_target = "install",
  install_variables = {
    LUA_CMOD = "$(LIBDIR)",
    LUA_LMOD = "$(LUADIR)",
  },
}
