#!/usr/bin/env bash
# Builds the stand-alone bot (its own workspace: connector-core, connector-websocket, tokio and
# anyhow only), starts it on a free loopback port, and drives it with ws-load over opsdroid's
# websocket protocol: every reply must come back to its sender, and the bot's own `audit`
# connector must have recorded every message. Bounded: ws-load times out each reply, and the
# bot is stopped (SIGTERM, then SIGKILL) whatever happens.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLIENTS=5
MESSAGES=20

cargo build --locked --manifest-path examples/standalone/Cargo.toml
cargo build --locked -p connector-bench --bin ws-load

work=$(mktemp -d)
bot_pid=
cleanup() {
  if [ -n "$bot_pid" ] && kill -0 "$bot_pid" 2>/dev/null; then
    kill -TERM "$bot_pid" 2>/dev/null || true
    sleep 2
    kill -KILL "$bot_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: one nothing answers on.
for _ in $(seq 1 50); do
  port=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
done
cat > "$work/configuration.yaml" <<YAML
connectors:
  websocket: {bot-name: auditbot, max-connections: 20}
  audit: {file: $work/audit.log}
web: {host: 127.0.0.1, port: $port}
YAML

"$CARGO_TARGET_DIR/debug/standalone-bot" "$work/configuration.yaml" 2>"$work/bot.log" &
bot_pid=$!
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$bot_pid" 2>/dev/null || { echo "the stand-alone bot exited:" >&2; cat "$work/bot.log" >&2; exit 1; }
  sleep 0.1
done

"$CARGO_TARGET_DIR/debug/ws-load" --url "http://127.0.0.1:$port" --clients "$CLIENTS" \
  --messages "$MESSAGES" --warmup 0 --frame json --timeout 10

kill -TERM "$bot_pid"
wait "$bot_pid" || { echo "the stand-alone bot did not exit 0 on SIGTERM" >&2; cat "$work/bot.log" >&2; exit 1; }
bot_pid=
lines=$(wc -l < "$work/audit.log")
want=$((CLIENTS * MESSAGES))
if [ "$lines" -ne "$want" ]; then
  echo "the audit connector recorded $lines messages, expected $want" >&2
  exit 1
fi
echo "stand-alone bot: $want echoes over the websocket protocol, $lines audit lines: ok"
