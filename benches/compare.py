#!/usr/bin/env python3
"""walcast vs Litestream 0.5.17, side by side: the comparison harness of issue 7 (item 2).

Owns the whole comparison run: installing what it needs (Litestream through
scripts/testdeps, the S3 server through the `compare_helper` example), the workloads, the
interleaving (every round runs every shipper, in a rotating order), the measurements and the
markdown table (stdout, and benches/RESULTS.md with --write-results).

  python3 benches/compare.py [--write-results] [--label TEXT]

Environment (defaults are the full run; see benches/README.md for a smoke run):
  COMPARE_SECONDS=60          length of each full-speed load run (directory replica)
  COMPARE_STEADY_SECONDS=180  length of each steady run (S3 server, COMPARE_RATE tx/s)
  COMPARE_REPEATS=5           interleaved rounds of the load workloads
  COMPARE_RATE=1000           tx/s of the steady workload (S3 requests and S3 lag)
  COMPARE_BATCH=10            rows per transaction in the batched workload
  COMPARE_SYNC_INTERVAL=1s    replica sync-interval given to both shippers
  COMPARE_RESTORE_MIB=1024    size of the database restored
  COMPARE_RESTORE_REPEATS=3   rounds of the restore workload
  COMPARE_ONLY=               comma list of workloads to run (small, batched, steady,
                              restore); empty runs them all. Rows of the others read n/a.

What each number measures is written in the table's notes (see NOTES below).
Uses only the Python standard library; needs python3 with sqlite3, cargo, and dd.
"""
import argparse
import collections
import datetime
import filecmp
import http.client
import http.server
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOAD = os.path.join(ROOT, "benches", "py", "compare_load.py")
SHIPPERS = ("walcast", "litestream")
LABEL = {"none": "no replication", "walcast": "walcast", "litestream": "Litestream 0.5.17"}


class HarnessError(Exception):
    """A step of the harness failed; the message says which and why."""


def env_int(name, default):
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise HarnessError(f"{name}={value!r} is not a whole number")


