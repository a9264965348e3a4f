#!/usr/bin/env python3
"""Compare vgw's canned topology queries on Oxigraph with the same SPARQL in rdflib.

Steps (each bounded by a timeout):
  1. `vgw sim gen-site --buildings N -o site.toml` (skipped with --site FILE)
  2. `vgw bench model -c site.toml --queries-out queries.json` (Oxigraph timings)
  3. `vgw export -c site.toml -f nt -o site.nt` (the model graph as N-Triples)
  4. load site.nt into an rdflib Graph in a worker process, timed
  5. run each canned query in rdflib (median of --runs), each run capped by
     --rdflib-timeout, and check the row counts equal vgw's
  6. print a markdown section (table, vgw bench output, rdflib load time,
     peak RSS of both, commands, versions) for docs/BENCHMARKS.md

Run with a Python that has rdflib, e.g.
  /root/.cache/vgw/venv/bin/python benches/topology_vs_rdflib.py --vgw target/release/vgw
See benches/README.md.
"""

import argparse
import json
import os
import platform
import queue
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GNU_TIME = "/usr/bin/time"


# --------------------------------------------------------------------------
# rdflib worker (runs in a child process: `--worker NT_FILE`)
# --------------------------------------------------------------------------

def _maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def worker_main(nt_path):
    """Loads the N-Triples, then answers one JSON request per stdin line.

    Protocol (one JSON object per line on stdout):
      -> {"event": "loaded", "seconds": s, "triples": n, "maxrss_kb": k}
      <- {"query": "...", "runs": 3}
      -> {"event": "run", "ms": t, "rows": r, "maxrss_kb": k}   (one per run)
      -> {"event": "error", "message": "..."}                   (instead)
    """
    import rdflib

    out = sys.stdout

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    g = rdflib.Graph()
    t0 = time.perf_counter()
    g.parse(nt_path, format="nt")
    load_s = time.perf_counter() - t0
    send({"event": "loaded", "seconds": load_s, "triples": len(g),
          "maxrss_kb": _maxrss_kb()})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            for _ in range(req["runs"]):
                t = time.perf_counter()
                rows = len(list(g.query(req["query"])))  # parse + evaluate + materialise
                ms = (time.perf_counter() - t) * 1000.0
                send({"event": "run", "ms": ms, "rows": rows,
                      "maxrss_kb": _maxrss_kb()})
        except Exception as e:  # report, keep serving
            send({"event": "error", "message": f"{type(e).__name__}: {e}"})


