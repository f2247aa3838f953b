#!/usr/bin/env bash
# Single POSTs driven by wrk (Debian's package) against `conveyor dev` (release build, 2 agents):
# the coordinator's own rate, without conveyor-load's client. Prints wrk's figures; every run's
# requests must have been answered 201 (wrk counts anything else as non-2xx).
#
#   LoadTests/wrk-single.sh                  # wrk -t2 -c64 -d20s, one run
#   WRK_RUNS=3 WRK_ARGS="-t2 -c128 -d30s" LoadTests/wrk-single.sh
#   CONVEYOR_BIN=/path/to/release LoadTests/wrk-single.sh   # binaries built elsewhere (A/B runs)
set -euo pipefail
cd "$(dirname "$0")/.."
. LoadTests/release-bin.sh
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp /tmp/conveyor-wrk.XXXXXX)"
# stdbuf: the banner with the token is printed through stdio, line-buffered into the log.
stdbuf -oL "$bin/conveyor" dev --port "$port" --demo-tasks 0 >"$log" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null; wait $dev 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 600); do grep -q "conveyor dev: ready" "$log" && break; sleep 0.1; done
grep -q "conveyor dev: ready" "$log" || { echo "wrk-single: conveyor dev did not become ready" >&2; cat "$log" >&2; exit 1; }
# dev makes a token of its own and prints it.
CONVEYOR_API_TOKEN="$(grep -o 'token: dev-[A-Za-z0-9]*' "$log" | head -1 | cut -d' ' -f2)"
export CONVEYOR_API_TOKEN
# Warm-up: connections, the id allocator's blocks, PostgreSQL's caches.
wrk -t2 -c64 -d3s -s LoadTests/wrk-post.lua "http://127.0.0.1:$port" >/dev/null
for run in $(seq "${WRK_RUNS:-1}"); do
  echo "── wrk ${WRK_ARGS:--t2 -c64 -d20s}, run $run ──"
  # shellcheck disable=SC2086
  wrk ${WRK_ARGS:--t2 -c64 -d20s} -s LoadTests/wrk-post.lua "http://127.0.0.1:$port"
done