def log(message):
    print(f"[compare {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_checked(args, what, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise HarnessError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


# --- installing what the run needs -----------------------------------------------------

class Tools:
    """Paths of the binaries compared, built or installed on first use."""

    def __init__(self):
        log("building walcast, walcast-restore and compare_helper (release)")
        run_checked(["cargo", "build", "--release", "--locked", "-p", "walcast",
                     "-p", "walcast-restore"], "cargo build walcast", cwd=ROOT)
        run_checked(["cargo", "build", "--release", "--locked", "-p", "walcast-benches",
                     "--example", "compare_helper"], "cargo build compare_helper", cwd=ROOT)
        release = os.path.join(ROOT, "target", "release")
        self.walcast = os.path.join(release, "walcast")
        self.walcast_restore = os.path.join(release, "walcast-restore")
        self.helper = os.path.join(release, "examples", "compare_helper")
        log("installing Litestream 0.5.17 (scripts/testdeps)")
        exports = run_checked([os.path.join(ROOT, "scripts", "testdeps")], "scripts/testdeps")
        self.litestream = None
        for line in exports.splitlines():
            if line.startswith("export WALCAST_LITESTREAM="):
                self.litestream = line.split("=", 1)[1].strip("'\"")
        if not self.litestream or not os.access(self.litestream, os.X_OK):
            raise HarnessError(f"scripts/testdeps gave no Litestream binary: {exports!r}")
        version = run_checked([self.litestream, "version"], "litestream version").strip()
        if "0.5.17" not in version:
            raise HarnessError(f"expected Litestream 0.5.17, found {version}")


class S3Server:
    """The test suite's S3 server (s3s-fs), run by compare_helper as a separate process."""

    def __init__(self, helper, workdir):
        env = dict(os.environ, TMPDIR=workdir)
        self.process = subprocess.Popen([helper, "s3-server"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise HarnessError("the S3 server (compare_helper s3-server) did not start")
        info = json.loads(line)
        self.endpoint = info["endpoint"]
        self.root = info["root"]
        self.bucket = info["bucket"]
        self.credentials = {"AWS_ACCESS_KEY_ID": info["access_key"],
                            "AWS_SECRET_ACCESS_KEY": info["secret_key"]}

    def folder(self, path):
        """Where s3s-fs keeps the objects under `path` in the bucket."""
        return os.path.join(self.root, self.bucket, path)

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


# --- the counting proxy in front of the S3 server --------------------------------------

def request_kind(method, target):
    """PUT, GET, LIST, DELETE, HEAD or POST… for one S3 request (path-style addressing)."""
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    key = url.path.lstrip("/").partition("/")[2]
    if method == "GET" and ("list-type" in query or not key):
        return "LIST"
    if method == "POST" and "delete" in query:
        return "DELETE (batch)"
    return method if method in ("PUT", "GET", "DELETE", "HEAD") else f"{method} (other)"


class CountingProxy:
    """A loopback HTTP/1.1 relay that forwards every request unchanged (Host included, so
    SigV4 signatures still verify) to the S3 server and counts requests by kind."""

    HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "expect", "transfer-encoding",
                  "te", "upgrade"}

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlsplit(upstream).netloc
        self.counts = collections.Counter()
        self.bytes_up = 0
        self.lock = threading.Lock()
        proxy = self
        local = threading.local()

        class Relay(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relay(self):
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    self.send_error(501, "compare proxy: chunked request bodies unsupported")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                with proxy.lock:
                    proxy.counts[request_kind(self.command, self.path)] += 1
                    proxy.bytes_up += len(body) if self.command == "PUT" else 0
                for attempt in (1, 2):
                    conn = getattr(local, "conn", None) or http.client.HTTPConnection(
                        proxy.upstream, timeout=120)
                    local.conn = conn
                    try:
                        conn.putrequest(self.command, self.path, skip_host=True,
                                        skip_accept_encoding=True)
                        for name, value in self.headers.items():
                            if name.lower() not in proxy.HOP_BY_HOP:
                                conn.putheader(name, value)
                        conn.endheaders(body)
                        response = conn.getresponse()
                        data = response.read()
                        break
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        local.conn = None
                        if attempt == 2:
                            self.send_error(502, "compare proxy: S3 server unreachable")
                            return
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    lower = name.lower()
                    if lower in proxy.HOP_BY_HOP or (lower == "content-length"
                                                     and self.command != "HEAD"):
                        continue
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_counts(self):
        with self.lock:
            counts, self.counts = self.counts, collections.Counter()
            up, self.bytes_up = self.bytes_up, 0
        return counts, up

    def stop(self):
        self.server.shutdown()


# --- measuring a process ------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of restores


def cpu_seconds(pid):
    """utime + stime of a live process (its threads included), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_bytes(pid):
    """VmHWM (peak resident set) of a live process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise HarnessError(f"no VmHWM in /proc/{pid}/status")


def timed_run(args, env, scratch):
    """Runs a command to completion: (wall seconds, peak RSS bytes). The RSS comes from GNU
    time (`%M`, the child's ru_maxrss): a child forked straight from this Python process
    would inherit the interpreter's high-water mark across exec and report that instead."""
    report = os.path.join(scratch, "time.txt")
    started = time.monotonic()
    result = subprocess.run([TIME, "-f", "%M", "-o", report] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise HarnessError(f"{' '.join(args[:2])} failed: "
                           f"{result.stderr.decode(errors='replace')[-2000:]}")
    with open(report) as f:
        return seconds, int(f.read().split()[-1]) * 1024


class WalSampler(threading.Thread):
    """Largest size of the -wal file seen, sampled every 5 ms."""

    def __init__(self, wal):
        super().__init__(daemon=True)
        self.wal, self.largest, self.done = wal, 0, threading.Event()
        self.start()

    def run(self):
        while not self.done.is_set():
            try:
                self.largest = max(self.largest, os.stat(self.wal).st_size)
            except FileNotFoundError:
                pass
            self.done.wait(0.005)


class ReplicaWatcher(threading.Thread):
    """Lists the replica's level-0 folder every 10 ms and hard-links each new .ltx file into
    `keep` as `<first-seen wall-clock ns>-<name>`; decoding waits until after the run."""

    def __init__(self, folder, keep):
        super().__init__(daemon=True)
        self.folder, self.keep, self.done = folder, keep, threading.Event()
        self.known, self.missed = set(), 0
        os.makedirs(keep)
        self.start()

    def run(self):
        while not self.done.is_set():
            try:
                names = [e.name for e in os.scandir(self.folder) if e.name.endswith(".ltx")]
            except FileNotFoundError:
                names = []
            seen_ns = time.time_ns()
            for name in names:
                if name not in self.known:
                    self.known.add(name)
                    try:
                        os.link(os.path.join(self.folder, name),
                                os.path.join(self.keep, f"{seen_ns}-{name}"))
                    except FileNotFoundError:
                        self.missed += 1
            self.done.wait(0.010)


# --- one load run -------------------------------------------------------------------------

def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * fraction)]


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


class Run:
    """One load run of one shipper: start it, run the load, measure, stop it."""

    def __init__(self, ctx, shipper, target, seconds, rate=0, batch=1):
        self.ctx, self.shipper, self.target = ctx, shipper, target
        self.seconds, self.rate, self.batch = seconds, rate, batch

    def replica(self, work):
        """(URL for the shipper, folder whose level-0 files the watcher lists)."""
        if self.target == "dir":
            replica = os.path.join(work, "replica")
            return "file://" + replica, os.path.join(replica, "ltx", "0")
        path = os.path.basename(work)
        endpoint = urllib.parse.quote(self.ctx.proxy.endpoint, safe=":/")
        style = "force-path-style" if self.shipper == "walcast" else "forcePathStyle"
        url = (f"s3://{self.ctx.s3.bucket}/{path}?endpoint={endpoint}"
               f"&region=us-east-1&{style}=true")
        return url, os.path.join(self.ctx.s3.folder(path), "0000")

    def start_shipper(self, work, db):
        url, level0 = self.replica(work)
        env = dict(os.environ, **self.ctx.s3.credentials)
        logfile = open(os.path.join(work, f"{self.shipper}.log"), "w")
        if self.shipper == "walcast":
            args = [self.ctx.tools.walcast, "replicate", db, url,
                    "-sync-interval", self.ctx.sync_interval]
        else:
            env.pop("AWS_CA_BUNDLE", None)  # Litestream 0.5.17 fails on it (test-environment.md)
            config = os.path.join(work, "litestream.yml")
            with open(config, "w") as f:
                f.write(f"dbs:\n  - path: {db}\n    replica:\n      url: \"{url}\"\n"
                        f"      sync-interval: {self.ctx.sync_interval}\n")
            args = [self.ctx.tools.litestream, "replicate", "-config", config]
        process = subprocess.Popen(args, stdout=logfile, stderr=logfile, env=env)
        # Ready when the first LTX file (the initial snapshot) is in the replica.
        deadline = time.monotonic() + 60
        while not any(n.endswith(".ltx") for n in list_quietly(level0)):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                with open(logfile.name) as f:
                    raise HarnessError(f"{self.shipper} did not reach {url}: {f.read()[-2000:]}")
            time.sleep(0.02)
        return process, level0

    def measure(self):
        work = tempfile.mkdtemp(prefix=f"{self.shipper}-{self.target}-", dir=self.ctx.workdir)
        db = os.path.join(work, "app.db")
        holder = sqlite3.connect(db, isolation_level=None)  # the application's own connection
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        holder.execute("CREATE TABLE probe(id INTEGER PRIMARY KEY, m TEXT)")
        process = watcher = None
        try:
            if self.shipper != "none":
                process, level0 = self.start_shipper(work, db)
                watcher = ReplicaWatcher(level0, os.path.join(work, "seen"))
                # Count from here: the initial snapshot is not the steady state measured.
                cpu_at_start = cpu_seconds(process.pid)
                self.ctx.proxy.take_counts()
                counted_from = time.monotonic()
            sampler = WalSampler(db + "-wal")
            args = [sys.executable, LOAD, db, str(self.seconds), "--batch", str(self.batch)]
            if self.rate:
                args += ["--rate", str(self.rate)]
            report = json.loads(run_checked(args, "load generator"))
            sample = {"tx_per_s": report["commits"] / report["seconds"],
                      "commits": report["commits"], "probes": report["probes"]}
            if process is not None:
                # Give the last probes time to reach the replica, then read the counters.
                time.sleep(2 * parse_seconds(self.ctx.sync_interval) + 0.5)
                cpu = cpu_seconds(process.pid) - cpu_at_start
                sample["cpu_per_10k"] = cpu / report["commits"] * 10_000
                sample["peak_rss"] = peak_rss_bytes(process.pid)
                counts, bytes_up = self.ctx.proxy.take_counts()
                minutes = (time.monotonic() - counted_from) / 60
                sample["requests_per_min"] = {k: v / minutes for k, v in counts.items()}
                sample["mb_up_per_min"] = bytes_up / 1e6 / minutes
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    raise HarnessError(f"{self.shipper} did not stop within 60 s of SIGINT")
                watcher.done.set()
                watcher.join()
                lags = json.loads(run_checked(
                    [self.ctx.tools.helper, "probe-lags", watcher.keep],
                    "compare_helper probe-lags"))
                if lags["undecodable"]:
                    raise HarnessError(f"replica files did not decode: {lags['undecodable'][:3]}")
                sample["lags_ms"] = lags["lags_ms"]
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            if watcher is not None:
                watcher.done.set()
        sampler.done.set()
        sampler.join()
        sample["max_wal"] = sampler.largest
        holder.close()
        shutil.rmtree(work, ignore_errors=True)
        return sample


def list_quietly(folder):
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def parse_seconds(interval):
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if interval.endswith(unit):
            return float(interval[: -len(unit)]) * units[unit]
    raise HarnessError(f"COMPARE_SYNC_INTERVAL={interval!r}: expected e.g. 1s or 500ms")


# --- restore ------------------------------------------------------------------------------

def build_restore_source(ctx, mib):
    """A WAL-mode database of about `mib` MiB of incompressible 4000-byte blobs, checkpointed,
    and one Litestream snapshot of it in a directory and in the S3 server."""
    work = os.path.join(ctx.workdir, "restore")
    os.makedirs(work)
    db = os.path.join(work, "big.db")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, v BLOB)")
    rows = mib * 1024 * 1024 // 4096
    for start in range(0, rows, 2048):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO blobs(v) VALUES (randomblob(4000))",
                         ([] for _ in range(min(2048, rows - start))))
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    urls = {"dir": "file://" + os.path.join(work, "replica"),
            "s3": (f"s3://{ctx.s3.bucket}/restore-source?endpoint={ctx.s3.endpoint}"
                   f"&region=us-east-1&forcePathStyle=true")}
    env = dict(os.environ, **ctx.s3.credentials)
    env.pop("AWS_CA_BUNDLE", None)
    for target, url in urls.items():
        config = os.path.join(work, f"litestream-{target}.yml")
        with open(config, "w") as f:
            f.write(f"dbs:\n  - path: {db}\n    replica:\n      url: \"{url}\"\n")
        run_checked([ctx.tools.litestream, "replicate", "-once", "-force-snapshot",
                     "-config", config], f"litestream snapshot to {target}", env=env)
    conn.close()
    return db, urls


