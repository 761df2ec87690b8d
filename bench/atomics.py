#!/usr/bin/env python3
"""Atomic read-modify-writes per echo, by function, from a callgrind dump made with
--dump-instr=yes (bench/breakdown.sh's `atomics` phase).

An atomic read-modify-write (an x86 `lock`-prefixed instruction, or `xchg` with memory) costs
tens of cycles even when its cache line is at hand, and far more when another core wrote the
line last: instruction counts weigh it like an `add`. Reference counts, locks and wakers are
made of them. Callgrind counts how often each instruction ran; objdump says which ones are
atomic; this joins the two.

    atomics.py DUMP BINARY ECHOES [TOP] [SOURCES]

DUMP: the callgrind dump; BINARY: the program it ran (its atomics, and libc's, are counted);
ECHOES: what the counts are divided by; TOP: how many functions to print (25); SOURCES: with
"lines", each atomic of those functions is also shown with its inlined call chain (addr2line).
"""

import collections
import re
import subprocess
import sys


def parse(path):
    """Executions per (object, address), and the function each address is in."""
    names = {}

    def name(kind, token):
        m = re.match(r"\((\d+)\)(?: (.*))?", token)
        if not m:
            return token
        if m.group(2):
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), token)

    counts = collections.Counter()
    function = {}
    obj = fn = None
    last = 0
    call_cost_next = False
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("ob="):
            obj = name("ob", line[3:])
        elif line.startswith("fn="):
            fn = name("fn", line[3:])
        elif line.startswith(("cob=", "cfn=", "cfi=", "cfl=")):
            name({"cob": "ob", "cfn": "fn"}.get(line[:3], "fl"), line[4:])
        elif line.startswith(("fl=", "fi=", "fe=")):
            name("fl", line[3:])
        elif line.startswith("calls="):
            # The next cost line is the call's inclusive cost, not executions of its own.
            call_cost_next = True
        elif line[0] in "0123456789+-*":
            tokens = line.split()
            p = tokens[0]
            if p.startswith("0x"):
                addr = int(p, 16)
            elif p[0] == "+":
                addr = last + int(p[1:], 0)
            elif p[0] == "-":
                addr = last - int(p[1:], 0)
            elif p == "*":
                addr = last
            else:
                addr = int(p, 0)
            last = addr
            if call_cost_next:
                call_cost_next = False
                continue
            if len(tokens) >= 3:
                counts[(obj, addr)] += int(tokens[2])
                function[(obj, addr)] = fn
    return counts, function


def atomic_addresses(obj):
    """Addresses of the atomic read-modify-write instructions in `obj`."""
    text = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", obj], capture_output=True, text=True, check=True
    ).stdout
    found = set()
    for line in text.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
        if not m:
            continue
        insn = m.group(2)
        if insn.startswith("lock ") or re.match(r"xchg\s+\S+,\S*\(", insn):
            found.add(int(m.group(1), 16))
    return found


def main():
    dump, binary, echoes = sys.argv[1], sys.argv[2], float(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    sources = len(sys.argv) > 5 and sys.argv[5] == "lines"
    counts, function = parse(dump)
    objects = {o for o, _ in counts if o and (o == binary or o.endswith("/libc.so.6"))}
    by_function = collections.Counter()
    atomic = {}
    for obj in objects:
        atomic[obj] = atomic_addresses(obj)
    for (obj, addr), n in counts.items():
        if obj in atomic and addr in atomic[obj]:
            by_function[function[(obj, addr)]] += n
    total = sum(by_function.values())
    print(f"atomic read-modify-writes per echo: {total / echoes:.2f}")
    shown = []
    for fn, n in by_function.most_common(top):
        if n / echoes < 0.05:
            break
        print(f"  {n / echoes:6.2f}  {fn[:150]}")
        shown.append(fn)
    if not sources:
        return
    print("each atomic of those functions, with where it was inlined from (innermost first):")
    for (obj, addr), n in sorted(counts.items(), key=lambda kv: kv[0][1]):
        if obj != binary or addr not in atomic.get(obj, ()) or n / echoes < 0.3:
            continue
        if function[(obj, addr)] not in shown:
            continue
        out = subprocess.run(
            ["addr2line", "-i", "-e", binary, hex(addr)], capture_output=True, text=True
        ).stdout.split()
        chain = " <- ".join(p.rsplit("/", 1)[-1] for p in out[:8])
        print(f"  {n / echoes:5.2f}  {function[(obj, addr)][:60]}: {chain}")


if __name__ == "__main__":
    main()
