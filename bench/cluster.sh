#!/usr/bin/env bash
# The websocket echo through a bot on several processes (connector-cluster on NATS
# JetStream) against the same bot in one process, in one run on this machine: one connector
# process and 1 or 2 skill processes, CLIENTS clients x MSGS messages (one in flight per
# client), REPS interleaved repetitions. For each: echoes/s, p50/p99, and CPU per echo summed
# over the bot's processes (and with nats-server's added), from /proc; and what does not
# depend on the machine's noise: NATS messages and bytes into the server per echo, and stream
# messages (batches of events) per echo, from nats-server's monitoring endpoint.
#
#   bash bench/cluster.sh
#   CLIENTS=100 MSGS=200 REPS=3 SETUPS="single 1+1 1+2" PARTITIONS=16 bash bench/cluster.sh
#   NODE=/path/to/an/older/cluster-node bash bench/cluster.sh   # measure another build
#
# Needs nats-server (bash scripts/test.sh installs it). Loopback only; every process it
# starts is stopped when it ends.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-100}
MSGS=${MSGS:-200}
REPS=${REPS:-3}
SETUPS=${SETUPS:-"single 1+1 1+2"}
PARTITIONS=${PARTITIONS:-16}
PORT=${PORT_BASE:-18900}
BENCH_DIR=${BENCH_DIR:-/tmp/connector-bench}
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$NATS" ] || { echo "needs nats-server (bash scripts/test.sh installs it)" >&2; exit 1; }

cd "$ROOT"
echo "== building (release)"
cargo build --release -p connector-tests --bin cluster-node
cargo build --release -p connector-bench --bin ws-load
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
NODE=${NODE:-$TARGET_DIR/release/cluster-node}
LOAD=$TARGET_DIR/release/ws-load
RUN=$BENCH_DIR/cluster-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
TCK=$(getconf CLK_TCK)

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# ticks PID...: user + system clock ticks of the processes, summed.
ticks() {
  local sum=0 pid
  for pid in "$@"; do
    set -- $(sed 's/^.*) //' "/proc/$pid/stat")
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}

# nats_counts MONITOR_PORT: messages and bytes into the server so far, and messages stored
# in the bot's event stream so far (its last sequence).
nats_counts() {
  python3 - "$1" <<'PY'
import json, sys, urllib.request
get = lambda path: json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{path}", timeout=5))
stored = sum(s["state"]["last_seq"] for a in get("/jsz?streams=true").get("account_details", [])
             for s in a.get("stream_detail", []) if s["name"].endswith("-events"))
varz = get("/varz")
print(varz["in_msgs"], varz["in_bytes"], stored)
PY
}

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; return 1
}

# run SETUP REP: starts nats-server and the bot's processes, runs the load, prints a row.
run() {
  local setup=$1 rep=$2 nats_port web mon skills dir cfg pids=() nats_pid
  PORT=$((PORT + 3)); nats_port=$PORT; web=$((PORT + 1)); mon=$((PORT + 2))
  dir=$RUN/$setup-$rep; mkdir -p "$dir"
  cfg=$dir/configuration.yaml
  cat > "$cfg" <<YAML
welcome-message: false
logging:
  level: error
web:
  host: 127.0.0.1
  port: $web
connectors:
  websocket:
    max-connections: $((CLIENTS + 10))
skills:
  echo: {}
cluster:
  nats: nats://127.0.0.1:$nats_port
  name: bench
  partitions: $PARTITIONS
YAML
  "$NATS" -a 127.0.0.1 -p "$nats_port" -m "$mon" -js -sd "$dir/js" > "$dir/nats.log" 2>&1 &
  nats_pid=$!; PIDS+=("$nats_pid")
  wait_port "$nats_port"
  case $setup in
    single) skills=0; "$NODE" --config "$cfg" > "$dir/single.log" 2>&1 & pids+=($!) ;;
    1+*) skills=${setup#1+}
      "$NODE" --config "$cfg" --role connectors > "$dir/connectors.log" 2>&1 & pids+=($!)
      for i in $(seq 1 "$skills"); do
        "$NODE" --config "$cfg" --role skills > "$dir/skills-$i.log" 2>&1 & pids+=($!)
      done ;;
  esac
  PIDS+=("${pids[@]}")
  wait_port "$web"
  sleep 1 # the skill processes take their lanes
  local before nats_before after nats_after json msgs_before msgs_after
  msgs_before=$(nats_counts "$mon")
  before=$(ticks "${pids[@]}"); nats_before=$(ticks "$nats_pid")
  json=$("$LOAD" --url "http://127.0.0.1:$web" --clients "$CLIENTS" --messages "$MSGS" --warmup 20 \
    --frame text --json --label "$setup" | tail -n 1)
  after=$(ticks "${pids[@]}"); nats_after=$(ticks "$nats_pid")
  msgs_after=$(nats_counts "$mon")
  stop_all
  python3 - "$setup" "$rep" "$json" "$((after - before))" "$((nats_after - nats_before))" "$TCK" \
    $msgs_before $msgs_after <<'PY'
import json, sys
setup, rep, line, bot, nats, tck = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
in0, bytes0, stored0, in1, bytes1, stored1 = map(int, sys.argv[7:13])
n = max(line["echoes"], 1)
us = lambda t: t / tck * 1e6 / n
print(f"{setup:7} rep {rep}: {line['echoes_per_s']:9.0f} echoes/s  p50 {line['p50_us']/1000:6.2f} ms  "
      f"p99 {line['p99_us']/1000:6.2f} ms  CPU/echo bot {us(bot):6.1f} µs  +nats {us(bot + nats):6.1f} µs  "
      f"NATS msgs/echo {(in1 - in0) / n:5.3f}  bytes/echo {(bytes1 - bytes0) / n:4.0f}  "
      f"stream msgs/echo {(stored1 - stored0) / n:5.3f}  "
      f"errors {line['errors']}")
PY
}

echo "== $CLIENTS clients x $MSGS messages, text frames, $REPS repetitions (interleaved); results in $RUN"
for rep in $(seq 1 "$REPS"); do
  for setup in $SETUPS; do
    run "$setup" "$rep" | tee -a "$RUN/rows.txt"
  done
done
echo "== machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
