"""The web dashboard in a real browser: Debian's headless Chromium driven by
Playwright (the Python driver; no browser download), against `vgw demo`.

What a facility manager does: open the gateway's page, expand the site tree
to a recorder, watch a value change live, acknowledge an alarm after logging
in, look at the topology and storage pages, and play a recorded clip.
Screenshots of the main pages are kept in $VGW_CACHE/artifacts/dashboard/.
A missing Chromium fails the run: it must never pass by skipping.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = os.environ.get("VGW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(os.environ.get("VGW_CACHE", Path.home() / ".cache" / "vgw")) / "artifacts" / "dashboard"
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
UI_TIMEOUT_MS = 15_000
HTTP_TIMEOUT_S = 10
# A camera the demo streams as H.264 (Chromium on Linux has no HEVC decoder)
# and whose recorder input is the demo's door alarm, so it has bookmarks.
CAMERA = "cam-001"
CLIP_WAIT_S = 60.0

# Points the tests change; released afterwards (the gateway is shared).
TEMP_POINT = "nvr-2.temp"
ALARM_POINT = "nvr-2.alarm-in-1"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh browser context (no cookies) with the requests it made."""

    def __init__(self, browser, base: str, viewport=LAPTOP):
        # Playwright's waits evaluate scripts, which the page's CSP (no eval)
        # would refuse; the CSP itself is checked over plain HTTP below.
        self.ctx = browser.new_context(viewport=viewport, bypass_csp=True)
        self.ctx.set_default_timeout(UI_TIMEOUT_MS)
        self.page = self.ctx.new_page()
        self.base = base
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, route: str = ""):
        self.page.goto(f"{self.base}/ui/{route}")
        expect(self.page.locator("#live-status")).to_have_text("live")

    def login(self, user="demo", password="demo"):
        self.page.click("#login-btn")
        self.page.fill("#login-user", user)
        self.page.fill("#login-password", password)
        self.page.click("#login-submit")

    def shot(self, name: str):
        self.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"))

    def close(self):
        self.ctx.close()


@pytest.fixture
def ui(browser, gateway):
    pages: list[Page] = []

    def make(viewport=LAPTOP) -> Page:
        p = Page(browser, str(gateway), viewport)
        pages.append(p)
        return p

    yield make
    for p in pages:
        errors = p.errors
        p.close()
        assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="module")
