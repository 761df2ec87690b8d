#!/usr/bin/env bash
# The memory benchmark: our memory (`mem-bench`, the bench crate's binary) against opsdroid
# 0.31's (`opsdroid.memory.Memory`, driven by bench/opsdroid_memory.py in a venv), on SQLite
# and on Redis, with the same workload: N iterations of (put `key-{i % 1000}` = a small JSON
# object, then get it back), one after the other; a put and a get each count as one op.
# Prints a table of medians, the individual runs and the machine.
#
#   bash bench/memory.sh
#   REPS=5 BACKENDS=redis bash bench/memory.sh
#   SQLITE_DIR=/dev/shm bash bench/memory.sh        # SQLite on tmpfs: no disk flushes
#
# Options (environment):
#   REPS=3                      interleaved repetitions of: ours sqlite, opsdroid sqlite,
#                               ours redis, opsdroid redis (the table shows medians)
#   BACKENDS="sqlite redis"     the backends, in this order within a repetition
#   SIDES="ours opsdroid"       who runs (SIDES=opsdroid: opsdroid's figures alone, no build)
#   OPS_SQLITE=10000 OPS_REDIS=50000                 iterations per run of ours
#   OPSDROID_OPS_SQLITE=1000 OPSDROID_OPS_REDIS=20000  iterations per run of opsdroid (much
#                               slower; ops/s is what is compared)
#   SQLITE_DIR=$BENCH_DIR/run-*/sqlite   where each run's fresh SQLite file is made (a new
#                               directory per run); its filesystem decides what a commit costs
#   RUN_TIMEOUT=300             seconds one run may take before it is killed (and counted failed)
#   FLOOR=1                     also measure redis-benchmark (1 client, no pipelining, SET+GET):
#                               the round trips alone, what no client can beat (FLOOR=0: skip)
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
OPS_SQLITE=${OPS_SQLITE:-10000}
OPS_REDIS=${OPS_REDIS:-50000}
OPSDROID_OPS_SQLITE=${OPSDROID_OPS_SQLITE:-1000}
OPSDROID_OPS_REDIS=${OPSDROID_OPS_REDIS:-20000}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
FLOOR=${FLOOR:-1}
PY=${PYTHON:-python3}

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
# bench SIDE BACKEND REP: one run; appends "SIDE BACKEND REP OPS OPS_PER_SEC" to the results.
bench() {
  local side=$1 backend=$2 rep=$3 ops args=() out rc=0 dir=""
  case "$side/$backend" in
    ours/sqlite) ops=$OPS_SQLITE ;; ours/redis) ops=$OPS_REDIS ;;
    opsdroid/sqlite) ops=$OPSDROID_OPS_SQLITE ;; opsdroid/redis) ops=$OPSDROID_OPS_REDIS ;;
  esac
  if [ "$backend" = sqlite ]; then
    dir=$(mktemp -d "$SQLITE_DIR/mem-bench.XXXXXX")
    args=(--path "$dir/memory.db" --table memory)
  else
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
    args=(--redis-host 127.0.0.1 --redis-port "$REDIS_PORT")
  fi
  out=$RUN/$side-$backend-r$rep.out
  echo "== $side $backend: $ops iterations ($((2 * ops)) ops), rep $rep/$REPS"
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
  echo "$side $backend $rep $ops $rate" >> "$RESULTS"
}

for rep in $(seq 1 "$REPS"); do
  for backend in $BACKENDS; do
    for side in $SIDES; do bench "$side" "$backend" "$rep"; done
    if [ "$backend" = redis ] && [ "$FLOOR" = 1 ]; then
      # The floor: redis-benchmark's SET then GET, one connection, one command in flight,
      # values the size of the benchmark's JSON object.
      redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
      echo "== floor redis: redis-benchmark -c 1 -P 1 -t set,get -n $OPS_REDIS -d 80 -r 1000, rep $rep/$REPS"
      out=$RUN/floor-redis-r$rep.out
      if timeout -k 10 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 1 -P 1 \
        -t set,get -n "$OPS_REDIS" -d 80 -r 1000 --csv > "$out" 2>&1; then
        # CSV rows: "SET","45000.00",... and "GET","44000.00",...: the mean time per op.
        rate=$("$PY" -c 'import csv, sys
rows = {r[0]: float(r[1]) for r in csv.reader(open(sys.argv[1])) if r and r[0] in ("SET", "GET")}
print("%.1f" % (2 / (1 / rows["SET"] + 1 / rows["GET"])))' "$out" 2>/dev/null || true)
        if [ -n "$rate" ]; then
          echo "   ops_per_sec=$rate"; echo "floor redis $rep $OPS_REDIS $rate" >> "$RESULTS"
        else
          echo "   could not read redis-benchmark's output:"; tail -n 3 "$out" | sed 's/^/   /'
        fi
      else
        echo "   redis-benchmark failed:"; tail -n 3 "$out" | sed 's/^/   /'
      fi
    fi
  done
done

# --- the table ----------------------------------------------------------------------------
echo
echo "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
echo "== SQLite files on: $(stat -f -c %T "$SQLITE_DIR") ($SQLITE_DIR); opsdroid $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("opsdroid"), "aiosqlite", v("aiosqlite"), "redis-py", v("redis"))' 2>/dev/null)"
echo "== command: REPS=$REPS BACKENDS=\"$BACKENDS\" SIDES=\"$SIDES\" OPS_SQLITE=$OPS_SQLITE OPS_REDIS=$OPS_REDIS OPSDROID_OPS_SQLITE=$OPSDROID_OPS_SQLITE OPSDROID_OPS_REDIS=$OPSDROID_OPS_REDIS bash bench/memory.sh   (results: $RESULTS)"
echo
"$PY" - "$RESULTS" "$BACKENDS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
backends = sys.argv[2].split()
runs = {}
for side, backend, rep, ops, rate in rows:
    runs.setdefault((side, backend), []).append((int(rep), int(ops), float(rate)))

def med(side, backend):
    rs = runs.get((side, backend))
    return statistics.median(r[2] for r in rs) if rs else None

def num(v):
    return f"{v:,.0f}" if v is not None else "-"

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"

floor = any(k[0] == "floor" for k in runs)
head = "| backend | ours ops/s (median) | opsdroid ops/s (median) | ratio |"
line = "|---|---|---|---|"
if floor:
    head += " floor ops/s (median) | ours / floor |"
    line += "---|---|"
print(head)
print(line)
for b in backends:
    ours, ops = med("ours", b), med("opsdroid", b)
    row = f"| {b} | {num(ours)} | {num(ops)} | {ratio(ours, ops)} |"
    if floor:
        fl = med("floor", b)
        row += f" {num(fl)} | {ratio(ours, fl)} |"
    print(row)
print()
print("Ratio: ours / opsdroid (the project's target is >= 10x). Floor (redis only): redis-benchmark,")
print("one connection, one command in flight, SET and GET of 80-byte values: the round trips alone.")
print()
print("| run | backend | rep | iterations | ops/s |")
print("|---|---|---|---|---|")
for side, backend, rep, ops, rate in rows:
    print(f"| {side} | {backend} | {rep} | {int(ops)} | {float(rate):,.0f} |")
PY
exit "$failed"
