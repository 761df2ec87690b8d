#!/usr/bin/env bash
# The README's test command: installs every server the tests run against, when missing, then
# runs every test in the workspace (unit, runtime, real servers, trybuild, doc tests).
#
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh --no-fail-fast     # extra arguments go to `cargo test`
#
# Servers are installed from Debian's packages (apt-get, as root or with sudo), except Synapse,
# which goes into a Python venv under target/; the tests start their own instances on free
# loopback ports, so nothing installed here is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "error: installing $* needs root (or sudo)" >&2
    exit 1
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ngIRCd: the IRC connector's tests start their own server per test.
if ! command -v ngircd >/dev/null 2>&1 && [ ! -x /usr/sbin/ngircd ]; then
  echo "installing ngircd (the IRC tests' server)"
  apt_install ngircd
  # The package may start a system-wide server on 6667; the tests do not use it.
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now ngircd >/dev/null 2>&1 || true
  fi
fi
# openssl: the IRC TLS test makes a throwaway CA and certificate with it.
if ! command -v openssl >/dev/null 2>&1; then
  echo "installing openssl (certificates for the IRC TLS test)"
  apt_install openssl
fi

# redis-server: the memory tests start their own servers (no persistence) per test.
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  echo "installing redis-server (the memory tests' server)"
  apt_install redis-server
  # The package may start a system-wide server on 6379; the tests do not use it.
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
  if command -v service >/dev/null 2>&1; then
    as_root service redis-server stop >/dev/null 2>&1 || true
  fi
fi

# nats-server (JetStream): the cluster tests start their own server per test, each with a
# store of its own. Debian's package is 2.9, which has every JetStream feature they use.
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "installing nats-server (the cluster tests' server)"
  apt_install nats-server
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now nats-server >/dev/null 2>&1 || true
  fi
fi

# Synapse (Matrix homeserver): the Matrix tests start their own server per test, from a venv
# under target/ (pip, pinned version); python3 and its venv module come from Debian if missing.
synapse_venv="$PWD/target/test-peers/synapse-venv"
if ! "$synapse_venv/bin/python" -c 'import synapse' >/dev/null 2>&1; then
  echo "installing matrix-synapse into $synapse_venv (the Matrix tests' server)"
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  rm -rf "$synapse_venv"
  mkdir -p "$(dirname "$synapse_venv")"
  python3 -m venv "$synapse_venv"
  "$synapse_venv/bin/pip" install -q matrix-synapse==1.163.2
fi
# The Matrix tests' support code (tests/src/synapse.rs) finds the venv here.
export SYNAPSE_VENV="$synapse_venv"

exec cargo test --workspace --locked "$@"
