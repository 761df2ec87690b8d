#!/usr/bin/env bash
# The side-by-side Matrix echo benchmark: our `bot` (the Matrix connector + the echo skill)
# against opsdroid 0.31's Matrix connector (PyPI, in a venv, with a one-line echo skill), both
# logged in to ONE Synapse at the same time, each in its own public room (#echo-rs:localhost
# and #echo-py:localhost, so neither answers the other). A user, alice (bench/matrix_echo.py,
# Python standard library only), sends N messages to a bot's room one at a time and waits for
# each echo on her /sync. Repetitions are interleaved (ours, opsdroid, ours, opsdroid, ...).
# Prints a table of medians (p50, p99 round trip; the bot's CPU per echo; its RSS), the ratios
# ours / opsdroid against the targets, the spread, every run and the machine.
#
#   bash bench/matrix.sh
#   REPS=5 N=200 bash bench/matrix.sh
#   SIDES=ours BOT=target/release/bot bash bench/matrix.sh     # ours alone, a prebuilt binary
#
# Options (environment):
#   REPS=3                  interleaved repetitions; each one runs ours, then opsdroid
#   N=100                   measured echoes per run, one in flight
#   WARMUP=5                unmeasured echoes before each run (after a probe the bot answered)
#   SIDES="ours opsdroid"   who runs, in this order within a repetition
#   START_TIMEOUT=180       seconds a bot may take to answer its first probe (login, join, sync)
#   ECHO_TIMEOUT=30         seconds one echo may take before it counts as lost
#   RUN_TIMEOUT=600         seconds one run (probe, warm-up, N echoes) may take before it is killed
#   LOG_LEVEL=error         both bots' logging level (opsdroid's goes to a file)
#   SYNC_TIMEOUT=           ours: the connector's `sync_timeout` seconds (empty: its default, 30)
#   BOT=path                use this bot binary instead of building it
#   SYNAPSE_VENV=           a venv with matrix-synapse; default: the test peers' venv
#                           (target/test-peers/synapse-venv, from scripts/test.sh) when it has
#                           Synapse, else $BENCH_DIR/synapse-venv (installed on first use)
#   BENCH_DIR=target/bench-peers   the venvs and the runs' files and logs
#   KEEP_SYNAPSE=0          1: keep Synapse's database and media in the run directory
#   SYNAPSE_LOG_LEVEL=WARNING   INFO logs every request (to see what each bot asks per echo;
#                           it costs Synapse CPU)
#   PYTHON=python3          the interpreter for the client, the venvs and the table
#
# Synapse (matrix-synapse 1.163.2) runs with SQLite, a client listener on a free port on
# 127.0.0.1 only, no federation, presence off and relaxed rate limits, in a fresh data
# directory under the run directory. Everything talks to 127.0.0.1 only; every wait and run is
# bounded; every process this script starts is stopped when it exits. Exit status 1 if any
# run failed or lost an echo.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BENCH_DIR=${BENCH_DIR:-target/bench-peers}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
REPS=${REPS:-3}
N=${N:-100}
WARMUP=${WARMUP:-5}
SIDES=${SIDES:-"ours opsdroid"}
START_TIMEOUT=${START_TIMEOUT:-180}
ECHO_TIMEOUT=${ECHO_TIMEOUT:-30}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
LOG_LEVEL=${LOG_LEVEL:-error}
SYNC_TIMEOUT=${SYNC_TIMEOUT:-}
KEEP_SYNAPSE=${KEEP_SYNAPSE:-0}
SYNAPSE_LOG_LEVEL=${SYNAPSE_LOG_LEVEL:-WARNING}
PY=${PYTHON:-python3}
SYNAPSE_VERSION=1.163.2
CLIENT=$ROOT/bench/matrix_echo.py

for v in REPS N WARMUP START_TIMEOUT ECHO_TIMEOUT RUN_TIMEOUT; do
  case "${!v}" in '' | *[!0-9]*) echo "error: $v: \`${!v}\` is not a whole number" >&2; exit 2 ;; esac
done
for s in $SIDES; do
  case "$s" in ours | opsdroid) ;; *) echo "error: SIDES: \`$s\` is not ours or opsdroid" >&2; exit 2 ;; esac
