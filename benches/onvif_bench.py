#!/usr/bin/env python3
"""ONVIF driver benchmarks (issue: field drivers), in one run:

  1. alarm latency: a digital input toggled on the ONVIF simulator
     (`vgw sim onvif`, its own process) -> PullPoint event -> vgw's point
     engine -> BACnet UnconfirmedCOVNotification received by a UDP client.
     Timed from just before the simulator's control request to the
     notification's arrival: an upper bound (it includes the control call).
  2. the cost of N ONVIF devices (default 200) with open PullPoint
     subscriptions: vgw's CPU and resident memory, against the same site
     with no ONVIF addresses, measured over the same window; and the
     simulator's own CPU (the peer).

Run with the interop venv's Python (it has requests):
  ~/.cache/vgw/venv/bin/python benches/onvif_bench.py --vgw $CARGO_TARGET_DIR/release/vgw
Prints a markdown section for docs/BENCHMARKS.md.
"""

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bacnet_bench import notified_object, rss_mb, subscribe_cov  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-onvif"
TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_run(n: int) -> int:
    """A first port with n free TCP ports after it."""
    for base in range(21000, 60000, 977):
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise SystemExit(f"no run of {n} free ports")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_up(url: str, proc, what: str, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not up in {limit} s")


def sim(vgw: str, port: int, count: int, inputs: int, relays: int):
    p = subprocess.Popen(
        [vgw, "sim", "onvif", "--listen", f"127.0.0.1:{port}", "--count", str(count),
         "--inputs", str(inputs), "--relays", str(relays), "--max-subscriptions", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "VGW_SIM_ONVIF_PASSWORD": PASSWORD},
    )
    wait_up(f"http://127.0.0.1:{port + count - 1}/sim/relays", p, "vgw sim onvif")
    return p


def gateway(vgw: str, site: str, work: str, bacnet: str):
    path = os.path.join(work, f"site-{time.monotonic_ns()}.toml")
    with open(path, "w") as f:
        f.write(site)
    http = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "VGW_CRED_NVR_ADMIN_USERNAME": "admin",
           "VGW_CRED_NVR_ADMIN_PASSWORD": PASSWORD, "VGW_LOG": "warn"}
    p = subprocess.Popen(
        [vgw, "run", "--config", path, "--data-dir", os.path.join(work, f"data-{time.monotonic_ns()}"),
         "--http", http, "--bacnet", bacnet],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    base = f"http://{http}"
    wait_up(f"{base}/health", p, "vgw run")
    return p, base


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


def latency(vgw: str, work: str, toggles: int):
    sport = free_port()
    s = sim(vgw, sport, 1, 16, 4)
    bport = free_port(socket.SOCK_DGRAM)
    site = open(os.path.join(REPO, "config/demo.toml")).read()
    site = site.replace("[gateway]\n", "[gateway]\nanonymous_read = true\n", 1)
    site = re.sub(r'http://127\.0\.0\.1:18081/onvif/device_service',
                  f"http://127.0.0.1:{sport}/onvif/device_service", site)
    g, base = gateway(vgw, site, work, f"127.0.0.1:{bport}")
    try:
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/api/points/nvr-1.alarm-in-1", timeout=5).json()["quality"] != "ok":
            if time.monotonic() > deadline:
                raise SystemExit("nvr-1 never delivered its inputs")
            time.sleep(0.2)
        obj = requests.get(f"{base}/api/points/nvr-1.alarm-in-1", timeout=5).json()["bacnet"]["object"]
        inst = int(obj.split(",")[1])
        want = (3 << 22) | inst
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)
        sock.sendto(subscribe_cov(1, 1, 3, inst, 3600), ("127.0.0.1", bport))
        time.sleep(0.5)
        try:
            while True:
                sock.recvfrom(1500)
        except socket.timeout:
            pass
        control = requests.Session()
        lat, lost = [], 0
        for n in range(toggles):
            t0 = time.perf_counter()
            control.post(f"http://127.0.0.1:{sport}/sim/inputs/1",
                         json={"active": n % 2 == 0}, timeout=5).raise_for_status()
            deadline = time.monotonic() + 5
            while True:
                if time.monotonic() > deadline:
                    lost += 1
                    break
                try:
                    d, _ = sock.recvfrom(1500)
                except socket.timeout:
                    continue
                if notified_object(d) == want:
                    lat.append((time.perf_counter() - t0) * 1000)
                    break
        return lat, lost
    finally:
        stop(g)
        stop(s)


