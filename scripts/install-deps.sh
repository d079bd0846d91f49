#!/bin/sh
# Installs what building and testing dps needs on Debian/Ubuntu. Idempotent:
# packages already present are not fetched again. Needs root for apt-get.
set -eu

PKGS="build-essential pkg-config
      libcurl4-openssl-dev libjson-c-dev libssl-dev libmbedtls-dev
      lua5.1 liblua5.1-0-dev lua5.4 liblua5.4-dev
      lua5.3 liblua5.3-dev luajit libluajit-5.1-dev lua-cqueues
      lua-cjson lua-busted luarocks
      libtss2-dev swtpm swtpm-tools tpm2-tools
      python3 python3-cryptography python3-openssl openssl ca-certificates
      valgrind curl faketime
      lua-ldoc lua-markdown lua-check cppcheck clang-format git
      cmake musl-tools bzip2 xz-utils debian-archive-keyring
      qemu-user-static binfmt-support debootstrap"

# Not Debian or Ubuntu: nothing to install here; the build says what it
# lacks (plain `make` runs this too).
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: no dpkg here; install the build dependencies (README) yourself" >&2
  exit 0
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing packages:$missing" >&2
  echo "run as root: apt-get install$missing" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
