# dps: Azure IoT Hub Device Provisioning Service client for Lua and C.
#
#   make              install missing packages, then build dps/core.so for
#                     Lua $(LUA_VERSION) (5.4 unless LUA_VERSION=5.1)
#   make test         install missing packages, then run every test
#   make demo         provision a device against the local emulator
#   make install      install the Lua module for each Lua present, or for
#                     LUA_VERSION when given (PREFIX, DESTDIR)
#   make doc          the Lua API reference into doc/ (LDoc, config.ld)
#   make lint         luacheck, cppcheck, clang-format on changed lines
#   make TPM=0        build without TPM support (no tpm2-tss needed)
#   make CRYPTO=mbedtls  crypto and X.509 over mbedTLS 2.28 or 3.6, no libcrypto
#   make router       the modules over a router-like stack (mbedTLS 3.6,
#                     libcurl over mbedTLS) built from source; make test-router
#   make test-musl    the C core, unit tests and C example under musl
#   make test-cross   everything again on s390x and armhf (qemu-user chroots)
# CPPFLAGS, CFLAGS and LDFLAGS are honoured.

# This Makefile's own directory: it may run elsewhere with -f (bench/run).
DPS_ROOT    := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
LUA_VERSION ?= 5.4
PREFIX      ?= /usr/local
LUA_CMOD    ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_LMOD    ?= $(PREFIX)/share/lua/$(LUA_VERSION)
CC          ?= cc
CPPFLAGS    ?=
LDFLAGS     ?=
PYTHON      ?= /usr/bin/python3

# Detected when the Makefile is read: targets that install packages first
# (all, demo, test) build in a second make, which sees what was installed.
HAVE_TSS := $(shell pkg-config --exists tss2-esys tss2-tctildr tss2-mu tss2-rc 2>/dev/null && echo 1 || echo 0)
TPM ?= $(HAVE_TSS)
# An empty TPM (the rockspec's when `luarocks make` gets no TPM=1) is off.
ifeq ($(strip $(TPM)),)
override TPM := 0
endif

# A clock before the build date is a clock that was never set.
BUILD_EPOCH := $(or $(SOURCE_DATE_EPOCH),$(shell date +%s))

# The crypto seam (dps_crypto.h, dps_x509.h) has two backends: OpenSSL,
# and mbedTLS for OpenWrt, whose base image has no libcrypto. Debian's
# mbedTLS ships no .pc file, hence plain -l flags.
CRYPTO ?= openssl
MBEDTLS_CRYPTO_SRC := csrc/dps_crypto_mbedtls.c csrc/dps_x509_mbedtls.c \
                      csrc/dps_csr_mbedtls.c
MBEDTLS_LIBS := -lmbedx509 -lmbedcrypto
ifeq ($(CRYPTO),mbedtls)
CRYPTO_SRC  := $(MBEDTLS_CRYPTO_SRC)
CRYPTO_PKGS :=
CRYPTO_LIBS := $(MBEDTLS_LIBS)
else
CRYPTO_SRC  := csrc/dps_crypto_openssl.c csrc/dps_x509_openssl.c csrc/dps_csr_openssl.c
CRYPTO_PKGS := libcrypto
CRYPTO_LIBS :=
endif

PKGS := libcurl json-c $(CRYPTO_PKGS)
ifeq ($(TPM),1)
PKGS += tss2-esys tss2-tctildr tss2-mu tss2-rc
TPM_SRC := csrc/dps_tpm_tss.c
else
TPM_SRC := csrc/dps_tpm_none.c
endif

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 $(WARN) -fPIC -DDPS_BUILD_EPOCH=$(BUILD_EPOCH) \
             $(CPPFLAGS) $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LIBS     = $(LDFLAGS) $(shell pkg-config --libs $(PKGS)) $(CRYPTO_LIBS)
