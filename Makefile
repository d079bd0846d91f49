# dps: Azure IoT Hub Device Provisioning Service client for Lua and C.
#
#   make              build dps/core.so for Lua $(LUA_VERSION)
#   make test         install missing packages, then run every test
#   make demo         provision a device against the local emulator
#   make install      install the Lua module (PREFIX, DESTDIR)
#   make TPM=0        build without TPM support (no tpm2-tss needed)
#   make CRYPTO=mbedtls  crypto and X.509 over mbedTLS 2.28, no libcrypto
#   make test-cross   everything again on s390x and armhf (qemu-user chroots)

LUA_VERSION ?= 5.1
PREFIX      ?= /usr/local
LUA_CMOD    ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_LMOD    ?= $(PREFIX)/share/lua/$(LUA_VERSION)
CC          ?= cc
PYTHON      ?= /usr/bin/python3

HAVE_TSS := $(shell pkg-config --exists tss2-esys tss2-tctildr tss2-mu tss2-rc 2>/dev/null && echo 1 || echo 0)
TPM ?= $(HAVE_TSS)

# A clock before the build date is a clock that was never set.
BUILD_EPOCH := $(or $(SOURCE_DATE_EPOCH),$(shell date +%s))

# The crypto seam (dps_crypto.h, dps_x509.h) has two backends: OpenSSL,
# and mbedTLS for OpenWrt, whose base image has no libcrypto. Debian's
# mbedTLS ships no .pc file, hence plain -l flags.
CRYPTO ?= openssl
MBEDTLS_CRYPTO_SRC := csrc/dps_crypto_mbedtls.c csrc/dps_x509_mbedtls.c
MBEDTLS_LIBS := -lmbedx509 -lmbedcrypto
ifeq ($(CRYPTO),mbedtls)
CRYPTO_SRC  := $(MBEDTLS_CRYPTO_SRC)
CRYPTO_PKGS :=
CRYPTO_LIBS := $(MBEDTLS_LIBS)
else
CRYPTO_SRC  := csrc/dps_crypto_openssl.c csrc/dps_x509.c
CRYPTO_PKGS := libcrypto
CRYPTO_LIBS :=
endif

PKGS := libcurl json-c $(CRYPTO_PKGS)
ifeq ($(TPM),1)
PKGS += tss2-esys tss2-tctildr tss2-mu tss2-rc
TPM_SRC := csrc/dps_tpm.c
else
TPM_SRC := csrc/dps_tpm_none.c
endif

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 $(WARN) -fPIC -DDPS_BUILD_EPOCH=$(BUILD_EPOCH) \
             $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LIBS     = $(shell pkg-config --libs $(PKGS)) $(CRYPTO_LIBS)
LUA_INCDIR ?=
LUA_INC  = $(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(shell pkg-config --cflags lua$(LUA_VERSION) 2>/dev/null || echo -I/usr/include/lua$(LUA_VERSION)))

CORE_SRC := csrc/prov_device_ll_client.c csrc/prov_options.c \
            csrc/prov_attest.c csrc/prov_sm.c csrc/prov_json.c \
            csrc/dps_http.c csrc/dps_sas.c $(CRYPTO_SRC) csrc/dps_pem_input.c \
            csrc/dps_encoding.c \
            csrc/dps_error.c $(TPM_SRC)