def restore_rounds(ctx, mib, repeats):
    log(f"restore: building a {mib} MiB database and its Litestream snapshots")
    db, urls = build_restore_source(ctx, mib)
    out = os.path.join(ctx.workdir, "restore", "out.db")
    env_walcast = dict(os.environ, **ctx.s3.credentials)
    env_litestream = dict(env_walcast)
    env_litestream.pop("AWS_CA_BUNDLE", None)
    cases = [("dd conv=fsync", None,
              lambda: ["dd", f"if={db}", f"of={out}", "bs=1M", "conv=fsync"], None)]
    for target in ("dir", "s3"):
        cases.append(("walcast", target, lambda t=target: [
            ctx.tools.walcast_restore, "restore", "-o", out, urls[t]], env_walcast))
        cases.append(("litestream", target, lambda t=target: [
            ctx.tools.litestream, "restore", "-o", out, urls[t]], env_litestream))
    results = collections.defaultdict(list)
    for round_no in range(repeats):
        shift = round_no % len(cases)
        for tool, target, args, env in cases[shift:] + cases[:shift]:
            if os.path.exists(out):
                os.remove(out)
            seconds, rss = timed_run(args(), env, ctx.workdir)
            if not filecmp.cmp(db, out, shallow=False):
                raise HarnessError(f"{tool} restore from {target} differs from the source")
            results[(tool, target)].append((seconds, rss))
            log(f"restore round {round_no}: {tool} {target or ''} {seconds:.2f} s, "
                f"{rss / 1e6:.1f} MB peak RSS, identical")
    return os.path.getsize(db), results


