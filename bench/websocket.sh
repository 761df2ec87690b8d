#!/usr/bin/env bash
# The side-by-side websocket echo benchmark: our `bot` (websocket connector + echo skill), the
# floor (`ws-echo`, bare tokio-tungstenite, no framework) and opsdroid 0.31 (PyPI, in a venv,
# with an echo skill), each driven by the same load generator (`ws-load`) at 1, 10, 100 and
# 1000 clients, one message in flight per client. Prints one table with ratios to opsdroid and
# to the floor, then the memory held per idle connection (10,000 connections).
#
#   bash bench/websocket.sh
#   CLIENTS="10 100" REPS=3 SKIP_OPSDROID=1 bash bench/websocket.sh
#
# Options (environment):
#   CLIENTS="1 10 100 1000"   client counts
#   REPS=1                    runs per (server, clients); the table shows medians
#   SKIP_OPSDROID=1           leave opsdroid out (no Python needed)
#   SERVERS="ours floor opsdroid"   (add floor-same: the floor given FRAME's frames too; the
#                             floor proper always gets the bare text. With FRAME=json,
#                             floor-same echoes each JSON frame whole: the same frames in as
#                             ours, a larger one out. Ratios are given to both floors.)
#   N1=30000 TOTAL=200000 MIN_N=100   messages per client: N1 at one client, else
#                             max(MIN_N, TOTAL / clients)
#   OPS_TOTAL=20000 OPS_MIN_N=20      opsdroid (about 10x slower) gets the same per-client
#                             count capped at max(OPS_MIN_N, OPS_TOTAL / clients)
#   WARMUP=5                  unmeasured messages per client first
#   FRAME=json                frames for ours and opsdroid: json ({"message","user","socket"};
#                             opsdroid misroutes bare text once several clients connect) or text
#   IDLE=10000 HOLD=5 IDLE_SERVERS="ours floor"   the idle-memory rows (IDLE=0: none)
#   PORT_BASE=18300           loopback ports used: PORT_BASE, PORT_BASE+1, ...
#   BENCH_DIR=/tmp/connector-bench   the opsdroid venv, configurations, logs and results
#   PYTHON=python3            the interpreter for the opsdroid venv and the table
#
# Everything listens on and connects to 127.0.0.1 only; every run is bounded (ws-load times
# out each reply after 10 s); every server this script starts is stopped when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/connector-bench}
CLIENTS=${CLIENTS:-"1 10 100 1000"}
REPS=${REPS:-1}
SKIP_OPSDROID=${SKIP_OPSDROID:-0}
SERVERS=${SERVERS:-"ours floor opsdroid"}
N1=${N1:-30000}
TOTAL=${TOTAL:-200000}
MIN_N=${MIN_N:-100}
OPS_TOTAL=${OPS_TOTAL:-20000}
OPS_MIN_N=${OPS_MIN_N:-20}
WARMUP=${WARMUP:-5}
FRAME=${FRAME:-json}
IDLE=${IDLE:-10000}
HOLD=${HOLD:-5}
IDLE_SERVERS=${IDLE_SERVERS:-"ours floor"}
PORT=${PORT_BASE:-18300}
PY=${PYTHON:-python3}

if [ "$SKIP_OPSDROID" = 1 ]; then
  SERVERS=$(echo "$SERVERS" | tr ' ' '\n' | grep -vx opsdroid | tr '\n' ' ')
fi

# 1000 clients need 1000 descriptors on each side; 10,000 idle connections need more.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((IDLE > 1000 ? IDLE + 200 : 1200))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "note: open-file limit $(ulimit -n) < $need; lowering IDLE to fit" >&2
  IDLE=$(( $(ulimit -n) - 200 ))
fi

cd "$ROOT"
echo "== building (release)"
cargo build --release --bin bot --bin ws-load --bin ws-echo
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${TARGET_DIR:-$ROOT/target}/release

RUN=$BENCH_DIR/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
RESULTS=$RUN/results.jsonl
: > "$RESULTS"

# --- opsdroid: install into a venv once, with a one-line echo skill -----------------------
VENV=$BENCH_DIR/opsdroid-venv
OPS=$BENCH_DIR/opsdroid
install_opsdroid() {
  if ! "$VENV/bin/python" -c 'import opsdroid, pkg_resources, websockets' 2>/dev/null; then
    echo "== installing opsdroid 0.31.0 into $VENV"
    "$PY" -m venv "$VENV"
    # opsdroid 0.31 imports pkg_resources, which setuptools >= 81 no longer ships.
    "$VENV/bin/pip" install -q 'opsdroid==0.31.0' 'websockets>=12' 'setuptools<81'
  fi
  mkdir -p "$OPS/skill-echo" "$OPS/xdg"
  cat > "$OPS/skill-echo/__init__.py" <<'PY'
from opsdroid.skill import Skill
from opsdroid.matchers import match_regex


class EchoSkill(Skill):
    @match_regex(r"(?s).*")
    async def echo(self, message):
        await message.respond(message.text)
PY
}

