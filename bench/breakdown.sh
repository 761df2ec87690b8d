#!/usr/bin/env bash
# Where a websocket echo's cost goes, in measures that repeat from run to run (unlike timings
# on a noisy machine): for our `bot` (websocket connector + echo skill) and the floor
# (`ws-echo`), each loaded by `ws-load` with CLIENTS clients x MSGS messages:
#
#   1. user-space instructions per echo (valgrind's callgrind, counters zeroed after a
#      warm-up and dumped after the measured run), with the inclusive cost of the stages of
#      our event path: socket task, framing (tungstenite), routing, the conversation's task,
#      the skill, respond, dispatch, the write, the allocator;
#   2. system calls per echo (strace -c -f attached for the measured run only);
#      (glibc's memset and memcpy kept off `rep` string instructions, which valgrind would
#      count byte by byte: see TUNABLES below);
#   3. heap allocations and bytes per echo (valgrind's DHAT, two runs of different lengths,
#      the difference divided by the difference in echoes, so start-up and shutdown cancel).
#
#   bash bench/breakdown.sh
#   CLIENTS=1000 MSGS=20 FRAME=json BOT=/path/to/another/bot bash bench/breakdown.sh
#
# Options (environment): CLIENTS=100, MSGS=100 (per client; DHAT's second run doubles it),
# STAGES=1 (build without the release profile's LTO, so the stages are not inlined away),
# CACHE=1 (callgrind also simulates the caches and prints misses per echo: I1mr/D1mr/D1mw
# are first-level misses, ILmr/DLmr/DLmw last-level ones), CACHE_LL=524288,8,64 (the last
# level valgrind simulates: this one is a 512 KiB second-level cache, as one core of the
# machine has; by default valgrind takes the machine's last level, here a 512 MiB one that
# nothing misses), CACHE_I1=32768,8,64 (the first-level instruction cache valgrind simulates;
# by default the machine's: a larger one shows how much code an echo runs through, as the
# misses drop once it fits),
# FRAME=text (ours; the floor always gets text), SERVERS="ours floor", PHASES="cg strace dhat"
# (add "atomics" for the atomic read-modify-writes per echo by function, counted per
# instruction: ATOMICS_TOP=25 functions, ATOMICS_LINES=1 to show each atomic's inlined call
# chain; needs binutils' objdump and addr2line. Add "perf" for a timer-sampled profile in real
# time, PERF_SECONDS=3 of it, PERF_TOP=15 user-space symbols: needs perf, `apt-get install
# linux-perf`; the load must outlast the sampling, so give MSGS=1000 or so at 1000 clients),
# BOT (a `bot` binary
# to measure instead of this checkout's), PORT_BASE=18500, BENCH_DIR=/tmp/connector-bench.
# Needs valgrind and strace (`apt-get install valgrind strace`). Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-100}
MSGS=${MSGS:-100}
FRAME=${FRAME:-text}
SERVERS=${SERVERS:-"ours floor"}
PORT=${PORT_BASE:-18500}
BENCH_DIR=${BENCH_DIR:-/tmp/connector-bench}

for tool in valgrind callgrind_control callgrind_annotate strace; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install valgrind strace)" >&2; exit 1; }
done
case " ${PHASES:-cg strace dhat} " in *" atomics "*)
  for tool in objdump addr2line; do
    command -v "$tool" >/dev/null || { echo "PHASES=atomics needs $tool (apt-get install binutils)" >&2; exit 1; }
  done
esac
case " ${PHASES:-cg strace dhat} " in *" perf "*)
  command -v perf >/dev/null || { echo "PHASES=perf needs perf (apt-get install linux-perf)" >&2; exit 1; }
esac
ulimit -n 65536 2>/dev/null || true

cd "$ROOT"
if [ "${STAGES:-0}" = 1 ]; then
  # The release profile's fat LTO inlines the stages into one another, so their rows would
  # read "inlined": STAGES=1 builds without it (cargo's default release settings) in a
  # target directory of its own, so that switching back and forth rebuilds nothing.
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
  export CARGO_TARGET_DIR=$ROOT/target/breakdown-stages
fi
echo "== building (release${STAGES:+, STAGES=$STAGES})"
cargo build --release --bin bot --bin ws-load --bin ws-echo
TARGET_DIR=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
BIN=${TARGET_DIR:-$ROOT/target}/release
BOT=${BOT:-$BIN/bot}
RUN=$BENCH_DIR/breakdown-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"

# valgrind counts each byte a `rep stosb` or `rep movsb` moves as one instruction: glibc's
# memset and memcpy use those above a size threshold, so the memset tungstenite runs over its
# 4 KiB read buffer before every read attempt would count 4,100 instructions (a few dozen
# cycles in fact). Under callgrind, glibc is told to use its vector loops at every size.
TUNABLES=glibc.cpu.x86_rep_stosb_threshold=0x7fffffff:glibc.cpu.x86_rep_movsb_threshold=0x7fffffff

