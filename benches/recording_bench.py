#!/usr/bin/env python3
"""Recording benchmark (issue: video recording), in one run:

  N streams (default 64) of a 4 Mbit/s 1080p30 H.264 file replayed by
  gst-rtsp-server (scripts/gst-rtsp-camera; pre-encoded once, looped by
  copying, never live-encoded) are recorded for D minutes (default 10):
    1. by `vgw run` (release build): frames recorded vs frames sent, fragments
       dropped, recorder CPU (% of one core), memory per stream above the
       same gateway recording nothing, durability lag p99 (/health);
    2. by `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment` per stream,
       in the same run, for the CPU ratio;
  then a clip of the longest recorded span of one camera is exported over
  the API and timed (MB/s).

Run with the interop venv's Python (it has requests), as a user who can
read the recordings directory:
  ~/.cache/vgw/venv/bin/python benches/recording_bench.py --vgw $CARGO_TARGET_DIR/release/vgw
Prints a markdown section for docs/BENCHMARKS.md.
"""

import argparse
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onvif_bench import cpu_s, free_port, rss_mb, stop, wait_up  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


def site(n: int, port: int | None) -> str:
    # min_free_percent = 1: the disk-free floor must not delete the run's
    # own recordings (main() checks there is room for them).
    out = ['[site]\nid = "rb"\nname = "Recording bench"\n[recording]\nretention_days = 1\n'
           'min_free_percent = 1\n',
           '[[building]]\nid = "b"\n[[floor]]\nid = "f"\nbuilding = "b"\nlevel = 1\n',
           '[[space]]\nid = "r"\nfloor = "f"\nkind = "room"\n']
    for k in range(1, n + 1):
        rtsp = f'rtsp = "rtsp://127.0.0.1:{port}/cam/{k}"\n' if port else 'record = "off"\n'
        out.append(f'[[ip_camera]]\nid = "cam-{k:03}"\nspace = "r"\n{rtsp}')
    return "\n".join(out)


