#!/usr/bin/env bash
# Conveyor against Celery 5 on this machine, one after the other in one invocation: the same Redis
# server (AOF, fsync every second), the same number of no-op tasks, the same two worker processes.
# Celery is installed from PyPI into a venv (.build-celery/venv) at the first run.
#
#   LoadTests/celery-compare.sh [TASKS]       # default 100000
#   CONVEYOR_BIN=/path/to/release LoadTests/celery-compare.sh   # binaries built elsewhere (A/B runs)
#
# Celery: 4 client processes submit the tasks with apply_async, each on one producer (Celery's fastest
# per-task path); a prefork worker with 2 processes (one per core) runs them, and the Redis result
# backend stores each result; the clock stops when every result is stored (polled with DBSIZE, which
# costs Redis nothing).
# Conveyor: `conveyor-load run --embedded --redis-url <the same Redis>` with 2 agents; PostgreSQL records
# each task's whole lifecycle; the clock stops at the last task's finished_at. Once through
# /v1/tasks/batch (500 per request) and once through single POSTs.
# Prints each rate and Conveyor's ratio to Celery's.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-100000}"
scripts/install-deps.sh
if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
  echo "celery-compare: installing python3 and python3-venv"
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi

venv=".build-celery/venv"
if [ ! -x "$venv/bin/celery" ]; then
  echo "celery-compare: installing Celery 5 into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "celery[redis]>=5,<6"
fi
echo "celery-compare: $("$venv/bin/celery" --version | head -1) (Celery)"

# CONVEYOR_BIN: a folder with release `conveyor` and `conveyor-load` built elsewhere (A/B runs).
bin="${CONVEYOR_BIN:-}"
if [ -z "$bin" ]; then
  swift build -c release --product conveyor
  swift build -c release --product conveyor-load
  bin=.build/release
fi

work="$(mktemp -d /tmp/conveyor-celery.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync everysec \
  --save '' --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
redis_url="redis://127.0.0.1:$port/0"
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "celery-compare: Celery, $tasks no-op tasks, worker --concurrency 2 (prefork)…"
export CELERY_COMPARE_REDIS_URL="$redis_url"
(cd LoadTests/celery && exec "../../$venv/bin/celery" -A noop_app worker --concurrency 2 --pool prefork \
  --without-gossip --without-mingle --without-heartbeat --loglevel warning) >"$work/celery-worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 100); do
  (cd LoadTests/celery && "../../$venv/bin/celery" -A noop_app inspect ping --timeout 1 >/dev/null 2>&1) && break
  sleep 0.5
done
celery_json="$(cd LoadTests/celery && "../../$venv/bin/python" drive.py "$tasks")"
echo "celery-compare: Celery: $celery_json"
kill "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=""
redis-cli -p "$port" flushall >/dev/null

run_conveyor() {  # $1: label, rest: conveyor-load flags
  local label="$1"; shift
  echo "celery-compare: Conveyor ($label), $tasks no-op tasks, 2 agents…"
  "$bin/conveyor-load" run --embedded --redis-url "$redis_url" --agents 2 --count "$tasks" --max --quiet \
    --json "$work/conveyor-$label.json" "$@" >"$work/conveyor-$label.txt" || { cat "$work/conveyor-$label.txt"; exit 1; }
  redis-cli -p "$port" flushall >/dev/null
}
run_conveyor batch --batch 500 --concurrency 8
run_conveyor single --batch 1 --concurrency 64

python3 - "$work" "$celery_json" "$tasks" <<'PY'
import json, sys
work, celery, tasks = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
celery_rate = celery["tasks_per_second"]
print()
print(f"── {tasks:,} no-op tasks, same Redis, same machine ──")
print(f"{'':34}{'end to end':>14}{'vs Celery':>12}   lost")
print(f"{'Celery 5 (4 clients, prefork 2)':34}{celery_rate:>10,.0f} /s{'1.0×':>12}   {tasks - celery['succeeded']}")
for label, name in (("batch", "Conveyor (/v1/tasks/batch, 500)"), ("single", "Conveyor (single POSTs)")):
    report = json.load(open(f"{work}/conveyor-{label}.json"))
    rate = report["end_to_end_per_second"]
    print(f"{name:34}{rate:>10,.0f} /s{rate / celery_rate:>11.1f}×   {report['lost']}")
PY