# --- the run and its table -------------------------------------------------------------

class Context:
    def __init__(self):
        self.seconds = env_int("COMPARE_SECONDS", 60)
        self.steady_seconds = env_int("COMPARE_STEADY_SECONDS", 180)
        self.only = {w for w in os.environ.get("COMPARE_ONLY", "").split(",") if w}
        unknown = self.only - {w[0] for w in WORKLOADS} - {"restore"}
        if unknown:
            raise HarnessError(f"COMPARE_ONLY: unknown workloads {sorted(unknown)}")
        self.repeats = env_int("COMPARE_REPEATS", 5)
        self.rate = env_int("COMPARE_RATE", 1000)
        self.batch = env_int("COMPARE_BATCH", 10)
        self.restore_mib = env_int("COMPARE_RESTORE_MIB", 1024)
        self.restore_repeats = env_int("COMPARE_RESTORE_REPEATS", 3)
        self.sync_interval = os.environ.get("COMPARE_SYNC_INTERVAL", "1s")
        if not os.access(TIME, os.X_OK):
            raise HarnessError(f"{TIME} (GNU time, Debian package 'time') is needed for peak RSS")
        parse_seconds(self.sync_interval)
        os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix="compare-", dir=os.path.join(ROOT, "target"))
        self.tools = Tools()
        self.s3 = S3Server(self.tools.helper, self.workdir)
        self.proxy = CountingProxy(self.s3.endpoint)

    def runs(self, workload):
        return not self.only or workload in self.only

    def close(self):
        self.proxy.stop()
        self.s3.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