# --- server lifecycle ----------------------------------------------------------------------
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# start_server KIND MAX_CONNECTIONS: starts KIND on a fresh port, sets SERVER_PID and URL.
start_server() {
  local kind=$1 max=$2 log
  PORT=$((PORT + 1))
  log=$RUN/$kind-$PORT.log
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
    max-connections: $max
skills:
  echo: {}
YAML
      "$BIN/bot" --config "$RUN/bot-$PORT.yaml" > "$log" 2>&1 &
      SERVER_PID=$!; URL=http://127.0.0.1:$PORT; PROTO=opsdroid ;;
    floor|floor-same)
      "$BIN/ws-echo" --addr "127.0.0.1:$PORT" > "$log" 2>&1 &
      SERVER_PID=$!; URL=ws://127.0.0.1:$PORT/; PROTO=plain ;;
    opsdroid)
      cat > "$RUN/opsdroid-$PORT.yaml" <<YAML
welcome-message: false
module-path: "$OPS/modules"
logging:
  level: error
  path: "$RUN/opsdroid-$PORT-internal.log"
  console: false
web:
  host: 127.0.0.1
  port: $PORT
connectors:
  websocket:
    max-connections: $max
    connection-timeout: 60
skills:
  echo:
    path: "$OPS/skill-echo"
    no-cache: true
YAML
      XDG_DATA_HOME=$OPS/xdg "$VENV/bin/opsdroid" start -f "$RUN/opsdroid-$PORT.yaml" > "$log" 2>&1 &
      SERVER_PID=$!; URL=http://127.0.0.1:$PORT; PROTO=opsdroid ;;
  esac
  # Ready when the port accepts a connection (60 s at most).
  for _ in $(seq 1 1200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      sleep 0.2
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$kind exited before it was ready:" >&2; tail -20 "$log" >&2; SERVER_PID=""; return 1
    fi
    sleep 0.05
  done
  echo "$kind not ready after 60 s" >&2; tail -20 "$log" >&2; return 1
}

# --- the runs ------------------------------------------------------------------------------
case " $SERVERS " in *" opsdroid "*) install_opsdroid ;; esac
if [ "$SKIP_OPSDROID" != 1 ]; then
  case " $IDLE_SERVERS " in *" opsdroid "*) install_opsdroid ;; esac
fi

failed=0
# Repetitions are interleaved (ours, floor, opsdroid, ours, floor, ...), so a slow spell of
# the machine falls on every server rather than on one.
for c in $CLIENTS; do
  for r in $(seq 1 "$REPS"); do
    for server in $SERVERS; do
      if [ "$c" = 1 ]; then n=$N1; else n=$((TOTAL / c)); fi
      [ "$n" -lt "$MIN_N" ] && n=$MIN_N
      if [ "$server" = opsdroid ]; then
        cap=$((OPS_TOTAL / c)); [ "$cap" -lt "$OPS_MIN_N" ] && cap=$OPS_MIN_N
        [ "$n" -gt "$cap" ] && n=$cap
      fi
      frame=$FRAME; [ "$server" = floor ] && frame=text
      echo "== $server: $c clients x $n messages ($frame frames), rep $r/$REPS"
      start_server "$server" 2000
      out=$RUN/$server-c$c-r$r.out
      rc=0
      "$BIN/ws-load" --url "$URL" --protocol "$PROTO" --frame "$frame" --clients "$c" \
        --messages "$n" --warmup "$WARMUP" --pid "$SERVER_PID" --json \
        --label "$server" > "$out" || rc=$?
      head -n -1 "$out"
      tail -n 1 "$out" | grep '^{' >> "$RESULTS" || true
      [ "$rc" = 0 ] || { echo "ws-load exited $rc for $server at $c clients"; failed=1; }
      stop_server
    done
  done
done

if [ "$IDLE" -gt 0 ]; then
  for server in $IDLE_SERVERS; do
    [ "$server" = opsdroid ] && [ "$SKIP_OPSDROID" = 1 ] && continue
    echo "== $server: $IDLE idle connections held $HOLD s"
    start_server "$server" $((IDLE + 1000))
    out=$RUN/$server-idle.out
    rc=0
    frame=$FRAME; [ "$server" = floor ] && frame=text
    "$BIN/ws-load" --url "$URL" --protocol "$PROTO" --frame "$frame" --idle "$IDLE" \
      --hold "$HOLD" --pid "$SERVER_PID" --json --label "$server" > "$out" || rc=$?
    head -n -1 "$out"
    tail -n 1 "$out" | grep '^{' >> "$RESULTS" || true
    [ "$rc" = 0 ] || { echo "ws-load exited $rc for $server idle"; failed=1; }
    stop_server
  done