done

RUN=$BENCH_DIR/run-matrix-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
RESULTS=$RUN/results.jsonl
: > "$RESULTS"

# --- Synapse: the test peers' venv when it has it, else our own -----------------------------
if [ -z "${SYNAPSE_VENV:-}" ]; then
  SYNAPSE_VENV=$ROOT/target/test-peers/synapse-venv
  "$SYNAPSE_VENV/bin/python" -c 'import synapse' 2>/dev/null || SYNAPSE_VENV=$BENCH_DIR/synapse-venv
fi
if ! "$SYNAPSE_VENV/bin/python" -c 'import synapse' 2>/dev/null; then
  echo "== installing matrix-synapse $SYNAPSE_VERSION into $SYNAPSE_VENV"
  "$PY" -m venv "$SYNAPSE_VENV"
  "$SYNAPSE_VENV/bin/pip" install -q "matrix-synapse==$SYNAPSE_VERSION"
fi

# --- opsdroid 0.31 with its Matrix connector, in a venv of its own --------------------------
# Its own venv, not memory.sh's: the matrix extra (matrix-nio, aiohttp, ...) must not change
# what the memory benchmark measures.
VENV=$BENCH_DIR/opsdroid-matrix-venv
OPS=$BENCH_DIR/opsdroid-matrix
case " $SIDES " in *" opsdroid "*)
  if ! "$VENV/bin/python" -c 'import opsdroid, pkg_resources, nio, bleach' 2>/dev/null; then
    echo "== installing opsdroid 0.31.0 with its connector-matrix extra into $VENV"
    "$PY" -m venv "$VENV"
    # opsdroid 0.31 imports pkg_resources, which setuptools >= 81 no longer ships.
    "$VENV/bin/pip" install -q 'opsdroid[connector-matrix]==0.31.0' 'matrix-nio==0.26.0' 'setuptools<81'
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
  ;;
esac

# --- our bot, release -----------------------------------------------------------------------
case " $SIDES " in *" ours "*)
  if [ -n "${BOT:-}" ]; then
    BIN=$BOT
  else
    echo "== building bot (release)"
    cargo build --release -p connector-examples --bin bot
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
      sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    BIN=${TARGET_DIR:-$ROOT/target}/release/bot
  fi
  ;;
esac