HEADERS  := $(wildcard csrc/*.h)

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps test test-unit test-valgrind test-emulator test-specs test-notpm \
        test-asan test-mbedtls demo install uninstall clean fuzz bench \
        test-cross test-cross-quick

all: dps/core.so

dps/core.so: $(CORE_SRC) csrc/lua_dps.c $(HEADERS)
	@mkdir -p dps
	$(CC) $(LUA_INC) $(ALL_CFLAGS) -shared -o $@ $(CORE_SRC) csrc/lua_dps.c $(LIBS)

# The module for each Lua the specs run on, and a sanitizer build.
build/lua%/dps/core.so: $(CORE_SRC) csrc/lua_dps.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(shell pkg-config --cflags lua$* 2>/dev/null || echo -I/usr/include/lua$*) \
	  $(ALL_CFLAGS) -shared -o $@ $(CORE_SRC) csrc/lua_dps.c $(LIBS)

# A build without tpm2-tss, as for devices without a TPM.
NOTPM_SRC := $(filter-out csrc/dps_tpm.c,$(CORE_SRC)) csrc/dps_tpm_none.c
build/notpm/dps/core.so: $(NOTPM_SRC) csrc/lua_dps.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(shell pkg-config --cflags lua5.4) -std=c11 $(WARN) -fPIC \
	  $(shell pkg-config --cflags libcurl json-c libcrypto) $(CFLAGS) \
	  -shared -o $@ $(sort $(NOTPM_SRC)) csrc/lua_dps.c \
	  $(shell pkg-config --libs libcurl json-c libcrypto)

build/asan/dps/core.so: $(CORE_SRC) csrc/lua_dps.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(shell pkg-config --cflags lua5.4) $(ALL_CFLAGS) $(SAN) \
	  -shared -o $@ $(CORE_SRC) csrc/lua_dps.c $(LIBS)

# C unit tests: each tests/c/test_NAME.c links the core.
UNIT_TESTS := $(patsubst tests/c/%.c,build/unit/%,$(wildcard tests/c/test_*.c))
UNIT_PLAIN := $(patsubst tests/c/%.c,build/unit-plain/%,$(wildcard tests/c/test_*.c))

build/unit/%: tests/c/%.c $(CORE_SRC) $(HEADERS) tests/c/testing.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -Icsrc -Itests/c -o $@ $< $(CORE_SRC) $(LIBS)

build/unit-plain/%: tests/c/%.c $(CORE_SRC) $(HEADERS) tests/c/testing.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -Itests/c -o $@ $< $(CORE_SRC) $(LIBS)

# The unit tests that touch the seam, over the mbedTLS backend whatever
# CRYPTO says. test_x509 itself calls ERR_peek_error (it checks that the
# OpenSSL backend leaves no error queued), so it alone links libcrypto.
MBEDTLS_CORE_SRC := $(filter-out $(CRYPTO_SRC),$(CORE_SRC)) $(MBEDTLS_CRYPTO_SRC)
MBEDTLS_PKGS := $(filter-out libcrypto,$(PKGS))
UNIT_MBEDTLS := build/unit-mbedtls/test_sas build/unit-mbedtls/test_x509 \
                build/unit-mbedtls/test_client

build/unit-mbedtls/%: tests/c/%.c $(MBEDTLS_CORE_SRC) $(HEADERS) tests/c/testing.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -DDPS_BUILD_EPOCH=$(BUILD_EPOCH) \
	  $(shell pkg-config --cflags $(MBEDTLS_PKGS)) $(CFLAGS) $(SAN) \
	  -Icsrc -Itests/c -o $@ $< $(MBEDTLS_CORE_SRC) \
	  $(shell pkg-config --libs $(MBEDTLS_PKGS)) $(MBEDTLS_LIBS) \
	  $(if $(filter test_x509,$*),-lcrypto)

build/provision_c: examples/provision.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ $< $(CORE_SRC) $(LIBS)

deps:
	@sh scripts/install-deps.sh

test: deps
	@# The cross chroots (when not cached) are prepared meanwhile: mostly
	@# downloads. test-cross-quick waits for them (scripts/cross-chroot locks).
	@mkdir -p build && (sh scripts/cross-prepare $(CROSS_ARCHES) >build/cross-prepare.log 2>&1 &)
	$(MAKE) test-unit
	$(MAKE) test-emulator
	$(MAKE) test-specs
	$(MAKE) test-asan
	$(MAKE) test-notpm
	$(MAKE) test-mbedtls
	$(MAKE) test-valgrind
	$(MAKE) test-cross-quick
	@echo "make test: all suites passed"

test-unit: $(UNIT_TESTS)
	@sh scripts/run-unit-tests $(UNIT_TESTS)

test-valgrind: $(UNIT_PLAIN) build/lua5.4/dps/core.so build/provision_c
	@VALGRIND=1 sh scripts/run-unit-tests $(UNIT_PLAIN)
	@sh scripts/run-valgrind-e2e

test-mbedtls: $(UNIT_MBEDTLS)
	@sh scripts/run-unit-tests $(UNIT_MBEDTLS)

test-emulator:
	$(PYTHON) -m unittest discover -s tools/dps-emulator/tests

# Every Lua OpenWrt ships: 5.1 (its default), 5.3, 5.4 and LuaJIT
# (build/luajit: the pattern rule above with % = jit).
test-specs: build/lua5.4/dps/core.so build/lua5.1/dps/core.so \
            build/lua5.3/dps/core.so build/luajit/dps/core.so
	LUA_VERSION=5.4 sh scripts/run-specs
	LUA_VERSION=5.1 sh scripts/run-specs
	LUA_VERSION=5.3 sh scripts/run-specs
	LUA_VERSION=jit sh scripts/run-specs

test-asan: build/asan/dps/core.so
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

demo: deps dps/core.so
	@sh scripts/demo

fuzz:
	@mkdir -p build/fuzz-corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc \
	  fuzz/fuzz_reply.c csrc/prov_sm.c csrc/prov_json.c \
	  $(shell pkg-config --cflags --libs json-c) -o build/fuzz_reply
	build/fuzz_reply -max_total_time=60 build/fuzz-corpus

bench: build/lua5.4/dps/core.so
	@sh bench/run

install: dps/core.so
	install -d $(DESTDIR)$(LUA_CMOD)/dps $(DESTDIR)$(LUA_LMOD)
	install -m 0755 dps/core.so $(DESTDIR)$(LUA_CMOD)/dps/core.so
	install -m 0644 lua/dps.lua $(DESTDIR)$(LUA_LMOD)/dps.lua

uninstall:
	rm -f $(DESTDIR)$(LUA_CMOD)/dps/core.so $(DESTDIR)$(LUA_LMOD)/dps.lua

clean:
	rm -rf build dps
