# Sourced by the LoadTests scripts that drive a release `conveyor`: installs wrk when missing and sets
# `bin` to CONVEYOR_BIN (binaries built elsewhere, for A/B runs) or to a fresh release build.
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin="${CONVEYOR_BIN:-}"
if [ -z "$bin" ]; then
  scripts/install-deps.sh
  swift build -c release --product conveyor
  bin=.build/release
fi
