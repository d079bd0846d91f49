# Router-like builds, included by the Makefile: the core over mbedTLS 3.6
# and a libcurl built on mbedTLS as OpenWrt builds it (make router,
# make test-router), and under musl (make test-musl). scripts/router-stack
# builds both stacks from Debian's source packages and caches them
# outside the tree; these rules only name the prefix it prints.

ROUTER_STACK := $(shell sh $(DPS_ROOT)scripts/router-stack --prefix glibc)
MUSL_STACK   := $(shell sh $(DPS_ROOT)scripts/router-stack --prefix musl)
MUSL_CC      ?= musl-gcc

# The core as OpenWrt builds it: mbedTLS crypto, no TPM (Debian's tpm2-tss
# links libcrypto; OpenWrt's feeds have no tpm2-tss).
ROUTER_SRC := $(filter-out $(CRYPTO_SRC) $(TPM_SRC),$(CORE_SRC)) \
              $(MBEDTLS_CRYPTO_SRC) csrc/dps_tpm_none.c
ROUTER_TESTS := $(filter-out test_tpm,$(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c)))

ROUTER_CFLAGS = -std=c11 $(WARN) -fPIC -DDPS_BUILD_EPOCH=$(BUILD_EPOCH) \
                -DDPS_TEST_WITHOUT_OPENSSL -I$(ROUTER_STACK)/include $(CPPFLAGS) \
                $(shell pkg-config --cflags json-c) $(CFLAGS)
# RPATH to the stack, so the modules load it without LD_LIBRARY_PATH.
ROUTER_LIBS = $(LDFLAGS) -L$(ROUTER_STACK)/lib -Wl,-rpath,$(ROUTER_STACK)/lib \
              -lcurl -lmbedx509 -lmbedcrypto $(shell pkg-config --libs json-c)

ROUTER_MODULES := build/router/lua5.1/dps/core.so build/router/lua5.4/dps/core.so
ROUTER_UNIT    := $(addprefix build/router/unit/,$(ROUTER_TESTS))

.PHONY: router router-stack test-router musl-stack test-musl

router-stack: $(ROUTER_STACK)/.complete
musl-stack: $(MUSL_STACK)/.complete

$(ROUTER_STACK)/.complete:
	sh scripts/router-stack glibc >/dev/null

$(MUSL_STACK)/.complete:
	sh scripts/router-stack musl >/dev/null

build/router/lua%/dps/core.so: $(ROUTER_SRC) $(BINDING_SRC) $(HEADERS) $(SO_MAP) $(ROUTER_STACK)/.complete
	@mkdir -p $(dir $@)
	$(CC) $(call lua_inc,$*) $(ROUTER_CFLAGS) $(SO_FLAGS) -shared -o $@ \
	  $(ROUTER_SRC) $(BINDING_SRC) $(ROUTER_LIBS)

build/router/unit/%: tests/c/%.c $(ROUTER_SRC) $(HEADERS) tests/c/testing.h $(ROUTER_STACK)/.complete
	@mkdir -p $(dir $@)
	$(CC) $(ROUTER_CFLAGS) $(SAN) -Icsrc -Itests/c -o $@ $< $(ROUTER_SRC) $(ROUTER_LIBS) \
	  $(if $(filter test_csr,$*),-lcrypto)

# test_wipe records every dps_wipe call through the linker (as in the
# Makefile's own unit builds).
build/router/unit/test_wipe: ROUTER_CFLAGS += -Wl,--wrap=dps_wipe

# Fails unless each module loads the stack's libcurl and no OpenSSL or GnuTLS.
router: $(ROUTER_MODULES)
	@for m in $(ROUTER_MODULES); do \
	  if ldd $$m | grep -E 'libssl|libcrypto|gnutls'; then \
	    echo "$$m: links OpenSSL or GnuTLS" >&2; exit 1; fi; \
	  ldd $$m | grep -q '$(ROUTER_STACK)/lib/libcurl' || { \
	    echo "$$m: does not load the router stack's libcurl" >&2; exit 1; }; \
	done
	@echo "router: $(ROUTER_MODULES) over $(ROUTER_STACK)"

test-router: router $(ROUTER_UNIT)
	@sh scripts/run-unit-tests $(ROUTER_UNIT)
	LUA_VERSION=router5.4 sh scripts/run-specs
	LUA_VERSION=router5.1 sh scripts/run-specs

# musl: the same stack plus json-c, static; the C core without Lua.
MUSL_CFLAGS = -std=c11 $(WARN) -O2 -g -DDPS_BUILD_EPOCH=$(BUILD_EPOCH) \
              -DDPS_TEST_WITHOUT_OPENSSL -I$(MUSL_STACK)/include
MUSL_LIBS   = -static -L$(MUSL_STACK)/lib -lcurl -lmbedtls -lmbedx509 \
              -lmbedcrypto -ljson-c -lpthread
# test_csr checks the CSRs with OpenSSL, which the static musl stack lacks
# (the router run covers CSRs over mbedTLS 3.6).
MUSL_UNIT   := $(addprefix build/musl/unit/,$(filter-out test_csr,$(ROUTER_TESTS)))

build/musl/unit/%: tests/c/%.c $(ROUTER_SRC) $(HEADERS) tests/c/testing.h $(MUSL_STACK)/.complete
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -Icsrc -Itests/c -o $@ $< $(ROUTER_SRC) $(MUSL_LIBS)

build/musl/unit/test_wipe: MUSL_CFLAGS += -Wl,--wrap=dps_wipe

build/musl/provision_c: examples/provision.c $(ROUTER_SRC) $(HEADERS) $(MUSL_STACK)/.complete
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -Icsrc -o $@ $< $(ROUTER_SRC) $(MUSL_LIBS)

test-musl: $(MUSL_UNIT) build/musl/provision_c
	@sh scripts/check-musl $(MUSL_UNIT) build/musl/provision_c
	@sh scripts/run-unit-tests $(MUSL_UNIT)
	@sh scripts/run-c-e2e build/musl/provision_c
