#!/usr/bin/env bash
# The physical bound of each component on this machine, measured alone, so the cost per task that
# conveyor-load reports can be set against what the component can do at best:
#   - Redis: pipelined XADD of a task-sized entry (redis-benchmark, 500 per pipeline, AOF everysec),
#   - PostgreSQL: COPY of task rows into a table shaped like `tasks`, and a batched UPDATE of them by
#     primary key (the Recorder's merge), fsync on,
#   - the coordinator's HTTP server alone: `GET /health` under wrk (no Redis, no PostgreSQL on the path).
#
#   LoadTests/bounds.sh            # uses .build/release/conveyor (built if missing)
#   CONVEYOR_BIN=/path LoadTests/bounds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. LoadTests/release-bin.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work="$(mktemp -d /tmp/conveyor-bounds.XXXXXX)"
chmod 777 "$work"
dev=""
cleanup() {
  [ -n "$dev" ] && kill -INT "$dev" 2>/dev/null && wait "$dev" 2>/dev/null || true
  redis-cli -p "${rport:-0}" shutdown nosave >/dev/null 2>&1 || true
  [ -d "$work/pg" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "── Redis: pipelined XADD (500 per pipeline, 1,000,000 entries of 6 fields, AOF everysec) ──"
rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync everysec --save '' \
  --daemonize yes --logfile "$work/redis.log"
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p "$rport" -q -n 1000000 -P 500 -c 4 \
  XADD 'conveyor:{default}:ready' '*' id 123456789 type noop params '{"n":1}' attempt 1 max 3 enq 1764547200000 \
  | tr '\r' '\n' | tail -1

echo "── PostgreSQL: COPY 500,000 task-shaped rows, then UPDATE them by primary key in batches of 5,000 ──"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
pport="$(free_port)"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -o "-p $pport -c listen_addresses=127.0.0.1 -k $work -c shared_buffers=256MB" -w start >/dev/null
psql() { command psql -h 127.0.0.1 -p "$pport" -U postgres -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE TABLE t (id bigint PRIMARY KEY, type text, queue text, params jsonb, status text, attempt int, created_at timestamptz, started_at timestamptz, finished_at timestamptz, correlation_id text)"
python3 - "$work/rows.tsv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1, 500001):
        f.write(f"{i}\tnoop\tdefault\t{{\"n\": {i}}}\tqueued\t1\t2026-11-30 00:00:00+00\t\\N\t\\N\tc0ffee{i}\n")
PY
start=$(date +%s.%N)
psql -c "\\copy t FROM '$work/rows.tsv'"
end=$(date +%s.%N)
python3 -c "print(f'COPY: {500000/($end-$start):,.0f} rows/s ({($end-$start)*1e6/500000:.1f} µs per row, one client)')"
start=$(date +%s.%N)
for first in $(seq 1 5000 500000); do
  echo "UPDATE t SET status = 'succeeded', started_at = now(), finished_at = now() FROM unnest(ARRAY(SELECT generate_series($first, $((first + 4999))))) AS u(id) WHERE t.id = u.id;"
done | psql
end=$(date +%s.%N)
python3 -c "print(f'UPDATE by primary key, 5,000 per statement: {500000/($end-$start):,.0f} rows/s ({($end-$start)*1e6/500000:.1f} µs per row)')"

echo "── the coordinator's HTTP server alone: GET /health, wrk -t2 -c64 -d10s ──"
port="$(free_port)"
log="$work/dev.log"
stdbuf -oL "$bin/conveyor" dev --port "$port" --demo-tasks 0 >"$log" 2>&1 &
dev=$!
for _ in $(seq 600); do grep -q "conveyor dev: ready" "$log" && break; sleep 0.1; done
wrk -t2 -c64 -d10s "http://127.0.0.1:$port/health" | grep -E "Requests/sec|Latency"
