"""Self and inclusive instruction counts per function from one callgrind dump.

    python3 bench/callgrind_costs.py DUMP ECHOES [PATTERN ...]

Reads the dump itself (callgrind_annotate's exclusive view groups by file and loses costs
of code inlined from other files), and prints, per echo, the total and for each PATTERN (a
regular expression on the function name; `label=PATTERN` to name the row) the inclusive
count of the costliest matching function; `self:label=PATTERN` rows sum the own cost of
every matching function instead.
"""

import re
import sys
from collections import defaultdict


def read(path):
    names = {}
    self_cost = defaultdict(int)
    inclusive = defaultdict(int)
    total = 0
    current = None
    after_call = False

    def name(spec):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?", spec)
        if not m:
            return spec
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("fn="):
            current = name(line[3:])
            after_call = False
        elif line.startswith("cfn="):
            name(line[4:])
        elif line.startswith("calls="):
            after_call = True
        elif line.startswith("summary:"):
            total = int(line.split()[1])
        elif line and (line[0].isdigit() or line[0] in "+-*") and current is not None:
            parts = line.split()
            if len(parts) < 2:
                continue
            cost = int(parts[1])
            if after_call:
                inclusive[current] += cost
                after_call = False
            else:
                self_cost[current] += cost
                inclusive[current] += cost
    return total, self_cost, inclusive


def main():
    path, echoes, patterns = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    total, self_cost, inclusive = read(path)
    print(f"user-space instructions per echo: {total / echoes:,.0f} ({echoes} echoes)")
    for spec in patterns:
        own = spec.startswith("self:")
        if own:
            spec = spec[5:]
        label, _, pattern = spec.partition("=") if "=" in spec else (spec, "", spec)
        rx = re.compile(pattern)
        if own:
            cost = sum(c for f, c in self_cost.items() if rx.search(f))
        else:
            cost = max((c for f, c in inclusive.items() if rx.search(f)), default=0)
        if cost == 0:
            # Inlined into its caller (an async fn's body into the task's poll): no count of
            # its own to give.
            print(f"  {label:<56} {'inlined':>8}")
        else:
            print(f"  {label:<56} {cost / echoes:>8,.0f}")


if __name__ == "__main__":
    main()