class Worker:
    """An rdflib worker process with line-based JSON I/O and timeouts."""

    def __init__(self, python, nt_path, stderr_path):
        self.cmd = [python, os.path.abspath(__file__), "--worker", nt_path]
        self.stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True, bufsize=1, start_new_session=True)
        self.lines = queue.Queue()
        self.peak_kb = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # EOF

    def _hwm_kb(self):
        # Peak RSS of the worker so far, read from outside (works even when
        # the worker is stuck in a query and about to be killed).
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def recv(self, timeout):
        """Next message, or None on timeout; raises if the worker died."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.peak_kb = max(self.peak_kb, self._hwm_kb())
            return None
        if line is None:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"rdflib worker exited with status {self.proc.returncode}")
        msg = json.loads(line)
        self.peak_kb = max(self.peak_kb, msg.get("maxrss_kb", 0), self._hwm_kb())
        return msg

    def send(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def stop(self):
        self.peak_kb = max(self.peak_kb, self._hwm_kb())
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        self.stderr.close()


# --------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------

def run_bounded(cmd, timeout, log_path, time_path=None):
    """Runs cmd (optionally under GNU time -v), returns (stdout, peak RSS kB or None)."""
    full = cmd
    if time_path:
        full = [GNU_TIME, "-v", "-o", time_path] + cmd
    with open(log_path, "ab") as err:
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            sys.exit(f"timed out after {timeout} s: {shlex.join(cmd)} (log: {log_path})")
    if proc.returncode != 0:
        sys.exit(f"exit status {proc.returncode}: {shlex.join(cmd)} (log: {log_path})")
    peak = None
    if time_path and os.path.exists(time_path):
        with open(time_path) as f:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
            peak = int(m.group(1)) if m else None
    return out.decode(), peak


CANNED = re.compile(r"^\s+(?P<name>.+): (?P<rows>\d+) rows, (?P<ms>[\d.]+) ms\s*$")


def parse_bench(text):
    """Canned-query results from `vgw bench model` output: {name: (rows, ms)}."""
    res, inside = {}, False
    for line in text.splitlines():
        if line.startswith("canned topology queries"):
            inside = True
            continue
        if inside:
            m = CANNED.match(line)
            if not m:
                break
            res[m["name"]] = (int(m["rows"]), float(m["ms"]))
    return res


def fmt_ms(ms):
    return f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def mb(kb):
    return f"{kb / 1024:.0f} MB" if kb else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vgw", default="target/release/vgw", help="vgw binary (release build)")
    ap.add_argument("--buildings", type=int, default=10, help="site size for gen-site (x 10 NVRs x 64 cameras)")
    ap.add_argument("--site", help="reuse this site file instead of generating one")
    ap.add_argument("--workdir", help="where site/queries/N-Triples/logs go (default: a new /tmp dir, kept)")
    ap.add_argument("--requests", type=int, default=200, help="passed to `vgw bench model --requests`")
    ap.add_argument("--runs", type=int, default=3, help="rdflib runs per query (median reported)")
    ap.add_argument("--rdflib-timeout", type=float, default=120.0, help="cap per rdflib query run, seconds")
    ap.add_argument("--load-timeout", type=float, default=1800.0, help="cap for the rdflib N-Triples load, seconds")
    ap.add_argument("--vgw-timeout", type=float, default=1800.0, help="cap for each vgw command, seconds")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--worker", metavar="NT_FILE", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker_main(a.worker)

    import rdflib  # fail early if this Python lacks it

    vgw = shutil.which(a.vgw) or a.vgw
    if not os.access(vgw, os.X_OK):
        sys.exit(f"not an executable: {a.vgw}")
    vgw = os.path.abspath(vgw)
    work = a.workdir or tempfile.mkdtemp(prefix="vgw-rdflib-")
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "vgw.log")
    use_time = os.access(GNU_TIME, os.X_OK)
    commands = []

    def step(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    version = subprocess.run([vgw, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()

    # 1. site
    if a.site:
        site = os.path.abspath(a.site)
    else:
        site = os.path.join(work, "site.toml")
        cmd = [vgw, "sim", "gen-site", "--buildings", str(a.buildings), "-o", site]
        step(shlex.join(cmd))
        commands.append(cmd)
        run_bounded(cmd, a.vgw_timeout, log)

    # 2. vgw bench model
    qpath = os.path.join(work, "queries.json")
    cmd = [vgw, "bench", "model", "-c", site, "--queries-out", qpath,
           "--requests", str(a.requests)]
    step(shlex.join(cmd))
    commands.append(cmd)
    bench_out, vgw_peak_kb = run_bounded(cmd, a.vgw_timeout, log,
                                         os.path.join(work, "bench.time") if use_time else None)
    with open(os.path.join(work, "bench.out"), "w") as f:
        f.write(bench_out)
    ox = parse_bench(bench_out)
    with open(qpath) as f:
        queries = json.load(f)

    # 3. export
    nt = os.path.join(work, "site.nt")
    cmd = [vgw, "export", "-c", site, "-f", "nt", "-o", nt]
    step(shlex.join(cmd))
    commands.append(cmd)
    run_bounded(cmd, a.vgw_timeout, log)
    nt_bytes = os.path.getsize(nt)
    with open(nt, "rb") as f:
        nt_triples = sum(1 for line in f if line.strip() and not line.startswith(b"#"))

    # 4. rdflib load (in a worker, so a runaway query can be killed)
    wlog = os.path.join(work, "rdflib-worker.log")
    step(f"rdflib {rdflib.__version__}: loading {nt} ({nt_triples} triples)")
    worker = Worker(sys.executable, nt, wlog)
    peak_kb = 0

    def start_and_load():
        msg = worker.recv(a.load_timeout)
        if msg is None:
            worker.stop()
            sys.exit(f"rdflib load exceeded --load-timeout {a.load_timeout} s")
        return msg

    loaded = start_and_load()
    load_s, rdf_triples = loaded["seconds"], loaded["triples"]
    step(f"loaded in {load_s:.1f} s")

    # 5. queries
    results = []
    mismatch = False
    for q in queries:
        name = q["name"]
        step(f"rdflib: {name}")
        worker.send({"query": q["query"], "runs": a.runs})
        times, rows, status = [], None, None
        for _ in range(a.runs):
            msg = worker.recv(a.rdflib_timeout)
            if msg is None:
                status = f">{a.rdflib_timeout:.0f} s"
                break
            if msg["event"] == "error":
                status = "error: " + msg["message"]
                break
            times.append(msg["ms"])
            rows = msg["rows"]
        if status and status.startswith(">"):
            # Kill the stuck worker; reload for the remaining queries.
            worker.stop()
            peak_kb = max(peak_kb, worker.peak_kb)
            if q is not queries[-1]:
                step("timed out: restarting the rdflib worker")
                worker = Worker(sys.executable, nt, wlog)
                start_and_load()
        ox_rows, ox_ms = ox.get(name, (None, None))
        ok = rows is None or ox_rows is None or rows == ox_rows
        mismatch |= not ok
        results.append((name, ox_rows, rows, ox_ms,
                        statistics.median(times) if times and not status else None,
                        status, ok))
    worker.stop()
    peak_kb = max(peak_kb, worker.peak_kb)

    # 6. markdown
    L = []
    L.append(f"### Canned topology queries: Oxigraph (vgw) vs rdflib" + (f", {a.buildings} building{'s' if a.buildings != 1 else ''}" if not a.site else ""))
    L.append("")
    site_line = next((l for l in bench_out.splitlines() if l.startswith("site:")), "")
    L.append(f"{site_line.replace('site:', 'Site:')} in the vgw store (model + ontology graphs); "
             f"the exported model graph has {nt_triples} triples ({nt_bytes / 1e6:.0f} MB of N-Triples), "
             f"{rdf_triples} after loading into rdflib.")
    L.append("")
    L.append("| query | rows | Oxigraph ms | rdflib ms | ratio |")
    L.append("|---|---:|---:|---:|---:|")
    for name, ox_rows, rows, ox_ms, rd_ms, status, ok in results:
        if ok:
            rows_s = str(ox_rows if ox_rows is not None else rows)
        else:
            rows_s = f"**{ox_rows} vs {rows} (mismatch)**"
        ox_s = fmt_ms(ox_ms) if ox_ms is not None else "n/a"
        if rd_ms is not None:
            rd_s = fmt_ms(rd_ms)
            ratio = f"{rd_ms / ox_ms:.0f}x" if ox_ms else "n/a"
        elif status and status.startswith(">"):
            rd_s = status
            ratio = f">{a.rdflib_timeout * 1000 / ox_ms:.0f}x" if ox_ms else "n/a"
        else:
            rd_s, ratio = status or "n/a", "n/a"
        L.append(f"| {name} | {rows_s} | {ox_s} | {rd_s} | {ratio} |")
    L.append("")
    L.append(f"Oxigraph: median of 5 in `vgw bench model` (parse + evaluate + collect rows, in process). "
             f"rdflib: median of {a.runs} (`len(list(g.query(q)))`, same query text), "
             f"each run capped at {a.rdflib_timeout:.0f} s. ratio = rdflib / Oxigraph.")
    if ox and all(r[1] == 0 for r in results):
        L.append("")
        L.append("**Warning: every canned query returned 0 rows in vgw — the model graph looks empty; "
                 "these timings do not measure topology traversal.**")
    if nt_triples == 0:
        L.append("")
        L.append("**Warning: `vgw export -f nt` wrote no triples.**")
    L.append("")
    L.append("`vgw bench model` output:")
    L.append("")
    L.append("```")
    L.extend(bench_out.rstrip().splitlines())
    L.append("```")
    L.append("")
    L.append(f"- vgw `bench model` peak RSS (GNU time): {mb(vgw_peak_kb)}")
    L.append(f"- rdflib N-Triples load: {load_s:.1f} s ({rdf_triples} triples)")
    L.append(f"- rdflib process peak RSS (VmHWM, load + queries): {mb(peak_kb)}")
    L.append("")
    L.append("Commands:")
    L.append("")
    L.append("```")
    L.append(shlex.join([sys.executable] + sys.argv))
    for c in commands:
        L.append(shlex.join(c))
    L.append("```")
    L.append("")
    L.append("(the script runs the three vgw commands above, then loads site.nt with "
             "`rdflib.Graph().parse(path, format=\"nt\")` in a worker process and runs each "
             "query from queries.json there)")
    L.append("")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    L.append(f"Versions: {version}; rdflib {rdflib.__version__}; Python {platform.python_version()}; "
             f"host: {cpu or platform.machine()}, {os.cpu_count()} CPUs, "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; "
             f"{time.strftime('%Y-%m-%d')}.")
    md = "\n".join(L) + "\n"
    print(md)
    if a.out:
        with open(a.out, "w") as f:
            f.write(md)
    step(f"files kept in {work}")
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
