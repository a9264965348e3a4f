#!/usr/bin/env python3
"""Mutational fuzzing of the gateway's BACnet/IP request decoder, black-box.

Starts `vgw demo` on a free UDP port, then sends mutated copies of the
seed datagrams in benches/bacnet_corpus/ (valid requests of every service
the server answers: Who-Is, Who-Has, ReadProperty with and without an array
index, ReadPropertyMultiple, WriteProperty, WritePropertyMultiple,
SubscribeCOV, SubscribeCOVProperty, GetEventInformation, AcknowledgeAlarm,
DeviceCommunicationControl, TimeSynchronization, a segmented request).
Mutations: bit flips, byte overwrites, insertions, deletions, truncation,
wrong BVLC/NPDU lengths, splices of two seeds, random garbage.

Every --probe-every datagrams it checks the gateway still answers a valid
ReadProperty within 2 s; at the end it checks the process is alive and its
log has no panic. A failing batch is written to benches/bacnet_corpus/crashes/
so it can be replayed with --replay FILE.

Not part of CI (it runs for minutes):
  python3 benches/bacnet_fuzz.py --vgw $CARGO_TARGET_DIR/release/vgw --iterations 200000
  python3 benches/bacnet_fuzz.py --write-corpus     # regenerate the seeds
"""

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "bacnet_corpus"
DEVICE = 599


def bvlc(npdu_apdu: bytes, function: int = 0x0A) -> bytes:
    return bytes([0x81, function]) + struct.pack(">H", 4 + len(npdu_apdu)) + npdu_apdu


def oid(t: int, i: int) -> bytes:
    return struct.pack(">I", (t << 22) | i)


def confirmed(service: int, body: bytes, invoke: int = 1) -> bytes:
    return bvlc(bytes([0x01, 0x04, 0x00, 0x05, invoke, service]) + body)


def unconfirmed(service: int, body: bytes, broadcast: bool = False) -> bytes:
    return bvlc(bytes([0x01, 0x00, 0x10, service]) + body, 0x0B if broadcast else 0x0A)


def seeds() -> dict:
    dev = oid(8, DEVICE)
    bi1, bo1, ai1 = oid(3, 1), oid(4, 1), oid(0, 1)
    return {
        "who-is": unconfirmed(0x08, b""),
        "who-is-range": unconfirmed(0x08, bytes([0x09, 0x00, 0x1A, 0x0F, 0xFF]), True),
        "who-has-name": unconfirmed(0x07, bytes([0x3D, 0x0E, 0x00]) + b"nvr-1_online"),
        "rp-pv": confirmed(0x0C, bytes([0x0C]) + bi1 + bytes([0x19, 85])),
        "rp-object-list-index": confirmed(0x0C, bytes([0x0C]) + dev + bytes([0x19, 76, 0x29, 0x01])),
        "rp-object-list": confirmed(0x0C, bytes([0x0C]) + dev + bytes([0x19, 76])),
        "rpm-all": confirmed(0x0E, bytes([0x0C]) + ai1 + bytes([0x1E, 0x09, 8, 0x1F])),
        "wp-relay": confirmed(0x0F, bytes([0x0C]) + bo1 + bytes([0x19, 85, 0x3E, 0x91, 0x01, 0x3F, 0x49, 0x08])),
        "wp-relinquish": confirmed(0x0F, bytes([0x0C]) + bo1 + bytes([0x19, 85, 0x3E, 0x00, 0x3F, 0x49, 0x08])),
        "wpm": confirmed(0x10, bytes([0x0C]) + bo1 + bytes([0x1E, 0x09, 85, 0x2E, 0x91, 0x00, 0x2F, 0x39, 0x0A, 0x1F])),
        "subscribe-cov": confirmed(0x05, bytes([0x09, 0x01, 0x1C]) + bi1 + bytes([0x29, 0x00, 0x39, 0x3C])),
        "subscribe-cov-cancel": confirmed(0x05, bytes([0x09, 0x01, 0x1C]) + bi1),
        "subscribe-cov-property": confirmed(0x1C, bytes([0x09, 0x02, 0x1C]) + ai1 + bytes([0x29, 0x01, 0x39, 0x3C, 0x4E, 0x09, 85, 0x4F])),
        "get-event-information": confirmed(0x1D, b""),
        "acknowledge-alarm": confirmed(0x00, bytes([0x09, 0x07, 0x1C]) + bi1 + bytes([0x29, 0x02, 0x3E, 0x19, 0x01, 0x3F, 0x4D, 0x04]) + b"\x00fuz" + bytes([0x5E, 0x19, 0x01, 0x5F])),
        "dcc": confirmed(0x11, bytes([0x09, 0x05, 0x19, 0x01, 0x2D, 0x04, 0x00]) + b"pwd"),
        "time-sync": unconfirmed(0x06, bytes([0xA4, 126, 12, 1, 2, 0xB4, 10, 0, 0, 0])),
        "segmented-request": bvlc(bytes([0x01, 0x04, 0x0C, 0x05, 0x02, 0x00, 0x04, 0x0C, 0x0C]) + bi1),
    }


