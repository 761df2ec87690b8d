"""opsdroid 0.31's memory under the memory benchmark's workload (the peer of `mem-bench`).

Builds the memory the way opsdroid's core does from a `databases:` section: opsdroid's own
loader imports the built-in database module and validates its config against the module's
CONFIG_SCHEMA, `OpsDroid.setup_databases` instantiates the database class into
`opsdroid.memory.databases`, and `OpsDroid.start_databases` connects it. Then it runs N
iterations of (put `key-{i % 1000}` = a small JSON object, then get it back) through
`opsdroid.memory.Memory` and prints exactly one line `ops_per_sec=<float>` (a put and a get
each count as one op: 2N ops over the wall time). Every value read back is compared with the
one written; a mismatch ends the run with exit status 1.

`--concurrency C` (default 1: one iteration after the other): `asyncio.gather` of C
coroutines over the same `opsdroid.memory`; coroutine c runs iterations c, c + C, c + 2C, ...
C must divide 1000, so the keys a coroutine touches (`key-{i % 1000}`, i = c mod C) are
written by no other one, and each checks its own values (the same scheme as mem-bench).

    python opsdroid_memory.py --backend sqlite --ops 20000 --path memory.db
    python opsdroid_memory.py --backend redis --ops 20000 --redis-port 16379 --concurrency 20

Run it with XDG_DATA_HOME pointing at a scratch directory: opsdroid's loader creates its
module-dependency directory under the user data dir.
"""

import argparse
import asyncio
import gettext
import logging
import os
import sys
import tempfile
import time
import warnings

# opsdroid 0.31's loader imports pkg_resources, which warns that it is deprecated.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
# opsdroid's modules call the `_` builtin that its command line installs (cli/start.py).
gettext.install("opsdroid")

from opsdroid.core import OpsDroid  # noqa: E402 (after the `_` builtin exists)

KEYS = 1000


def value(i):
    """The small JSON object stored at iteration i (mem-bench stores the same one)."""
    return {"i": i, "user": "bench", "text": "hello world", "tags": ["a", "b", "c"]}


def databases_config(args):
    """The `databases:` section a configuration.yaml would hold for this run."""
    if args.backend == "sqlite":
        conf = {"path": args.path}
        if args.table is not None:
            conf["table"] = args.table
        return {"sqlite": conf}
    return {"redis": {"host": args.redis_host, "port": args.redis_port}}


async def run(args, module_path):
    config = {"module-path": module_path, "databases": databases_config(args)}
    # loopless: no event loop or signal handlers of its own; asyncio.run's loop is used.
    opsdroid = OpsDroid(config=config, loopless=True)
    # What Loader.load_modules_from_config does for `databases:` (it would also insist on a
    # `connectors:` section, which this run has no use for).
    opsdroid.loader.setup_modules_directory(config)
    modules = opsdroid.loader._load_modules("database", config["databases"])
    await opsdroid.setup_databases(modules)
    where = args.path if args.backend == "sqlite" else f"{args.redis_host}:{args.redis_port}"
    try:
        await opsdroid.start_databases()
    except Exception as e:  # one line naming the database, not a traceback
        await asyncio.sleep(0.2)  # aiosqlite's worker thread finishes with the loop still open
        sys.exit(f"opsdroid's {args.backend} database at {where} did not connect: {e}")
    memory = opsdroid.memory
    if len(memory.databases) != 1:
        sys.exit(f"expected one {args.backend} database, opsdroid set up {memory.databases!r}")
    db = memory.databases[0]
    if getattr(db, "client", None) is None:
        sys.exit(f"opsdroid's {args.backend} database at {where} did not connect (see above)")
    async def caller(first, step):
        for i in range(first, args.ops, step):
            key = f"key-{i % KEYS}"
            data = value(i)
            await memory.put(key, data)
            got = await memory.get(key)
            if got != data:
                sys.exit(f"iteration {i}: {key} read back {got!r}, wrote {data!r}")

    try:
        start = time.perf_counter()
        if args.concurrency == 1:
            await caller(0, 1)
        else:
            c = args.concurrency
            await asyncio.gather(*(caller(first, c) for first in range(c)))
        elapsed = time.perf_counter() - start
    finally:
        await db.disconnect()
    return 2 * args.ops / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "redis"], required=True)
    parser.add_argument("--ops", type=int, required=True, help="iterations of put + get")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="concurrent callers (must divide 1000)"
    )
    parser.add_argument("--path", help="SQLite file (default: a fresh one in a temp dir)")
    parser.add_argument("--table", help="SQLite table (opsdroid's default: opsdroid)")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    args = parser.parse_args()
    if args.ops < 1:
        parser.error("--ops must be at least 1")
    if args.concurrency < 1 or KEYS % args.concurrency:
        parser.error(
            f"--concurrency {args.concurrency}: must divide {KEYS} (1, 2, 4, 5, 8, 10, 20, 25,"
            " 40, 50, 100, ...), so that no two callers write the same key"
        )
    # Warnings and errors only, as a bot configured with `logging: {level: warning}`.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="opsdroid-memory-") as scratch:
        if args.backend == "sqlite" and args.path is None:
            args.path = os.path.join(scratch, "memory.db")
        rate = asyncio.run(run(args, os.path.join(scratch, "modules")))
    print(f"ops_per_sec={rate:.1f}")


if __name__ == "__main__":
    main()
