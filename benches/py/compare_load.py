#!/usr/bin/env python3
"""SQLite load generator for benches/compare.py (walcast vs Litestream), in its own process.

  compare_load.py DB SECONDS [--rate TX_PER_S] [--batch ROWS] [--probe-every-ms N]

Each transaction inserts BATCH rows of ~100 random bytes (1: small transactions). Every N ms
one transaction also inserts a probe row 'PROBE:<20-digit wall-clock ns>', the clock read
just before COMMIT, so a watcher of the replica can measure commit-to-replica lag. With
--rate the loop paces itself to that many transactions per second (0: as fast as it can).
WAL mode, synchronous=NORMAL, default autocheckpoint. The tables must exist (the harness
creates them). Prints one JSON object: {"commits", "rows", "probes", "seconds"}.
"""
import argparse
import json
import sqlite3
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("seconds", type=float)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--probe-every-ms", type=float, default=10.0)
    args = parser.parse_args()
    # A 60 s busy timeout, not Python's default 5 s: Litestream's checkpoint of a WAL that
    # grew to gigabytes was seen to lock writers out for longer, which should show as lost
    # throughput, not end the run.
    conn = sqlite3.connect(args.db, isolation_level=None, timeout=60.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    probe_every = args.probe_every_ms / 1000.0
    pace = 1.0 / args.rate if args.rate else 0.0
    start = time.monotonic()
    deadline = start + args.seconds
    next_probe = start
    commits = probes = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if pace:
            due = start + commits * pace
            if now < due:
                time.sleep(due - now)
                now = time.monotonic()
        conn.execute("BEGIN")
        for _ in range(args.batch):
            conn.execute("INSERT INTO t(v) VALUES (randomblob(100))")
        if now >= next_probe:
            next_probe = now + probe_every
            conn.execute("INSERT INTO probe(m) VALUES (?)", ("PROBE:%020d" % time.time_ns(),))
            probes += 1
        conn.execute("COMMIT")
        commits += 1
    elapsed = time.monotonic() - start
    conn.close()
    print(json.dumps({"commits": commits, "rows": commits * args.batch,
                      "probes": probes, "seconds": elapsed}))


if __name__ == "__main__":
    main()