# --- process lifecycle ----------------------------------------------------------------------
SYNAPSE_PID="" OURS_PID="" OPSDROID_PID=""
stop() { # stop PID: SIGTERM, 10 s grace, then SIGKILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$OURS_PID"; stop "$OPSDROID_PID"; stop "$SYNAPSE_PID"
  if [ "$KEEP_SYNAPSE" != 1 ]; then
    rm -rf "$RUN/synapse/homeserver.db"* "$RUN/synapse/media_store" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- one Synapse on a free loopback port, fresh data directory -----------------------------
SDIR=$RUN/synapse
mkdir -p "$SDIR/media_store"
SPORT=$(free_port)
URL=http://127.0.0.1:$SPORT
cat > "$SDIR/log.config" <<CONF
version: 1
formatters:
  precise: {format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'}
handlers:
  file: {class: logging.FileHandler, formatter: precise, filename: $SDIR/homeserver.log}
loggers:
  synapse.storage.SQL: {level: WARNING}
root: {level: $SYNAPSE_LOG_LEVEL, handlers: [file]}
disable_existing_loggers: false
CONF
# Rate limits relaxed: the benchmark measures the bots, and a 429 would measure Synapse's
# limiter instead. One message is in flight at a time, so Synapse's load stays small anyway.
RL='{per_second: 10000, burst_count: 10000}'
cat > "$SDIR/homeserver.yaml" <<CONF
server_name: "localhost"
public_baseurl: "$URL/"
pid_file: "$SDIR/homeserver.pid"
listeners:
  - port: $SPORT
    tls: false
    type: http
    x_forwarded: false
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "$SDIR/homeserver.db"
log_config: "$SDIR/log.config"
media_store_path: "$SDIR/media_store"
signing_key_path: "$SDIR/localhost.signing.key"
registration_shared_secret: "loopback-bench-shared-secret"
macaroon_secret_key: "loopback-bench-macaroon-secret"
form_secret: "loopback-bench-form-secret"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
enable_metrics: false
presence:
  enabled: false
rc_message: $RL
rc_registration: $RL
rc_login: {address: $RL, account: $RL, failed_attempts: $RL}
rc_joins: {local: $RL, remote: $RL}
rc_invites: {per_room: $RL, per_user: $RL, per_issuer: $RL}
rc_admin_redaction: $RL
rc_3pid_validation: $RL
rc_room_creation: $RL
CONF
"$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver -c "$SDIR/homeserver.yaml" --generate-keys \
  > "$SDIR/generate-keys.out" 2>&1
"$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver -c "$SDIR/homeserver.yaml" > "$SDIR/synapse.out" 2>&1 &
SYNAPSE_PID=$!
if ! "$PY" "$CLIENT" ready --url "$URL" --wait 120; then
  echo "Synapse did not start:"; tail -n 20 "$SDIR/synapse.out" "$SDIR/homeserver.log" 2>/dev/null
  exit 1
fi
kill -0 "$SYNAPSE_PID" 2>/dev/null || { echo "Synapse exited:"; tail -n 20 "$SDIR/synapse.out"; exit 1; }
echo "== synapse $SYNAPSE_VERSION on $URL (pid $SYNAPSE_PID, SQLite in the run directory)"

# alice drives the benchmark; botrs is our bot, botpy is opsdroid's.
for u in alice botrs botpy; do
  adm=--no-admin; [ "$u" = alice ] && adm=--admin
  "$SYNAPSE_VENV/bin/register_new_matrix_user" -c "$SDIR/homeserver.yaml" -u "$u" -p "${u}pw" \
    $adm "$URL" > "$SDIR/register-$u.out" 2>&1 ||
    { echo "registering $u failed:"; cat "$SDIR/register-$u.out"; exit 1; }
done
"$PY" "$CLIENT" setup --url "$URL" --password alicepw --token-file "$RUN/alice.token" \
  '#echo-rs:localhost' '#echo-py:localhost' | sed 's/^/   room /'

# --- both bots, started once and kept running for every repetition --------------------------
case " $SIDES " in *" ours "*)
  cat > "$RUN/ours.yaml" <<YAML
welcome-message: false
logging:
  level: $LOG_LEVEL
web:
  host: 127.0.0.1
  port: $(free_port)
connectors:
  matrix:
    homeserver: $URL
    mxid: "@botrs:localhost"
    password: botrspw
    rooms:
      main: "#echo-rs:localhost"
    device_id: BENCHRS
${SYNC_TIMEOUT:+    sync_timeout: $SYNC_TIMEOUT}
skills:
  echo: {}
YAML
  "$BIN" --config "$RUN/ours.yaml" > "$RUN/ours.log" 2>&1 &
  OURS_PID=$!
  echo "== ours: $BIN (pid $OURS_PID) as @botrs:localhost in #echo-rs:localhost"
  ;;
esac
case " $SIDES " in *" opsdroid "*)
  mkdir -p "$RUN/opsdroid-store"
  cat > "$RUN/opsdroid.yaml" <<YAML
welcome-message: false
module-path: "$OPS/modules"
logging:
  level: $LOG_LEVEL
  path: "$RUN/opsdroid-internal.log"
  console: false
web:
  host: 127.0.0.1
  port: $(free_port)
connectors:
  matrix:
    mxid: "@botpy:localhost"
    password: "botpypw"
    homeserver: "$URL"
    rooms:
      main: "#echo-py:localhost"
    store_path: "$RUN/opsdroid-store"
    enable_encryption: false
skills:
  echo:
    path: "$OPS/skill-echo"
    no-cache: true
YAML
  # XDG_DATA_HOME keeps opsdroid's user data dir (module cache, default log) out of $HOME.
  XDG_DATA_HOME=$OPS/xdg "$VENV/bin/opsdroid" start -f "$RUN/opsdroid.yaml" > "$RUN/opsdroid.log" 2>&1 &
  OPSDROID_PID=$!
  echo "== opsdroid $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("opsdroid"), "matrix-nio", v("matrix-nio"))') (pid $OPSDROID_PID) as @botpy:localhost in #echo-py:localhost"
  ;;
