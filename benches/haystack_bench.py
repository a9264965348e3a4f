#!/usr/bin/env python3
"""Haystack API benchmark: `read` with a selective filter over a ~10 000-entity
site, against vgw and against shaystack (a Python Haystack server, PyPI)
serving the same entities, in the same run, with the same load generator
(wrk, Debian); and hisRead of a day of 1-minute data for 100 points.

  apt-get install wrk
  python3 -m venv /tmp/shay/venv && /tmp/shay/venv/bin/pip install 'shaystack[flask]==0.10.2' 'werkzeug==2.1.2' waitress
  ~/.cache/vgw/venv/bin/python benches/haystack_bench.py --vgw $CARGO_TARGET_DIR/release/vgw \\
      --shaystack-python /tmp/shay/venv/bin/python

Prints a markdown section for docs/BENCHMARKS.md. Without
--shaystack-python only vgw is measured (and the section says so).
"""

import argparse
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import requests

FILTER_EQUIP = "b001-nvr03"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc, what: str, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    sys.exit(f"{what} did not answer {url} in {timeout} s")


def wrk(url: str, headers: dict, seconds: int, connections: int) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "raw": out.strip()}


def fill_history(db: Path, point_ids: list, day_start_ms: int):
    """A day of 1-minute samples per point, in vgw's history schema."""
    c = sqlite3.connect(db)
    c.executescript("""
        CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS samples (point INTEGER NOT NULL REFERENCES points(id),
            ts INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS samples_by_point_ts ON samples (point, ts);""")
    for name in point_ids:
        pid = c.execute("INSERT INTO points (name) VALUES (?) RETURNING id", (name,)).fetchone()[0]
        c.executemany("INSERT INTO samples (point, ts, value, quality) VALUES (?,?,?,1)",
                      [(pid, day_start_ms + m * 60_000, 20.0 + (m % 60) / 10) for m in range(1440)])
    c.commit()
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgw", required=True)
    ap.add_argument("--shaystack-python", help="a Python with shaystack[flask] installed")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vgw-hs-bench-"))
    site = work / "site.toml"
    subprocess.run([a.vgw, "sim", "gen-site", "--buildings", "1", "--nvrs", "14", "--cameras", "64",
                    "-o", str(site)], check=True, capture_output=True)
    subprocess.run([a.vgw, "user", "add", "-c", str(site), "bench", "--role", "operator", "--password-stdin"],
                   input=b"bench-password\n", check=True, capture_output=True)
    data = work / "data"
    data.mkdir()
    # History: a day (yesterday, UTC) of 1-minute data for 100 temperature-like points.
    day = int(time.time() // 86400 - 1) * 86400 * 1000
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Points to fill: the first 100 historised analog points (bitrates).
    export = subprocess.run([a.vgw, "export", "-c", str(site), "-f", "csv"], capture_output=True, text=True,
                            check=True).stdout.splitlines()[1:]
    analog = [line.split(",")[0] for line in export if ",analog-input," in line and ".bitrate" in line][:100]
    fill_history(data / "history.sqlite", analog, day)

    proc = subprocess.Popen([a.vgw, "run", "-c", str(site), "--data-dir", str(data), "--http",
                             f"127.0.0.1:{port}", "--bacnet", "off"],
                            stdout=subprocess.DEVNULL, stderr=open(work / "vgw.log", "wb"))
    try:
        wait_http(f"{base}/health", proc, "vgw")
        token = requests.post(f"{base}/api/login", auth=("bench", "bench-password"), timeout=30).json()["token"]
        auth = {"Authorization": f"BEARER authToken={token}"}
        everything = requests.get(f"{base}/haystack/read", params={"filter": "id", "limit": "100000"},
                                  headers={**auth, "Accept": "application/json"}, timeout=120).text
        everything_zinc = requests.get(f"{base}/haystack/read", params={"filter": "id", "limit": "100000"},
                                       headers={**auth, "Accept": "text/zinc"}, timeout=120).text
        entities = len(requests.get(f"{base}/haystack/read", params={"filter": "id", "limit": "100000"},
                                    headers={**auth, "Accept": "application/json"}, timeout=120).json()["rows"])
        site_id = re.search(r'^id = "([^"]+)"', site.read_text(), re.M).group(1)
        flt = f"point and equipRef==@{site_id}.{FILTER_EQUIP}"
        url = f"{base}/haystack/read?" + urllib.parse.urlencode({"filter": flt})
        hits = requests.get(url, headers={**auth, "Accept": "application/json"}, timeout=30).json()["rows"]
        ours = wrk(url, {**auth, "Accept": "application/json"}, a.seconds, a.connections)

        # hisRead: a day of 1-minute data for each of the 100 points, one request each.
        day_iso = time.strftime("%Y-%m-%d", time.gmtime(day / 1000))
        his_times, his_rows = [], 0
        for pid in analog:
            t0 = time.perf_counter()
            r = requests.get(f"{base}/haystack/hisRead", params={"id": f"@{site_id}.{pid}", "range": day_iso},
                             headers={**auth, "Accept": "application/json"}, timeout=30)
            his_times.append((time.perf_counter() - t0) * 1000)
            his_rows += len(r.json()["rows"])
        his_times.sort()
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    peer = None
    if a.shaystack_python:
        # The same entities, as the Zinc vgw served (shaystack does not read
        # Haystack 4 JSON; it needs ~20 s to load this much Zinc, done in the
        # warm-up request below).
        peer_dir = work / "peer"
        peer_dir.mkdir()
        db = peer_dir / "entities.zinc"
        db.write_text(everything_zinc)
        pport = free_port()
        env = {**os.environ, "HAYSTACK_PROVIDER": "shaystack.providers.url", "HAYSTACK_DB": str(db)}
        # waitress (8 threads, keep-alive): shaystack's fairest server here.
        waitress = Path(a.shaystack_python).parent / "waitress-serve"
        sp = subprocess.Popen([str(waitress), f"--listen=127.0.0.1:{pport}", "--threads=8", "app.main:app_instance"],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(work / "shaystack.log", "wb"))
        try:
            purl = f"http://127.0.0.1:{pport}/haystack/read?" + urllib.parse.urlencode({"filter": flt})
            wait_http(f"http://127.0.0.1:{pport}/", sp, "shaystack")
            # The first request loads the file: warm up before timing.
            requests.get(purl, headers={"Accept": "application/json"}, timeout=300)
            peer_hits = requests.get(purl, headers={"Accept": "application/json"}, timeout=60).json()["rows"]
            peer = wrk(purl, {"Accept": "application/json"}, a.seconds, a.connections)
            peer["hits"] = len(peer_hits)
        finally:
            sp.terminate()

    def pct(xs, p):
        return xs[min(len(xs) - 1, round((len(xs) - 1) * p))]

    print(f"""### Haystack API (`benches/haystack_bench.py`, {time.strftime('%Y-%m-%d')})

Command: `{sys.executable} benches/haystack_bench.py --vgw {a.vgw}{' --shaystack-python ' + a.shaystack_python if a.shaystack_python else ''} --seconds {a.seconds} --connections {a.connections}`
Machine: {os.cpu_count()} cores, {platform.platform()}. Load generator: wrk, 2 threads, {a.connections} connections, {a.seconds} s, keep-alive.

Site: `vgw sim gen-site --buildings 1 --nvrs 14 --cameras 64`, {entities} Haystack entities.
`read?filter={flt}` ({len(hits)} rows, JSON):

| server | requests/s | p50 ms | p99 ms | non-2xx |
|---|---|---|---|---|
| vgw (release) | {ours['rps']:.0f} | {ours['p50']:.2f} | {ours['p99']:.2f} | {ours['non2xx']} |
| {'shaystack 0.10.2 (waitress, 8 threads, url provider), ' + str(peer['hits']) + ' rows' if peer else 'shaystack: not run (no --shaystack-python)'} | {f"{peer['rps']:.0f}" if peer else '—'} | {f"{peer['p50']:.2f}" if peer else '—'} | {f"{peer['p99']:.2f}" if peer else '—'} | {peer['non2xx'] if peer else '—'} |

hisRead of one day of 1-minute data ({his_rows // max(1, len(analog))} samples) for each of {len(analog)} points,
one request at a time: total {sum(his_times):.0f} ms, per request p50 {pct(his_times, .5):.1f} ms, p99 {pct(his_times, .99):.1f} ms.
""")


if __name__ == "__main__":
    main()
