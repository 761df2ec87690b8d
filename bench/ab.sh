#!/usr/bin/env bash
# Two builds of `bot` against each other and the floor, interleaved (old, new, floor, old, …),
# so that a slow spell of the machine falls on all three: the server's user and system CPU
# per echo (/proc/PID/stat), echoes/s and p99 per run, then medians and the per-repetition
# ratio of each to the floor's run next to it. For a change whose effect is smaller than the
# machine's noise between separate runs of bench/websocket.sh.
#
#   OLD=/path/to/old/bot NEW=target/release/bot bash bench/ab.sh
#   CLIENTS=10 MSGS=20000 REPS=8 FRAME=json OLD=… bash bench/ab.sh
#
# Options (environment): OLD (required: a `bot` binary), NEW (this checkout's release `bot`),
# CLIENTS=1000, MSGS=200 (per client), REPS=6, FRAME=text (ours; the floor always gets text),
# PORT_BASE=18800, BENCH_DIR=/tmp/connector-bench. Loopback only; builds `ws-load` and
# `ws-echo` (release) first.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-1000}
MSGS=${MSGS:-200}
REPS=${REPS:-6}
FRAME=${FRAME:-text}
PORT=${PORT_BASE:-18800}
BENCH_DIR=${BENCH_DIR:-/tmp/connector-bench}
ulimit -n 65536 2>/dev/null || true

cd "$ROOT"
cargo build --release --bin bot --bin ws-load --bin ws-echo
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${TARGET_DIR:-$ROOT/target}/release
OLD=${OLD:?set OLD to the bot binary to compare against}
NEW=${NEW:-$BIN/bot}
RUN=$BENCH_DIR/ab-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
ROWS=$RUN/rows.txt
: > "$ROWS"

PID=""
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# start KIND: starts a server on a fresh port; sets PID, URL, PROTO, FR.
start() {
  PORT=$((PORT + 1))
  case $1 in
    old | new)
      local bin=$OLD; [ "$1" = new ] && bin=$NEW
      cat > "$RUN/bot-$PORT.yaml" <<YAML
welcome-message: false
logging: {level: error}
web: {host: 127.0.0.1, port: $PORT}
connectors:
  websocket: {max-connections: $((CLIENTS + 1000))}
skills:
  echo: {}
YAML
      "$bin" --config "$RUN/bot-$PORT.yaml" > "$RUN/$1-$PORT.log" 2>&1 &
      URL=http://127.0.0.1:$PORT; PROTO=opsdroid; FR=$FRAME ;;
    floor)
      "$BIN/ws-echo" --addr "127.0.0.1:$PORT" > "$RUN/floor-$PORT.log" 2>&1 &
      URL=ws://127.0.0.1:$PORT/; PROTO=plain; FR=text ;;
  esac
  PID=$!
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 not ready" >&2; exit 1
}

for r in $(seq 1 "$REPS"); do
  for who in old new floor; do
    start "$who"
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$PID/stat")
    "$BIN/ws-load" --url "$URL" --protocol "$PROTO" --frame "$FR" --clients "$CLIENTS" \
      --messages "$MSGS" --warmup 5 --json --label "$who" | tail -1 > "$RUN/out.json"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
    python3 - "$RUN/out.json" "$who" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" >> "$ROWS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
who, u0, s0, u1, s1, tck = sys.argv[2], *map(int, sys.argv[3:8])
e = d["echoes"]
print(who, (u1 - u0) * 1e6 / tck / e, (s1 - s0) * 1e6 / tck / e, d["echoes_per_s"], d["p99_us"], d["errors"])
PY
    stop
  done
done

echo "== $CLIENTS clients x $MSGS messages ($FRAME frames for old and new), $REPS repetitions; rows in $ROWS"
python3 - "$ROWS" <<'PY'
import statistics as st, sys
by = {}
for line in open(sys.argv[1]):
    who, *v = line.split()
    by.setdefault(who, []).append([float(x) for x in v])
floor = by["floor"]
for who in ("old", "new", "floor"):
    v = by[who]
    ratio = [(a[0] + a[1]) / (f[0] + f[1]) for a, f in zip(v, floor)]
    p99 = [a[3] / f[3] for a, f in zip(v, floor)]
    print(f"{who:5}  user {st.median(a[0] for a in v):.2f}  sys {st.median(a[1] for a in v):.2f}"
          f"  µs/echo; CPU / floor's {st.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})"
          f"  echoes/s {st.median(a[2] for a in v):,.0f}  p99 {st.median(a[3] for a in v) / 1000:.1f} ms"
          f" (/ floor's {st.median(p99):.2f})  errors {sum(a[4] for a in v):.0f}")
PY