PID=""
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# start KIND WRAPPER...: starts KIND on a fresh port under WRAPPER (e.g. valgrind ...).
start() {
  local kind=$1; shift
  PORT=$((PORT + 1))
  case $kind in
    ours)
      cat > "$RUN/bot-$PORT.yaml" <<YAML
welcome-message: false
logging:
  level: error
web:
  host: 127.0.0.1
  port: $PORT
connectors:
  websocket:
    max-connections: 2000
skills:
  echo: {}
YAML
      "$@" "$BOT" --config "$RUN/bot-$PORT.yaml" > "$RUN/$kind-$PORT.log" 2>&1 &
      URL=http://127.0.0.1:$PORT; PROTO=opsdroid; FR=$FRAME ;;
    floor)
      "$@" "$BIN/ws-echo" --addr "127.0.0.1:$PORT" > "$RUN/$kind-$PORT.log" 2>&1 &
      URL=ws://127.0.0.1:$PORT/; PROTO=plain; FR=text ;;
  esac
  PID=$!
  for _ in $(seq 1 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && { sleep 0.3; return 0; }
    kill -0 "$PID" 2>/dev/null || { echo "$kind exited:" >&2; tail "$RUN/$kind-$PORT.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "$kind not ready" >&2; exit 1
}

# load N [WARMUP]: one ws-load run; prints the echoes it counted.
load() {
  "$BIN/ws-load" --url "$URL" --protocol "$PROTO" --frame "$FR" --clients "$CLIENTS" \
    --messages "$1" --warmup "${2:-0}" --json --label x | tail -1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["echoes"])'
}

# callgrind KIND OUT [OPTION...]: KIND under callgrind (with the options), warmed up; counters
# zeroed, MSGS messages per client measured, then dumped to OUT.1. Sets `echoes`.
callgrind() {
  local kind=$1 out=$2; shift 2
  start "$kind" env "GLIBC_TUNABLES=$TUNABLES" \
    valgrind --tool=callgrind "$@" --callgrind-out-file="$out"
  load 5 > /dev/null
  callgrind_control --zero "$PID" > /dev/null 2>&1
  echoes=$(load "$MSGS")
  callgrind_control --dump=measured "$PID" > /dev/null 2>&1
  sleep 1
  stop
}

for server in $SERVERS; do
  echo
  echo "== $server: $CLIENTS clients x $MSGS messages ($([ "$server" = floor ] && echo text || echo "$FRAME") frames)"

  # 1. Instructions.
  case " ${PHASES:-cg strace dhat} " in *" cg "*)
  cache=(); [ "${CACHE:-0}" = 1 ] && cache=(--cache-sim=yes ${CACHE_LL:+--LL=$CACHE_LL} ${CACHE_I1:+--I1=$CACHE_I1})
  callgrind "$server" "$RUN/$server.cg" "${cache[@]}"
  dump=$RUN/$server.cg.1   # callgrind numbers the dumps it is asked for
  if [ "$server" = ours ]; then
    stages=(
      "every task on the runtime (the sockets')=TrackedFuture<F> as core::future::future::Future>::poll"
      "socket task: reading frames (tungstenite read_frame)=FrameCodec::read_frame"
      "socket task: frame to event (to_event)=connector_websocket::socket::to_event"
      "socket task: parse until queued (Conversation::parse)=connector_core::conversation::Conversation::parse"
      "socket task: its conversation's runs (Driven::poll_run)=connector_core::route::driven::Driven::poll_run"
      "  next event when another task queued one (route::Shared::next)=connector_core::route::Shared::next"
      "  planning (Skills::plan)=Skills>::plan|skill::plan::.*::plan"
      "  skill, respond, dispatch, write (run_guarded)=connector_core::worker::run_guarded"
      "  respond (prepare_response)=connector_core::respond::prepare_response"
      "  the connector's send (Outbox::push, the write included)=connector_websocket::(outbox::Outbox|registry::Outbox|Websocket)::push"
    )
  else
    stages=(
      "the echo task (ws_echo::echo)=ws_echo::echo"
      "  reading frames (tungstenite read_frame)=FrameCodec::read_frame"
    )
  fi
  if [ "${CACHE:-0}" = 1 ]; then
    # The simulated caches (valgrind's model of this machine's L1 and last level): misses
    # per echo, the part of the cost instruction counts do not show.
    callgrind_annotate --auto=no --threshold=100 "$dump" 2>/dev/null | python3 -c '
