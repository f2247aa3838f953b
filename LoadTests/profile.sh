#!/usr/bin/env bash
# Where the CPU goes at the ceiling: runs `conveyor-load run` (default: --preset max) on the release
# build and samples the whole machine with perf (cpu-clock, 499 Hz, call graphs) for 15 s in the middle
# of the load. Prints the share of each process, then the hottest functions of the whole machine
# (demangled), and keeps perf.data for `perf report -i`.
#
#   LoadTests/profile.sh                          # the batch ceiling
#   LoadTests/profile.sh --preset max-single      # any conveyor-load run flags
#   PROFILE_SECONDS=20 PROFILE_OUT=/tmp/p LoadTests/profile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v perf >/dev/null || { apt-get install -y -qq linux-perf >/dev/null || apt-get install -y -qq linux-tools-generic >/dev/null; }
swift build -c release --product conveyor
swift build -c release --product conveyor-load
out="${PROFILE_OUT:-.build-profile}"
mkdir -p "$out"
seconds="${PROFILE_SECONDS:-15}"
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--preset max)
.build/release/conveyor-load run "${args[@]}" --duration $((seconds + 20)) --json "$out/run.json" >"$out/run.txt" 2>&1 &
load=$!
# Let the stack start (the coordinator answers /ready) and the load settle before sampling.
for _ in $(seq 240); do pgrep -f "release/conveyor coordinator" >/dev/null && break; sleep 0.25; done
sleep 8
ps -eLo tid=,pid=,args= >"$out/threads.txt"
perf record -a -g -e cpu-clock -F 499 -o "$out/perf.data" -- sleep "$seconds" 2>/dev/null
wait "$load" || true
tail -n 30 "$out/run.txt"
echo
echo "── CPU by process (share of all samples on both cores; 50% = one core) ──"
perf report -i "$out/perf.data" --no-children --sort pid --stdio 2>/dev/null | grep -E '^ +[0-9]' >"$out/by-thread.txt" || true
python3 - "$out" <<'PY'
import re, sys, collections
out = sys.argv[1]
names, owner = {}, {}
for line in open(f"{out}/threads.txt"):
    parts = line.split(None, 2)
    if len(parts) < 3: continue
    tid, pid, args = int(parts[0]), int(parts[1]), parts[2].strip()
    if "conveyor coordinator" in args: name = "conveyor coordinator"
    elif "conveyor agent" in args: name = "conveyor agent"
    elif "conveyor-load" in args: name = "conveyor-load"
    elif "redis-server" in args: name = "redis-server"
    elif "postgres" in args: name = "postgres"
    else: name = args.split()[0].split("/")[-1][:30]
    owner[tid] = (pid, name)
totals = collections.Counter()
for line in open(f"{out}/by-thread.txt"):
    match = re.match(r"\s*([\d.]+)%\s+(\d+):(\S*)", line)
    if not match: continue
    share, tid, comm = float(match.group(1)), int(match.group(2)), match.group(3)
    pid, name = owner.get(tid, (tid, comm or "?"))
    totals[(name, pid if name in ("conveyor agent", "conveyor coordinator", "redis-server", "conveyor-load") else 0)] += share
for (name, pid), share in totals.most_common(12):
    print(f"  {share:6.2f}%  {name}{f' (pid {pid})' if pid else ''}")
with open(f"{out}/pids.txt", "w") as f:
    for (name, pid), share in totals.most_common():
        if pid: f.write(f"{name.replace(' ', '-')} {pid}\n")
PY
while read -r name pid; do
  case "$name" in conveyor-coordinator|conveyor-agent) ;; *) continue ;; esac
  echo
  echo "── hottest functions of $name (pid $pid), self time, share of all samples ──"
  perf report -i "$out/perf.data" --pid "$pid" --no-children --sort symbol --stdio -g none 2>/dev/null </dev/null \
    | grep -E '^ +[0-9]' | head -25 | swift-demangle --simplified | cut -c1-180 || true  # head closes the pipe early
done <"$out/pids.txt"
echo
echo "── hottest functions of redis-server and postgres ──"
perf report -i "$out/perf.data" --comm redis-server,postgres --no-children --sort comm,symbol --stdio -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | head -20 | cut -c1-150 || true
echo
echo "perf data: $out/perf.data (perf report -i $out/perf.data)"
