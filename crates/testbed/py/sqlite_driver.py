#!/usr/bin/env python3
"""Drive real SQLite (Python's sqlite3 module) in its own process, for walcast's tests.

Every command prints exactly one JSON document on stdout (or JSON lines for `write`),
and exits non-zero with a message on stderr when SQLite reports an error.
Running SQLite in a separate process keeps its POSIX locks apart from walcast's.

Commands:
  exec DB            run the SQL script read from stdin (autocommit)
  query DB SQL       print the result rows as a JSON list of lists (blobs as hex strings)
  integrity DB       print PRAGMA integrity_check's result as a JSON string
  dump DB            print a canonical dump of the schema and every row (JSON string)
  checkpoint DB MODE print [busy, log, checkpointed] of PRAGMA wal_checkpoint(MODE)
  backup SRC DST     copy SRC into DST with the online backup API
  write DB [opts]    run a random insert/update/delete workload, see `write --help`
  session DB         one connection held open: read JSON lines {"sql": ..., "params": [...]}
                     from stdin, answer each with {"rows": [...]} or {"error": ...};
                     {"close": true} closes the connection and ends the process
  lock PATH          hold traditional POSIX byte-range locks on PATH, as SQLite takes them
                     (F_SETLK, never waiting); read JSON lines from stdin:
                       {"op": "lock", "kind": "r"|"w", "start": N, "len": N} -> {"ok": bool}
                       {"op": "unlock", "start": N, "len": N}                -> {"ok": true}
                       {"op": "test", "kind": "r"|"w", "start": N, "len": N} -> {"held": null|"r"|"w"}
                       {"op": "spin", "kind": ..., "start": N, "len": N}     -> {"spinning": true},
                         then tries the lock (releasing it at once when it gets it) until the
                         next stdin line, and answers {"attempts": N, "acquired": N}
                       {"op": "close"} ends the process
"""
import argparse
import errno
import fcntl
import json
import os
import random
import select
import sqlite3
import struct
import sys
import time


def connect(path, busy_timeout_ms=5000):
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000.0)
    return conn


def cell(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def cmd_exec(args):
    conn = connect(args.db)
    conn.executescript(sys.stdin.read())
    conn.close()
    print("null")


def cmd_query(args):
    conn = connect(args.db)
    rows = [[cell(c) for c in row] for row in conn.execute(args.sql)]
    conn.close()
    print(json.dumps(rows))


def cmd_integrity(args):
    conn = connect(args.db)
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    conn.close()
    print(json.dumps("\n".join(rows)))


def cmd_dump(args):
    conn = connect(args.db)
    print(json.dumps("\n".join(conn.iterdump())))
    conn.close()


def cmd_checkpoint(args):
    conn = connect(args.db)
    row = conn.execute(f"PRAGMA wal_checkpoint({args.mode})").fetchone()
    conn.close()
    print(json.dumps(list(row)))


def cmd_backup(args):
    src = connect(args.src)
    dst = sqlite3.connect(args.dst)
    src.backup(dst)
    dst.close()
    src.close()
    print("null")


def cmd_session(args):
    conn = connect(args.db, args.busy_timeout)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("close"):
            break
        try:
            cur = conn.execute(req["sql"], req.get("params", []))
            rows = [[cell(c) for c in row] for row in cur.fetchall()]
            print(json.dumps({"rows": rows}), flush=True)
        except sqlite3.Error as e:
            print(json.dumps({"error": str(e), "code": getattr(e, "sqlite_errorname", None)}), flush=True)
    conn.close()
    print(json.dumps({"closed": True}), flush=True)


FLOCK = "hhqqixxxx"  # struct flock on 64-bit Linux: type, whence, start, len, pid


def lock_kind(name):
    return {"r": fcntl.F_RDLCK, "w": fcntl.F_WRLCK}[name]


def try_posix_lock(fd, kind, start, length):
    try:
        fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack(FLOCK, kind, os.SEEK_SET, start, length, 0))
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def posix_unlock(fd, start, length):
    fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack(FLOCK, fcntl.F_UNLCK, os.SEEK_SET, start, length, 0))


def posix_holder(fd, kind, start, length):
    got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, kind, os.SEEK_SET, start, length, 0))
    held = struct.unpack(FLOCK, got)[0]
    return {fcntl.F_RDLCK: "r", fcntl.F_WRLCK: "w"}.get(held)


def spin(fd, kind, start, length):
    """Try the lock until stdin has a line; count attempts and successes."""
    print(json.dumps({"spinning": True}), flush=True)
    attempts = acquired = 0
    while True:
        for _ in range(64):
            attempts += 1
            if try_posix_lock(fd, kind, start, length):
                acquired += 1
                posix_unlock(fd, start, length)
        if select.select([sys.stdin], [], [], 0)[0]:
            sys.stdin.readline()
            return {"attempts": attempts, "acquired": acquired}


def cmd_lock(args):
    fd = os.open(args.path, os.O_RDWR)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        req = json.loads(line)
        op = req["op"]
        if op == "close":
            break
        start, length = req["start"], req["len"]
        if op == "lock":
            reply = {"ok": try_posix_lock(fd, lock_kind(req["kind"]), start, length)}
        elif op == "unlock":
            posix_unlock(fd, start, length)
            reply = {"ok": True}
        elif op == "test":
            reply = {"held": posix_holder(fd, lock_kind(req["kind"]), start, length)}
        elif op == "spin":
            reply = spin(fd, lock_kind(req["kind"]), start, length)
        else:
            raise SystemExit(f"lock: unknown op {op!r}")
        print(json.dumps(reply), flush=True)
    os.close(fd)


