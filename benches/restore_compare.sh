#!/usr/bin/env bash
# Restore of a large database from a directory replica: walcast-restore vs Litestream 0.5.17,
# with `dd conv=fsync` of the database file itself (the same bytes read from the page cache and
# written durably) as the disk's limit. Seconds and peak RSS.
#
#   benches/restore_compare.sh [SIZE_MIB (default 1024)] [RUNS (default 5)]
#
# What it does (everything under target/bench-restore/, removed first):
#   1. builds walcast-restore (release profile) and installs Litestream (scripts/testdeps);
#   2. writes a WAL-mode SQLite database of about SIZE_MIB MiB of random 4000-byte blobs with
#      the sqlite3 CLI (4 KiB pages, so the lock-byte page is crossed at 1 GiB);
#   3. `litestream replicate -once -force-snapshot` into a directory replica;
#   4. RUNS rounds of: dd of the database, litestream restore, walcast-restore restore (the order
#      rotating every round; each writes a new file and fsyncs it), timed by /usr/bin/time
#      (elapsed s, max RSS);
#   5. checks each restore byte-identical to the source after `wal_checkpoint(TRUNCATE)`;
#   6. prints one line per run, then per tool the median and fastest time and the median RSS.
# The machine is shared: compare figures from one run (medians and ratios), not across days.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mib="${1:-1024}"
runs="${2:-5}"
work="$root/target/bench-restore"

eval "$("$root/scripts/testdeps")"
(cd "$root" && cargo build --release --locked -p walcast-restore >&2)
walcast="$root/target/release/walcast-restore"
litestream="$WALCAST_LITESTREAM"

rm -rf "$work"
mkdir -p "$work"
db="$work/source.db"
replica="$work/replica"
rows=$(( size_mib * 1024 * 1024 / 4100 ))
echo "writing a ${size_mib} MiB database ($rows rows)..." >&2
sqlite3 "$db" >/dev/null <<SQL
PRAGMA page_size=4096;
PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<$rows)
INSERT INTO t(v) SELECT randomblob(4000) FROM c;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
cat > "$work/litestream.yml" <<YAML
dbs:
  - path: "$db"
    replica:
      type: file
      path: "$replica"
YAML
echo "replicating with litestream replicate -once -force-snapshot..." >&2
env -u AWS_CA_BUNDLE "$litestream" replicate -once -force-snapshot -config "$work/litestream.yml" >/dev/null 2>&1
sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
bytes=$(stat -c %s "$db")

# timed NAME CMD...: runs CMD under /usr/bin/time, appends "NAME seconds max_rss_kib".
timed() {
  local name="$1"; shift
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/$name.log"
  echo "$name $(cat "$work/time.txt")" | tee -a "$work/results.txt"
}

run_one() {
  case "$1" in
    dd) timed dd dd if="$db" of="$work/dd.out" bs=1M conv=fsync
        rm -f "$work/dd.out" ;;
    litestream) timed litestream env -u AWS_CA_BUNDLE "$litestream" restore -o "$work/litestream.db" "file://$replica"
        cmp "$db" "$work/litestream.db"
        rm -f "$work/litestream.db" ;;
    walcast) timed walcast "$walcast" restore -o "$work/walcast.db" "$replica"
        cmp "$db" "$work/walcast.db"
        rm -f "$work/walcast.db" ;;
  esac
}
# The order rotates every round so that no tool always runs after the same one.
order=(dd litestream walcast)
for round in $(seq 0 $(( runs - 1 ))); do
  for i in 0 1 2; do
    run_one "${order[$(( (round + i) % 3 ))]}"
  done
done

echo
echo "database: $bytes bytes; replica: $(du -sb "$replica" | cut -f1) bytes; $(nproc) CPUs"
# median COLUMN NAME: the median of one column of NAME's result lines.
median() {
  grep "^$2 " "$work/results.txt" | cut -d' ' -f"$1" | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
# fastest NAME: the smallest time of NAME's runs.
fastest() {
  grep "^$1 " "$work/results.txt" | cut -d' ' -f2 | sort -n | head -1
}
for name in dd litestream walcast; do
  printf "%-10s median %6.2f s   fastest %6.2f s   peak RSS median %7.1f MB\n" \
    "$name" "$(median 2 "$name")" "$(fastest "$name")" \
    "$(awk -v k="$(median 3 "$name")" 'BEGIN { print k / 1024 }')"
done
