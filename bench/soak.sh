#!/usr/bin/env bash
# Soak: our `bot` (websocket connector + echo skill) under ROUNDS rounds of CLIENTS websocket
# clients x MESSAGES messages (every round opens fresh connections and closes them: the
# clients disconnect and reconnect), while a churn loop keeps opening connections and
# dropping them at random moments (SIGKILLed load generators, so no closing handshake).
# Reports, per round and in total, the replies lost, misrouted (arrived at another socket),
# corrupted (or duplicated: an unexpected reply fails the next check) and late, and the
# server's RSS before the first round and after the last. Not a CI test.
#
#   bash bench/soak.sh                      # 1000 clients x 1000 messages (10 rounds of 100)
#   CLIENTS=100 ROUNDS=3 MESSAGES=50 bash bench/soak.sh
#
# Options (environment): CLIENTS=1000 ROUNDS=10 MESSAGES=100 (per client per round)
#   CHURN=50 (connections per churn burst)  PORT=18400  SOAK_DIR=/tmp/connector-soak
# Loopback only; every process this script starts is stopped when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-1000}
ROUNDS=${ROUNDS:-10}
MESSAGES=${MESSAGES:-100}
CHURN=${CHURN:-50}
PORT=${PORT:-18400}
SOAK_DIR=${SOAK_DIR:-/tmp/connector-soak}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cd "$ROOT"
echo "== building (release)"
cargo build --release --bin bot --bin ws-load
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${TARGET_DIR:-$ROOT/target}/release

RUN=$SOAK_DIR/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
SERVER_PID=""
CHURN_PID=""
cleanup() {
  [ -n "$CHURN_PID" ] && kill "$CHURN_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

cat > "$RUN/bot.yaml" <<YAML
welcome-message: false
logging:
  level: error
web:
  host: 127.0.0.1
  port: $PORT
connectors:
  websocket:
    max-connections: $((CLIENTS + 4 * CHURN + 100))
skills:
  echo: {}
YAML
"$BIN/bot" --config "$RUN/bot.yaml" > "$RUN/bot.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the bot exited:" >&2; cat "$RUN/bot.log" >&2; exit 1; }
  sleep 0.05
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# Churn: bursts of clients that talk and are killed at a random moment.
churn() {
  while true; do
    "$BIN/ws-load" --url "http://127.0.0.1:$PORT" --clients "$CHURN" --messages 1000000 \
      --warmup 0 > /dev/null 2>&1 &
    local pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# One warm-up round, so the start figure is not the empty process.
"$BIN/ws-load" --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --messages 5 --warmup 0 \
  > /dev/null
START_RSS=$(rss)
churn &
CHURN_PID=$!

total_lost=0 total_mis=0 total_cor=0 total_late=0 total_ok=0 failed=0
printf '%-6s %10s %6s %10s %10s %6s %8s\n' round echoes lost misrouted corrupted late rss_kib
for round in $(seq 1 "$ROUNDS"); do
  line=$("$BIN/ws-load" --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" \
    --messages "$MESSAGES" --warmup 0 --json 2> "$RUN/round-$round.err" | tail -n 1) || failed=1
  echo "$line" >> "$RUN/rounds.jsonl"
  read -r ok lost mis cor late < <(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print(d["echoes"], d["lost"], d["misrouted"], d["corrupted"], d["late"])' "$line")
  total_ok=$((total_ok + ok)); total_lost=$((total_lost + lost)); total_mis=$((total_mis + mis))
  total_cor=$((total_cor + cor)); total_late=$((total_late + late))
  printf '%-6s %10s %6s %10s %10s %6s %8s\n' "$round" "$ok" "$lost" "$mis" "$cor" "$late" "$(rss)"
done
kill "$CHURN_PID" 2>/dev/null || true
wait "$CHURN_PID" 2>/dev/null || true
CHURN_PID=""
sleep 1
END_RSS=$(rss)
echo
echo "echoes $total_ok, lost $total_lost, misrouted $total_mis, corrupted/duplicated $total_cor, late $total_late"
echo "server RSS: ${START_RSS} KiB after warm-up, ${END_RSS} KiB at the end"
echo "results: $RUN"
[ "$failed" = 0 ] && [ $((total_lost + total_mis + total_cor)) = 0 ]
