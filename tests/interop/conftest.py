"""Shared fixtures for the interop suite (run by scripts/test).

Every test here talks to a real third-party peer (brickschema, rdflib,
SPARQLWrapper) about the vgw binary named by $VGW_BIN.

Fixtures:
  vgw_bin          path to the vgw binary (from $VGW_BIN; fails if missing)
  repo_root        the repository root (tests run the binary from there)
  ontology_dir     ontology/ (override with $VGW_ONTOLOGY_DIR)
  demo_export_ttl  `vgw export --config config/demo.toml --format ttl` in a tmp file
  gateway          a running `vgw demo` on 127.0.0.1:<free port>; the value is the
                   base URL (a str) with .sparql_url, .proc, .stdout_path and
                   .stderr_path attributes

In CI (env CI=true/1/yes) a skipped test counts as a failure: a missing peer
must never turn the suite green.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = "config/demo.toml"
HEALTH_TIMEOUT_S = 30.0
EXPORT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _tail(path: Path, limit: int = 8000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<could not read {path}: {e}>"
    if len(text) > limit:
        text = "...\n" + text[-limit:]
    return text or "<empty>"


# --------------------------------------------------------------------------
# CI: skips become failures
# --------------------------------------------------------------------------


def _fail_skip_in_ci(report) -> None:
    if not in_ci() or not report.skipped:
        return
    if hasattr(report, "wasxfail"):  # an expected failure is not a missing peer
        return
    reason = report.longrepr
    if isinstance(reason, tuple) and len(reason) == 3:
        reason = reason[2]
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI (CI={os.environ.get('CI')}), which counts as a failure: {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


def pytest_report_header(config):
    return [
        f"vgw: VGW_BIN={os.environ.get('VGW_BIN', '<unset>')}",
        f"vgw: CI={'yes (skips fail)' if in_ci() else 'no'}",
    ]


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def ontology_dir() -> Path:
    return Path(os.environ.get("VGW_ONTOLOGY_DIR", REPO_ROOT / "ontology"))


@pytest.fixture(scope="session")
def vgw_bin() -> Path:
    raw = os.environ.get("VGW_BIN")
    if not raw:
        pytest.fail(
            "VGW_BIN is not set; run the suite through scripts/test "
            "(it builds the binary and sets VGW_BIN=$CARGO_TARGET_DIR/debug/vgw)",
            pytrace=False,
        )
    path = Path(raw)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"VGW_BIN={raw} is not an executable file", pytrace=False)
    return path


def _run_vgw(vgw_bin: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [str(vgw_bin), *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "RUST_BACKTRACE": "1"},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(
            f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s\n"
            f"stderr:\n{(e.stderr or b'').decode(errors='replace')}",
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"`{' '.join(cmd)}` exited with {proc.returncode}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')}",
            pytrace=False,
        )
    return proc


@pytest.fixture(scope="session")
def demo_export_ttl(vgw_bin, tmp_path_factory) -> Path:
    """The derived demo model (no ontology) as Turtle, via `vgw export -o`."""
    out = tmp_path_factory.mktemp("export") / "demo.ttl"
    proc = _run_vgw(
        vgw_bin,
        ["export", "--config", DEMO_CONFIG, "--format", "ttl", "-o", str(out)],
        EXPORT_TIMEOUT_S,
    )
    if not out.is_file() or out.stat().st_size == 0:
        pytest.fail(
            f"`vgw export ... -o {out}` exited 0 but wrote no file/an empty file\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')}",
            pytrace=False,
        )
    return out


def one_room_site(site_id: str, name: str, body: str, sections: str = "",
                  room: str = "lobby", room_name: str | None = None) -> str:
    """A site file with one building, floor and room (`room`), then
    `sections` (e.g. [recording]) before and `body` (equipment) after the
    locations."""
    room_line = f'name = "{room_name}"\n' if room_name else ""
    return (f'[site]\nid = "{site_id}"\nname = "{name}"\n{sections}'
            f'[[building]]\nid = "b"\n[[floor]]\nid = "f"\nbuilding = "b"\nlevel = 1\n'
            f'[[space]]\nid = "{room}"\n{room_line}floor = "f"\nkind = "room"\n{body}')


def lobby_camera(rtsp: str) -> str:
    """`cam-1`, "Lobby camera", recording `rtsp`."""
    return f'[[ip_camera]]\nid = "cam-1"\nname = "Lobby camera"\nspace = "lobby"\nrtsp = "{rtsp}"\n'


def wait_healthy(proc: subprocess.Popen, base: str, logs, timeout: float = 60.0) -> None:
    """Waits until GET {base}/health answers 200; fails the test (with
    `logs()`) if the process exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"vgw exited with {proc.returncode} before /health was ready\n{logs()}",
                        pytrace=False)
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"vgw: {base}/health not ready in {timeout:.0f} s\n{logs()}", pytrace=False)
        time.sleep(0.2)


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayURL(str):
    """The gateway's base URL (e.g. http://127.0.0.1:40123) plus handles."""

    sparql_url: str
    proc: subprocess.Popen
    stdout_path: Path
    stderr_path: Path


def _stop(proc: subprocess.Popen) -> tuple[int, bool]:
    """SIGTERM, wait; SIGKILL if it will not go. Returns (returncode, clean)."""
    if proc.poll() is not None:
        return proc.returncode, True
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S), True
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=STOP_TIMEOUT_S), False


@pytest.fixture(scope="session")
def gateway(vgw_bin, tmp_path_factory):
    """`vgw demo` on a free loopback port, ready (GET /health == 200)."""
    work = tmp_path_factory.mktemp("gateway")
    data_dir = work / "data"
    data_dir.mkdir()
    port = free_tcp_port()
    addr = f"127.0.0.1:{port}"
    base = f"http://{addr}"
    stdout_path, stderr_path = work / "stdout.log", work / "stderr.log"
    # BACnet has its own gateway in test_bacnet.py; this one stays off UDP.
    cmd = [str(vgw_bin), "demo", "--data-dir", str(data_dir), "--http", addr, "--bacnet", "off"]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={**os.environ, "RUST_BACKTRACE": "1"},
        )

    def logs() -> str:
        return (
            f"command: {' '.join(cmd)}\n"
            f"--- stderr ---\n{_tail(stderr_path)}\n"
            f"--- stdout ---\n{_tail(stdout_path)}"
        )

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last_error = "no attempt"
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"vgw demo exited with {proc.returncode} before /health was ready\n{logs()}",
                pytrace=False,
            )
        try:
            r = requests.get(f"{base}/health", timeout=2)
            if r.status_code == 200:
                break
            last_error = f"HTTP {r.status_code}: {r.text[:200]}"
        except requests.RequestException as e:
            last_error = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"vgw demo: GET {base}/health not 200 within {HEALTH_TIMEOUT_S:.0f} s "
                f"(last: {last_error})\n{logs()}",
                pytrace=False,
            )
        time.sleep(0.2)

    url = GatewayURL(base)
    url.sparql_url = f"{base}/sparql"
    url.proc = proc
    url.stdout_path = stdout_path
    url.stderr_path = stderr_path
    try:
        yield url
    finally:
        rc, clean = _stop(proc)
        if not clean:
            pytest.fail(
                f"vgw demo ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s and was killed\n{logs()}",
                pytrace=False,
            )
        # 0 = graceful shutdown; -SIGTERM/143 = died of the signal (no handler).
        if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            pytest.fail(f"vgw demo exited with {rc} after SIGTERM\n{logs()}", pytrace=False)
        if os.environ.get("VGW_KEEP_TMP") is None:
            shutil.rmtree(data_dir, ignore_errors=True)