WORKLOADS = [
    # name, replica target, shippers, rate, batch
    ("small", "dir", ("none",) + SHIPPERS, 0, 1),
    ("batched", "dir", ("none",) + SHIPPERS, 0, None),
    ("steady", "s3", SHIPPERS, None, 1),
]


def load_rounds(ctx):
    samples = collections.defaultdict(list)
    for round_no in range(ctx.repeats):
        for name, target, shippers, rate, batch in WORKLOADS:
            if not ctx.runs(name):
                continue
            seconds = ctx.steady_seconds if rate is None else ctx.seconds
            rate = ctx.rate if rate is None else rate
            batch = ctx.batch if batch is None else batch
            order = list(shippers[round_no % len(shippers):] + shippers[:round_no % len(shippers)])
            for shipper in order:
                sample = Run(ctx, shipper, target, seconds, rate, batch).measure()
                samples[(name, shipper)].append(sample)
                lags = sample.get("lags_ms", [])
                log(f"round {round_no} {name:7} {shipper:10} {sample['tx_per_s']:8.0f} tx/s, "
                    f"WAL max {sample['max_wal'] / 1e6:.1f} MB"
                    + (f", CPU {sample['cpu_per_10k']:.3f} s/10k tx, "
                       f"RSS {sample['peak_rss'] / 1e6:.1f} MB, lag p50 "
                       f"{percentile(lags, 0.5):.0f} ms p99 {percentile(lags, 0.99):.0f} ms "
                       f"({len(lags)}/{sample['probes']} probes)" if "lags_ms" in sample else ""))
    return samples


def fmt(value, digits=0, unit=""):
    return "n/a" if value != value else f"{value:,.{digits}f}{unit}"


def ratio(a, b):
    return "n/a" if not b or a != a or b != b else f"{a / b:.2f}x"


