#!/usr/bin/env bash
# The memory benchmark: our memory (`mem-bench`, the bench crate's binary) against opsdroid
# 0.31's (`opsdroid.memory.Memory`, driven by bench/opsdroid_memory.py in a venv), on SQLite
# and on Redis, with the same workload: N iterations of (put `key-{i % 1000}` = a small JSON
# object, then get it back and compare); a put and a get each count as one op. With
# concurrency C, C concurrent callers share the N iterations (caller c does c, c + C, ...;
# C must divide 1000, so no two callers write the same key). Prints a table of medians, the
# spread and the individual runs, and the machine.
#
#   bash bench/memory.sh
#   REPS=5 BACKENDS=redis CONCURRENCY=20 bash bench/memory.sh
#   SQLITE_DIR=/dev/shm bash bench/memory.sh        # SQLite on tmpfs: no disk flushes
#
# Options (environment):
#   REPS=3                      interleaved repetitions; each one runs, for every concurrency:
#                               ours sqlite (every SQLITE_SYNC), opsdroid sqlite, ours redis,
#                               opsdroid redis, the redis floor (the table shows medians)
#   CONCURRENCY="1 20"          concurrent callers per run; each value is its own set of runs
#                               (1: one op in flight; every value must divide 1000)
#   SQLITE_SYNC="normal full"   our SQLite durability modes (mem-bench --synchronous; WAL
#                               either way). opsdroid has one mode: rollback journal,
#                               synchronous=FULL, a DELETE and an INSERT per put
#   BACKENDS="sqlite redis"     the backends, in this order within a repetition
#   SIDES="ours opsdroid"       who runs (SIDES=opsdroid: opsdroid's figures alone, no build)
#   OPS_SQLITE=100000 OPS_SQLITE_FULL=20000 OPS_REDIS=200000   iterations per run of ours
#                               (OPS_SQLITE_FULL: synchronous=full, one disk flush per put)
#   OPSDROID_OPS_SQLITE=5000 OPSDROID_OPS_REDIS=100000  iterations per run of opsdroid (much
#                               slower; ops/s is what is compared). The same counts for
#                               every concurrency (REPS=5 of the defaults: about 11 min on 2 cores)
#   SQLITE_DIR=$BENCH_DIR/run-*/sqlite   where each run's fresh SQLite file is made (a new
#                               directory per run); its filesystem decides what a commit costs
#   RUN_TIMEOUT=300             seconds one run may take before it is killed (and counted failed)
#   FLOOR=1                     also measure redis-benchmark (C connections, one command in
#                               flight on each, SET+GET): the round trips alone (FLOOR=0: skip)
#   MEM_BENCH=path              use this mem-bench binary instead of building it
#   BENCH_DIR=target/bench-peers   the opsdroid venv and the runs' files and logs
#   PYTHON=python3              the interpreter for the opsdroid venv and the table
#
# The Redis server (installed with apt-get when missing) is started once, on a free port on
# 127.0.0.1, without persistence, flushed before every Redis run and stopped when the script
# exits. Exit status 1 if any run failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BENCH_DIR=${BENCH_DIR:-target/bench-peers}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
REPS=${REPS:-3}
BACKENDS=${BACKENDS:-"sqlite redis"}
SIDES=${SIDES:-"ours opsdroid"}
CONCURRENCY=${CONCURRENCY:-"1 20"}
SQLITE_SYNC=${SQLITE_SYNC:-"normal full"}
OPS_SQLITE=${OPS_SQLITE:-100000}
OPS_SQLITE_FULL=${OPS_SQLITE_FULL:-20000}
OPS_REDIS=${OPS_REDIS:-200000}
OPSDROID_OPS_SQLITE=${OPSDROID_OPS_SQLITE:-5000}
OPSDROID_OPS_REDIS=${OPSDROID_OPS_REDIS:-100000}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
FLOOR=${FLOOR:-1}
PY=${PYTHON:-python3}

