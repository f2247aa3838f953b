#!/usr/bin/env bash
# Installs what Conveyor needs to build and run on Debian/Ubuntu, and nothing that is already there:
# redis-server, the hiredis and libpq headers, PostgreSQL's server binaries, pkg-config, zlib and
# prometheus (for promtool). With --tests, also chromium: the headless browser the console's tests drive.
# The Swift toolchain itself must already be on PATH (swift.org's installer, not apt).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -f /usr/include/hiredis/hiredis.h ] || missing+=(libhiredis-dev)
[ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)   # promtool checks the /metrics output in the tests
if [ "${1:-}" = "--tests" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "install-deps: the Swift toolchain (6.1 or later) is not on PATH; install it from swift.org" >&2
  exit 1
fi
echo "install-deps: ready"
