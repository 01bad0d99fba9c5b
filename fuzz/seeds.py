#!/usr/bin/env python3
"""Rebuild fuzz/corpus/<target>/ seeds from testdata/format (files real SQLite wrote).

Seeds are kept small (a few KB) so mutations stay fast. The `wal` target's first byte
steers its harness (even: repair the checksum chain), so each WAL seed is stored twice,
once per steering value. Run: python3 fuzz/seeds.py
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "testdata", "format")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def read(case, name, limit):
    with open(os.path.join(DATA, case, name), "rb") as f:
        return f.read(limit)


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def wal_prefix(case, frames):
    head = read(case, "db-wal", 32)
    page_size = int.from_bytes(head[8:12], "big")
    return read(case, "db-wal", 32 + frames * (page_size + 24))


def main():
    write("db_header", "page-512", read("page-512", "db", 512))
    write("db_header", "rollback-1024", read("rollback-db", "db", 1024))
    write("db_header", "page-65536-head", read("page-65536", "db", 100))
    write("db_header", "page-4096-head", read("page-4096", "db", 100))
    for case, frames in [("page-512", 5), ("cut-mid-frame", 20), ("damaged-frame", 14),
                         ("uncommitted-tail", 8), ("restarted-generation", 6), ("page-4096", 1)]:
        wal = wal_prefix(case, frames)
        write("wal", f"{case}-checked", b"\x01" + wal)
        write("wal", f"{case}-repaired", b"\x00" + wal)
    write("wal_index", "live-shm", read("live-shm", "db-shm", 136))
    write("wal_index", "reset-3-bytes", bytes(3))
    write("wal_index", "uninitialised", bytes(136))


if __name__ == "__main__":
    main()
