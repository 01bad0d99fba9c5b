#!/usr/bin/env python3
"""Regenerates the seed corpora of the walcast-lock fuzz targets:
  corpus/lock_wal_header/     WAL headers written by real SQLite (Python's sqlite3), plus the
                              big-endian-checksum variant, a wal2 version and damaged copies
  corpus/lock_position_token/ position tokens, binary (20 bytes) and text, valid and not
Run from anywhere: python3 fuzz/lock_seeds.py"""
import os
import sqlite3
import struct
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def wal_checksum(data, big):
    s1 = s2 = 0
    fmt = ">2I" if big else "<2I"
    for i in range(0, len(data), 8):
        x0, x1 = struct.unpack_from(fmt, data, i)
        s1 = (s1 + x0 + s2) & 0xFFFFFFFF
        s2 = (s2 + x1 + s1) & 0xFFFFFFFF
    return struct.pack(">2I", s1, s2)


def with_checksum(head24, big):
    return head24 + wal_checksum(head24, big)


def sqlite_wal_header():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.db")
        c = sqlite3.connect(path, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA wal_autocheckpoint=0")
        c.execute("CREATE TABLE t(v)")
        with open(path + "-wal", "rb") as f:
            header = f.read(32)
        c.close()
        return header


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    real = sqlite_wal_header()
    write("lock_wal_header", "sqlite-little", real)
    rest = real[4:24]
    write("lock_wal_header", "big-endian", with_checksum(struct.pack(">I", 0x377F0683) + rest, True))
    wal2 = real[:4] + struct.pack(">I", 3021000) + real[8:24]
    write("lock_wal_header", "wal2-version", with_checksum(wal2, real[3] & 1 == 1))
    write("lock_wal_header", "page-65536", with_checksum(real[:8] + struct.pack(">I", 65536) + real[12:24], False))
    write("lock_wal_header", "bad-checksum", real[:31] + bytes([real[31] ^ 1]))
    write("lock_wal_header", "truncated", real[:17])
    write("lock_wal_header", "empty", b"")

    token = struct.pack(">5I", 0xDEADBEEF, 7, 4242, 1, 0xFFFFFFFF)
    write("lock_position_token", "binary", token)
    write("lock_position_token", "binary-frame-zero", token[:8] + b"\0\0\0\0" + token[12:])
    write("lock_position_token", "binary-short", token[:19])
    write("lock_position_token", "text", b"deadbeef-00000007@4242:00000001ffffffff")
    write("lock_position_token", "text-overflow", b"deadbeef-00000007@99999999999:00000001ffffffff")
    write("lock_position_token", "text-garbage", b"deadbeef@-:")


if __name__ == "__main__":
    main()