# The Lua headers of version $(1): LUA_INCDIR for the chosen version when
# given, else pkg-config's, else Debian's directory. They go first, before
# CPPFLAGS, so that another Lua's lua.h in a shared include dir loses.
LUA_INCDIR ?=
lua_inc = $(if $(and $(LUA_INCDIR),$(filter $(1),$(LUA_VERSION))),-I$(LUA_INCDIR),$(shell pkg-config --cflags lua$(1) 2>/dev/null || echo -I/usr/include/lua$(1)))
LUA_INC  = $(call lua_inc,$(LUA_VERSION))

CORE_SRC := csrc/prov_device_ll_client.c csrc/prov_options.c csrc/prov_endpoint.c \
            csrc/prov_attest.c csrc/prov_sm.c csrc/prov_json.c csrc/prov_values.c \
            csrc/prov_redact.c csrc/prov_error.c \
            csrc/dps_http.c csrc/dps_sas.c $(CRYPTO_SRC) csrc/dps_pem_input.c \
            csrc/dps_encoding.c csrc/dps_secret.c csrc/dps_failure.c \
            csrc/dps_error.c csrc/dps_private_file.c \
            csrc/prov_certs.c csrc/prov_cache.c csrc/dps_http_pool.c \
            csrc/prov_group.c csrc/prov_group_member.c $(TPM_SRC)
