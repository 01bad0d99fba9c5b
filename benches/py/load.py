#!/usr/bin/env python3
"""Sustained small-transaction load on a SQLite database, for walcast's load bench.

  load.py DB SECONDS [--probe-every-ms N] [--rate TX_PER_S]

Each transaction inserts one ~100-byte row. Every N ms one transaction also inserts a
probe row 'PROBE:<20-digit wall-clock ns>' taken just before COMMIT, so a watcher of the
replicated files can measure commit-to-staged lag. WAL mode, synchronous=NORMAL, the
default autocheckpoint (1000 pages): what a typical application runs. Prints one JSON
object: {"commits": N, "seconds": S}.
"""
import argparse
import json
import sqlite3
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("seconds", type=float)
    p.add_argument("--probe-every-ms", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=0.0,
                   help="transactions per second to aim for (0: as fast as possible)")
    a = p.parse_args()
    conn = sqlite3.connect(a.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("CREATE TABLE IF NOT EXISTS probe(id INTEGER PRIMARY KEY, m TEXT)")
    probe_every = a.probe_every_ms / 1000.0
    start = time.monotonic()
    deadline = start + a.seconds
    next_probe = start
    commits = 0
    interval = 1.0 / a.rate if a.rate else 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if interval:
            due = start + commits * interval
            if now < due:
                time.sleep(due - now)
                now = time.monotonic()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t(v) VALUES (randomblob(100))")
        if now >= next_probe:
            next_probe = now + probe_every
            conn.execute("INSERT INTO probe(m) VALUES (?)", ("PROBE:%020d" % time.time_ns(),))
        conn.execute("COMMIT")
        commits += 1
    elapsed = time.monotonic() - start
    conn.close()
    print(json.dumps({"commits": commits, "seconds": elapsed}))


if __name__ == "__main__":
    main()