def table(ctx, samples, restore):
    lines = []
    add = lines.append

    def per(name, shipper, key):
        return [s[key] for s in samples[(name, shipper)] if key in s]

    def med(name, shipper, key):
        return median(per(name, shipper, key))

    def kept(name, shipper):
        """Median over rounds of (tx/s with the shipper) / (tx/s without), same round."""
        return median([w["tx_per_s"] / n["tx_per_s"]
                       for w, n in zip(samples[(name, shipper)], samples[(name, "none")])])

    add(f"Medians over {ctx.repeats} interleaved rounds of {ctx.seconds} s per full-speed "
        f"load run and {ctx.steady_seconds} s per steady run at {ctx.rate} tx/s; "
        f"sync-interval {ctx.sync_interval} for both shippers.\n")
    add("| metric | no replication | walcast | Litestream 0.5.17 | walcast ÷ Litestream |")
    add("|---|---|---|---|---|")
    for name, title in (("small", "1 row/tx"), ("batched", f"{ctx.batch} rows/tx")):
        none_tx = med(name, "none", "tx_per_s")
        w, l = kept(name, "walcast"), kept(name, "litestream")
        add(f"| app tx/s kept, {title} (with ÷ without) | {fmt(none_tx)} tx/s = 100% | "
            f"{fmt(w * 100, 1)}% | {fmt(l * 100, 1)}% | {ratio(w, l)} |")
    for name, title in (("small", "1 row/tx"), ("batched", f"{ctx.batch} rows/tx")):
        values = [med(name, s, "max_wal") / 1e6 for s in ("none",) + SHIPPERS]
        add(f"| max WAL size, {title} | {fmt(values[0], 1, ' MB')} | {fmt(values[1], 1, ' MB')} | "
            f"{fmt(values[2], 1, ' MB')} | {ratio(values[1], values[2])} |")
    for name, title in (("small", "1 row/tx, full speed"), ("steady", f"{ctx.rate} tx/s")):
        w, l = med(name, "walcast", "cpu_per_10k"), med(name, "litestream", "cpu_per_10k")
        add(f"| shipper CPU-s per 10,000 tx, {title} | - | {fmt(w, 3)} | {fmt(l, 3)} | "
            f"{ratio(w, l)} |")
    for name, title in (("small", "1 row/tx, full speed"), ("steady", f"{ctx.rate} tx/s")):
        w, l = med(name, "walcast", "peak_rss") / 1e6, med(name, "litestream", "peak_rss") / 1e6
        add(f"| shipper peak RSS, {title} | - | {fmt(w, 1, ' MB')} | {fmt(l, 1, ' MB')} | "
            f"{ratio(w, l)} |")
    for name, title in (("small", "directory, full speed"), ("steady", f"S3, {ctx.rate} tx/s")):
        for p in (0.5, 0.99):
            w = median([percentile(x, p) for x in per(name, "walcast", "lags_ms")])
            l = median([percentile(x, p) for x in per(name, "litestream", "lags_ms")])
            add(f"| commit-to-replica lag p{round(p * 100)}, {title} | - | {fmt(w, 0, ' ms')} | "
                f"{fmt(l, 0, ' ms')} | {ratio(w, l)} |")
    kinds = ["PUT", "GET", "LIST", "DELETE"]
    kinds += sorted({k for s in SHIPPERS for x in per("steady", s, "requests_per_min")
                     for k in x} - set(kinds))
    for kind in kinds:
        w, l = (median([x.get(kind, 0) for x in per("steady", s, "requests_per_min")])
                for s in SHIPPERS)
        add(f"| S3 {kind} requests/min at {ctx.rate} tx/s | - | {fmt(w, 1)} | {fmt(l, 1)} | "
            f"{ratio(w, l)} |")
    w, l = (med("steady", s, "mb_up_per_min") for s in SHIPPERS)
    add(f"| S3 MB uploaded/min at {ctx.rate} tx/s | - | {fmt(w, 2)} | {fmt(l, 2)} | {ratio(w, l)} |")
    if restore is None:
        return "\n".join(lines)
    size, results = restore
    dd = results[("dd conv=fsync", None)]
    dd_s = median([s for s, _ in dd])
    for target in ("dir", "s3"):
        where = "directory" if target == "dir" else "S3 server"
        w = results[("walcast", target)]
        l = results[("litestream", target)]
        ws, ls = median([s for s, _ in w]), median([s for s, _ in l])
        add(f"| restore {size / 2**20:,.0f} MiB from {where}, seconds | dd: {fmt(dd_s, 2, ' s')} | "
            f"{fmt(ws, 2, ' s')} | {fmt(ls, 2, ' s')} | {ratio(ws, ls)} |")
        wr, lr = median([r for _, r in w]) / 1e6, median([r for _, r in l]) / 1e6
        add(f"| restore {size / 2**20:,.0f} MiB from {where}, peak RSS | "
            f"dd: {fmt(median([r for _, r in dd]) / 1e6, 1, ' MB')} | "
            f"{fmt(wr, 1, ' MB')} | {fmt(lr, 1, ' MB')} | {ratio(wr, lr)} |")
    add("")
    add(f"Restore: {ctx.restore_repeats} rounds, rotating order; every output compared byte for "
        f"byte with the source ({size:,} bytes): all identical.")
    return "\n".join(lines)


