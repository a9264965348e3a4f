"""The gateway's BACnet/IP device driven by bacpypes3 (PyPI), a client
nobody on this project wrote, on its own UDP port.

The gateway runs `vgw run` on the demo site with one alarm recipient (this
client's address) in each notification class: class 1 confirmed, class 2
unconfirmed. Input values are set through the operator override API (the
field drivers come later), outputs are commanded over BACnet and HTTP.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, _stop, _tail, free_tcp_port, wait_healthy

bacpypes3 = pytest.importorskip("bacpypes3")
from bacpypes3.apdu import (  # noqa: E402
    AcknowledgeAlarmRequest,
    ConfirmedEventNotificationRequest,
    ErrorRejectAbortNack,
    GetEventInformationRequest,
    SimpleAckPDU,
    UnconfirmedEventNotificationRequest,
)
from bacpypes3.app import Application  # noqa: E402
from bacpypes3.argparse import SimpleArgumentParser  # noqa: E402
from bacpypes3.basetypes import TimeStamp  # noqa: E402
from bacpypes3.ipv4 import IPv4DatagramServer  # noqa: E402
from bacpypes3.pdu import Address  # noqa: E402
from bacpypes3.primitivedata import Null, ObjectIdentifier  # noqa: E402

DEVICE = 599
RELAY = "nvr-1.alarm-out-1"
DOOR = "nvr-1.alarm-in-1"
TIMEOUT = 10.0
DCC_PASSWORD = "dcc-secret"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    url: str
    bacnet: Address
    client_port: int
    token: str
    proc: subprocess.Popen

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=TIMEOUT,
        )

    def get(self, path: str) -> requests.Response:
        r = requests.get(
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=TIMEOUT,
        )
        r.raise_for_status()
        return r

    def point(self, pid: str) -> dict:
        return self.get(f"/api/points/{pid}").json()


@pytest.fixture(scope="module")
def gw(vgw_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("bacnet")
    client_port = free_udp_port()
    bacnet_port = free_udp_port()
    site = (REPO_ROOT / "config/demo.toml").read_text() + f"""
