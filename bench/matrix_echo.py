#!/usr/bin/env python3
"""The echo client of bench/matrix.sh: a Matrix user (alice) who talks to an echo bot through a
homeserver on loopback and times the round trips. Python standard library only.

  matrix_echo.py ready  --url URL [--wait 120]
      wait until the homeserver answers GET /_matrix/client/versions
  matrix_echo.py setup  --url URL --user alice --password PW --token-file F ROOM_ALIAS...
      log alice in once (her access token goes to F, so later runs add no devices) and create
      each public room #name:server unless it exists; prints "ALIAS ROOM_ID" a line
  matrix_echo.py run    --url URL --token-file F --room ALIAS --bot @mxid [-n 100]
                        [--warmup 5] [--probe-wait 120] [--pid PID] [--server-pid PID]
                        [--label L] [--rep R]
      probe until the bot echoes (at most --probe-wait s), send --warmup unmeasured echoes,
      then N measured ones, one at a time: send, then long-poll /sync until the bot's message
      with exactly that body arrives. Beside each round trip, the homeserver's own measure:
      the echo's origin_server_ts minus the message's (its clock, ms: persisting the message,
      the bot's /sync, the bot's work, its send reaching the homeserver; not alice's /sync). With --pid, the bot's CPU time (utime+stime of it, its
      reaped children and its live descendants, /proc/PID/stat) is read just before and just
      after the N echoes (and, finer, its threads' schedstat), and its VmRSS and VmHWM after
      them; --server-pid: the homeserver's CPU time over the same window. Prints a human
      line, then one JSON line (the last line of stdout). Exit 1 if any echo was lost.

A round trip is: alice's PUT /send -> the homeserver -> the bot's own /sync -> the bot's PUT
/send -> alice's /sync returns the echo. Alice's /sync filter names the one room, a small
timeline and no presence or account data, so the client's own work stays small and equal
for every bot. Every loop is bounded in count and in time; only loopback URLs are accepted.
"""
import argparse
import ipaddress
import json
import math
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SYNC_POLL_MS = 10000  # one /sync long poll: short enough to notice a deadline, long enough to be idle
MAX_LOST = 5  # a run with more lost echoes than this stops: the bot is gone or stuck


class Client:
    def __init__(self, base, token=None):
        self.base = base.rstrip("/")
        self.token = token
        self.since = None
        self.filter = None

    def req(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        rq = urllib.request.Request(self.base + path, data=data, method=method)
        rq.add_header("Content-Type", "application/json")
        if self.token:
            rq.add_header("Authorization", "Bearer " + self.token)
        # A 429 is waited out (bounded) rather than failing the run: the benchmark relaxes
        # Synapse's rate limits, but this keeps a stricter homeserver from ending it.
        for _ in range(20):
            try:
                with urllib.request.urlopen(rq, timeout=timeout) as resp:
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as e:
                if e.code != 429:
                    raise
                try:
                    wait = json.loads(e.read() or b"{}").get("retry_after_ms", 1000) / 1000
                except ValueError:
                    wait = 1
                print(f"rate limited: waiting {wait:.1f} s", file=sys.stderr)
                time.sleep(min(max(wait, 0.1), 10))
        raise RuntimeError(f"{method} {path}: still rate limited after 20 tries")

    def login(self, user, password):
        r = self.req("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
            "password": password, "initial_device_display_name": "matrix_echo.py"})
        self.token = r["access_token"]
        return r

    def room_id(self, alias):
        return self.req("GET", "/_matrix/client/v3/directory/room/" + urllib.parse.quote(alias))["room_id"]

    def send_text(self, room, body):
        txn = uuid.uuid4().hex
        path = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room)}/send/m.room.message/{txn}"
        return self.req("PUT", path, {"msgtype": "m.text", "body": body})["event_id"]

    def use_room(self, room):
        # The filter keeps each /sync answer to this room's new timeline events.
        self.filter = json.dumps({
            "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]},
            "room": {"rooms": [room], "timeline": {"limit": 50},
                     "state": {"lazy_load_members": True}, "ephemeral": {"not_types": ["*"]},
                     "account_data": {"not_types": ["*"]}}})

    def sync(self, timeout_ms):
        q = {"timeout": str(timeout_ms), "filter": self.filter}
        if self.since:
            q["since"] = self.since
        r = self.req("GET", "/_matrix/client/v3/sync?" + urllib.parse.urlencode(q),
                     timeout=timeout_ms / 1000 + 30)
        self.since = r["next_batch"]
        return r

    def wait_for(self, room, sender, body, deadline_s, sent_id):
        """Long-polls /sync until `sender` posts `body` in `room`. Returns None at the deadline,
        else the homeserver's own measure of the echo: its origin_server_ts minus that of our
        event `sent_id` (ms), or -1 when our event was not seen."""
        end = time.monotonic() + deadline_s
        sent_ts = None
        for _ in range(100000):
            left = end - time.monotonic()
            if left <= 0:
                return None
            r = self.sync(int(min(SYNC_POLL_MS, max(left, 0.05) * 1000)))
            events = r.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", [])
            for ev in events:
                if ev.get("event_id") == sent_id:
                    sent_ts = ev.get("origin_server_ts")
                if (ev.get("type") == "m.room.message" and ev.get("sender") == sender
                        and ev.get("content", {}).get("body") == body):
                    ts = ev.get("origin_server_ts")
                    return ts - sent_ts if sent_ts is not None and ts is not None else -1
        return None