fi

# --- the table -----------------------------------------------------------------------------
echo
echo "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
echo "== command: CLIENTS=\"$CLIENTS\" REPS=$REPS FRAME=$FRAME SERVERS=\"$SERVERS\" bash bench/websocket.sh   (results: $RESULTS)"
echo
"$PY" - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
load = [r for r in rows if r.get("mode") == "load"]
idle = [r for r in rows if r.get("mode") == "idle"]

def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None

groups = {}
for r in load:
    groups.setdefault((r["label"], r["clients"]), []).append(r)
fig = {}
for (server, c), rs in groups.items():
    fig[(server, c)] = {
        "n": rs[0]["messages"], "rate": med(rs, "echoes_per_s"), "p50": med(rs, "p50_us"),
        "p99": med(rs, "p99_us"), "max": med(rs, "max_us"),
        "cpu": med(rs, "server_cpu_us_per_echo"),
        "rss": (med(rs, "server_peak_rss_kib") or 0) / 1024 or None,
        "errors": sum(r["errors"] for r in rs), "reps": len(rs),
    }

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"

def ratios(f, ref):
    if ref is None:
        return "-"
    return " / ".join([ratio(f["rate"], ref["rate"]), ratio(f["cpu"], ref["cpu"]),
                       ratio(f["p99"], ref["p99"]), ratio(f["rss"], ref["rss"])])

def num(v, fmt):
    return format(v, fmt) if v is not None else "-"

order = {"ours": 0, "floor": 1, "floor-same": 2, "opsdroid": 3}
print("| server | clients | msgs/client | echoes/s | p50 ms | p99 ms | max ms | CPU µs/echo | peak RSS MiB | errors | vs opsdroid | vs floor |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (server, c) in sorted(fig, key=lambda k: (k[1], order.get(k[0], 9), k[0])):
    f = fig[(server, c)]
    print(f"| {server} | {c} | {f['n']} | {num(f['rate'], ',.0f')} | {num(f['p50'] and f['p50'] / 1000, '.3f')} "
          f"| {num(f['p99'] and f['p99'] / 1000, '.3f')} | {num(f['max'] and f['max'] / 1000, '.2f')} "
          f"| {num(f['cpu'], '.1f')} | {num(f['rss'], '.1f')} | {f['errors']} "
          f"| {ratios(f, fig.get(('opsdroid', c))) if server != 'opsdroid' else '-'} "
          f"| {ratios(f, fig.get(('floor', c))) if server != 'floor' else '-'} |")
# Paired ratios: repetition k of a server against repetition k of the floor, run next to it.
pairs = {}
for r in load:
    pairs.setdefault((r["label"], r["clients"]), []).append(r)
paired = []
for (server, c), rs in sorted(pairs.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 9))):
    if server.startswith("floor"):
        continue
    for floor in ("floor", "floor-same"):
        ref = pairs.get((floor, c))
        if not ref:
            continue
        def each(key, rs=rs, ref=ref):
            return [a[key] / b[key] for a, b in zip(rs, ref) if a.get(key) and b.get(key)]
        cpu, rate, p99 = each("server_cpu_us_per_echo"), each("echoes_per_s"), each("p99_us")
        if cpu:
            fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs) + f" (median {statistics.median(xs):.2f})"
            paired.append(f"| {server} | {floor} | {c} | {fmt(cpu)} | {fmt(rate)} | {fmt(p99)} |")
if paired:
    print()
    print("Each repetition against the floor's run next to it:")
    print()
    print("| server | floor | clients | CPU per echo / floor's | echoes/s / floor's | p99 / floor's |")
    print("|---|---|---|---|---|---|")
    print("\n".join(paired))
print()
print("Ratios are this server's figure / the reference's: echoes/s / CPU per echo / p99 / peak RSS")
print("(above 1 is better for echoes/s, below 1 is better for the other three). CPU per echo is the")
print("server's utime+stime over the measured run (/proc/PID/stat) divided by the echoes; peak RSS")
print("is VmHWM of a server started fresh for each row.")
if idle:
    print()
    print("| server | idle connections | held s | RSS before MiB | RSS held MiB | KiB per connection | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in idle:
        mib = lambda k: num(r.get(k) and r[k] / 1024, ".1f")
        print(f"| {r['label']} | {r['opened']} | {r['hold_s']:.0f} | {mib('server_rss_before_kib')} "
              f"| {mib('server_rss_held_kib')} | {num(r.get('kib_per_connection'), '.1f')} | {r['errors']} |")
PY
exit "$failed"
