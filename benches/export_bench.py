#!/usr/bin/env python3
"""Export benchmark (issue: video recording): a 1-hour clip over HTTP.

  1. `vgw bench fill-store` records an hour of the committed H.264 test
     clip, looped and padded with filler data to 4 Mbit/s, into a fresh
     store through the recorder's own path (fragments per GOP, ~60 s
     segments), ending now: an hour of recording in seconds;
  2. `vgw run` (release build) serves that store; the page cache is
     dropped (when root) so the segments are read from disk;
  3. GET /api/cameras/cam-001/clip.mp4 for the whole hour is timed (MB/s)
     and the file checked with ffprobe (duration, packets).

Run with the interop venv's Python (it has requests):
  ~/.cache/vgw/venv/bin/python benches/export_bench.py --vgw $CARGO_TARGET_DIR/release/vgw
Prints a markdown section for docs/BENCHMARKS.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onvif_bench import free_port, stop, wait_up  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


def drop_page_cache() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vgw", required=True)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--mbps", type=float, default=4)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vgw-export-bench-") as work:
        data = os.path.join(work, "data")
        t = time.monotonic()
        fill = subprocess.run([a.vgw, "bench", "fill-store", "--data-dir", data, "--camera", "cam-001",
                               "--minutes", str(a.minutes), "--mbps", str(a.mbps)],
                              capture_output=True, text=True)
        if fill.returncode != 0:
            sys.exit(f"fill-store failed: {fill.stderr}")
        fill_s = time.monotonic() - t
        site = os.path.join(work, "site.toml")
        with open(site, "w") as f:
            # The camera's stream is nobody's: the gateway only serves what is stored.
            f.write('[site]\nid = "xb"\nname = "Export bench"\n'
                    '[[building]]\nid = "b"\n[[floor]]\nid = "f"\nbuilding = "b"\nlevel = 1\n'
                    '[[space]]\nid = "r"\nfloor = "f"\nkind = "room"\n'
                    f'[[ip_camera]]\nid = "cam-001"\nspace = "r"\nrtsp = "rtsp://127.0.0.1:{free_port()}/x"\n')
        subprocess.run([a.vgw, "user", "add", "-c", site, USER, "--role", "operator", "--password-stdin"],
                       input=f"{PASSWORD}\n".encode(), check=True, capture_output=True)
        http = f"127.0.0.1:{free_port()}"
        g = subprocess.Popen([a.vgw, "run", "--config", site, "--data-dir", data, "--http", http,
                              "--bacnet", "off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "VGW_LOG": "warn"})
        base = f"http://{http}"
        try:
            wait_up(f"{base}/health", g, "vgw run")
            token = requests.post(f"{base}/api/login", auth=(USER, PASSWORD), timeout=30).json()["token"]
            hdr = {"Authorization": f"Bearer {token}"}
            runs = requests.get(f"{base}/api/cameras/cam-001/recordings", headers=hdr, timeout=30,
                                params={"start": 0, "end": int(time.time() * 1000) + 60_000}).json()["recordings"]
            longest = max(runs, key=lambda r: r["end_ms"] - r["start_ms"])
            cold = drop_page_cache()
            out = os.path.join(work, "clip.mp4")
            t = time.monotonic()
            with requests.get(f"{base}/api/cameras/cam-001/clip.mp4", headers=hdr, stream=True, timeout=600,
                              params={"start": longest["start_ms"], "end": longest["end_ms"]}) as r:
                r.raise_for_status()
                size = 0
                with open(out, "wb") as f:
                    for chunk in r.iter_content(1 << 20):
                        f.write(chunk)
                        size += len(chunk)
            export_s = time.monotonic() - t
        finally:
            stop(g)
        probe = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_packets,width,height:format=duration", "-of", "json", out],
            capture_output=True, text=True, check=True).stdout)
        span_min = (longest["end_ms"] - longest["start_ms"]) / 60000
        print(f"""## Export

Command: `~/.cache/vgw/venv/bin/python benches/export_bench.py --vgw target/release/vgw --minutes {a.minutes:g}`
Machine: {platform.machine()}, {os.cpu_count()} cores. The store was filled by `vgw bench fill-store`
({fill.stdout.strip()}; {fill_s:.0f} s in all).

| measure | vgw | goal |
|---|---|---|
| export of a {span_min:.1f}-minute clip (cam-001) over HTTP, page cache {"dropped first (read from disk)" if cold else "warm (not root: could not drop it)"} | {size / 1e6 / export_s:.0f} MB/s ({size / 1e6:.0f} MB in {export_s:.1f} s) | ≥ 100 MB/s |
| the file (ffprobe) | {float(probe["format"]["duration"]):.1f} s, {probe["streams"][0]["nb_read_packets"]} packets, {probe["streams"][0]["width"]}x{probe["streams"][0]["height"]} | plays |
""")


if __name__ == "__main__":
    main()