esac

# --- the runs ---------------------------------------------------------------------------------
failed=0
# run SIDE REP COUNT: one run of COUNT measured echoes (COUNT 0: the warm-up alone); appends
# its JSON line to the results unless REP is "warmup".
run() {
  local side=$1 rep=$2 count=$3 pid room bot out rc=0 wait=$ECHO_TIMEOUT
  case $side in
    ours) pid=$OURS_PID room='#echo-rs:localhost' bot='@botrs:localhost' ;;
    opsdroid) pid=$OPSDROID_PID room='#echo-py:localhost' bot='@botpy:localhost' ;;
  esac
  [ "$rep" = warmup ] && wait=$START_TIMEOUT
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "   FAILED: $side is not running; its log ends:"; tail -n 20 "$RUN/$side.log" | sed 's/^/   /'
    failed=1
    return 0
  fi
  out=$RUN/$side-r$rep.out
  timeout -k 10 "$RUN_TIMEOUT" "$PY" "$CLIENT" run --url "$URL" --token-file "$RUN/alice.token" \
    --room "$room" --bot "$bot" -n "$count" --warmup "$WARMUP" --probe-wait "$wait" \
    --echo-timeout "$ECHO_TIMEOUT" --pid "$pid" --server-pid "$SYNAPSE_PID" --label "$side" \
    --rep "$([ "$rep" = warmup ] && echo 0 || echo "$rep")" > "$out" 2> "$out.err" || rc=$?
  if [ "$rc" != 0 ] || ! tail -n 1 "$out" | grep -q '^{'; then
    echo "   FAILED (exit $rc$([ "$rc" = 124 ] && echo ", timed out after ${RUN_TIMEOUT} s"))"
    tail -n 5 "$out" "$out.err" 2>/dev/null | sed 's/^/   /'
    failed=1
  fi
  if [ "$rep" = warmup ]; then
    tail -n 1 "$out" | sed -n 's/.*"probe_s": \([0-9.]*\).*/   answered its first probe after \1 s/p'
  else
    head -n -1 "$out" | sed 's/^/   /'
    tail -n 1 "$out" | grep '^{' >> "$RESULTS" || true
  fi
}

started=$(date +%s)
# The warm-up: each bot's first probe waits out its login, joins and first sync; then WARMUP
# echoes. Nothing of it is measured.
for side in $SIDES; do
  echo "== $side: warm-up (probe until it answers, at most ${START_TIMEOUT} s, then $WARMUP echoes)"
  run "$side" warmup 0
done
for rep in $(seq 1 "$REPS"); do
  for side in $SIDES; do
    echo "== $side: $N echoes, rep $rep/$REPS"
    run "$side" "$rep" "$N"
  done
done
elapsed=$(($(date +%s) - started))

# --- the table --------------------------------------------------------------------------------
echo
echo "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== synapse $SYNAPSE_VERSION (SQLite, relaxed rate limits)$(case " $SIDES " in *" opsdroid "*) echo "; opsdroid $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("opsdroid"), "matrix-nio", v("matrix-nio"))' 2>/dev/null)" ;; esac)"
echo "== command: REPS=$REPS N=$N WARMUP=$WARMUP SIDES=\"$SIDES\" LOG_LEVEL=$LOG_LEVEL${SYNC_TIMEOUT:+ SYNC_TIMEOUT=$SYNC_TIMEOUT} bash bench/matrix.sh   (runs took ${elapsed} s; results: $RESULTS)"
echo
"$PY" - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = {}
for r in rows:
    runs.setdefault(r["label"], []).append(r)

def med(side, key, scale=1.0):
    vals = [r[key] for r in runs.get(side, []) if r.get(key) is not None]
    return statistics.median(vals) * scale if vals else None

def num(v, fmt=".1f"):
    return format(v, fmt) if v is not None else "-"