for c in $CONCURRENCY; do
  case "$c" in
    '' | *[!0-9]* | 0*) echo "error: CONCURRENCY: \`$c\` is not a whole number >= 1" >&2; exit 2 ;;
  esac
  if [ $((1000 % c)) != 0 ]; then
    echo "error: CONCURRENCY: $c does not divide 1000 (the callers would share keys);" \
      "try 1 2 4 5 8 10 20 25 40 50 100 ..." >&2
    exit 2
  fi
done
for m in $SQLITE_SYNC; do
  case "$m" in normal | full) ;; *) echo "error: SQLITE_SYNC: \`$m\` is not normal or full" >&2; exit 2 ;; esac
done

RUN=$BENCH_DIR/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
SQLITE_DIR=${SQLITE_DIR:-$RUN/sqlite}
mkdir -p "$SQLITE_DIR"
RESULTS=$RUN/results.tsv
: > "$RESULTS"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "error: installing $* needs root (or sudo)" >&2
    exit 1
  fi
}

# --- redis-server: apt-get when missing ---------------------------------------------------
if [ ! -x /usr/bin/redis-server ] || ! command -v redis-cli >/dev/null 2>&1 ||
  ! command -v redis-benchmark >/dev/null 2>&1; then
  echo "== installing redis-server and redis-tools (apt-get)"
  ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    redis-server redis-tools >/dev/null
  # The package may start a system-wide server on 6379; this benchmark starts its own.
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
fi

# --- opsdroid 0.31 with the modules its sqlite and redis databases import, in a venv -------
VENV=$BENCH_DIR/opsdroid-venv
if ! "$VENV/bin/python" -c 'import opsdroid, pkg_resources, aiosqlite, redis.asyncio' 2>/dev/null; then
  echo "== installing opsdroid 0.31.0 into $VENV"
  "$PY" -m venv "$VENV"
  # opsdroid 0.31 imports pkg_resources, which setuptools >= 81 no longer ships; its
  # database-sqlite and database-redis extras are aiosqlite and redis (redis.asyncio),
  # pinned here so reruns measure the same code.
  "$VENV/bin/pip" install -q 'opsdroid[database-sqlite,database-redis]==0.31.0' \
    'aiosqlite==0.22.1' 'redis==8.1.0' 'setuptools<81'
fi
mkdir -p "$BENCH_DIR/opsdroid-xdg"

# --- mem-bench, release -------------------------------------------------------------------
if [ -n "${MEM_BENCH:-}" ]; then
  BIN=$MEM_BENCH
elif [ " $SIDES " = " opsdroid " ]; then
  BIN=""
else
  echo "== building mem-bench (release)"
  cargo build --release --locked -p connector-bench --bin mem-bench
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  BIN=${TARGET_DIR:-$ROOT/target}/release/mem-bench
fi

# --- one redis-server on a free loopback port ---------------------------------------------
REDIS_PID=""
cleanup() {
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$SQLITE_DIR"/mem-bench.* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REDIS_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
case " $BACKENDS " in *" redis "*)
  mkdir -p "$RUN/redis"
  /usr/bin/redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$RUN/redis" --protected-mode yes > "$RUN/redis/redis.out" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server died:"; cat "$RUN/redis/redis.out"; exit 1; }
    sleep 0.1
  done
  [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] ||
    { echo "redis-server not ready after 10 s"; exit 1; }
  echo "== redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID, no persistence)"
  ;;
esac

