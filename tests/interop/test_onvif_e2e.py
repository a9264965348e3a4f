"""End to end, field to BMS: an NVR (the ONVIF simulator, `vgw sim onvif`,
in its own process) driven by `vgw run`, watched and commanded by bacpypes3
(PyPI) as a BMS would:

- a digital input toggled on the device reaches the client as a COV
  notification and as an alarm event;
- a write to the alarm-output BO switches the device's relay, and the
  feedback point follows.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time

import pytest
import requests

from conftest import REPO_ROOT, _stop, _tail, free_tcp_port

bacpypes3 = pytest.importorskip("bacpypes3")
from bacpypes3.primitivedata import ObjectIdentifier  # noqa: E402
from bacpypes3.pdu import Address  # noqa: E402
from test_bacnet import client, free_udp_port  # noqa: E402

TIMEOUT = 10.0
PASSWORD = "e2e-onvif-pass"


def wait_http(url: str, proc: subprocess.Popen, log, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode}\n{_tail(log)}", pytrace=False)
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not up in 60 s\n{_tail(log)}", pytrace=False)
        time.sleep(0.2)


class Rig:
    sim: str  # the simulator's base URL (control API under /sim/)
    gw: str  # the gateway's base URL
    bacnet: Address
    client_port: int

    def point(self, pid: str) -> dict:
        r = requests.get(f"{self.gw}/api/points/{pid}", timeout=TIMEOUT)
        r.raise_for_status()
        return r.json()

    def obj(self, pid: str) -> ObjectIdentifier:
        return ObjectIdentifier(self.point(pid)["bacnet"]["object"])

    def set_input(self, n: int, active: bool) -> None:
        r = requests.post(f"{self.sim}/sim/inputs/{n}", json={"active": active}, timeout=TIMEOUT)
        r.raise_for_status()

    def relays(self) -> list[bool]:
        r = requests.get(f"{self.sim}/sim/relays", timeout=TIMEOUT)
        r.raise_for_status()
        body = r.json()
        return body["relays"] if isinstance(body, dict) else body


@pytest.fixture(scope="module")
def rig(vgw_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("onvif-e2e")
    sim_port = free_tcp_port()
    sim_log = work / "sim.log"
    with open(sim_log, "wb") as log:
        sim = subprocess.Popen(
            [str(vgw_bin), "sim", "onvif", "--listen", f"127.0.0.1:{sim_port}",
             "--inputs", "16", "--relays", "4", "--user", "admin", "--name", "nvr"],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "VGW_SIM_ONVIF_PASSWORD": PASSWORD},
        )
    r = Rig()
    r.sim = f"http://127.0.0.1:{sim_port}"
    gw_proc = None
    try:
        wait_http(f"{r.sim}/sim/relays", sim, sim_log, "vgw sim onvif")
        r.client_port = free_udp_port()
        bacnet_port = free_udp_port()
        site = (REPO_ROOT / "config/demo.toml").read_text()
        site = site.replace("[gateway]\n", "[gateway]\nanonymous_read = true\n", 1)
        # nvr-1 is the simulator; the other recorders point nowhere.
        site = re.sub(r'onvif = "http://127\.0\.0\.1:18081/onvif/device_service"',
                      f'onvif = "{r.sim}/onvif/device_service"', site)
        site += f"""
[bacnet]
[[bacnet.alarm_recipient]]
address = "127.0.0.1:{r.client_port}"
classes = [1]
confirmed = true
process_id = 3
"""
        (work / "site.toml").write_text(site)
        http = f"127.0.0.1:{free_tcp_port()}"
        r.gw = f"http://{http}"
        r.bacnet = Address(f"127.0.0.1:{bacnet_port}")
        gw_log = work / "gateway.log"
        env = {**os.environ, "VGW_CRED_NVR_ADMIN_USERNAME": "admin",
               "VGW_CRED_NVR_ADMIN_PASSWORD": PASSWORD}
        with open(gw_log, "wb") as log:
            gw_proc = subprocess.Popen(
                [str(vgw_bin), "run", "--config", str(work / "site.toml"), "--data-dir",
                 str(work / "data"), "--http", http, "--bacnet", f"127.0.0.1:{bacnet_port}"],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        wait_http(f"{r.gw}/health", gw_proc, gw_log, "vgw run")
        deadline = time.monotonic() + 30
        while r.point("nvr-1.online")["value"] is not True:
            if time.monotonic() > deadline:
                pytest.fail(f"nvr-1 never came online\n{_tail(gw_log)}", pytrace=False)
            time.sleep(0.2)
        yield r
    finally:
        if gw_proc is not None:
            _stop(gw_proc)
            text = (work / "gateway.log").read_text(errors="replace")
            assert "panicked" not in text, _tail(work / "gateway.log")
            assert PASSWORD not in text, "the device password reached the log"
        _stop(sim)


def run(body, port: int):
    async def main():
        app = client(port)
        try:
            return await asyncio.wait_for(body(app), 60)
        finally:
            app.close()

    return asyncio.run(main())


def test_a_digital_input_reaches_the_bms_as_cov_and_as_an_alarm(rig):
    pid = "nvr-1.alarm-in-3"
    obj = rig.obj(pid)

    async def body(app):
        async with app.change_of_value(rig.bacnet, obj, 31, False, 120) as scm:
            first = await asyncio.wait_for(scm.get_value(), TIMEOUT)
            await asyncio.to_thread(rig.set_input, 3, True)
            seen = [first]
            while not any(str(p) == "present-value" and str(v) == "active" for p, v in seen):
                seen.append(await asyncio.wait_for(scm.get_value(), TIMEOUT))
            deadline = time.monotonic() + TIMEOUT
            while True:
                kind, ev = await asyncio.wait_for(app.events.get(), deadline - time.monotonic())
                if kind == "confirmed" and ev.eventObjectIdentifier == obj \
                        and str(ev.toState) == "offnormal":
                    return seen, ev

    seen, ev = run(body, rig.client_port)
    assert any(str(p) == "present-value" and str(v) == "active" for p, v in seen), seen
    assert str(ev.eventType) == "change-of-state"
    assert int(ev.notificationClass) == 1
    rig.set_input(3, False)
    deadline = time.monotonic() + TIMEOUT
    while rig.point(pid)["value"] is not False:
        assert time.monotonic() < deadline, "the input never went back to normal"
        time.sleep(0.1)


def test_a_bms_write_to_the_alarm_output_switches_the_relay_and_feedback_follows(rig):
    out = rig.obj("nvr-1.alarm-out-1")
    feedback = rig.obj("nvr-1.alarm-out-state-1")

    async def write(app, value):
        await app.write_property(rig.bacnet, out, "present-value", value, priority=8)

    async def feedback_is(app, want: str):
        deadline = time.monotonic() + TIMEOUT
        while True:
            v = await app.read_property(rig.bacnet, feedback, "present-value")
            if str(v) == want:
                return
            assert time.monotonic() < deadline, f"feedback stayed {v}, wanted {want}"
            await asyncio.sleep(0.1)

    async def on(app):
        await write(app, "active")
        await feedback_is(app, "active")

    run(on, free_udp_port())
    assert rig.relays()[0] is True
    assert rig.relays()[1:] == [False, False, False], "only relay 1 moved"
    flags = rig.point("nvr-1.alarm-out-1")
    assert flags["quality"] != "fault", flags

    async def off(app):
        from bacpypes3.primitivedata import Null
        await write(app, Null(()))
        await feedback_is(app, "inactive")

    run(off, free_udp_port())
    assert rig.relays()[0] is False