import sys
lines = sys.stdin.read().splitlines()
events = next(l.split(":", 1)[1].split() for l in lines if l.startswith("Events shown:"))
totals = [t for t in next(l for l in lines if "PROGRAM TOTALS" in l).split() if t[0].isdigit()]
values = [int(v.replace(",", "")) for v in totals[: len(events)]]
echoes = int(sys.argv[1])
print("simulated cache, per echo: " + ", ".join(f"{e} {v / echoes:,.1f}" for e, v in zip(events, values)))
' "$echoes"
  fi
  python3 "$ROOT/bench/callgrind_costs.py" "$dump" "$echoes" "${stages[@]}" \
    "self:allocator (own cost)=^(malloc|free|realloc|calloc|_int_malloc|_int_free|_int_realloc|cfree|malloc_consolidate|tcache_.*)$" \
    "self:memset (own cost)=^__memset" \
    "self:memcpy (own cost)=^__mem(cpy|move)" \
    "self:tokio scheduler, timers, wakers (own cost)=^tokio::runtime::(scheduler|task|time|context)"

  ;; esac

  # 1b. Atomic read-modify-writes (reference counts, locks, wakers), counted per instruction.
  case " ${PHASES:-cg strace dhat} " in *" atomics "*)
  callgrind "$server" "$RUN/$server.atomics" --dump-instr=yes
  program=$BOT; [ "$server" = floor ] && program=$BIN/ws-echo
  python3 "$ROOT/bench/atomics.py" "$RUN/$server.atomics.1" "$program" "$echoes" \
    "${ATOMICS_TOP:-25}" "${ATOMICS_LINES:+lines}"
  ;; esac

  # 2. System calls.
  case " ${PHASES:-cg strace dhat} " in *" strace "*)
  start "$server"
  load 5 > /dev/null
  strace -c -f -q -p "$PID" -o "$RUN/$server.strace" &
  STRACE=$!
  sleep 1
  echoes=$(load "$MSGS")
  kill -INT "$STRACE"; wait "$STRACE" 2>/dev/null || true
  stop
  python3 - "$RUN/$server.strace" "$echoes" <<'PY'
import sys
path, echoes = sys.argv[1], int(sys.argv[2])
calls = {}
for line in open(path):
    parts = line.split()
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
        name = parts[-1]
        n = int(parts[3])
        calls[name] = n
total = sum(calls.values())
print(f"system calls per echo: {total / echoes:.2f} ({echoes} echoes)")
for name, n in sorted(calls.items(), key=lambda kv: -kv[1]):
    if n / echoes >= 0.005:
        print(f"  {name:<20} {n / echoes:6.3f}")
PY

  ;; esac

  # 3. Allocations: two runs, MSGS and 2 x MSGS per client.
  case " ${PHASES:-cg strace dhat} " in *" dhat "*)
  blocks=(); bytes=(); counted=()
  for n in "$MSGS" $((2 * MSGS)); do
    start "$server" valgrind --tool=dhat --dhat-out-file=/dev/null
    counted+=("$(load "$n" 5)")
    stop
    line=$(grep "Total:" "$RUN/$server-$PORT.log" | tail -1)
    bytes+=("$(echo "$line" | sed 's/.*Total: *\([0-9,]*\) bytes.*/\1/' | tr -d ,)")
    blocks+=("$(echo "$line" | sed 's/.* in \([0-9,]*\) blocks.*/\1/' | tr -d ,)")
  done
  python3 - "${counted[@]}" "${blocks[@]}" "${bytes[@]}" <<'PY'
import sys
e1, e2, b1, b2, y1, y2 = map(int, sys.argv[1:])
d = e2 - e1
print(f"heap allocations per echo: {(b2 - b1) / d:.2f} blocks, {(y2 - y1) / d:,.0f} bytes ({d} echoes apart)")
PY
  ;; esac

  # 4. Where the time goes in real time (PHASES=perf, not run by default): perf samples the
  # server on a timer while the load runs (cpu-clock: a VM without hardware counters still
  # has it). Instruction counts miss what a cache miss or a line taken from the other core
  # costs; these samples include it, and the kernel's part. Noisier than the counts: a
  # symbol's share moves by about 0.2 points between runs.
  case " ${PHASES:-cg strace dhat} " in *" perf "*)
  start "$server"
  load 5 > /dev/null
  load "$MSGS" > /dev/null &
  LOAD=$!
  sleep 1
  perf record -q -e cpu-clock -F 1999 -p "$PID" -o "$RUN/$server.perf" -- sleep "${PERF_SECONDS:-3}" \
    > /dev/null 2>&1 || echo "perf record failed (perf_event_paranoid?)" >&2
  wait "$LOAD" || true
  stop
  if [ -s "$RUN/$server.perf" ]; then
    echo "real-time samples (perf, cpu-clock), share of the server's time:"
    perf report -i "$RUN/$server.perf" --stdio --sort dso 2>/dev/null |
      grep -E '^ +[0-9]' | head -4 | sed 's/^/  /'
    echo "  user-space symbols, top ${PERF_TOP:-15}:"
    perf report -i "$RUN/$server.perf" --stdio --sort dso,sym 2>/dev/null |
      grep -E '^ +[0-9]' | grep -v '\[k\]' | head -"${PERF_TOP:-15}" | cut -c1-140 | sed 's/^/  /'
  fi
  ;; esac
done
echo
echo "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); results in $RUN"