[bacnet]
dcc_credential = "bms-dcc"
[[bacnet.alarm_recipient]]
address = "127.0.0.1:{client_port}"
classes = [1]
confirmed = true
process_id = 7
[[bacnet.alarm_recipient]]
address = "127.0.0.1:{client_port}"
classes = [2]
confirmed = false
process_id = 8
"""
    (work / "site.toml").write_text(site)
    subprocess.run(
        [str(vgw_bin), "user", "add", "-c", str(work / "site.toml"), "op",
         "--role", "operator", "--password-stdin"],
        input=b"op-password\n", check=True, capture_output=True, timeout=60,
    )
    http = f"127.0.0.1:{free_tcp_port()}"
    cmd = [str(vgw_bin), "run", "--config", str(work / "site.toml"), "--data-dir",
           str(work / "data"), "--http", http, "--bacnet", f"127.0.0.1:{bacnet_port}"]
    out, err = work / "stdout.log", work / "stderr.log"
    with open(out, "wb") as o, open(err, "wb") as e:
        # The DCC password comes from the environment, as secrets may.
        env = {**os.environ, "VGW_CRED_BMS_DCC_USERNAME": "bms", "VGW_CRED_BMS_DCC_PASSWORD": DCC_PASSWORD}
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env)
    g = Gateway()
    g.url, g.proc, g.client_port = f"http://{http}", proc, client_port
    g.bacnet = Address(f"127.0.0.1:{bacnet_port}")
    wait_healthy(proc, g.url, lambda: _tail(err))
    r = requests.post(f"{g.url}/api/login", auth=("op", "op-password"), timeout=TIMEOUT)
    r.raise_for_status()
    g.token = r.json()["token"]
    try:
        yield g
    finally:
        _stop(proc)
        log = err.read_text(errors="replace") + out.read_text(errors="replace")
        assert "panicked" not in log, _tail(err)
        assert DCC_PASSWORD not in log, "a secret reached the log"


class Client(Application):
    """bacpypes3's application plus the event-notification handlers a BMS
    alarm console has (bacpypes3 has none of its own)."""

    events: asyncio.Queue

    async def do_ConfirmedEventNotificationRequest(self, apdu) -> None:
        await self.events.put(("confirmed", apdu))
        await self.response(SimpleAckPDU(context=apdu))

    async def do_UnconfirmedEventNotificationRequest(self, apdu) -> None:
        await self.events.put(("unconfirmed", apdu))

    async def do_UnconfirmedCOVNotificationRequest(self, apdu) -> None:
        # Subscriptions made with raw requests (SubscribeCOVProperty) have
        # no bacpypes3 context; record them, then let bacpypes3 have its go.
        await self.events.put(("cov", apdu))
        await super().do_UnconfirmedCOVNotificationRequest(apdu)


def client(port: int) -> Client:
    args = SimpleArgumentParser().parse_args(
        ["--address", f"127.0.0.1/8:{port}", "--instance", "47999"]
    )
    app = Client.from_args(args)
    app.events = asyncio.Queue()
    # On loopback bacpypes3 broadcasts to its own port; the BACnet network's
    # port is 47808-like, the server's, as on a real subnet.
    return app


def broadcast_to(port: int) -> None:
    for o in gc.get_objects():
        if isinstance(o, IPv4DatagramServer) and o.broadcast_address:
            o.broadcast_address = ("127.255.255.255", port)


def run(gw: Gateway, body, port: int | None = None):
    """Runs `body(app)` in a fresh event loop with a fresh client."""

    async def main():
        app = client(port or free_udp_port())
        try:
            return await asyncio.wait_for(body(app), 60)
        finally:
            app.close()

    return asyncio.run(main())


def oid(s: str) -> ObjectIdentifier:
    return ObjectIdentifier(s)


def bacnet_object(gw: Gateway, pid: str) -> ObjectIdentifier:
    return oid(gw.point(pid)["bacnet"]["object"])


def ede_rows(gw: Gateway) -> list[list[str]]:
    r = gw.get("/api/bacnet/ede.csv")
    return [row for row in csv.reader(io.StringIO(r.text), delimiter=";")
            if row and not row[0].startswith("#") and len(row) > 5]


# ---------------------------------------------------------------- discovery


def test_who_is_unicast_and_broadcast(gw):
    async def body(app):
        direct = await app.who_is(address=gw.bacnet)
        broadcast_to(gw.bacnet.addrPort)
        await asyncio.sleep(0.3)  # past the server's duplicate-request window
        broadcast = await app.who_is(DEVICE, DEVICE)
        return direct, broadcast

    direct, broadcast = run(gw, body)
    for iams in (direct, broadcast):
        assert [str(i.iAmDeviceIdentifier) for i in iams] == [f"device,{DEVICE}"]
        assert iams[0].pduSource == gw.bacnet


def test_object_list_matches_the_ede_export(gw):
    async def body(app):
        whole = await app.read_property(gw.bacnet, oid(f"device,{DEVICE}"), "objectList")
        count = await app.read_property(gw.bacnet, oid(f"device,{DEVICE}"), "objectList", 0)
        first = await app.read_property(gw.bacnet, oid(f"device,{DEVICE}"), "objectList", 1)
        return whole, count, first

    whole, count, first = run(gw, body)
    served = {(str(t), int(i)) for t, i in whole}
    assert count == len(whole) > 700
    assert (str(first[0]), first[1]) == ("device", DEVICE)
    type_names = {"0": "analog-input", "3": "binary-input", "4": "binary-output",
                  "8": "device", "15": "notification-class", "29": "structured-view"}
    exported = {(type_names[r[3]], int(r[4])) for r in ede_rows(gw)}
    assert served == exported


def test_read_property_multiple_all_on_every_object_type(gw):
    relay = bacnet_object(gw, RELAY)
    door = bacnet_object(gw, DOOR)
    temp = bacnet_object(gw, "nvr-1.temp")
    views = [(t, i) for t, i in
             [(r[3], int(r[4])) for r in ede_rows(gw)] if t == "29"]

    async def body(app):
        out = {}
        for o in [oid(f"device,{DEVICE}"), relay, door, temp,
                  oid("notification-class,1"), oid(f"structured-view,{views[0][1]}")]:
            res = await app.read_property_multiple(gw.bacnet, [o, ["all"]])
            out[str(o[0])] = {str(prop): value for _o, prop, _i, value in res}
        return out

    props = run(gw, body)
    for t, must in {
        "device": ["object-name", "vendor-name", "model-name", "protocol-version",
                   "segmentation-supported", "max-apdu-length-accepted", "object-list",
                   "system-status", "protocol-services-supported"],
        "binary-output": ["present-value", "status-flags", "priority-array",
                          "relinquish-default", "current-command-priority", "active-text"],
        "binary-input": ["present-value", "status-flags", "event-state", "reliability",
                         "out-of-service", "alarm-value", "notification-class"],
        "analog-input": ["present-value", "units", "status-flags", "high-limit",
                         "low-limit", "deadband", "limit-enable"],
        "notification-class": ["recipient-list", "priority", "ack-required"],
        "structured-view": ["subordinate-list", "node-type"],
    }.items():
        missing = [p for p in must if p not in props[t]]
        assert not missing, f"{t} lacks {missing}"
    assert props["device"]["vendor-name"] == "vgw"
    assert props["binary-input"]["description"] == gw.point(DOOR)["name"]
    assert str(props["analog-input"]["units"]) == "degrees-celsius"


def test_relay_written_at_priority_8_lands_in_the_shared_priority_array(gw):
    relay = bacnet_object(gw, RELAY)

    async def write(app):
        await app.write_property(gw.bacnet, relay, "presentValue", "active", priority=8)
        pv = await app.read_property(gw.bacnet, relay, "presentValue")
        pa = await app.read_property(gw.bacnet, relay, "priorityArray")
        ccp = await app.read_property(gw.bacnet, relay, "currentCommandPriority")
        return pv, pa, ccp

    pv, pa, ccp = run(gw, write)
    assert str(pv) == "active"
    assert pa[7].enumerated is not None and int(pa[7].enumerated) == 1  # active
    assert int(ccp.unsigned) == 8
    p = gw.point(RELAY)
    assert p["value"] is True and p["active_level"] == 8
    assert p["priority_array"][7]["who"].startswith("bacnet:127.0.0.1:")

    # An HTTP command at a higher level shows on BACnet too: one array.
    r = gw.post(f"/api/points/{RELAY}/command", {"level": 5, "value": False})
    assert r.status_code == 200, r.text

    async def read_back(app):
        for _ in range(50):
            ccp = await app.read_property(gw.bacnet, relay, "currentCommandPriority")
            if int(ccp.unsigned) == 5:
                break
            await asyncio.sleep(0.1)
        return (await app.read_property(gw.bacnet, relay, "presentValue"), ccp)

    pv, ccp = run(gw, read_back)
    assert str(pv) == "inactive" and int(ccp.unsigned) == 5

    gw.post(f"/api/points/{RELAY}/command", {"level": 5, "value": None})

    async def relinquish(app):
        await app.write_property(gw.bacnet, relay, "presentValue", Null(()), priority=8)
        for _ in range(50):
            ccp = await app.read_property(gw.bacnet, relay, "currentCommandPriority")
            if ccp.null is not None:
                break
            await asyncio.sleep(0.1)
        return await app.read_property(gw.bacnet, relay, "presentValue")

    assert str(run(gw, relinquish)) == "inactive"
    p = gw.point(RELAY)
    assert p["value"] is False and p["active_level"] == 17


# ---------------------------------------------------------------- COV


@pytest.mark.parametrize("confirmed", [True, False])
def test_subscribe_cov_notifies_after_a_point_changes(gw, confirmed):
    pid = "cam-001.motion" if confirmed else "cam-002.motion"
    obj = bacnet_object(gw, pid)

    async def body(app):
        async with app.change_of_value(gw.bacnet, obj, 11 if confirmed else 12,
                                       confirmed, 120) as scm:
            # The subscription's first notification carries the current value.
            first = await asyncio.wait_for(scm.get_value(), TIMEOUT)
            r = await asyncio.to_thread(
                gw.post, f"/api/points/{pid}/override", {"value": True})
            assert r.status_code == 200, r.text
            seen = [first]
            while not any(str(p) == "present-value" and str(v) == "active" for p, v in seen):
                seen.append(await asyncio.wait_for(scm.get_value(), TIMEOUT))
            return seen

    seen = run(gw, body)
    assert any(str(p) == "present-value" and str(v) == "active" for p, v in seen)
    gw.post(f"/api/points/{pid}/override", {"value": None})


def test_subscribe_cov_property_with_an_increment(gw):
    from bacpypes3.apdu import SubscribeCOVPropertyRequest

    pid = "ups-1.load"
    obj = bacnet_object(gw, pid)

    async def body(app):
        req = SubscribeCOVPropertyRequest(
            subscriberProcessIdentifier=21,
            monitoredObjectIdentifier=obj,
            issueConfirmedNotifications=False,
            lifetime=120,
            monitoredPropertyIdentifier="present-value",
            covIncrement=5.0,
        )
        req.pduDestination = gw.bacnet
        await app.request(req)
        values = []

        async def next_value():
            while True:
                kind, ev = await asyncio.wait_for(app.events.get(), TIMEOUT)
                if kind == "cov" and ev.monitoredObjectIdentifier == obj:
                    for pv in ev.listOfValues:
                        if str(pv.propertyIdentifier) == "present-value":
                            return pv.value.cast_out(bacpypes3.primitivedata.Real)

        for v in (10.0, 12.0, 30.0):  # 12 is within the increment of 10: no notification
            r = await asyncio.to_thread(gw.post, f"/api/points/{pid}/override", {"value": v})
            assert r.status_code == 200, r.text
        while 30.0 not in values:
            values.append(await next_value())
        return values

    values = run(gw, body)
    assert 12.0 not in values and values[-1] == 30.0, values
    gw.post(f"/api/points/{pid}/override", {"value": None})


# ---------------------------------------------------------------- alarms


def test_door_alarm_is_notified_acknowledged_and_listed(gw):
    door = bacnet_object(gw, DOOR)

    async def body(app):
        # Drain what the start-up sent (initial-state FAULT transitions).
        await asyncio.sleep(0.5)
        while not app.events.empty():
            app.events.get_nowait()
        r = await asyncio.to_thread(gw.post, f"/api/points/{DOOR}/override", {"value": True})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + TIMEOUT
        while True:
            kind, ev = await asyncio.wait_for(app.events.get(), deadline - time.monotonic())
            if ev.eventObjectIdentifier == door and str(ev.toState) == "offnormal":
                break
        ack = AcknowledgeAlarmRequest(
            acknowledgingProcessIdentifier=7,
            eventObjectIdentifier=door,
            eventStateAcknowledged="offnormal",
            timeStamp=ev.timeStamp,
            acknowledgmentSource="pytest console",
            timeOfAcknowledgment=ev.timeStamp,
        )
        ack.pduDestination = gw.bacnet
        await app.request(ack)
        info = GetEventInformationRequest()
        info.pduDestination = gw.bacnet
        summary = await app.request(info)
        return kind, ev, summary

    kind, ev, summary = run(gw, body, port=gw.client_port)
    assert kind == "confirmed"  # class 1 (security) is delivered confirmed
    assert int(ev.notificationClass) == 1 and int(ev.processIdentifier) == 7
    assert str(ev.eventType) == "change-of-state"
    mine = [s for s in summary.listOfEventSummaries if s.objectIdentifier == door]
    assert mine, "the door alarm is missing from GetEventInformation"
    assert str(mine[0].eventState) == "offnormal"
    # acknowledgedTransitions bit 0 (to-offnormal) is now set
    assert mine[0].acknowledgedTransitions[0] == 1
    # The gateway's own alarm list agrees: off-normal, acknowledged by the BMS.
    listed = [a for a in gw.get("/api/alarms").json()["alarms"] if a["id"] == DOOR]
    assert listed and listed[0]["state"] == "offnormal", listed
    assert listed[0]["acked"] is True and listed[0]["acked_by"] == "bacnet", listed
    gw.post(f"/api/points/{DOOR}/override", {"value": None})


def test_an_alarm_acknowledged_in_the_gateway_shows_acknowledged_on_bacnet(gw):
    pid = "nvr-1.alarm-in-2"
    obj = bacnet_object(gw, pid)

    async def summary_of(app):
        info = GetEventInformationRequest()
        info.pduDestination = gw.bacnet
        ack = await app.request(info)
        return [s for s in ack.listOfEventSummaries if s.objectIdentifier == obj]

    async def body(app):
        r = await asyncio.to_thread(gw.post, f"/api/points/{pid}/override", {"value": True})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + TIMEOUT
        while True:
            _, ev = await asyncio.wait_for(app.events.get(), deadline - time.monotonic())
            if ev.eventObjectIdentifier == obj and str(ev.toState) == "offnormal":
                break
        before = await summary_of(app)
        r = await asyncio.to_thread(gw.post, f"/api/alarms/{pid}/ack", {})
        assert r.status_code == 200, r.text
        after = await summary_of(app)
        return before, after

    before, after = run(gw, body, port=gw.client_port)
    assert before and before[0].acknowledgedTransitions[0] == 0
    assert after and after[0].acknowledgedTransitions[0] == 1
    gw.post(f"/api/points/{pid}/override", {"value": None})


def test_equipment_status_alarms_arrive_unconfirmed(gw):
    # A device no driver talks to: the recorders' own drivers already
    # report them offline here (their simulators are not running).
    online = "vms-1.online"
    obj = bacnet_object(gw, online)

    async def body(app):
        r = await asyncio.to_thread(gw.post, f"/api/points/{online}/override", {"value": False})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + TIMEOUT
        while True:
            kind, ev = await asyncio.wait_for(app.events.get(), deadline - time.monotonic())
            if ev.eventObjectIdentifier == obj and str(ev.toState) == "offnormal":
                return kind, ev

    kind, ev = run(gw, body, port=gw.client_port)
    assert kind == "unconfirmed"  # class 2 goes to this recipient unconfirmed
    assert int(ev.notificationClass) == 2 and int(ev.processIdentifier) == 8
    gw.post(f"/api/points/{online}/override", {"value": None})


# ---------------------------------------------------------------- errors


def _error(coro):
    async def body(app):
        try:
            await coro(app)
        except ErrorRejectAbortNack as e:
            return e
        return None
    return body


def describe(e) -> str:
    """An error/reject/abort as text; CreateObject errors nest their code."""
    inner = getattr(e, "errorType", None)
    if inner is not None:
        return f"{inner.errorClass}: {inner.errorCode}"
    return str(e)


def test_errors_for_read_only_and_unknown_objects(gw):
    door = bacnet_object(gw, DOOR)
    cases = {
        "write input": lambda app: app.write_property(gw.bacnet, door, "presentValue", "active"),
        "rename": lambda app: app.write_property(gw.bacnet, door, "objectName", "x"),
        "unknown object": lambda app: app.read_property(gw.bacnet, oid("analog-input,999999"), "presentValue"),
        "unknown property": lambda app: app.read_property(gw.bacnet, door, "units"),
    }
    got = {name: run(gw, _error(c)) for name, c in cases.items()}
    assert "write-access-denied" in str(got["write input"])
    assert "write-access-denied" in str(got["rename"])
    assert "unknown-object" in str(got["unknown object"])
    assert "unknown-property" in str(got["unknown property"])


def test_who_has_finds_an_object_by_name(gw):
    name = gw.point(DOOR)["bacnet"]["object_name"]

    async def body(app):
        return await app.who_has(object_name=name, address=gw.bacnet)

    ihaves = run(gw, body)
    assert ihaves and str(ihaves[0].objectIdentifier) == gw.point(DOOR)["bacnet"]["object"]
    assert str(ihaves[0].deviceIdentifier) == f"device,{DEVICE}"


def test_write_property_multiple_commands_the_relay_at_a_priority(gw):
    from bacpypes3.apdu import WritePropertyMultipleRequest
    from bacpypes3.basetypes import PropertyValue, WriteAccessSpecification
    from bacpypes3.primitivedata import Enumerated

    relay = bacnet_object(gw, RELAY)

    async def body(app):
        req = WritePropertyMultipleRequest(listOfWriteAccessSpecs=[
            WriteAccessSpecification(objectIdentifier=relay, listOfProperties=[
                PropertyValue(propertyIdentifier="presentValue", value=Enumerated(1), priority=10)
            ])
        ])
        req.pduDestination = gw.bacnet
        await app.request(req)

    run(gw, body)
    p = gw.point(RELAY)
    assert p["active_level"] == 10 and p["value"] is True
    gw.post(f"/api/points/{RELAY}/command", {"level": 10, "value": None})
    assert gw.point(RELAY)["active_level"] == 17


def test_configuration_objects_and_device_management_are_refused(gw):
    from bacpypes3.apdu import CreateObjectRequest, DeviceCommunicationControlRequest
    from bacpypes3.apdu import CreateObjectRequestObjectSpecifier

    def dcc(app):
        req = DeviceCommunicationControlRequest(enableDisable="disableInitiation", password="wrong")
        req.pduDestination = gw.bacnet
        return app.request(req)

    def create(app):
        req = CreateObjectRequest(objectSpecifier=CreateObjectRequestObjectSpecifier(objectType="analog-value"))
        req.pduDestination = gw.bacnet
        return app.request(req)

    got = {
        # a wrong DCC password is refused, never silently obeyed
        "dcc": run(gw, _error(dcc)),
        # objects come from the site file only
        "create": run(gw, _error(create)),
        # recipients come from [[bacnet.alarm_recipient]]; an edit would not survive a restart
        "nc write": run(gw, _error(lambda app: app.write_property(
            gw.bacnet, oid("notification-class,1"), "priority", [1, 1, 1]))),
    }
    for name, e in got.items():
        assert e is not None, f"{name} was accepted"
        text = describe(e)
        assert any(c in text for c in ("service-request-denied", "write-access-denied",
                                        "password-failure")), (name, text)


def test_device_communication_control_with_the_configured_password(gw):
    from bacpypes3.apdu import DeviceCommunicationControlRequest

    async def body(app):
        async def dcc(state):
            req = DeviceCommunicationControlRequest(enableDisable=state, password=DCC_PASSWORD,
                                                    timeDuration=1)
            req.pduDestination = gw.bacnet
            return await app.request(req)

        off = await dcc("disableInitiation")
        # Initiation is off, answering is not: reads still work.
        pv = await app.read_property(gw.bacnet, oid(f"device,{DEVICE}"), "objectName")
        on = await dcc("enable")
        return off, pv, on

    off, pv, on = run(gw, body)
    assert isinstance(off, SimpleAckPDU) and isinstance(on, SimpleAckPDU)
    assert str(pv) == "hq_gateway"