NOTES = """\
What each number measures:
- **app tx/s kept**: transactions/s of benches/py/compare_load.py (Python sqlite3, WAL,
  synchronous=NORMAL, busy timeout 60 s, ~100-byte random rows, one or BATCH per transaction, as fast as it
  can) with the shipper replicating to a directory, divided by the run without a shipper in
  the same round; median of those per-round ratios. The "no replication" column is the
  median tx/s. Above 100% is possible: a shipper that holds a read transaction blocks
  SQLite's checkpoints, the WAL only grows, and short runs skip the checkpoint work.
- **max WAL size**: the largest `-wal` file size sampled every 5 ms during the load run.
- **shipper CPU-s per 10,000 tx**: user+system CPU of the shipper process (/proc/PID/stat)
  from the moment its first LTX file is in the replica (initial snapshot excluded) to just
  before SIGINT (the load plus a 2x sync-interval + 0.5 s tail for the last uploads),
  divided by the transactions committed, times 10,000.
- **peak RSS**: VmHWM from /proc/PID/status read just before SIGINT.
- **commit-to-replica lag**: once every 10 ms a transaction also inserts a probe row holding
  the wall clock read just before COMMIT. A watcher thread lists the replica's level-0
  folder every 10 ms (directory: `ltx/0/`; S3: the folder where the S3 server, s3s-fs,
  stores the objects under `0000/`, i.e. what a LIST would return) and hard-links each new
  `.ltx` file as it first appears; after the run each file is decoded and each probe's lag is
  (first sighting of a file holding it) − (its stamp). Resolution about 10 ms. Percentiles
  per run, then the median over runs. Full-speed lag is under a saturated 2-core machine.
- **S3 requests/min**: requests passing through a counting HTTP relay in front of the S3
  server during the steady run (the load at the given tx/s), by kind: LIST = GET on the
  bucket or with `list-type`; DELETE (batch) = POST `?delete`; per minute of the counted
  window (same window as the CPU: after the first LTX file, through the tail).
  Short runs do not reach the compaction intervals (30 s, 5 min, 1 h) of either shipper.
- **restore**: wall seconds and peak RSS (wait4 ru_maxrss) of `walcast-restore restore -o`
  and `litestream restore -o` of the same replica (one Litestream level-9 snapshot written
  by `litestream replicate -once -force-snapshot` of a checkpointed database of random
  4000-byte blobs, 4 KiB pages), in a directory and in the S3 server (direct, no relay);
  `dd if=DB of=OUT bs=1M conv=fsync` copies the same bytes durably, as the disk's reference.
"""


def machine_description():
    def first(path, prefix):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"
    probe = os.path.join(ROOT, "target", "compare-dd-probe")
    dd = subprocess.run(["dd", "if=/dev/zero", f"of={probe}", "bs=1M", "count=256",
                         "conv=fsync"], capture_output=True, text=True)
    if os.path.exists(probe):
        os.remove(probe)
    speed = dd.stderr.strip().splitlines()[-1].split(",")[-1].strip() if dd.stderr else "unknown"
    load = os.getloadavg()
    return "\n".join([
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores",
        f"- Memory: {first('/proc/meminfo', 'MemTotal')}",
        f"- Kernel: {platform.release()}",
        f"- Disk: {speed} (dd of 256 MiB from /dev/zero, conv=fsync)",
        f"- Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- SQLite (load generator): {sqlite3.sqlite_version}, Python {platform.python_version()}",
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write-results", action="store_true",
                        help="also write the table and machine description to benches/RESULTS.md")
    parser.add_argument("--label", default="",
                        help="a line put at the top of RESULTS.md (e.g. 'smoke run')")
    options = parser.parse_args()
    ctx = Context()
    try:
        command_env = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ)
                               if k.startswith("COMPARE_"))
        samples = load_rounds(ctx)
        restore = (restore_rounds(ctx, ctx.restore_mib, ctx.restore_repeats)
                   if ctx.runs("restore") else None)
        result = table(ctx, samples, restore)
    finally:
        ctx.close()
    print(result)
    print()
    print(NOTES)
    if options.write_results:
        with open(os.path.join(ROOT, "benches", "RESULTS.md"), "w") as f:
            f.write("# walcast vs Litestream 0.5.17\n\n")
            if options.label:
                f.write(f"**{options.label}**\n\n")
            f.write(f"Command: `{(command_env + ' ') if command_env else ''}"
                    f"python3 benches/compare.py --write-results`\n\n")
            f.write(machine_description() + "\n\n")
            f.write(result + "\n\n" + NOTES)
        log("wrote benches/RESULTS.md")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        print(f"compare: {e}", file=sys.stderr)
        sys.exit(1)