class Workload:
    """Random inserts, updates and deletes on table `t`, reproducible from a seed."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.conn = None
        self.busy = 0
        self.commits = 0
        self.checkpoints = {}

    def open(self):
        a = self.args
        self.conn = connect(a.db, a.busy_timeout)
        c = self.conn
        if a.page_size:
            c.execute(f"PRAGMA page_size={a.page_size}")
        mode = c.execute(f"PRAGMA journal_mode={a.journal_mode}").fetchone()[0]
        if mode != a.journal_mode.lower():
            raise SystemExit(f"{a.db}: journal_mode is {mode}, expected {a.journal_mode}")
        c.execute(f"PRAGMA wal_autocheckpoint={a.autocheckpoint}")
        c.execute(f"PRAGMA journal_size_limit={a.journal_size_limit}")
        c.execute(f"PRAGMA synchronous={a.synchronous}")
        c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
        c.execute("CREATE INDEX IF NOT EXISTS t_k ON t(k)")

    def one_transaction(self):
        c, rng = self.conn, self.rng
        c.execute("BEGIN IMMEDIATE" if self.args.immediate else "BEGIN")
        for _ in range(self.args.ops_per_tx):
            op = rng.random()
            if op < 0.6:
                size = rng.choice([8, 64, 300, 1500, 5000])
                c.execute("INSERT INTO t(k, v) VALUES (?, ?)", (rng.randrange(1 << 30), rng.randbytes(size)))
            elif op < 0.85:
                # The row is drawn from the seeded generator, not SQLite's random(), so the
                # same seed writes the same database.
                c.execute("UPDATE t SET v = ?, k = k + 1 WHERE id = "
                          "(SELECT id FROM t WHERE id >= ? ORDER BY id LIMIT 1)",
                          (rng.randbytes(rng.choice([8, 200, 3000])), rng.randrange(1, self.commits * 3 + 2)))
            else:
                lo = rng.randrange(1 << 30)
                c.execute("DELETE FROM t WHERE id IN (SELECT id FROM t WHERE k >= ? ORDER BY k LIMIT ?)",
                          (lo, rng.randrange(1, 4)))
        c.execute("COMMIT")
        self.commits += 1

    def maybe_checkpoint(self):
        a = self.args
        if a.checkpoint_every and self.commits % a.checkpoint_every == 0:
            mode = self.rng.choice(a.checkpoint_modes.split(","))
            try:
                self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                self.checkpoints[mode] = self.checkpoints.get(mode, 0) + 1
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                self.busy += 1

    def run(self):
        a = self.args
        self.open()
        deadline = time.monotonic() + a.seconds if a.seconds else None
        while True:
            if a.transactions and self.commits >= a.transactions:
                break
            if deadline and time.monotonic() >= deadline:
                break
            try:
                self.one_transaction()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                self.busy += 1
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if a.fail_on_busy:
                    self.report()
                    raise SystemExit(f"{a.db}: SQLITE_BUSY after {self.commits} commits: {e}")
                continue
            self.maybe_checkpoint()
            if a.reopen_every and self.commits % a.reopen_every == 0:
                self.conn.close()
                self.open()
            if a.progress_every and self.commits % a.progress_every == 0:
                print(json.dumps({"commits": self.commits}), flush=True)
        self.conn.close()
        self.report()

    def report(self):
        print(json.dumps({"done": True, "commits": self.commits, "busy": self.busy,
                          "checkpoints": self.checkpoints}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("exec"); s.add_argument("db"); s.set_defaults(fn=cmd_exec)
    s = sub.add_parser("query"); s.add_argument("db"); s.add_argument("sql"); s.set_defaults(fn=cmd_query)
    s = sub.add_parser("integrity"); s.add_argument("db"); s.set_defaults(fn=cmd_integrity)
    s = sub.add_parser("dump"); s.add_argument("db"); s.set_defaults(fn=cmd_dump)
    s = sub.add_parser("checkpoint"); s.add_argument("db"); s.add_argument("mode"); s.set_defaults(fn=cmd_checkpoint)
    s = sub.add_parser("backup"); s.add_argument("src"); s.add_argument("dst"); s.set_defaults(fn=cmd_backup)
    s = sub.add_parser("session"); s.add_argument("db"); s.set_defaults(fn=cmd_session)
    s.add_argument("--busy-timeout", type=int, default=0, help="milliseconds")
    s = sub.add_parser("lock"); s.add_argument("path"); s.set_defaults(fn=cmd_lock)
    s = sub.add_parser("write", help="random write workload")
    s.add_argument("db")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--transactions", type=int, default=0, help="stop after this many commits")
    s.add_argument("--seconds", type=float, default=0, help="stop after this long")
    s.add_argument("--ops-per-tx", type=int, default=3)
    s.add_argument("--page-size", type=int, default=0)
    s.add_argument("--autocheckpoint", type=int, default=1000)
    s.add_argument("--journal-size-limit", type=int, default=-1)
    s.add_argument("--synchronous", default="NORMAL")
    s.add_argument("--journal-mode", default="WAL", help="WAL or DELETE (a rollback journal)")
    s.add_argument("--busy-timeout", type=int, default=5000, help="milliseconds")
    s.add_argument("--immediate", action="store_true", help="BEGIN IMMEDIATE")
    s.add_argument("--checkpoint-every", type=int, default=0)
    s.add_argument("--checkpoint-modes", default="PASSIVE,FULL,RESTART,TRUNCATE")
    s.add_argument("--reopen-every", type=int, default=0)
    s.add_argument("--fail-on-busy", action="store_true")
    s.add_argument("--progress-every", type=int, default=0)
    s.set_defaults(fn=lambda a: Workload(a).run())
    args = p.parse_args()
    try:
        args.fn(args)
    except sqlite3.Error as e:
        print(f"sqlite_driver {args.cmd}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
