#!/usr/bin/env bash
# The chaos test in one command: installs what is missing, builds conveyor and conveyor-load, then
# submits 20,000 tasks while agents, the coordinator, Redis and PostgreSQL are killed, and reports lost
# tasks (must be 0), duplicate executions and recovery times. Extra arguments go to `conveyor-load chaos`
# (see `conveyor-load chaos --help`), e.g. `LoadTests/chaos.sh --tasks 50000 --duration 60`.
#
# It uses the debug build (what `make test` builds; the chaos run tests correctness, not speed).
# CHAOS_BUILD=release runs it on the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
configuration="${CHAOS_BUILD:-debug}"
swift build -c "$configuration" --product conveyor
swift build -c "$configuration" --product conveyor-load
exec ".build/$configuration/conveyor-load" chaos "$@"