def loopback_only(url):
    host = urllib.parse.urlparse(url).hostname
    if not host or not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        sys.exit(f"error: {url}: loopback homeservers only")


def proc_ticks(pid):
    """utime+stime+cutime+cstime of `pid` from /proc/PID/stat, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return sum(int(fields[i]) for i in (11, 12, 13, 14)), int(fields[1])


def cpu_seconds(pid):
    """CPU time of `pid` (with its reaped children) and of its live descendants: a bot that
    forks is charged for it."""
    total = 0
    for p in family(pid):
        try:
            total += proc_ticks(p)[0]
        except (OSError, IndexError, ValueError):
            if p == pid:
                raise
    return total / os.sysconf("SC_CLK_TCK")


def family(pid):
    """`pid` and its live descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = proc_ticks(int(entry))[1]
            except (OSError, IndexError, ValueError):
                pass
    fam, grew = {pid}, True
    for _ in range(64):
        if not grew:
            break
        grew = False
        for p, ppid in parents.items():
            if ppid in fam and p not in fam:
                fam.add(p)
                grew = True
    return fam


def sched_seconds(pid):
    """On-CPU time of the live threads of `pid` and its descendants (/proc/P/task/T/schedstat,
    nanoseconds): a cross-check of the 10 ms clock ticks of /proc/PID/stat, which a few dozen
    echoes of a light bot amount to. Threads that exit meanwhile take their time with them."""
    ns = 0
    for p in family(pid):
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return ns / 1e9


def mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0])
    return out.get("VmRSS"), out.get("VmHWM")


def quantile(sorted_vals, q):
    """Nearest rank: the smallest value with at least q of the samples at or below it."""
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def cmd_ready(a):
    end = time.monotonic() + a.wait
    for _ in range(100000):
        try:
            Client(a.url).req("GET", "/_matrix/client/versions", timeout=2)
            return 0
        except (OSError, urllib.error.URLError, ValueError):
            if time.monotonic() > end:
                sys.exit(f"error: {a.url} did not answer within {a.wait:.0f} s")
            time.sleep(0.2)
    return 1


def cmd_setup(a):
    c = Client(a.url)
    c.login(a.user, a.password)
    with open(a.token_file, "w") as f:
        f.write(c.token)
    for alias in a.aliases:
        try:
            room = c.room_id(alias)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            local = alias[1:].split(":", 1)[0]
            room = c.req("POST", "/_matrix/client/v3/createRoom", {
                "preset": "public_chat", "room_alias_name": local, "name": f"echo bench {local}"})["room_id"]
        print(alias, room)
    return 0