def gateway(vgw: str, work: str, text: str):
    path = os.path.join(work, f"site-{time.monotonic_ns()}.toml")
    with open(path, "w") as f:
        f.write(text)
    subprocess.run([vgw, "user", "add", "-c", path, USER, "--role", "operator", "--password-stdin"],
                   input=f"{PASSWORD}\n".encode(), check=True, capture_output=True)
    data = os.path.join(work, f"data-{time.monotonic_ns()}")
    http = f"127.0.0.1:{free_port()}"
    p = subprocess.Popen([vgw, "run", "--config", path, "--data-dir", data, "--http", http,
                          "--bacnet", "off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "VGW_LOG": "warn"})
    base = f"http://{http}"
    wait_up(f"{base}/health", p, "vgw run")
    return p, base, data


def frames_in_index(data: str, since_ms: int, until_ms: int) -> dict:
    db = sqlite3.connect(f"file:{data}/recordings/index.sqlite?mode=ro", uri=True)
    rows = db.execute(
        "SELECT s.camera, SUM(f.frames) FROM fragments f JOIN segments s ON s.id = f.segment "
        "WHERE f.wall_ms >= ? AND f.wall_ms < ? GROUP BY s.camera", (since_ms, until_ms)).fetchall()
    db.close()
    return dict(rows)


def frames_lost(data: str, since_ms: int, until_ms: int, fps: int, cameras: list) -> int:
    """Frames missing inside each camera's recording of the window, from the
    holes between consecutive fragments: on the camera's 90 kHz timeline
    within a session (the recorder advances it past a dropped fragment),
    on the wall clock across a reconnect (the timeline restarts); plus,
    for a camera that started late, stopped early or recorded nothing, the
    time missing at the window's edges beyond one fragment. Unlike
    expected − recorded, it does not count the GOPs cut off at the edges."""
    db = sqlite3.connect(f"file:{data}/recordings/index.sqlite?mode=ro", uri=True)
    rows = db.execute(
        "SELECT s.camera, f.start_90k, f.duration_90k, f.wall_ms FROM fragments f "
        "JOIN segments s ON s.id = f.segment WHERE f.wall_ms >= ? AND f.wall_ms < ? "
        "ORDER BY s.camera, f.wall_ms", (since_ms, until_ms)).fetchall()
    db.close()
    hole_ticks = 0
    for prev, cur in zip(rows, rows[1:]):
        if prev[0] != cur[0]:
            continue
        end = prev[1] + prev[2]
        if cur[1] > prev[1]:
            hole_ticks += max(0, cur[1] - end)
        else:
            hole_ticks += max(0, (cur[3] - prev[3]) * 90 - prev[2])
    # A camera that started late, stopped early or recorded nothing: the
    # missing time at the window's edges, beyond the 2 s a fragment spans.
    edges_ms = 0
    for cam in cameras:
        mine = [r for r in rows if r[0] == cam]
        if not mine:
            edges_ms += until_ms - since_ms
            continue
        head = mine[0][3] - since_ms
        tail = until_ms - (mine[-1][3] + mine[-1][2] // 90)
        edges_ms += sum(t for t in (head, tail) if t > 2000)
    return round(hole_ticks * fps / 90000 + edges_ms * fps / 1000)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgw", required=True)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--mbps", type=float, default=4)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--trace", help="write a CSV of RSS and writer queue, one row a second, here")
    a = ap.parse_args()
    n, window = a.streams, a.minutes * 60
    # vgw's recordings plus ffmpeg's last segments, with a margin: with less,
    # retention's disk-free floor deletes the oldest recordings mid-run and
    # the frame counts read as loss.
    need = n * a.mbps / 8 * 1e6 * (window + 120) * 1.3
    st = os.statvfs(os.environ.get("VGW_BENCH_DIR") or tempfile.gettempdir())
    if st.f_bavail * st.f_frsize < need + st.f_blocks * st.f_frsize * 0.01:
        sys.exit(f"not enough free disk: this run needs about {need / 1e9:.0f} GB")
    with tempfile.TemporaryDirectory(dir=os.environ.get("VGW_BENCH_DIR")) as work:
        port = free_port()
        cam_log = os.path.join(work, "gst.log")
        cam = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(REPO, "scripts/gst-rtsp-camera"), "--port", str(port),
             "--streams", str(n), "--size", a.size, "--bitrate-mbps", str(a.mbps), "--fps", str(a.fps),
             "--minutes", str(a.minutes + 5)],
            stdout=open(cam_log, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900
        while b"ready" not in open(cam_log, "rb").read():
            if cam.poll() is not None or time.monotonic() > deadline:
                sys.exit("gst-rtsp-camera did not start:\n" + open(cam_log).read()[-2000:])
            time.sleep(1)
        try:
            # Baseline: the same gateway, cameras not recorded.
            g0, _, _ = gateway(a.vgw, work, site(n, None))
            time.sleep(10)
            base_rss = rss_mb(g0.pid)
            stop(g0)
            g, base, data = gateway(a.vgw, work, site(n, port))
            ff_dir = os.path.join(work, "ffmpeg")
            os.makedirs(ff_dir)
            ffs = [subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i",
                 f"rtsp://127.0.0.1:{port}/cam/{k}", "-map", "0:v", "-c", "copy", "-f", "segment",
                 "-segment_time", "60", "-reset_timestamps", "1",
                 os.path.join(ff_dir, f"cam{k:03}-%03d.mp4")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in range(1, n + 1)]
            time.sleep(20)  # every stream connected and past its first keyframe
            t0_ms = int(time.time() * 1000)
            c0, f0 = cpu_s(g.pid), sum(cpu_s(p.pid) for p in ffs)
            cam0 = cpu_s(cam.pid)
            rss_peak = 0.0
            queue_peak = 0  # the writer's queue, sampled with RSS
            trace = open(a.trace, "w") if a.trace else None
            if trace:
                trace.write("s,unix_s,rss_mb,queued_mb\n")
            start = time.monotonic()
            end = start + window
            while time.monotonic() < end:
                time.sleep(1)
                rss = rss_mb(g.pid)
                rss_peak = max(rss_peak, rss)
                queued = requests.get(f"{base}/health", timeout=10).json()["recording"]["queued_bytes"]
                queue_peak = max(queue_peak, queued)
                if trace:
                    trace.write(f"{time.monotonic() - start:.0f},{time.time():.0f},{rss:.1f},{queued / 1e6:.1f}\n")
                # ffmpeg's finished segments are not needed: keep the disk free.
                for name in os.listdir(ff_dir):
                    path = os.path.join(ff_dir, name)
                    if time.time() - os.path.getmtime(path) > 70:
                        os.unlink(path)
            if trace:
                trace.close()
            c1, f1 = cpu_s(g.pid), sum(cpu_s(p.pid) for p in ffs)
            cam1 = cpu_s(cam.pid)
            t1_ms = int(time.time() * 1000)
            health = requests.get(f"{base}/health", timeout=10).json()["recording"]
            for p in ffs:
                p.send_signal(signal.SIGINT)
            for p in ffs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            time.sleep(3)  # the last second reaches the index
            frames = frames_in_index(data, t0_ms, t1_ms - 2000)
            lost = frames_lost(data, t0_ms, t1_ms - 2000, a.fps, [f"cam-{k:03}" for k in range(1, n + 1)])
            expected = a.fps * (t1_ms - 2000 - t0_ms) / 1000
            # Export: the longest run of one camera.
            token = requests.post(f"{base}/api/login", auth=(USER, PASSWORD), timeout=30).json()["token"]
            hdr = {"Authorization": f"Bearer {token}"}
            runs = requests.get(f"{base}/api/cameras/cam-001/recordings", headers=hdr,
                                params={"start": 0, "end": t1_ms}, timeout=30).json()["recordings"]
            longest = max(runs, key=lambda r: r["end_ms"] - r["start_ms"])
            t = time.perf_counter()
            size = 0
            with requests.get(f"{base}/api/cameras/cam-001/clip.mp4", headers=hdr, stream=True,
                              params={"start": longest["start_ms"], "end": longest["end_ms"]},
                              timeout=600) as r:
                r.raise_for_status()
                for chunk in r.iter_content(1 << 20):
                    size += len(chunk)
            export_s = time.perf_counter() - t
            stop(g)
        finally:
            stop(cam)
    cpu = (c1 - c0) / window * 100
    ff_cpu = (f1 - f0) / window * 100
    got = sorted(frames.get(f"cam-{k:03}", 0) for k in range(1, n + 1))
    per_stream = (rss_peak - base_rss) / n
    clip_min = (longest["end_ms"] - longest["start_ms"]) / 60000
    print(f"""## Recording

Command: `~/.cache/vgw/venv/bin/python benches/recording_bench.py --vgw target/release/vgw --streams {n} --minutes {a.minutes:g}`
Machine: {platform.machine()}, {os.cpu_count()} cores. Peer: gst-rtsp-server (Debian) serving {n} ×
{a.size} {a.fps} fps {a.mbps:g} Mbit/s H.264 (pre-encoded, looped by copying), CPU {(cam1 - cam0) / window * 100:.0f} % of one core;
`ffmpeg -c copy -f segment` recording the same {n} streams at the same time.

| measure | vgw | goal | ffmpeg ×{n} |
|---|---|---|---|
| frames recorded per stream over {a.minutes:g} min (expected {expected:.0f}) | min {got[0]}, median {got[len(got) // 2]}, max {got[-1]} | — | |
| frames lost (holes between consecutive fragments of each camera, all streams) | {lost} | 0 | |
| fragments dropped by backpressure | {health['fragments_dropped']} | 0 | |
| CPU, % of one core | {cpu:.1f} % | ≤ 25 % | {ff_cpu:.1f} % (ratio {ff_cpu / max(cpu, 0.01):.1f}×) |
| memory above the same gateway recording nothing | {per_stream:.2f} MB per stream (peak RSS {rss_peak:.0f} MB, base {base_rss:.0f} MB) | ≤ 1.5 MB | |
| writer queue, largest sample (every second) | {queue_peak / 1e6:.1f} MB ({queue_peak / n / 1e6:.2f} MB per stream) | — | |
| durability lag p99 (fragment handed over → fsynced and indexed) | {health['durability_lag_p99_ms']} ms | ≤ 2000 ms | |
| export of a {clip_min:.1f}-minute clip (cam-001) over HTTP | {size / 1e6 / export_s:.0f} MB/s ({size / 1e6:.0f} MB in {export_s:.1f} s) | ≥ 100 MB/s | |
""")


if __name__ == "__main__":
    main()