def operator(gateway) -> requests.Session:
    s = requests.Session()
    r = s.post(f"{gateway}/api/login", auth=("demo", "demo"), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    s.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return s


def override(gateway, operator, point: str, value):
    r = operator.post(f"{gateway}/api/points/{point}/override", json={"value": value}, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text


def test_the_dashboard_loads_from_the_gateway_alone(ui, gateway):
    p = ui()
    p.page.goto(str(gateway))
    assert urlparse(p.page.url).path == "/ui/"
    expect(p.page.locator("#site-name")).to_have_text("Harbour Tower")
    expect(p.page.locator("#live-status")).to_have_text("live")
    expect(p.page.locator("#site-tree")).to_be_visible()
    host = urlparse(str(gateway)).netloc
    foreign = [u for u in p.requests if urlparse(u).netloc != host]
    assert not foreign, f"the page loaded from elsewhere: {foreign}"
    # The browser is told so too, and the files are revalidated by ETag.
    r = requests.get(f"{gateway}/ui/", timeout=HTTP_TIMEOUT_S)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    css = requests.get(f"{gateway}/ui/app.css", timeout=HTTP_TIMEOUT_S)
    assert css.headers["Content-Type"].startswith("text/css")
    again = requests.get(f"{gateway}/ui/app.css", headers={"If-None-Match": css.headers["ETag"]}, timeout=HTTP_TIMEOUT_S)
    assert again.status_code == 304
    assert requests.get(f"{gateway}/ui/../Cargo.toml", timeout=HTTP_TIMEOUT_S).status_code == 404
    # The plain API index is still there.
    assert "/api/site" in requests.get(f"{gateway}/api", timeout=HTTP_TIMEOUT_S).text


def test_the_site_tree_expands_to_a_recorder_and_its_points(ui):
    p = ui()
    p.open()
    page = p.page
    nvr = page.get_by_role("link", name="NVR 1 (64-channel rack)")
    expect(nvr).to_be_hidden()
    floor1 = page.locator("li.floor", has=page.locator("summary", has_text=re.compile(r"^Floor 1 floor")))
    floor1.locator("summary").first.click()
    room = floor1.locator("li.room", has=page.locator("summary", has_text="Server room"))
    room.locator("summary").first.click()
    expect(nvr).to_be_visible()
    p.shot("site")
    nvr.click()
    expect(page.locator("h1")).to_contain_text("NVR 1 (64-channel rack)")
    # An NVR has at least ten points (online, alarm inputs, relays, ...).
    expect(page.locator("table.points tbody tr").nth(9)).to_be_attached()
    expect(page.locator("table.points")).to_contain_text("Main entrance door contact")
    # Values and qualities come from the live snapshot, not only from changes.
    expect(page.locator("table.points td.quality").first).to_have_text(re.compile(r"^[a-z_]+$"))
    expect(page.get_by_text("Powered by")).to_be_visible()
    p.shot("equipment")


def test_a_live_value_changes_on_screen_after_the_point_changes(ui, gateway, operator):
    p = ui()
    p.open("#/equipment/nvr-2")
    cell = p.page.locator(f'[data-point="{TEMP_POINT}"]')
    expect(cell).to_be_visible()
    assert "41.5" not in cell.inner_text()
    before = alarm_state(gateway, operator, TEMP_POINT)
    try:
        override(gateway, operator, TEMP_POINT, 41.5)
        # No reload: the live stream brings it.
        expect(cell).to_have_text("41.5 °C")
        row = p.page.locator("tr", has=cell)
        expect(row.locator("td.quality")).to_have_text("overridden")
    finally:
        override(gateway, operator, TEMP_POINT, None)
        settle_alarm(gateway, operator, TEMP_POINT, before)
    expect(cell).not_to_have_text("41.5 °C")


def test_an_operator_acknowledges_an_alarm(ui, gateway, operator):
    override(gateway, operator, ALARM_POINT, True)
    try:
        p = ui()
        p.open("#/alarms")
        row = p.page.locator(f'tr[data-alarm="{ALARM_POINT}"]')
        expect(row).to_contain_text("offnormal")
        button = row.get_by_role("button", name="Acknowledge")
        # Anonymous read shows alarms but cannot acknowledge them.
        expect(button).to_be_disabled()
        p.login("demo", "wrong password")
        expect(p.page.locator("#login-error")).to_contain_text("wrong user name or password")
        p.page.fill("#login-password", "demo")
        p.page.click("#login-submit")
        expect(p.page.locator("#who")).to_have_text("demo (operator)")
        expect(button).to_be_enabled()
        button.click()
        expect(row.locator(".ack-state")).to_have_text("yes, by api:demo")
        state = operator.get(f"{gateway}/api/alarms", timeout=HTTP_TIMEOUT_S).json()
        mine = [a for a in state["alarms"] if a["id"] == ALARM_POINT]
        assert mine and mine[0]["acked"] and mine[0]["state"] == "offnormal", mine
        p.shot("alarms")
    finally:
        override(gateway, operator, ALARM_POINT, None)
        settle_alarm(gateway, operator, ALARM_POINT, "normal")


def alarm_state(gateway, operator, point: str) -> str:
    alarms = operator.get(f"{gateway}/api/alarms", timeout=HTTP_TIMEOUT_S).json()["alarms"]
    return next((a["state"] for a in alarms if a["id"] == point), "normal")


def settle_alarm(gateway, operator, point: str, final_state: str):
    """Acknowledges what releasing an override caused, so the shared
    gateway's alarm list is as the test found it (bounded wait)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alarms = operator.get(f"{gateway}/api/alarms", timeout=HTTP_TIMEOUT_S).json()["alarms"]
        mine = next((a for a in alarms if a["id"] == point), None)
        if mine is None and final_state == "normal":
            return
        if mine and mine["state"] == final_state and mine["acked"]:
            return
        if mine and not mine["acked"]:
            operator.post(f"{gateway}/api/alarms/{point}/ack", timeout=HTTP_TIMEOUT_S)
        time.sleep(0.2)


def test_the_topology_shows_power_video_and_time(ui):
    p = ui()
    p.open("#/topology")
    tree = p.page.locator("#topology-tree")
    ups = tree.locator("li", has=p.page.get_by_role("link", name="UPS 1 (server room)")).first
    expect(ups).to_contain_text("PoE switch 1 (floors 1-8)")
    expect(ups).to_contain_text("Floor 1 corridor east")
    p.shot("topology")
    p.page.get_by_role("tab", name="Video").click()
    nvr = tree.locator("li", has=p.page.get_by_role("link", name="NVR 1 (64-channel rack)")).first
    expect(nvr).to_contain_text("Floor 1 corridor east")
    p.page.get_by_role("tab", name="Time").click()
    expect(tree.get_by_role("link", name="NTP server").first).to_be_visible()
    expect(tree).to_contain_text("NVR 2 (16-channel compact)")


def wait_for_recording(gateway, operator, seconds: float):
    """Waits (bounded) until the camera has a run at least this long."""
    deadline = time.monotonic() + CLIP_WAIT_S
    longest = 0
    while time.monotonic() < deadline:
        r = operator.get(f"{gateway}/api/cameras/{CAMERA}/recordings", timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, r.text
        runs = r.json()["recordings"]
        longest = max((x["end_ms"] - x["start_ms"] for x in runs), default=0)
        if longest >= seconds * 1000:
            return
        time.sleep(1)
    pytest.fail(f"{CAMERA} recorded at most {longest} ms in {CLIP_WAIT_S:.0f} s")


def test_a_recorded_clip_plays_in_the_browser(ui, gateway, operator):
    wait_for_recording(gateway, operator, 8)
    p = ui()
    p.open(f"#/camera/{CAMERA}?minutes=15")
    # Video needs a login, even with anonymous read.
    expect(p.page.get_by_text("Video needs a login")).to_be_visible()
    expect(p.page.locator("#player")).to_have_count(0)
    p.login()
    expect(p.page.locator("#timeline .run").first).to_be_visible()
    p.page.click("#play-latest")
    player = p.page.locator("#player")
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    duration = 0.0
    while time.monotonic() < deadline:
        state = player.evaluate("v => [v.duration || 0, v.error && v.error.message]")
        assert state[1] is None, f"the video element failed: {state[1]}"
        duration = state[0]
        if duration > 0:
            break
        time.sleep(0.2)
    assert duration > 1, f"the clip reports a duration of {duration} s"
    expect(p.page.locator("#clip-caption")).to_contain_text(" s")
    p.shot("camera")


def test_the_storage_page_shows_every_recorded_camera(ui, gateway):
    p = ui()
    p.open("#/storage")
    rows = p.page.locator("#storage-cameras tbody tr")
    storage = requests.get(f"{gateway}/api/storage", timeout=HTTP_TIMEOUT_S).json()
    expect(rows).to_have_count(len(storage["cameras"]))
    assert len(storage["cameras"]) >= 60
    expect(p.page.locator("#storage-cameras")).to_contain_text("Floor 1 corridor east")
    expect(p.page.locator("#disk")).to_contain_text("Free")
    p.shot("storage")


def test_readable_on_a_tablet(ui):
    p = ui(TABLET)
    p.open("#/equipment/ups-1")
    expect(p.page.locator("h1")).to_contain_text("UPS 1")
    # Nothing wider than the screen: no sideways scrolling of the page.
    width = p.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= TABLET["width"], f"page is {width} px wide on a {TABLET['width']} px tablet"
    expect(p.page.get_by_role("link", name="Storage")).to_be_visible()
    p.shot("tablet")


def read_events(lines, want: int, limit_s: float = 10) -> list[tuple[str, dict]]:
    """The next `want` SSE events (name, data) from an iterator of lines."""
    events, name, deadline = [], None, time.monotonic() + limit_s
    for line in lines:
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.split(":", 1)[1])))
            if len(events) >= want:
                break
        if time.monotonic() > deadline:
            break
    return events


def test_the_live_stream_sends_a_snapshot_then_changes(gateway, operator):
    url = f"{gateway}/api/live"
    with requests.get(url, params={"points": TEMP_POINT}, stream=True, timeout=HTTP_TIMEOUT_S) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        # chunk_size=None: lines as they arrive, not in 512-byte blocks.
        lines = r.iter_lines(chunk_size=None, decode_unicode=True)
        [(name, snap)] = read_events(lines, 1)
        assert name == "snapshot" and not snap["resync"]
        assert [x["id"] for x in snap["points"]] == [TEMP_POINT]
        before = alarm_state(gateway, operator, TEMP_POINT)
        try:
            override(gateway, operator, TEMP_POINT, 12.25)
            changes = read_events(lines, 1)
        finally:
            override(gateway, operator, TEMP_POINT, None)
            settle_alarm(gateway, operator, TEMP_POINT, before)
        assert changes and changes[0][0] == "points", changes
        assert changes[0][1]["points"][0]["value"] == 12.25
    bad = requests.get(url, params={"points": "no-such-point"}, timeout=HTTP_TIMEOUT_S)
    assert bad.status_code == 400 and "no-such-point" in bad.json()["error"]
    assert requests.get(url, params={"nope": "1"}, timeout=HTTP_TIMEOUT_S).status_code == 400
