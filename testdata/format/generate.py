#!/usr/bin/env python3
"""Regenerate testdata/format/<case>/ with real SQLite (Python's sqlite3 module).

Every case directory holds what SQLite left on disk while a connection was still open
(`db`, `db-wal`, and for some cases `db-shm`), plus `sqlite.json`: facts SQLite itself
reported (its version, page size, rows committed, and what SQLite reads back after
recovering a copy of db + db-wal without the -shm). Tests compare walcast's reading with
these facts and with SQLite's reading at test time.

Table `t(i INTEGER PRIMARY KEY, v BLOB)`: transaction 1 creates it, then each later
transaction inserts exactly one row, so "rows SQLite sees" = "committed transactions - 1".

Run from anywhere: python3 testdata/format/generate.py
Salts and blobs are random: regenerating changes the bytes, never the facts the tests use.
"""
import json
import os
import shutil
import sqlite3
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WAL_HEADER = 32
FRAME_HEADER = 24


def open_wal_db(path, page_size):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={page_size}")
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.execute("PRAGMA wal_autocheckpoint=0")  # keep every frame in the WAL
    conn.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, v BLOB)")
    return conn


def insert_rows(conn, first, count, size):
    for i in range(first, first + count):
        conn.execute("INSERT INTO t(i, v) VALUES (?, randomblob(?))", (i, size))


def recovered_facts(case_dir):
    """What SQLite reads from a copy of db + db-wal with no -shm (so it runs recovery)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(os.path.join(case_dir, "db"), os.path.join(tmp, "db"))
        wal = os.path.join(case_dir, "db-wal")
        if os.path.exists(wal):
            shutil.copyfile(wal, os.path.join(tmp, "db-wal"))
        conn = sqlite3.connect(os.path.join(tmp, "db"))
        facts = {
            "recovered_rows": conn.execute("SELECT count(*) FROM t").fetchone()[0],
            "recovered_page_count": conn.execute("PRAGMA page_count").fetchone()[0],
            "recovered_integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
        }
        conn.close()
        return facts


def snapshot(conn, case, files=("db", "db-wal"), **facts):
    """Copies the open database's files into the case directory and writes sqlite.json."""
    case_dir = os.path.join(HERE, case)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    src = conn.execute("PRAGMA database_list").fetchone()[2]
    for name in files:
        suffix = name[2:]  # "", "-wal", "-shm"
        shutil.copyfile(src + suffix, os.path.join(case_dir, name))
    facts.update(
        sqlite_version=sqlite3.sqlite_version,
        page_size=conn.execute("PRAGMA page_size").fetchone()[0],
        journal_mode=conn.execute("PRAGMA journal_mode").fetchone()[0],
    )
    return case_dir, facts


def finish(case_dir, facts):
    if os.path.exists(os.path.join(case_dir, "db-wal")):
        facts.update(recovered_facts(case_dir))
    with open(os.path.join(case_dir, "sqlite.json"), "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
        f.write("\n")


def wal_frame_size(case_dir):
    with open(os.path.join(case_dir, "db-wal"), "rb") as f:
        page_size = int.from_bytes(f.read(12)[8:12], "big")
    return page_size + FRAME_HEADER


def committed_case(name, page_size, rows, size):
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_wal_db(os.path.join(tmp, "db"), page_size)
        insert_rows(conn, 1, rows, size)
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        case_dir, facts = snapshot(conn, name, transactions=rows + 1, rows=rows,
                                   page_count=page_count)
        conn.close()
    finish(case_dir, facts)


def page_65536():
    # As small as SQLite allows: one transaction creates the table and inserts one row.
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "db"), isolation_level=None)
        conn.execute("PRAGMA page_size=65536")
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO t VALUES (1, x'00')")
        conn.execute("COMMIT")
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        case_dir, facts = snapshot(conn, "page-65536", transactions=1, rows=1,
                                   page_count=page_count)
        conn.close()
    finish(case_dir, facts)


def uncommitted_tail():
    # A transaction larger than the page cache spills frames into the WAL before it
    # commits; the files are copied while it is still open.
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_wal_db(os.path.join(tmp, "db"), 512)
        insert_rows(conn, 1, 5, 50)
        conn.execute("PRAGMA cache_size=10")
        conn.execute("BEGIN")
        insert_rows(conn, 6, 120, 100)
        case_dir, facts = snapshot(conn, "uncommitted-tail", transactions=6, rows=5)
        conn.execute("ROLLBACK")
        conn.close()
    finish(case_dir, facts)


def damaged(name, rows, cut_in_frame, how):
    """A committed WAL damaged by the script at frame `cut_in_frame` (1-based)."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_wal_db(os.path.join(tmp, "db"), 512)
        insert_rows(conn, 1, rows, 40)
        case_dir, facts = snapshot(conn, name, transactions=rows + 1, rows=rows)
        conn.close()
    wal = os.path.join(case_dir, "db-wal")
    frame = wal_frame_size(case_dir)
    start = WAL_HEADER + (cut_in_frame - 1) * frame
    with open(wal, "r+b") as f:
        if how == "cut":
            f.truncate(start + frame // 2)
            facts["damage"] = f"WAL truncated to {start + frame // 2} bytes, inside frame {cut_in_frame}"
        else:
            offset = start + FRAME_HEADER + 100
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0xFF]))
            facts["damage"] = f"byte {offset} (page data of frame {cut_in_frame}) inverted"
    facts["damaged_frame"] = cut_in_frame
    finish(case_dir, facts)


def restarted_generation():
    # 30 commits, a RESTART checkpoint, then one more commit: SQLite rewrites the WAL from
    # frame 1 with new salts, and the old generation's frames remain after it.
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_wal_db(os.path.join(tmp, "db"), 512)
        insert_rows(conn, 1, 30, 40)
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        assert busy == 0 and log == done, (busy, log, done)
        insert_rows(conn, 31, 1, 40)
        case_dir, facts = snapshot(conn, "restarted-generation", transactions_after_restart=1,
                                   rows=31)
        conn.close()
    finish(case_dir, facts)


def live_shm():
    # The wal-index of a live connection: 10 commits, a PASSIVE checkpoint, 4 more commits.
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_wal_db(os.path.join(tmp, "db"), 4096)
        insert_rows(conn, 1, 10, 300)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        insert_rows(conn, 11, 4, 300)
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        case_dir, facts = snapshot(conn, "live-shm", files=("db", "db-wal", "db-shm"),
                                   rows=14, page_count=page_count)
        conn.close()
    finish(case_dir, facts)


def rollback_db():
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "db"), isolation_level=None)
        conn.execute("PRAGMA page_size=1024")
        conn.execute("PRAGMA user_version=7")
        conn.execute("PRAGMA application_id=1234")
        conn.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, v BLOB)")
        insert_rows(conn, 1, 3, 10)
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        case_dir, facts = snapshot(conn, "rollback-db", files=("db",), rows=3,
                                   page_count=page_count, user_version=7, application_id=1234)
        conn.close()
    finish(case_dir, facts)


def main():
    committed_case("page-512", 512, 20, 60)
    committed_case("page-4096", 4096, 10, 500)
    page_65536()
    committed_case("many-transactions", 512, 150, 20)
    uncommitted_tail()
    damaged("cut-mid-frame", 20, 12, "cut")
    damaged("damaged-frame", 20, 12, "flip")
    restarted_generation()
    live_shm()
    rollback_db()


if __name__ == "__main__":
    main()