def write_corpus() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, data in seeds().items():
        (CORPUS / f"{name}.bin").write_bytes(data)
    print(f"wrote {len(seeds())} seeds to {CORPUS}")


def mutate(rng: random.Random, seed: bytes, other: bytes) -> bytes:
    d = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        if op == 0 and d:
            i = rng.randrange(len(d))
            d[i] ^= 1 << rng.randrange(8)
        elif op == 1 and d:
            d[rng.randrange(len(d))] = rng.randrange(256)
        elif op == 2:
            d.insert(rng.randrange(len(d) + 1), rng.randrange(256))
        elif op == 3 and len(d) > 1:
            del d[rng.randrange(len(d))]
        elif op == 4 and len(d) > 1:
            d = d[: rng.randrange(1, len(d))]
        elif op == 5 and len(d) >= 4:
            struct.pack_into(">H", d, 2, rng.choice([0, 4, len(d) - 1, len(d) + 1, 0xFFFF]))
        elif op == 6:
            cut = rng.randrange(len(d) + 1)
            d = d[:cut] + bytearray(other[rng.randrange(len(other) + 1):])
        elif op == 7:
            d = bytearray(rng.randbytes(rng.randrange(0, 64)))
        elif op == 8 and len(d) > 6:
            # an interesting value into the APDU
            d[rng.randrange(6, len(d))] = rng.choice([0x00, 0x0F, 0x3E, 0x3F, 0x7F, 0x80, 0xFF])
    return bytes(d[:1497])


def alive(sock, target) -> bool:
    sock.settimeout(0.05)
    probe = seeds()["rp-pv"]
    deadline = time.monotonic() + 2
    sock.sendto(probe, target)
    while time.monotonic() < deadline:
        try:
            d, a = sock.recvfrom(2048)
        except socket.timeout:
            continue
        if a == target and len(d) > 6 and d[6] >> 4 == 3:
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgw", help="vgw binary (release recommended)")
    ap.add_argument("--iterations", type=int, default=50_000)
    ap.add_argument("--probe-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-corpus", action="store_true")
    ap.add_argument("--replay", type=Path, help="send the datagrams (hex, one per line) of a crash file")
    a = ap.parse_args()
    if a.write_corpus:
        write_corpus()
        return 0
    if not a.vgw:
        ap.error("--vgw is required")
    corpus = [p.read_bytes() for p in sorted(CORPUS.glob("*.bin"))]
    if not corpus:
        sys.exit(f"no seeds in {CORPUS}: run with --write-corpus")

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="vgw-fuzz-"))
    log = open(work / "stderr.log", "wb")
    proc = subprocess.Popen(
        [a.vgw, "demo", "--data-dir", str(work / "data"), "--http", "127.0.0.1:0",
         "--bacnet", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    target = ("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    for _ in range(100):
        if alive(sock, target):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        sys.exit("gateway did not answer ReadProperty at start")

    rng = random.Random(a.seed)
    batch: list = []
    failed = None
    started = time.monotonic()
    if a.replay:
        datagrams = [bytes.fromhex(line) for line in a.replay.read_text().split()]
    else:
        datagrams = None
    n = len(datagrams) if datagrams else a.iterations
    for i in range(n):
        d = datagrams[i] if datagrams else mutate(rng, rng.choice(corpus), rng.choice(corpus))
        batch.append(d)
        sock.settimeout(0)  # non-blocking: drain without waiting
        sock.sendto(d, target)
        try:
            while True:
                sock.recvfrom(2048)  # keep our socket's queue short
        except (socket.timeout, BlockingIOError):
            pass
        if i % 64 == 63:
            time.sleep(0.001)  # let the server keep up; this is a fuzzer, not a flood
        if (i + 1) % a.probe_every == 0 or i + 1 == n:
            if proc.poll() is not None or not alive(sock, target):
                failed = i + 1
                break
            batch = []
    elapsed = time.monotonic() - started
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    text = (work / "stderr.log").read_text(errors="replace")
    if failed or "panicked" in text:
        crashes = CORPUS / "crashes"
        crashes.mkdir(exist_ok=True)
        out = crashes / f"seed{a.seed}-{int(time.time())}.hex"
        out.write_text("\n".join(d.hex() for d in batch) + "\n")
        print(f"FAIL after {failed or n} datagrams: gateway dead, silent or panicked; batch in {out}\n{text[-3000:]}")
        return 1
    print(f"ok: {n} mutated datagrams in {elapsed:.0f} s ({n / elapsed:.0f}/s), gateway answered every probe, no panic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