HEADERS  := $(wildcard csrc/*.h)
# The Lua binding: dps.core, its JSON conversion and dps.group.
BINDING_SRC := csrc/lua_dps.c csrc/lua_json.c csrc/lua_dps_group.c
# The Lua modules: only luaopen_dps_core exported, no page of padding
# between code and data. Unwind tables stay: LuaJIT (x86_64, arm64)
# raises Lua errors by unwinding through C frames, and without them a
# lua_error inside the module is a PANIC. The sanitizer build keeps its
# symbols for its reports.
SO_MAP   := csrc/dps_core.map
SO_FLAGS := -fno-semantic-interposition -Wl,--version-script=$(SO_MAP) \
            -Wl,-z,noseparate-code -Wl,-O1

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all module deps test test-unit test-valgrind test-emulator test-specs test-notpm \
        test-asan test-mbedtls test-alloc-torture demo install uninstall clean fuzz bench doc \
        lint FORCE test-cross test-cross-quick

# Packages first, then the build in a second make that detects them.
all: deps
	@$(MAKE) --no-print-directory module

# dps/core.so and dps/init.lua make `require "dps"` work from the source
# tree. dps/core.so is a copy of the chosen version's build, refreshed on
# every run, so that changing LUA_VERSION changes it.
module: dps/core.so dps/init.lua

dps/core.so: build/lua$(LUA_VERSION)/dps/core.so FORCE
	@mkdir -p dps
	@cmp -s $< $@ || { cp $< $@ && echo "dps/core.so: Lua $(LUA_VERSION)"; }

dps/init.lua: lua/dps.lua
	@mkdir -p dps
	cp $< $@

FORCE:

# A stamp named after the build settings: changing CRYPTO, TPM or the
# flags makes it new, and so rebuilds the modules.
BUILD_CONFIG := $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(WARN) $(CRYPTO) $(TPM) $(LUA_INCDIR)
BUILD_STAMP  := build/config-$(firstword $(shell echo '$(BUILD_CONFIG)' | cksum))
$(BUILD_STAMP):
	@mkdir -p build && rm -f build/config-* && touch $@

# One build directory per Lua version (and a sanitizer build).
build/lua%/dps/core.so: $(CORE_SRC) $(BINDING_SRC) $(HEADERS) $(SO_MAP) $(BUILD_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(call lua_inc,$*) \
	  $(ALL_CFLAGS) $(SO_FLAGS) -shared -o $@ $(CORE_SRC) $(BINDING_SRC) $(LIBS)

# A build without tpm2-tss, as for devices without a TPM.
NOTPM_SRC := $(filter-out csrc/dps_tpm_tss.c,$(CORE_SRC)) csrc/dps_tpm_none.c
build/notpm/dps/core.so: $(NOTPM_SRC) $(BINDING_SRC) $(HEADERS) $(SO_MAP)
	@mkdir -p $(dir $@)
	$(CC) $(call lua_inc,5.4) -std=c11 $(WARN) -fPIC $(CPPFLAGS) \
	  $(shell pkg-config --cflags libcurl json-c libcrypto) $(CFLAGS) \
	  $(SO_FLAGS) -shared -o $@ $(sort $(NOTPM_SRC)) $(BINDING_SRC) $(LDFLAGS) \
	  $(shell pkg-config --libs libcurl json-c libcrypto)

build/asan/dps/core.so: $(CORE_SRC) $(BINDING_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(call lua_inc,5.4) $(ALL_CFLAGS) $(SAN) \
	  -shared -o $@ $(CORE_SRC) $(BINDING_SRC) $(LIBS)

# C unit tests: each tests/c/test_NAME.c links the core.
UNIT_TESTS := $(patsubst tests/c/%.c,build/unit/%,$(wildcard tests/c/test_*.c))
UNIT_PLAIN := $(patsubst tests/c/%.c,build/unit-plain/%,$(wildcard tests/c/test_*.c))

build/unit/%: tests/c/%.c $(CORE_SRC) $(HEADERS) tests/c/testing.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -Icsrc -Itests/c -o $@ $< $(CORE_SRC) $(LIBS)

# test_wipe records every dps_wipe call through the linker.
build/unit/test_wipe build/unit-plain/test_wipe: ALL_CFLAGS += -Wl,--wrap=dps_wipe

build/unit-plain/%: tests/c/%.c $(CORE_SRC) $(HEADERS) tests/c/testing.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -Itests/c -o $@ $< $(CORE_SRC) $(LIBS)

# The unit tests that touch the seam, over the mbedTLS backend whatever
# CRYPTO says. test_x509 itself calls ERR_peek_error (it checks that the
# OpenSSL backend leaves no error queued) and test_csr checks the CSRs
# with OpenSSL, so these two link libcrypto.
MBEDTLS_CORE_SRC := $(filter-out $(CRYPTO_SRC),$(CORE_SRC)) $(MBEDTLS_CRYPTO_SRC)
MBEDTLS_PKGS := $(filter-out libcrypto,$(PKGS))
UNIT_MBEDTLS := build/unit-mbedtls/test_sas build/unit-mbedtls/test_x509 \
                build/unit-mbedtls/test_client build/unit-mbedtls/test_csr

build/unit-mbedtls/%: tests/c/%.c $(MBEDTLS_CORE_SRC) $(HEADERS) tests/c/testing.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -DDPS_BUILD_EPOCH=$(BUILD_EPOCH) $(CPPFLAGS) \
	  $(shell pkg-config --cflags $(MBEDTLS_PKGS)) $(CFLAGS) $(SAN) \
	  -Icsrc -Itests/c -o $@ $< $(MBEDTLS_CORE_SRC) $(LDFLAGS) \
	  $(shell pkg-config --libs $(MBEDTLS_PKGS)) $(MBEDTLS_LIBS) \
	  $(if $(filter test_x509 test_csr,$*),-lcrypto)

build/provision_c: examples/provision.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ $< $(CORE_SRC) $(LIBS)

# The C example with every allocation counted and the FAIL_AT-th failed
# (tests/torture/alloc_torture.c), under ASan+UBSan.
TORTURE_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup \
  -Wl,--wrap=json_object_new_object,--wrap=json_object_new_string \
  -Wl,--wrap=json_object_object_add,--wrap=json_object_to_json_string_ext \
  -Wl,--wrap=json_tokener_new_ex,--wrap=json_tokener_parse_ex

build/torture/provision: examples/provision.c tests/torture/alloc_torture.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -Icsrc -Dmain=example_main -c examples/provision.c \
	  -o build/torture/provision_example.o
	$(CC) $(ALL_CFLAGS) $(SAN) -Icsrc -o $@ tests/torture/alloc_torture.c \
	  build/torture/provision_example.o $(CORE_SRC) $(LIBS) $(TORTURE_WRAP)

build/fleet_c: examples/fleet.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ $< $(CORE_SRC) $(LIBS)

deps:
	@sh scripts/install-deps.sh

test: deps
	@# The cross chroots (when not cached) are prepared meanwhile: mostly
	@# downloads. test-cross-quick waits for them (scripts/cross-chroot locks).
	@mkdir -p build && (sh scripts/cross-prepare $(CROSS_ARCHES) >build/cross-prepare.log 2>&1 &)
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) test-emulator
	$(MAKE) test-specs
	$(MAKE) test-asan
	$(MAKE) test-notpm
	$(MAKE) test-mbedtls
	$(MAKE) test-valgrind
	$(MAKE) test-alloc-torture
	$(MAKE) test-router
	$(MAKE) test-musl
	$(MAKE) test-cross-quick
	@echo "make test: all suites passed"

# Zero findings: .luacheckrc, .cppcheck-suppressions and .clang-format
# hold every exception with its reason (scripts/lint says what "changed"
# means for the format check).
lint:
	@sh scripts/lint

test-unit: $(UNIT_TESTS)
	@sh scripts/run-unit-tests $(UNIT_TESTS)

test-valgrind: $(UNIT_PLAIN) build/lua5.4/dps/core.so build/provision_c build/fleet_c
	@VALGRIND=1 sh scripts/run-unit-tests $(UNIT_PLAIN)
	@sh scripts/run-valgrind-e2e

test-alloc-torture: build/torture/provision
	@sh scripts/run-alloc-torture

test-mbedtls: $(UNIT_MBEDTLS)
	@sh scripts/run-unit-tests $(UNIT_MBEDTLS)

test-emulator:
	$(PYTHON) -m unittest discover -s tools/dps-emulator/tests

# Every Lua OpenWrt ships: 5.1 (its default), 5.3, 5.4 and LuaJIT
# (build/luajit: the pattern rule above with % = jit).
test-specs: build/lua5.4/dps/core.so build/lua5.1/dps/core.so \
            build/lua5.3/dps/core.so build/luajit/dps/core.so build/fleet_c
	LUA_VERSION=5.4 sh scripts/run-specs
	LUA_VERSION=5.1 sh scripts/run-specs
	LUA_VERSION=5.3 sh scripts/run-specs
	LUA_VERSION=jit sh scripts/run-specs

test-asan: build/asan/dps/core.so build/fleet_c
	LUA_VERSION=asan sh scripts/run-specs

test-notpm: build/notpm/dps/core.so
	LUA_PATH="lua/?.lua;;" LUA_CPATH="build/notpm/?.so;;" lua5.4 tests/notpm.lua

# Big-endian 64-bit (s390x) and 32-bit long and time_t (armhf), under
# qemu-user in Debian chroots cached in /var/cache/dps-cross (see
# scripts/cross-chroot). The quick subset (C unit tests and one
# registration in C and in Lua per CPU) is part of make test.
CROSS_ARCHES := s390x armhf

test-cross-quick:
	@sh scripts/cross-prepare $(CROSS_ARCHES)
	@for a in $(CROSS_ARCHES); do sh scripts/run-cross $$a quick || exit 1; done

test-cross:
	@sh scripts/cross-prepare $(CROSS_ARCHES)
	@for a in $(CROSS_ARCHES); do sh scripts/run-cross $$a full || exit 1; done

demo: deps
	@$(MAKE) --no-print-directory module
	@LUA_VERSION=$(LUA_VERSION) sh scripts/demo

# libFuzzer targets, each run for FUZZ_SECONDS; the summary line per
# target gives its executions.
FUZZ_SECONDS ?= 60
FUZZ_CC      := clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc
FUZZ_TARGETS := build/fuzz/fuzz_reply build/fuzz/fuzz_tpm_blob build/fuzz/fuzz_headers

build/fuzz/fuzz_reply: fuzz/fuzz_reply.c csrc/prov_sm.c csrc/prov_json.c csrc/prov_values.c \
                       csrc/dps_encoding.c csrc/dps_failure.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) fuzz/fuzz_reply.c csrc/prov_sm.c csrc/prov_json.c csrc/prov_values.c \
	  csrc/dps_encoding.c csrc/dps_failure.c \
	  $(shell pkg-config --cflags --libs json-c) -o $@

build/fuzz/fuzz_tpm_blob: fuzz/fuzz_tpm_blob.c csrc/dps_tpm_tss.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) fuzz/fuzz_tpm_blob.c csrc/dps_crypto_openssl.c csrc/dps_encoding.c \
	  csrc/dps_secret.c csrc/dps_error.c \
	  $(shell pkg-config --cflags --libs tss2-esys tss2-tctildr tss2-mu tss2-rc libcrypto) -o $@

build/fuzz/fuzz_headers: fuzz/fuzz_headers.c csrc/dps_http.c csrc/dps_http_pool.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) fuzz/fuzz_headers.c csrc/dps_http_pool.c csrc/dps_failure.c \
	  csrc/dps_error.c csrc/dps_crypto_openssl.c csrc/dps_encoding.c csrc/dps_secret.c \
	  $(shell pkg-config --cflags --libs libcurl libcrypto) -o $@

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); mkdir -p build/fuzz-corpus/$$name; \
	  echo "== $$name for $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build/fuzz-corpus/$$name >build/fuzz/$$name.log 2>&1 || \
	    { tail -40 build/fuzz/$$name.log; exit 1; }; \
	  grep -E "^Done [0-9]+ runs" build/fuzz/$$name.log | sed "s/^/$$name: /"; \
	done

bench: build/lua5.4/dps/core.so build/fleet_c
	@sh bench/run

# The Lua API reference, from the LDoc comments of lua/dps.lua.
doc:
	ldoc --fatalwarnings .

# Every Lua whose headers are installed, unless LUA_VERSION (or LUA_CMOD)
# was given: then that one only.
LUA_PRESENT := $(foreach v,5.1 5.2 5.3 5.4,$(if $(or $(wildcard /usr/include/lua$(v)/lua.h),$(shell pkg-config --exists lua$(v) 2>/dev/null && echo y)),$(v)))
ifneq ($(filter command line environment,$(origin LUA_VERSION) $(origin LUA_CMOD) $(origin LUA_LMOD)),)
INSTALL_LUA_VERSIONS := $(LUA_VERSION)
else
INSTALL_LUA_VERSIONS := $(or $(LUA_PRESENT),$(LUA_VERSION))
endif
lua_cmod = $(if $(filter $(1),$(LUA_VERSION)),$(LUA_CMOD),$(PREFIX)/lib/lua/$(1))
lua_lmod = $(if $(filter $(1),$(LUA_VERSION)),$(LUA_LMOD),$(PREFIX)/share/lua/$(1))

install: $(foreach v,$(INSTALL_LUA_VERSIONS),build/lua$(v)/dps/core.so)
	$(foreach v,$(INSTALL_LUA_VERSIONS),\
	  install -d $(DESTDIR)$(call lua_cmod,$(v))/dps $(DESTDIR)$(call lua_lmod,$(v)) && \
	  install -m 0755 build/lua$(v)/dps/core.so $(DESTDIR)$(call lua_cmod,$(v))/dps/core.so && \
	  install -m 0644 lua/dps.lua $(DESTDIR)$(call lua_lmod,$(v))/dps.lua && \
	  echo "installed dps for Lua $(v)" &&) true

uninstall:
	$(foreach v,$(INSTALL_LUA_VERSIONS),\
	  rm -f $(DESTDIR)$(call lua_cmod,$(v))/dps/core.so $(DESTDIR)$(call lua_lmod,$(v))/dps.lua;)

clean:
	rm -rf build dps doc

# make router, test-router, test-musl.
include $(DPS_ROOT)mk/router.mk
