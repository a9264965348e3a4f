#!/usr/bin/env python3
"""BACnet/IP benchmarks of `vgw demo`, with a bacpypes3 server as the peer.

Measures, in one run:
  1. ReadProperty throughput and latency with 32 requests in flight, from
     the same load generator (`vgw bench bacnet-rp`) against vgw and against
     a bacpypes3 server on the same machine;
  2. point change -> COV notification received, with 2000+ active
     subscriptions (3 subscriber process ids on every input point), timed
     from the HTTP override request to the UDP notification's arrival
     (an upper bound on the server's own latency);
  3. reading the whole Object_List (segmented) with bacpypes3;
  4. resident memory of `vgw demo` with BACnet on and off.

Run with the interop venv's Python (it has bacpypes3 and requests):
  ~/.cache/vgw/venv/bin/python benches/bacnet_bench.py --vgw $CARGO_TARGET_DIR/release/vgw
Prints a markdown section for docs/BENCHMARKS.md.
"""

import argparse
import asyncio
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time

import requests

PEER_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from bacpypes3.argparse import SimpleArgumentParser
    from bacpypes3.app import Application
    from bacpypes3.local.binary import BinaryInputObject
    async def main():
        args = SimpleArgumentParser().parse_args(
            ["--address", "127.0.0.1/8:" + sys.argv[1], "--instance", "4000"])
        app = Application.from_args(args)
        app.add_object(BinaryInputObject(objectIdentifier=("binary-input", 1),
                                         objectName="bi-1", presentValue="inactive"))
        print("ready", flush=True)
        await asyncio.Future()
    asyncio.run(main())
    """
)


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_demo(vgw: str, data: str, bacnet: str):
    http = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    proc = subprocess.Popen(
        [vgw, "demo", "--data-dir", data, "--http", http, "--bacnet", bacnet],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://{http}/health", timeout=1).status_code == 200:
                return proc, f"http://{http}"
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("vgw demo did not become healthy in 60 s")


def rp_bench(vgw: str, target: str, seconds: int) -> str:
    out = subprocess.run(
        [vgw, "bench", "bacnet-rp", "--target", target, "--in-flight", "32",
         "--seconds", str(seconds), "--objects", "3:1"],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    if out.returncode != 0:
        sys.exit(f"bench bacnet-rp failed: {out.stderr}")
    return out.stdout.strip()


# ---- COV: hand-encoded SubscribeCOV, parse UnconfirmedCOVNotification ----


def subscribe_cov(invoke: int, pid: int, obj_type: int, inst: int, lifetime: int) -> bytes:
    oid = (obj_type << 22) | inst
    apdu = bytes([0x00, 0x05, invoke, 0x05, 0x09, pid, 0x1C]) + struct.pack(">I", oid)
    apdu += bytes([0x29, 0x00, 0x3A]) + struct.pack(">H", lifetime)
    npdu = bytes([0x01, 0x04])
    return bytes([0x81, 0x0A]) + struct.pack(">H", 4 + len(npdu) + len(apdu)) + npdu + apdu


def notified_object(d: bytes):
    """Monitored object id of an UnconfirmedCOVNotification, else None."""
    if len(d) < 8 or d[0] != 0x81:
        return None
    npdu = d[4:]
    i = 2
    if npdu[1] & 0x08:
        i += 3 + npdu[i + 2]
    apdu = npdu[i:]
    if len(apdu) < 2 or apdu[0] != 0x10 or apdu[1] != 0x02:
        return None
    j = 2
    j += 1 + (apdu[j] & 0x07)  # [0] subscriber process id
    j += 5                     # [1] initiating device
    if apdu[j] != 0x2C:
        return None
    return struct.unpack(">I", apdu[j + 1:j + 5])[0]


def is_subscribe_ack(d: bytes) -> bool:
    """A SimpleACK of SubscribeCOV (service choice 5)."""
    if len(d) < 9 or d[0] != 0x81 or d[5] & 0x08:
        return False
    apdu = d[6:]
    return apdu[0] == 0x20 and apdu[2] == 0x05


def cov_bench(base: str, target, points: list, changes: int):
    token = requests.post(f"{base}/api/login", auth=("demo", "demo"), timeout=10).json()["token"]
    hdr = {"Authorization": f"Bearer {token}"}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    subs = acked = 0
    invoke = 0

    def drain(sock) -> int:
        n = 0
        try:
            while True:
                d, _ = sock.recvfrom(1500)
                n += is_subscribe_ack(d)
        except socket.timeout:
            return n
    for pid in (1, 2, 3):
        for (t, inst, _id) in points:
            sock.sendto(subscribe_cov(invoke, pid, t, inst, 3600), target)
            invoke = (invoke + 1) % 256
            subs += 1
            if invoke % 32 == 0:  # let acks and initial notifications drain
                acked += drain(sock)
    acked += drain(sock)
    bis = [p for p in points if p[0] == 3]
    lat = []
    for n in range(changes):
        t, inst, pid_ = bis[n % len(bis)]
        want = (t << 22) | inst
        value = (n // len(bis)) % 2 == 0
        t0 = time.perf_counter()
        r = requests.post(f"{base}/api/points/{pid_}/override", json={"value": value},
                          headers=hdr, timeout=10)
        r.raise_for_status()
        got = 0
        deadline = time.monotonic() + 2
        while got < 3 and time.monotonic() < deadline:  # one per subscriber pid
            try:
                d, _ = sock.recvfrom(1500)
            except socket.timeout:
                continue
            if notified_object(d) == want:
                got += 1
                if got == 1:
                    lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return subs, acked, lat


async def object_list_times(target: str, runs: int):
    from bacpypes3.app import Application
    from bacpypes3.argparse import SimpleArgumentParser
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    args = SimpleArgumentParser().parse_args(
        ["--address", f"127.0.0.1/8:{free_port()}", "--instance", "4001"])
    app = Application.from_args(args)
    times, n = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        ol = await app.read_property(Address(target), ObjectIdentifier("device,599"), "objectList")
        times.append((time.perf_counter() - t0) * 1000)
        n = len(ol)
    app.close()
    return n, sorted(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgw", required=True, help="release vgw binary")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--changes", type=int, default=300)
    a = ap.parse_args()

    data = tempfile.mkdtemp(prefix="vgw-bacnet-bench-")
    bport = free_port()
    demo, base = start_demo(a.vgw, data, f"127.0.0.1:{bport}")
    peer_port = free_port()
    peer = subprocess.Popen([sys.executable, "-c", PEER_SERVER, str(peer_port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        time.sleep(1)
        rp_vgw = rp_bench(a.vgw, f"127.0.0.1:{bport}", a.seconds)
        rp_peer = rp_bench(a.vgw, f"127.0.0.1:{peer_port}", a.seconds)
        peer.kill()

        token = requests.post(f"{base}/api/login", auth=("demo", "demo"), timeout=10).json()["token"]
        csvtext = requests.get(f"{base}/api/bacnet/points.csv",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10).text
        points = []
        for line in csvtext.splitlines()[1:]:
            cols = line.split(",")
            kind = {"binary-input": 3, "analog-input": 0}.get(cols[1])
            if kind is not None:
                points.append((kind, int(cols[2]), cols[0]))
        subs, acked, lat = cov_bench(base, ("127.0.0.1", bport), points, a.changes)
        n_objects, ol_times = asyncio.run(object_list_times(f"127.0.0.1:{bport}", 20))
        rss_on = rss_mb(demo.pid)
    finally:
        demo.kill()
        peer.kill()
    demo_off, _ = start_demo(a.vgw, tempfile.mkdtemp(prefix="vgw-bacnet-off-"), "off")
    time.sleep(1)
    rss_off = rss_mb(demo_off.pid)
    demo_off.kill()

    def pct(xs, p):
        return xs[min(len(xs) - 1, round((len(xs) - 1) * p))] if xs else float("nan")

    import bacpypes3
    print(f"""### BACnet/IP (`benches/bacnet_bench.py`, {time.strftime('%Y-%m-%d')})

Command: `{sys.executable} benches/bacnet_bench.py --vgw {a.vgw} --seconds {a.seconds} --changes {a.changes}`
Machine: {os.cpu_count()} cores, {platform.platform()}; peer: bacpypes3 {bacpypes3.__version__} server, Python {platform.python_version()}.

ReadProperty(Present_Value of binary-input,1), 32 in flight, same generator (`vgw bench bacnet-rp`):

    vgw:       {rp_vgw}
    bacpypes3: {rp_peer}

COV: {subs} SubscribeCOV requests (3 per input point), {acked} acknowledged; {len(lat)} changes via POST /api/points/{{id}}/override,
time from the HTTP request to the first notification's arrival: p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, max {pct(lat, 1):.2f} ms.

Object_List of {n_objects} objects read whole (segmented) by bacpypes3, 20 runs: median {statistics.median(ol_times):.1f} ms, max {max(ol_times):.1f} ms.

Resident memory of `vgw demo`: {rss_on:.0f} MB with BACnet on (after the runs above), {rss_off:.0f} MB with `--bacnet off` -> BACnet side about {rss_on - rss_off:.0f} MB.
""")


if __name__ == "__main__":
    main()
