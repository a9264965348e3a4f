"""Operations: reloading the site file on SIGHUP without losing recording,
refusing a broken file, JSON logs, and a graceful SIGTERM that leaves the
recording store clean. One `vgw run` gateway records one camera from the
RTSP simulator (`vgw sim rtsp`); the tests run in file order."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, _stop, _tail, free_tcp_port, lobby_camera, one_room_site, wait_healthy

USER, PASSWORD = "op", "op-password"
NEW_USER, NEW_PASSWORD = "night-guard", "guard-password"
TIMEOUT = 10.0


class Rig:
    def __init__(self, vgw_bin: Path, work: Path, cam_port: int):
        self.vgw_bin, self.work = vgw_bin, work
        self.site = work / "site.toml"
        self.data = work / "data"
        self.site.write_text(one_room_site("ops", "Operations test",
                                           lobby_camera(f"rtsp://127.0.0.1:{cam_port}/cam/1"),
                                           sections="[recording]\nretention_days = 30\n"))
        self.add_user(USER, PASSWORD)
        self.http = f"127.0.0.1:{free_tcp_port()}"
        self.url = f"http://{self.http}"
        self.log = work / "gateway.log"

    def add_user(self, name: str, password: str) -> None:
        subprocess.run([str(self.vgw_bin), "user", "add", "-c", str(self.site), name, "--role", "operator",
                        "--password-stdin"], input=f"{password}\n".encode(), check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(
                [str(self.vgw_bin), "--log-format", "json", "run", "--config", str(self.site),
                 "--data-dir", str(self.data), "--http", self.http, "--bacnet", "off"],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        wait_healthy(self.proc, self.url, lambda: _tail(self.log))

    def login(self, user: str, password: str) -> requests.Response:
        return requests.post(f"{self.url}/api/login", auth=(user, password), timeout=TIMEOUT)

    def log_events(self) -> list[dict]:
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def wait_log(self, pred, what: str, wait: float = 15.0) -> dict:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for e in self.log_events():
                if pred(e):
                    return e
            time.sleep(0.1)
        pytest.fail(f"no log line: {what}\n{_tail(self.log)}", pytrace=False)

    def recordings(self) -> dict:
        token = self.login(USER, PASSWORD).json()["token"]
        r = requests.get(f"{self.url}/api/cameras/cam-1/recordings", timeout=TIMEOUT,
                         params={"start": 0, "end": int(time.time() * 1000) + 60_000},
                         headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        return r.json()

    def recorded_until(self) -> int:
        runs = self.recordings()["recordings"]
        return max((r["end_ms"] for r in runs), default=0)


@pytest.fixture(scope="module")
def rig(vgw_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("operations")
    cam_port = free_tcp_port()
    cam_log = work / "sim.log"
    with open(cam_log, "wb") as f:
        cam = subprocess.Popen([str(vgw_bin), "sim", "rtsp", "--listen", f"127.0.0.1:{cam_port}", "--streams", "1"],
                               cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    r = Rig(vgw_bin, work, cam_port)
    r.start()
    try:
        deadline = time.monotonic() + 60
        while r.recorded_until() == 0:
            assert time.monotonic() < deadline, f"nothing recorded\n{_tail(r.log)}"
            time.sleep(0.5)
        yield r
    finally:
        _stop(r.proc)
        _stop(cam)
        assert "panicked" not in r.log.read_text(errors="replace"), _tail(r.log)


def test_logs_are_json_lines_with_level_and_message(rig):
    events = rig.log_events()
    assert events, _tail(rig.log)
    assert all({"timestamp", "level", "message"} <= set(e) for e in events)
    assert PASSWORD not in rig.log.read_text()


def test_sighup_applies_users_and_retention_without_a_recording_gap(rig):
    assert rig.login(NEW_USER, NEW_PASSWORD).status_code == 401
    before = rig.recorded_until()
    rig.add_user(NEW_USER, NEW_PASSWORD)
    text = rig.site.read_text().replace("retention_days = 30", "retention_days = 7")
    text = text.replace('name = "Lobby camera"', 'name = "Lobby camera (east)"')
    rig.site.write_text(text)
    rig.proc.send_signal(signal.SIGHUP)
    e = rig.wait_log(lambda e: e["message"].startswith("site file reloaded"), "reload done")
    assert "users" in e["applied"] and "recording retention" in e["applied"], e
    # The camera's name is part of the model: it waits for a restart.
    assert "[[ip_camera]]" in e["restart_needed"], e
    assert rig.login(NEW_USER, NEW_PASSWORD).status_code == 200
    assert rig.proc.poll() is None
    # Recording went on through the reload: later video, and no gap.
    deadline = time.monotonic() + 20
    while rig.recorded_until() < before + 3000:
        assert time.monotonic() < deadline, _tail(rig.log)
        time.sleep(0.5)
    # One unbroken run from the first frame to now.
    runs = rig.recordings()["recordings"]
    assert len(runs) == 1, runs


def test_a_broken_site_file_is_refused_and_the_gateway_runs_on(rig):
    good = rig.site.read_text()
    rig.site.write_text(good.replace("[recording]\n", "[recording]\nretention_dayz = 3\n"))
    try:
        rig.proc.send_signal(signal.SIGHUP)
        e = rig.wait_log(lambda e: e["message"].startswith("site file not reloaded"), "refusal")
        # The error names file, line and key.
        assert "site.toml:" in e["message"] and "recording.retention_dayz" in e["message"], e
        assert rig.login(NEW_USER, NEW_PASSWORD).status_code == 200
    finally:
        rig.site.write_text(good)


def test_sigterm_stops_cleanly_and_the_store_needs_no_repair(rig):
    # An open live stream (the dashboard's) must not hold the stop up.
    live = requests.get(f"{rig.url}/api/live", auth=(USER, PASSWORD), stream=True, timeout=TIMEOUT)
    assert live.status_code == 200
    next(live.iter_lines())
    rig.proc.send_signal(signal.SIGTERM)
    assert rig.proc.wait(timeout=20) == 0, _tail(rig.log)
    live.close()
    stopped_ms = int(time.time() * 1000)
    rig.wait_log(lambda e: e["message"] == "shutting down", "shutdown")
    mark = len(rig.log_events())
    rig.start()
    # The store was closed properly: nothing to repair at start...
    time.sleep(1)
    repaired = [e for e in rig.log_events()[mark:] if "repaired" in e["message"]]
    assert repaired == [], repaired
    # ...and what was recorded up to the stop is all indexed (within a fragment).
    runs = rig.recordings()["recordings"]
    before_stop = [r for r in runs if r["start_ms"] < stopped_ms]
    assert before_stop and stopped_ms - max(r["end_ms"] for r in before_stop) <= 2500