def many_site(n: int, base_port: int | None) -> str:
    out = ['[site]\nid = "bench"\nname = "ONVIF bench"\n[gateway]\nanonymous_read = true\n',
           '[[building]]\nid = "b"\n[[floor]]\nid = "f"\nbuilding = "b"\nlevel = 1\n',
           '[[space]]\nid = "srv"\nfloor = "f"\nkind = "server_room"\n']
    for k in range(n):
        onvif = (f'onvif = "http://127.0.0.1:{base_port + k}/onvif/device_service"\n'
                 if base_port else "")
        out.append(f'[[nvr]]\nid = "nvr-{k + 1}"\nspace = "srv"\nchannels = 4\nalarm_inputs = 4\n'
                   f'alarm_outputs = 2\ncredential = "nvr-admin"\n{onvif}')
    return "\n".join(out)


def cost(vgw: str, work: str, n: int, window: float):
    base_port = free_run(n)
    s = sim(vgw, base_port, n, 4, 2)
    results = {}
    try:
        for label, site in (("without ONVIF", many_site(n, None)), ("with ONVIF", many_site(n, base_port))):
            g, base = gateway(vgw, site, work, "off")
            try:
                if label == "with ONVIF":
                    deadline = time.monotonic() + 120
                    while True:
                        up = sum(requests.get(f"{base}/api/points/nvr-{k + 1}.online", timeout=5)
                                 .json()["value"] is True for k in range(n))
                        if up == n or time.monotonic() > deadline:
                            break
                        time.sleep(1)
                    results["online"] = up
                    subs = sum(requests.get(f"http://127.0.0.1:{base_port + k}/sim/subscriptions",
                                            timeout=5).json()["count"] for k in range(n))
                    results["subscriptions"] = subs
                time.sleep(5)
                c0, s0 = cpu_s(g.pid), cpu_s(s.pid)
                time.sleep(window)
                c1, s1 = cpu_s(g.pid), cpu_s(s.pid)
                results[label] = {
                    "cpu_pct": (c1 - c0) / window * 100,
                    "rss_mb": rss_mb(g.pid),
                    "sim_cpu_pct": (s1 - s0) / window * 100,
                }
            finally:
                stop(g)
    finally:
        stop(s)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgw", required=True)
    ap.add_argument("--toggles", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--window", type=float, default=60.0, help="CPU measurement window, s")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        lat, lost = latency(a.vgw, work, a.toggles)
        lat.sort()
        q = statistics.quantiles(lat, n=100)
        c = cost(a.vgw, work, a.devices, a.window)
    off, on = c["without ONVIF"], c["with ONVIF"]
    print(f"""## ONVIF

Command: `~/.cache/vgw/venv/bin/python benches/onvif_bench.py --vgw target/release/vgw --toggles {a.toggles} --devices {a.devices} --window {a.window:.0f}`
Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()} client.

**Alarm latency** — digital input toggled on the ONVIF simulator (its own
process) → PullPoint event → point engine → BACnet COV notification at a
UDP client; {len(lat)} toggles, {lost} without a notification within 5 s.
Timed from before the simulator's control request (included) to arrival.

| p50 | p90 | p99 | max | goal |
|---|---|---|---|---|
| {q[49]:.2f} ms | {q[89]:.2f} ms | {q[98]:.2f} ms | {lat[-1]:.2f} ms | p99 ≤ 50 ms |

**{a.devices} ONVIF devices with open PullPoint subscriptions** (one `vgw sim
onvif --count {a.devices}` process as the peer; 10 s long-polls, renew
every 20 s, clock every 60 s): {c['online']} online, {c['subscriptions']}
subscriptions open at the devices. CPU over a {a.window:.0f} s window, idle
devices (no events).

| | vgw CPU (% of one core) | vgw RSS | simulator CPU |
|---|---|---|---|
| same site, no ONVIF addresses | {off['cpu_pct']:.2f} % | {off['rss_mb']:.1f} MB | {off['sim_cpu_pct']:.2f} % |
| {a.devices} devices driven | {on['cpu_pct']:.2f} % | {on['rss_mb']:.1f} MB | {on['sim_cpu_pct']:.2f} % |
| cost of the devices | {on['cpu_pct'] - off['cpu_pct']:.2f} % | {on['rss_mb'] - off['rss_mb']:.1f} MB ({(on['rss_mb'] - off['rss_mb']) * 1024 / a.devices:.0f} kB per device) | |
""")


if __name__ == "__main__":
    main()