# --- the runs -----------------------------------------------------------------------------
failed=0
# bench SIDE BACKEND MODE C REP: one run; appends "SIDE BACKEND MODE C REP OPS OPS_PER_SEC"
# to the results. MODE: ours sqlite: normal|full; opsdroid sqlite: journal-full; redis: -.
bench() {
  local side=$1 backend=$2 mode=$3 conc=$4 rep=$5 ops args=() out rc=0 dir=""
  case "$side/$backend/$mode" in
    ours/sqlite/full) ops=$OPS_SQLITE_FULL ;; ours/sqlite/*) ops=$OPS_SQLITE ;;
    ours/redis/*) ops=$OPS_REDIS ;;
    opsdroid/sqlite/*) ops=$OPSDROID_OPS_SQLITE ;; opsdroid/redis/*) ops=$OPSDROID_OPS_REDIS ;;
  esac
  if [ "$backend" = sqlite ]; then
    dir=$(mktemp -d "$SQLITE_DIR/mem-bench.XXXXXX")
    args=(--path "$dir/memory.db" --table memory)
    [ "$side" = ours ] && args+=(--synchronous "$mode")
  else
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
    args=(--redis-host 127.0.0.1 --redis-port "$REDIS_PORT")
  fi
  args+=(--concurrency "$conc")
  out=$RUN/$side-$backend-$mode-c$conc-r$rep.out
  echo "== $side $backend $mode, concurrency $conc: $ops iterations ($((2 * ops)) ops), rep $rep/$REPS"
  if [ "$side" = ours ]; then
    timeout -k 10 "$RUN_TIMEOUT" "$BIN" --backend "$backend" --ops "$ops" "${args[@]}" \
      > "$out" 2> "$out.err" || rc=$?
  else
    XDG_DATA_HOME=$BENCH_DIR/opsdroid-xdg timeout -k 10 "$RUN_TIMEOUT" \
      "$VENV/bin/python" bench/opsdroid_memory.py --backend "$backend" --ops "$ops" "${args[@]}" \
      > "$out" 2> "$out.err" || rc=$?
  fi
  [ -n "$dir" ] && rm -rf "$dir"
  local rate
  rate=$(sed -n 's/^ops_per_sec=\([0-9.eE+-]*\)$/\1/p' "$out" | tail -1)
  if [ "$rc" != 0 ] || [ -z "$rate" ]; then
    echo "   FAILED (exit $rc$([ "$rc" = 124 ] && echo ", timed out after ${RUN_TIMEOUT} s"))"
    tail -n 5 "$out" "$out.err" | sed 's/^/   /'
    failed=1
    return 0
  fi
  echo "   ops_per_sec=$rate"
  echo "$side $backend $mode $conc $rep $ops $rate" >> "$RESULTS"
}

# floor C REP: redis-benchmark's SET then GET, C connections with one command in flight on
# each, values the size of the benchmark's JSON object, OPS_REDIS of each.
floor() {
  local conc=$1 rep=$2 out rate
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
  echo "== floor redis: redis-benchmark -c $conc -P 1 -t set,get -n $OPS_REDIS -d 80 -r 1000, rep $rep/$REPS"
  out=$RUN/floor-redis-c$conc-r$rep.out
  if timeout -k 10 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$conc" -P 1 \
    -t set,get -n "$OPS_REDIS" -d 80 -r 1000 --csv > "$out" 2>&1; then
    # CSV rows: "SET","45000.00",... and "GET","44000.00",...: the mean time per op.
    rate=$("$PY" -c 'import csv, sys
rows = {r[0]: float(r[1]) for r in csv.reader(open(sys.argv[1])) if r and r[0] in ("SET", "GET")}
print("%.1f" % (2 / (1 / rows["SET"] + 1 / rows["GET"])))' "$out" 2>/dev/null || true)
    if [ -n "$rate" ]; then
      echo "   ops_per_sec=$rate"; echo "floor redis - $conc $rep $OPS_REDIS $rate" >> "$RESULTS"
    else
      echo "   could not read redis-benchmark's output:"; tail -n 3 "$out" | sed 's/^/   /'
    fi
  else
    echo "   redis-benchmark failed:"; tail -n 3 "$out" | sed 's/^/   /'
  fi
}

started=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  for conc in $CONCURRENCY; do
    for backend in $BACKENDS; do
      for side in $SIDES; do
        if [ "$side/$backend" = ours/sqlite ]; then
          for mode in $SQLITE_SYNC; do bench ours sqlite "$mode" "$conc" "$rep"; done
        elif [ "$backend" = sqlite ]; then
          bench "$side" sqlite journal-full "$conc" "$rep"
        else
          bench "$side" "$backend" - "$conc" "$rep"
        fi
      done
      if [ "$backend" = redis ] && [ "$FLOOR" = 1 ]; then floor "$conc" "$rep"; fi
    done
  done
done
elapsed=$(($(date +%s) - started))

# --- the table ----------------------------------------------------------------------------
echo
echo "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== SQLite files on: $(stat -f -c %T "$SQLITE_DIR") ($SQLITE_DIR); opsdroid $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("opsdroid"), "aiosqlite", v("aiosqlite"), "redis-py", v("redis"))' 2>/dev/null); redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo "== command: REPS=$REPS CONCURRENCY=\"$CONCURRENCY\" SQLITE_SYNC=\"$SQLITE_SYNC\" BACKENDS=\"$BACKENDS\" SIDES=\"$SIDES\" OPS_SQLITE=$OPS_SQLITE OPS_SQLITE_FULL=$OPS_SQLITE_FULL OPS_REDIS=$OPS_REDIS OPSDROID_OPS_SQLITE=$OPSDROID_OPS_SQLITE OPSDROID_OPS_REDIS=$OPSDROID_OPS_REDIS bash bench/memory.sh   (runs took ${elapsed} s; results: $RESULTS)"
echo
"$PY" - "$RESULTS" "$BACKENDS" "$CONCURRENCY" "$SQLITE_SYNC" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
backends, concs, syncs = sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
runs = {}
for side, backend, mode, conc, rep, ops, rate in rows:
    runs.setdefault((side, backend, mode, conc), []).append(float(rate))

def med(*key):
    rs = runs.get(key)
    return statistics.median(rs) if rs else None

def num(v):
    return f"{v:,.0f}" if v is not None else "-"

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"

MODES = {"normal": "WAL, synchronous=normal", "full": "WAL, synchronous=full"}
print("| backend | ours: mode | concurrency | ours ops/s (median) | opsdroid ops/s (median) "
      "| ours / opsdroid | floor ops/s (median) | ours / floor |")
print("|---|---|---|---|---|---|---|---|")
for conc in concs:
    for b in backends:
        if b == "sqlite":
            ops = med("opsdroid", "sqlite", "journal-full", conc)
            for m in syncs:
                ours = med("ours", "sqlite", m, conc)
                print(f"| sqlite | {MODES[m]} | {conc} | {num(ours)} | {num(ops)} "
                      f"| {ratio(ours, ops)} | - | - |")
        else:
            ours, ops, fl = (med(s, b, "-", conc) for s in ("ours", "opsdroid", "floor"))
            print(f"| {b} | - | {conc} | {num(ours)} | {num(ops)} | {ratio(ours, ops)} "
                  f"| {num(fl)} | {ratio(ours, fl)} |")
print()
print("ours / opsdroid: the project's target is >= 10x. opsdroid's SQLite has one mode (rollback")
print("journal, synchronous=FULL, a DELETE and an INSERT per put): the same figure on both SQLite")
print("rows. Floor (redis only): redis-benchmark -c C -P 1, SET and GET of 80-byte values: C")
print("connections, one command in flight on each (ours multiplexes its C callers on one connection).")
print()
print("| run | backend | mode | concurrency | runs | min | median | max |")
print("|---|---|---|---|---|---|---|---|")
for (side, backend, mode, conc), rs in runs.items():
    print(f"| {side} | {backend} | {mode} | {conc} | {len(rs)} | {num(min(rs))} "
          f"| {num(statistics.median(rs))} | {num(max(rs))} |")
print()
print("| run | backend | mode | concurrency | rep | iterations | ops/s |")
print("|---|---|---|---|---|---|---|")
for side, backend, mode, conc, rep, ops, rate in rows:
    print(f"| {side} | {backend} | {mode} | {conc} | {rep} | {int(ops)} | {float(rate):,.0f} |")
PY
exit "$failed"