def cmd_run(a):
    with open(a.token_file) as f:
        c = Client(a.url, f.read().strip())
    room = c.room_id(a.room)
    c.use_room(room)
    c.sync(0)  # the starting point: nothing older than this counts
    tag = uuid.uuid4().hex[:8]

    gaps = []

    def roundtrip(body, deadline_s):
        t = time.perf_counter()
        sent_id = c.send_text(room, body)
        gap = c.wait_for(room, a.bot, body, deadline_s, sent_id)
        if gap is None:
            return None
        gaps.append(gap)
        return time.perf_counter() - t

    # Probe until the bot answers: it may still be logging in, joining or on its first sync.
    t0 = time.monotonic()
    answered = False
    for i in range(1000):
        if time.monotonic() - t0 > a.probe_wait:
            break
        if roundtrip(f"probe {tag} {i}", min(10, max(1, a.probe_wait - (time.monotonic() - t0)))) is not None:
            answered = True
            break
    if not answered:
        print(f"error: {a.bot} did not echo a probe within {a.probe_wait:.0f} s", file=sys.stderr)
        print(json.dumps({"label": a.label, "rep": a.rep, "n": a.n, "error": "no answer to the probe"}))
        return 1
    probe_s = time.monotonic() - t0
    for i in range(a.warmup):
        roundtrip(f"warmup {tag} {i}", a.echo_timeout)

    sched0 = sched_seconds(a.pid) if a.pid else None
    cpu0 = cpu_seconds(a.pid) if a.pid else None
    gaps.clear()
    srv0 = cpu_seconds(a.server_pid) if a.server_pid else None
    lat, lost, tb = [], 0, time.perf_counter()
    for i in range(a.n):
        dt = roundtrip(f"echo {tag} {a.label} r{a.rep} #{i}", a.echo_timeout)
        if dt is None:
            lost += 1
            print(f"lost: no echo of message {i} within {a.echo_timeout:.0f} s", file=sys.stderr)
            if lost > MAX_LOST:
                break
        else:
            lat.append(dt)
    elapsed = time.perf_counter() - tb
    cpu1 = cpu_seconds(a.pid) if a.pid else None
    sched1 = sched_seconds(a.pid) if a.pid else None
    srv1 = cpu_seconds(a.server_pid) if a.server_pid else None
    rss, hwm = mem_kib(a.pid) if a.pid else (None, None)

    lat.sort()
    ms = lambda v: round(v * 1e3, 2)
    res = {
        "label": a.label, "rep": a.rep, "n": a.n, "echoed": len(lat), "lost": lost,
        "probe_s": round(probe_s, 2), "elapsed_s": round(elapsed, 2),
        "echoes_per_s": round(len(lat) / elapsed, 2) if elapsed else None,
        "p50_ms": ms(quantile(lat, 0.5)) if lat else None,
        "p99_ms": ms(quantile(lat, 0.99)) if lat else None,
        "max_ms": ms(lat[-1]) if lat else None,
        "hs_gap_p50_ms": quantile(sorted(g for g in gaps if g >= 0), 0.5) if any(g >= 0 for g in gaps) else None,
        "cpu_ms_per_echo": round((cpu1 - cpu0) * 1e3 / len(lat), 3) if lat and a.pid else None,
        "sched_ms_per_echo": round((sched1 - sched0) * 1e3 / len(lat), 3) if lat and a.pid else None,
        "server_cpu_ms_per_echo": round((srv1 - srv0) * 1e3 / len(lat), 3) if lat and a.server_pid else None,
        "rss_kib": rss, "hwm_kib": hwm,
    }
    print(f"{a.label} rep {a.rep}: {len(lat)}/{a.n} echoed in {elapsed:.1f} s, p50 {res['p50_ms']} ms, "
          f"p99 {res['p99_ms']} ms (at the homeserver p50 {res['hs_gap_p50_ms']} ms), CPU {res['cpu_ms_per_echo']} ms/echo, RSS {rss} KiB (peak {hwm})")
    print(json.dumps(res))
    return 1 if lost else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("ready", "setup", "run"):
        p = sub.add_parser(name)
        p.add_argument("--url", default="http://127.0.0.1:8008")
        if name == "ready":
            p.add_argument("--wait", type=float, default=120)
        if name == "setup":
            p.add_argument("--user", default="alice")
            p.add_argument("--password", required=True)
            p.add_argument("--token-file", required=True)
            p.add_argument("aliases", nargs="+")
        if name == "run":
            p.add_argument("--token-file", required=True)
            p.add_argument("--room", required=True, help="the bot's room alias")
            p.add_argument("--bot", required=True, help="the bot's user id")
            p.add_argument("-n", type=int, default=100)
            p.add_argument("--warmup", type=int, default=5)
            p.add_argument("--probe-wait", type=float, default=120)
            p.add_argument("--echo-timeout", type=float, default=30)
            p.add_argument("--pid", type=int, default=0)
            p.add_argument("--server-pid", type=int, default=0)
            p.add_argument("--label", default="bot")
            p.add_argument("--rep", type=int, default=1)
    a = ap.parse_args()
    loopback_only(a.url)
    return {"ready": cmd_ready, "setup": cmd_setup, "run": cmd_run}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
