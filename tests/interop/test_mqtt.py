"""MQTT publishing against a real broker: Debian's mosquitto, read and
written by an independent client, paho-mqtt (PyPI).

The broker requires a login and the gateway reaches it over TLS (a CA and
server certificate made here with openssl), so the retained state, `/set`,
the events topic, Home Assistant discovery, a broker restart, a clean
shutdown and the last will are all checked over the path a site uses.
The tests run in file order on one broker and one gateway (restarted by
the last two tests).
"""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import requests

from conftest import REPO_ROOT, _stop, _tail, free_tcp_port, one_room_site, wait_healthy

SITE = "mq"
USER, PASSWORD = "op", "op-password"
BROKER_USER, BROKER_PASSWORD = "vgw-gw", "broker-secret-1"
READER_USER, READER_PASSWORD = "reader", "reader-secret-2"
TIMEOUT = 10.0
# Reconnect backoff is at most 30 s (plus jitter); room for a slow machine.
RECONNECT_S = 45.0


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if not path:
        pytest.fail(f"{tool} is not installed (scripts/test installs Debian's mosquitto)", pytrace=False)
    return path


class Broker:
    """mosquitto with a password file, a plain listener (for the test's
    client) and a TLS listener (for the gateway); restartable."""

    def __init__(self, work: Path):
        self.work = work
        self.port, self.tls_port = free_tcp_port(), free_tcp_port()
        self.log = work / "mosquitto.log"
        passwd = work / "passwd"
        passwd.write_text("")
        for user, pw in ((BROKER_USER, BROKER_PASSWORD), (READER_USER, READER_PASSWORD)):
            subprocess.run([need("mosquitto_passwd"), "-b", str(passwd), user, pw],
                           check=True, capture_output=True, timeout=30)
        self.ca = make_certificates(work)
        self.conf = work / "mosquitto.conf"
        # Started as root, mosquitto would drop to the `mosquitto` user, who
        # cannot read pytest's private tmp dir: stay who we are.
        self.conf.write_text(f"""user {getpass.getuser()}
per_listener_settings false
allow_anonymous false
password_file {passwd}
persistence false
log_dest stdout
listener {self.port} 127.0.0.1
listener {self.tls_port} 127.0.0.1
cafile {work / 'ca.pem'}
certfile {work / 'server.pem'}
keyfile {work / 'server.key'}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        f = open(self.log, "ab")
        self.proc = subprocess.Popen([need("mosquitto"), "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                c = connect()
                c.disconnect()
                c.loop_stop()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not start\n{_tail(self.log)}", pytrace=False)
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


def make_certificates(work: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 / localhost."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=work, timeout=60)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vgw test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
        "-out", "server.csr")
    (work / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    return work / "ca.pem"


BROKER_PORT = 0


def connect(user: str = READER_USER, password: str = READER_PASSWORD) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2)
    c.username_pw_set(user, password)
    c.connect("127.0.0.1", BROKER_PORT, keepalive=30)
    c.loop_start()
    return c


def retained(topic: str, want=lambda payload: True, wait: float = TIMEOUT) -> bytes:
    """The newest message on `topic` (retained ones arrive at once) that
    satisfies `want`, within `wait` seconds."""
    got: list[bytes] = []
    ok = threading.Event()

    def on_message(_c, _u, m):
        got.append(m.payload)
        if want(m.payload):
            ok.set()

    c = connect()
    c.on_message = on_message
    c.subscribe(topic, qos=1)
    try:
        if not ok.wait(wait):
            pytest.fail(f"{topic}: no fitting message in {wait:.0f} s; saw {got[-3:]}", pytrace=False)
        return [p for p in got if want(p)][-1]
    finally:
        c.disconnect()
        c.loop_stop()


class Listener:
    """Collects every message on a topic filter from now on."""

    def __init__(self, topic: str):
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.c = connect()
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.on_message = self._on
        self.c.subscribe(topic, qos=1)
        assert subscribed.wait(TIMEOUT)

    def _on(self, _c, _u, m):
        with self.lock:
            self.messages.append((m.topic, m.payload))

    def wait_for(self, pred, what: str, wait: float = TIMEOUT):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self.lock:
                for t, p in self.messages:
                    if pred(t, p):
                        return t, p
            time.sleep(0.05)
        pytest.fail(f"no {what} within {wait:.0f} s; saw {self.messages[-5:]}", pytrace=False)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class Gateway:
    def __init__(self, vgw_bin: Path, work: Path, broker: Broker):
        self.vgw_bin, self.work = vgw_bin, work
        self.site = work / "site.toml"
        (work / "secrets.toml").write_text(
            f'[credentials.broker]\nusername = "{BROKER_USER}"\npassword = "{BROKER_PASSWORD}"\n')
        self.site.write_text(one_room_site(SITE, "MQTT test", f"""[[nvr]]
id = "nvr-1"
name = "NVR 1"
space = "srv"
channels = 4
alarm_inputs = 2
alarm_outputs = 2
[[ip_camera]]
id = "cam-1"
name = "Rack camera"
space = "srv"
rtsp = "rtsp://127.0.0.1:{free_tcp_port()}/nobody-serves-this"
[[point]]
id = "nvr-1.alarm-in-2"
cameras = ["cam-1"]
""", sections=f"""[gateway]
secrets_file = "secrets.toml"
[mqtt]
broker = "mqtts://localhost:{broker.tls_port}"
ca_file = "ca.pem"
credential = "broker"
set_points = ["nvr-1.alarm-out-1"]
""", room="srv", room_name="Server room"))
        subprocess.run([str(vgw_bin), "user", "add", "-c", str(self.site), USER, "--role", "operator",
                        "--password-stdin"], input=f"{PASSWORD}\n".encode(), check=True,
                       capture_output=True, timeout=60)
        self.http = f"127.0.0.1:{free_tcp_port()}"
        self.url = f"http://{self.http}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = self.work / f"gateway-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(
                [str(self.vgw_bin), "run", "--config", str(self.site), "--data-dir", str(self.work / "data"),
                 "--http", self.http, "--bacnet", "off"],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        wait_healthy(self.proc, self.url, lambda: _tail(self.log))
        r = requests.post(f"{self.url}/api/login", auth=(USER, PASSWORD), timeout=TIMEOUT)
        r.raise_for_status()
        self.token = r.json()["token"]

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=TIMEOUT,
                             headers={"Authorization": f"Bearer {self.token}"})

    def point(self, pid: str) -> dict:
        r = requests.get(f"{self.url}/api/points/{pid}", timeout=TIMEOUT,
                         headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="module")
def rig(vgw_bin, tmp_path_factory):
    global BROKER_PORT
    work = tmp_path_factory.mktemp("mqtt")
    broker = Broker(work)
    BROKER_PORT = broker.port
    broker.start()
    gw = Gateway(vgw_bin, work, broker)
    gw.start()
    try:
        retained(f"vgw/{SITE}/status", lambda p: p == b"online", wait=30)
        yield gw, broker
    finally:
        if gw.proc is not None:
            _stop(gw.proc)
        text = gw.log.read_text(errors="replace")
        broker.stop()
        assert "panicked" not in text, _tail(gw.log)
        for secret in (BROKER_PASSWORD, PASSWORD):
            assert secret not in text, "a password reached the gateway's log"


def state(payload: bytes) -> dict:
    return json.loads(payload)


def test_every_point_has_retained_state_that_follows_a_change(rig):
    gw, _ = rig
    topic = f"vgw/{SITE}/nvr-1/alarm-in-1"
    before = state(retained(topic))
    assert set(before) == {"value", "unit", "quality", "ts"}
    assert before["value"] is not True
    r = gw.post("/api/points/nvr-1.alarm-in-1/override", {"value": True})
    assert r.status_code == 200, r.text
    after = state(retained(topic, lambda p: state(p)["value"] is True))
    assert after["quality"] == "overridden"
    # A client that subscribes only now still gets it (retained).
    assert state(retained(topic))["value"] is True


def test_alarm_transitions_bookmarks_and_acks_reach_the_events_topic(rig):
    gw, _ = rig
    events = Listener(f"vgw/{SITE}/events")
    try:
        assert gw.post("/api/points/nvr-1.alarm-in-2/override", {"value": True}).status_code == 200
        _, p = events.wait_for(lambda t, p: json.loads(p).get("point") == "nvr-1.alarm-in-2"
                               and json.loads(p)["type"] == "alarm", "alarm event")
        assert json.loads(p)["to"] == "offnormal"
        # The input is linked to a camera: its recording is bookmarked.
        _, p = events.wait_for(lambda t, p: json.loads(p)["type"] == "bookmark", "bookmark event")
        b = json.loads(p)
        assert b["point"] == "nvr-1.alarm-in-2" and b["cameras"] == ["cam-1"]
        assert b["start"] < b["end"] < b["locked_until"]
        assert gw.post("/api/alarms/nvr-1.alarm-in-2/ack", {}).status_code == 200
        _, p = events.wait_for(lambda t, p: json.loads(p)["type"] == "ack", "ack event")
        assert json.loads(p)["who"].endswith(USER)
    finally:
        events.close()


def test_set_writes_the_priority_array_only_where_enabled(rig):
    gw, _ = rig
    events = Listener(f"vgw/{SITE}/events")
    c = connect()
    try:
        c.publish(f"vgw/{SITE}/nvr-1/alarm-out-1/set", "true", qos=1).wait_for_publish(TIMEOUT)
        s = state(retained(f"vgw/{SITE}/nvr-1/alarm-out-1", lambda p: state(p)["value"] is True))
        assert s["value"] is True
        slot = gw.point("nvr-1.alarm-out-1")["priority_array"][9]
        assert slot == {"level": 10, "value": True, "who": "mqtt", "expires_in_s": None}, slot
        # Not in [mqtt] set_points: refused, said on the events topic.
        c.publish(f"vgw/{SITE}/nvr-1/alarm-out-2/set", "true", qos=1).wait_for_publish(TIMEOUT)
        _, p = events.wait_for(lambda t, p: json.loads(p)["type"] == "set_refused", "set refusal")
        assert json.loads(p)["point"] == "nvr-1.alarm-out-2"
        assert all(s["value"] is None for s in gw.point("nvr-1.alarm-out-2")["priority_array"][:16])
        # Garbage is refused with a reason, the gateway lives on.
        c.publish(f"vgw/{SITE}/nvr-1/alarm-out-1/set", b"\xff{", qos=1).wait_for_publish(TIMEOUT)
        events.wait_for(lambda t, p: "UTF-8" in json.loads(p).get("error", ""), "refusal of garbage")
        # null relinquishes the level.
        c.publish(f"vgw/{SITE}/nvr-1/alarm-out-1/set", "null", qos=1).wait_for_publish(TIMEOUT)
        retained(f"vgw/{SITE}/nvr-1/alarm-out-1", lambda p: state(p)["value"] is False)
    finally:
        c.disconnect()
        c.loop_stop()
        events.close()


def test_home_assistant_discovery_configs(rig):
    cfg = json.loads(retained(f"homeassistant/switch/{SITE}_nvr-1/alarm_out_1/config"))
    assert cfg["command_topic"] == f"vgw/{SITE}/nvr-1/alarm-out-1/set"
    assert cfg["state_topic"] == f"vgw/{SITE}/nvr-1/alarm-out-1"
    assert {"topic": f"vgw/{SITE}/status"} in cfg["availability"]
    assert cfg["device"]["name"] == "NVR 1" and cfg["device"]["suggested_area"] == "Server room"
    sensor = json.loads(retained(f"homeassistant/binary_sensor/{SITE}_nvr-1/alarm_in_1/config"))
    assert "command_topic" not in sensor
    # A relay MQTT may not set is shown, not switchable.
    json.loads(retained(f"homeassistant/binary_sensor/{SITE}_nvr-1/alarm_out_2/config"))
    # Home Assistant restarting ("online") gets everything again.
    seen = Listener("homeassistant/+/+/+/config")
    try:
        seen.messages.clear()
        c = connect()
        c.publish("homeassistant/status", "online", qos=1).wait_for_publish(TIMEOUT)
        c.disconnect()
        c.loop_stop()
        seen.wait_for(lambda t, p: t.endswith("alarm_out_1/config"), "republished discovery")
    finally:
        seen.close()


def test_a_broker_restart_is_survived(rig):
    gw, broker = rig
    broker.stop()
    broker.start()  # no persistence: the retained state is gone
    retained(f"vgw/{SITE}/status", lambda p: p == b"online", wait=RECONNECT_S)
    assert state(retained(f"vgw/{SITE}/nvr-1/alarm-in-1"))["value"] is True
    # /set works on the new connection (the subscription was made again).
    c = connect()
    c.publish(f"vgw/{SITE}/nvr-1/alarm-out-1/set", "true", qos=1).wait_for_publish(TIMEOUT)
    c.disconnect()
    c.loop_stop()
    retained(f"vgw/{SITE}/nvr-1/alarm-out-1", lambda p: state(p)["value"] is True)


def test_sigterm_says_offline_and_sigkill_leaves_the_last_will(rig):
    gw, _ = rig
    # A retained /set is obeyed when it arrives, but the broker hands it
    # out again to every new subscription: the replay must not re-command.
    set_topic = f"vgw/{SITE}/nvr-1/alarm-out-1/set"
    c = connect()
    c.publish(set_topic, "true", qos=1, retain=True).wait_for_publish(TIMEOUT)
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=20) == 0, _tail(gw.log)
    assert retained(f"vgw/{SITE}/status") == b"offline"
    events = Listener(f"vgw/{SITE}/events")
    try:
        gw.start()
        retained(f"vgw/{SITE}/status", lambda p: p == b"online", wait=30)
        events.wait_for(lambda t, p: "retained" in json.loads(p).get("error", ""), "refusal of a replayed set")
    finally:
        events.close()
        c.publish(set_topic, b"", qos=1, retain=True).wait_for_publish(TIMEOUT)
        c.disconnect()
        c.loop_stop()
    gw.proc.kill()
    gw.proc.wait(timeout=10)
    # The broker notices the dropped connection and publishes the will.
    assert retained(f"vgw/{SITE}/status", lambda p: p == b"offline", wait=RECONNECT_S) == b"offline"