MIB = 1 / 1024
cols = [("p50_ms", 1, ".1f"), ("p99_ms", 1, ".1f"), ("hs_gap_p50_ms", 1, ".1f"), ("cpu_ms_per_echo", 1, ".2f"),
        ("sched_ms_per_echo", 1, ".2f"), ("rss_kib", MIB, ".1f"), ("hwm_kib", MIB, ".1f")]
print("| bot | runs | echoes | lost | p50 ms | p99 ms | p50 at Synapse ms | CPU ms/echo "
      "| CPU ms/echo (schedstat) | RSS MiB | peak RSS MiB | echoes/s | Synapse CPU ms/echo |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
fig = {}
for side in ("ours", "opsdroid"):
    if side not in runs:
        continue
    rs = runs[side]
    fig[side] = {k: med(side, k, s) for k, s, _ in cols}
    print(f"| {side} | {len(rs)} | {sum(r.get('echoed', 0) for r in rs)} | {sum(r.get('lost', 0) for r in rs)} | "
          + " | ".join(num(fig[side][k], f) for k, _, f in cols)
          + f" | {num(med(side, 'echoes_per_s'))} | {num(med(side, 'server_cpu_ms_per_echo'), '.2f')} |")
if "ours" in fig and "opsdroid" in fig:
    o, p = fig["ours"], fig["opsdroid"]
    ratio = lambda k: o[k] / p[k] if o[k] is not None and p[k] else None
    checks = [("p50", "p50_ms", 1.0), ("p99", "p99_ms", None), ("p50 at Synapse", "hs_gap_p50_ms", None),
              ("CPU per echo", "cpu_ms_per_echo", 0.2),
              ("CPU per echo (schedstat)", "sched_ms_per_echo", 0.2), ("RSS", "rss_kib", 0.2),
              ("peak RSS", "hwm_kib", 0.2)]
    print()
    print("| ours / opsdroid | ratio | target | met |")
    print("|---|---|---|---|")
    for name, k, target in checks:
        r = ratio(k)
        met = "-" if target is None or r is None else ("yes" if r <= target else "NO")
        print(f"| {name} | {num(r, '.3f')} | {'-' if target is None else f'<= {target:g}'} | {met} |")
print()
print("Medians over the runs. A round trip: alice's PUT /send -> Synapse -> the bot's /sync -> the")
print("bot's PUT /send -> alice's /sync. p50 at Synapse: the echo's origin_server_ts minus the")
print("message's (Synapse's clock, ms): the bot's share, without alice's /sync. CPU per echo: the")
print("bot's utime+stime (/proc/PID/stat, with children) over the N measured echoes / N, counted in")
print("10 ms clock ticks; schedstat: the same from its threads' nanosecond run times. RSS: VmRSS")
print("after each run; peak RSS: VmHWM. Synapse CPU per echo: the homeserver's over the same window")
print("(it serves alice's requests too). Targets: CPU and RSS <= 1/5 of opsdroid's, p50 no worse.")
print()
print("| bot | metric | min | median | max |")
print("|---|---|---|---|---|")
for side, rs in runs.items():
    for k, s, f in cols + [("echoes_per_s", 1, ".1f")]:
        vals = [r[k] * s for r in rs if r.get(k) is not None]
        if vals:
            label = k.replace("_kib", "_mib")  # shown in MiB
            print(f"| {side} | {label} | {num(min(vals), f)} | {num(statistics.median(vals), f)} | {num(max(vals), f)} |")
print()
print("| bot | rep | echoed | lost | p50 ms | p99 ms | max ms | p50 at Synapse | CPU ms/echo | schedstat | RSS MiB | peak RSS MiB | s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    g = lambda k, s=1.0: r[k] * s if r.get(k) is not None else None
    print(f"| {r['label']} | {r['rep']} | {r.get('echoed', 0)} | {r.get('lost', 0)} | {num(g('p50_ms'))} | "
          f"{num(g('p99_ms'))} | {num(g('max_ms'))} | {num(g('hs_gap_p50_ms'))} | {num(g('cpu_ms_per_echo'), '.2f')} | "
          f"{num(g('sched_ms_per_echo'), '.2f')} | "
          f"{num(g('rss_kib', MIB))} | {num(g('hwm_kib', MIB))} | {num(g('elapsed_s'))} |")
PY
exit "$failed"
