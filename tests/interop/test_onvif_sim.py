"""`vgw sim onvif` against an independent ONVIF client.

The peer is onvif-zeep (zeep + the ONVIF WSDLs it ships): it builds every
request from the WSDLs and parses our responses against the schemas, so a
wrong namespace, element name or type shows up here. HTTP Digest is checked
with requests' own Digest implementation, WS-Discovery with a raw UDP probe
parsed by lxml.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from lxml import etree

from conftest import REPO_ROOT, _stop, free_tcp_port

onvif = pytest.importorskip("onvif")
from onvif import ONVIFCamera, ONVIFError, ONVIFService  # noqa: E402
from zeep.exceptions import Fault  # noqa: E402
from zeep.plugins import HistoryPlugin  # noqa: E402

USER, PASSWORD = "admin", "s3cret pw"
INPUTS, RELAYS = 4, 2
WSDL_DIR = Path(onvif.__file__).resolve().parent.parent / "wsdl"
TT = "http://www.onvif.org/ver10/schema"
SIM = "urn:vgw:onvif-sim"
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
READY_TIMEOUT_S = 30.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    def __init__(self, port: int, udp: int, proc: subprocess.Popen):
        self.port, self.udp, self.proc = port, udp, proc
        self.base = f"http://127.0.0.1:{port}"
        self.base2 = f"http://127.0.0.1:{port + 1}"

    def ctl(self, method: str, path: str, base: str | None = None, **kw):
        r = requests.request(method, f"{base or self.base}{path}", timeout=10, **kw)
        r.raise_for_status()
        return r.json() if r.content else None


@pytest.fixture(scope="module")
def sim(vgw_bin, tmp_path_factory):
    # Two devices: the second is used up by the subscription-limit test.
    port = free_tcp_port()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port + 1), timeout=0.2).close()
            port = free_tcp_port()
        except OSError:
            break
    udp = free_udp_port()
    log = tmp_path_factory.mktemp("onvif") / "sim.log"
    cmd = [
        str(vgw_bin), "sim", "onvif", "--listen", f"127.0.0.1:{port}", "--count", "2",
        "--inputs", str(INPUTS), "--relays", str(RELAYS), "--user", USER, "--password", PASSWORD,
        "--max-subscriptions", "10", "--discovery", f"127.0.0.1:{udp}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "RUST_BACKTRACE": "1"})
    s = Sim(port, udp, proc)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"vgw sim onvif exited {proc.returncode}:\n{log.read_text()}", pytrace=False)
        try:
            s.ctl("GET", "/sim/state")
            s.ctl("GET", "/sim/state", base=s.base2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                _stop(proc)
                pytest.fail(f"simulator not ready:\n{log.read_text()}", pytrace=False)
            time.sleep(0.2)
    try:
        yield s
    finally:
        _stop(proc)


def camera(sim: Sim, password: str = PASSWORD, **kw) -> ONVIFCamera:
    return ONVIFCamera("127.0.0.1", sim.port, USER, password, wsdl_dir=str(WSDL_DIR), **kw)


def service(xaddr: str, wsdl: str, binding: str, password: str = PASSWORD) -> ONVIFService:
    return ONVIFService(xaddr, USER, password, str(WSDL_DIR / wsdl), binding_name=binding)


def test_device_information_and_clock_follow_the_device(sim):
    cam = camera(sim)
    info = cam.devicemgmt.GetDeviceInformation()
    assert info.Manufacturer == "vgw" and info.SerialNumber == "SIM-0001"

    def device_time():
        u = cam.devicemgmt.GetSystemDateAndTime().UTCDateTime
        return dt.datetime(u.Date.Year, u.Date.Month, u.Date.Day, u.Time.Hour, u.Time.Minute,
                           u.Time.Second, tzinfo=dt.timezone.utc)

    assert abs((device_time() - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
    sim.ctl("POST", "/sim/clock", json={"offset_ms": 3 * 3600 * 1000})
    try:
        skew = (device_time() - dt.datetime.now(dt.timezone.utc)).total_seconds()
        assert 3 * 3600 - 60 < skew < 3 * 3600 + 60
    finally:
        sim.ctl("POST", "/sim/clock", json={"offset_ms": 0})


def test_clock_skew_rejects_usernametoken_until_the_client_corrects_for_it(sim):
    sim.ctl("POST", "/sim/clock", json={"offset_ms": 120_000})
    try:
        with pytest.raises(ONVIFError, match="Not ?Authorized|not Authorized"):
            camera(sim).devicemgmt.GetDeviceInformation()
        # GetSystemDateAndTime is open to all, so the client can measure the skew.
        cam = camera(sim, adjust_time=True)
        assert cam.devicemgmt.GetDeviceInformation().Model
    finally:
        sim.ctl("POST", "/sim/clock", json={"offset_ms": 0})


def test_services_and_capabilities_advertise_every_endpoint(sim):
    cam = camera(sim)
    svcs = {s.Namespace: s for s in cam.devicemgmt.GetServices(True)}
    for ns, path in [
        ("http://www.onvif.org/ver10/device/wsdl", "/onvif/device_service"),
        ("http://www.onvif.org/ver10/media/wsdl", "/onvif/media_service"),
        ("http://www.onvif.org/ver10/events/wsdl", "/onvif/event_service"),
        ("http://www.onvif.org/ver10/deviceIO/wsdl", "/onvif/deviceio_service"),
    ]:
        assert svcs[ns].XAddr == sim.base + path
        assert svcs[ns].Version.Major == 2
    caps = cam.devicemgmt.GetCapabilities({"Category": "All"})
    assert caps.Media.XAddr == sim.base + "/onvif/media_service"
    assert caps.Events.WSPullPointSupport is True
    assert caps.Device.IO.InputConnectors == INPUTS
    # tt:Extension opens with xs:any ##other, which zeep matches greedily, so
    # our (schema-valid) tt:DeviceIO lands in _value_1 as a raw element.
    dio = caps.Extension.DeviceIO
    if dio is not None:
        dio_xaddr = dio.XAddr
    else:
        raw = [e for e in caps.Extension._value_1 if e.tag == f"{{{TT}}}DeviceIO"]
        assert raw, "no tt:DeviceIO in GetCapabilities' Extension"
        dio_xaddr = raw[0].findtext(f"{{{TT}}}XAddr")
    assert dio_xaddr == sim.base + "/onvif/deviceio_service"
    scopes = [s.ScopeItem for s in cam.devicemgmt.GetScopes()]
    assert "onvif://www.onvif.org/name/vgw-sim-1" in scopes


def test_media_profile_and_stream_uri(sim):
    media = camera(sim).create_media_service()
    profiles = media.GetProfiles()
    assert len(profiles) >= 1
    p = profiles[0]
    assert p.VideoSourceConfiguration.SourceToken
    assert p.VideoEncoderConfiguration.Encoding == "H264"
    assert p.VideoEncoderConfiguration.Resolution.Width == 1920
    uri = media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                              "ProfileToken": p.token})
    assert uri.Uri.startswith("rtsp://127.0.0.1")
    with pytest.raises(ONVIFError, match="profile"):
        media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                            "ProfileToken": "nope"})


def test_deviceio_lists_inputs_and_relays_and_relay_state_changes(sim):
    dio = service(sim.base + "/onvif/deviceio_service", "deviceio.wsdl",
                  "{http://www.onvif.org/ver10/deviceIO/wsdl}DeviceIOBinding")
    inputs = dio.GetDigitalInputs()
    assert [i.token for i in inputs] == [f"DigitalInput_{k}" for k in range(1, INPUTS + 1)]
    relays = dio.GetRelayOutputs()
    assert len(relays) == RELAYS
    cam = camera(sim)
    assert [r.token for r in cam.devicemgmt.GetRelayOutputs()] == [r.token for r in relays]
    cam.devicemgmt.SetRelayOutputState({"RelayOutputToken": relays[1].token, "LogicalState": "active"})
    assert sim.ctl("GET", "/sim/relays") == [False, True]
    dio.SetRelayOutputState({"RelayOutputToken": relays[1].token, "LogicalState": "inactive"})
    assert sim.ctl("GET", "/sim/relays") == [False, False]
    with pytest.raises(ONVIFError):
        cam.devicemgmt.SetRelayOutputState({"RelayOutputToken": "nope", "LogicalState": "active"})


WSNT = "http://docs.oasis-open.org/wsn/b-2"


def parse_messages(envelope) -> list[dict]:
    """NotificationMessages from the raw response. zeep drops the text of
    wsnt:Topic (mixed content), so the topic is read with lxml; zeep has
    already parsed the same response against events.wsdl."""
    out = []
    for nm in envelope.iter(f"{{{WSNT}}}NotificationMessage"):
        topic = nm.find(f"{{{WSNT}}}Topic")
        msg = nm.find(f"{{{WSNT}}}Message/{{{TT}}}Message")

        def items(part):
            return {i.get("Name"): i.get("Value") for i in msg.findall(f"{{{TT}}}{part}/{{{TT}}}SimpleItem")}

        prefix, _, local = topic.text.strip().partition(":")
        assert topic.nsmap.get(prefix) == "http://www.onvif.org/ver10/topics"
        assert topic.get("Dialect") == "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
        out.append({
            "topic": f"tns1:{local}",
            "op": msg.get("PropertyOperation"),
            "time": msg.get("UtcTime"),
            "source": items("Source"),
            "data": items("Data"),
        })
    return out


class PullPoint:
    """A subscription driven as WS-Addressing says: its reference
    parameters go back as SOAP headers on every request."""

    def __init__(self, sim: Sim, created):
        ref = created.SubscriptionReference
        self.address = ref.Address._value_1
        self.headers = list(ref.ReferenceParameters._value_1)
        self.pull = service(self.address, "events.wsdl", f"{{{EVENTS_NS}}}PullPointSubscriptionBinding")
        self.history = HistoryPlugin()
        self.pull.zeep_client.plugins.append(self.history)
        self.mgr = service(self.address, "events.wsdl", f"{{{EVENTS_NS}}}SubscriptionManagerBinding")

    def messages(self, timeout_s: float = 2, limit: int = 100, headers=None):
        resp = self.pull.ws_client.PullMessages(
            Timeout=dt.timedelta(seconds=timeout_s), MessageLimit=limit,
            _soapheaders=self.headers if headers is None else headers)
        msgs = parse_messages(self.history.last_received["envelope"])
        assert len(msgs) == len(resp.NotificationMessage or [])
        return msgs


def test_pullpoint_snapshot_changes_renew_and_unsubscribe(sim):
    events = camera(sim).create_events_service()
    props = events.GetEventProperties()
    assert "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet" in props.TopicExpressionDialect
    pp = PullPoint(sim, events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"}))
    assert pp.headers and etree.QName(pp.headers[0]).namespace == SIM

    snap = pp.messages(limit=100)
    assert all(m["op"] == "Initialized" for m in snap)
    topics = [m["topic"] for m in snap]
    assert topics.count("tns1:Device/Trigger/DigitalInput") == INPUTS
    assert topics.count("tns1:Device/Trigger/Relay") == RELAYS
    for t in ["tns1:VideoSource/MotionAlarm", "tns1:VideoSource/GlobalSceneChange/ImagingService",
              "tns1:VideoSource/SignalLoss", "tns1:Device/HardwareFailure/StorageFailure",
              "tns1:RecordingConfig/JobState"]:
        assert t in topics
    di = [m for m in snap if m["topic"].endswith("DigitalInput")]
    assert [m["source"]["InputToken"] for m in di] == [f"DigitalInput_{k}" for k in range(1, INPUTS + 1)]
    assert {m["data"]["LogicalState"] for m in di} == {"false"}

    # A long poll started before the change returns with it.
    got: list = []
    t = threading.Thread(target=lambda: got.extend(pp.messages(timeout_s=30)))
    t.start()
    sim.ctl("POST", "/sim/inputs/1", json={"active": True})
    t.join(60)
    assert not t.is_alive()
    changed = [m for m in got if m["op"] == "Changed"]
    assert changed and changed[0]["topic"] == "tns1:Device/Trigger/DigitalInput"
    assert changed[0]["source"] == {"InputToken": "DigitalInput_1"}
    assert changed[0]["data"] == {"LogicalState": "true"}

    sim.ctl("POST", "/sim/state", json={"motion": True})
    motion = [m for m in pp.messages() if m["topic"] == "tns1:VideoSource/MotionAlarm"]
    assert motion and motion[0]["data"] == {"State": "true"} and motion[0]["op"] == "Changed"

    # SetSynchronizationPoint re-sends the whole state, input 1 now active.
    pp.pull.ws_client.SetSynchronizationPoint(_soapheaders=pp.headers)
    resync = pp.messages()
    assert all(m["op"] == "Initialized" for m in resync)
    assert {"InputToken": "DigitalInput_1"} in [m["source"] for m in resync if m["data"].get("LogicalState") == "true"]

    # Without the reference parameter the subscription is not addressable.
    with pytest.raises(Fault):
        pp.messages(headers=[])

    renewed = pp.mgr.ws_client.Renew(TerminationTime="PT120S", _soapheaders=pp.headers)
    assert renewed.TerminationTime > renewed.CurrentTime + dt.timedelta(seconds=100)

    before = sim.ctl("GET", "/sim/subscriptions")["count"]
    pp.mgr.ws_client.Unsubscribe(_soapheaders=pp.headers)
    assert sim.ctl("GET", "/sim/subscriptions")["count"] == before - 1
    with pytest.raises(Fault):
        pp.messages()
    sim.ctl("POST", "/sim/inputs/1", json={"active": False})
    sim.ctl("POST", "/sim/state", json={"motion": False})


def test_topic_filter_limits_the_subscription(sim):
    events = camera(sim).create_events_service()
    wsnt = WSNT
    expr = etree.Element(f"{{{wsnt}}}TopicExpression",
                         Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet",
                         nsmap={"tns1": "http://www.onvif.org/ver10/topics", "wsnt": wsnt})
    expr.text = "tns1:Device/Trigger/Relay|tns1:VideoSource/SignalLoss"
    pp = PullPoint(sim, events.CreatePullPointSubscription(
        {"Filter": {"_value_1": [expr]}, "InitialTerminationTime": "PT30S"}))
    topics = [m["topic"] for m in pp.messages()]
    assert sorted(set(topics)) == ["tns1:Device/Trigger/Relay", "tns1:VideoSource/SignalLoss"]
    sim.ctl("POST", "/sim/inputs/2", json={"active": True})
    sim.ctl("POST", "/sim/state", json={"signal_loss": True})
    after = pp.messages()
    assert [m["topic"] for m in after] == ["tns1:VideoSource/SignalLoss"]
    pp.mgr.ws_client.Unsubscribe(_soapheaders=pp.headers)
    sim.ctl("POST", "/sim/inputs/2", json={"active": False})
    sim.ctl("POST", "/sim/state", json={"signal_loss": False})


def test_subscription_limit_is_a_fault(sim):
    events = service(f"{sim.base2}/onvif/event_service", "events.wsdl", f"{{{EVENTS_NS}}}EventBinding")
    limit = sim.ctl("GET", "/sim/subscriptions", base=sim.base2)["max"]
    for _ in range(limit - sim.ctl("GET", "/sim/subscriptions", base=sim.base2)["count"]):
        events.CreatePullPointSubscription({"InitialTerminationTime": "PT30S"})
    with pytest.raises(ONVIFError, match="maximum number"):
        events.CreatePullPointSubscription({"InitialTerminationTime": "PT30S"})
    assert sim.ctl("GET", "/sim/subscriptions", base=sim.base2)["count"] == limit


def test_wrong_password_is_refused(sim):
    with pytest.raises(ONVIFError, match="Not ?Authorized|not Authorized"):
        camera(sim, password="wrong").devicemgmt.GetDeviceInformation()
    # GetSystemDateAndTime stays open without valid credentials.
    assert camera(sim, password="wrong").devicemgmt.GetSystemDateAndTime().UTCDateTime.Date.Year > 2000


def test_http_digest_with_an_independent_implementation(sim):
    body = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
            '<s:Body><GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')
    url = sim.base + "/onvif/device_service"
    hdrs = {"Content-Type": "application/soap+xml; charset=utf-8"}
    r = requests.post(url, data=body, headers=hdrs, timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Digest ")
    r = requests.post(url, data=body, headers=hdrs, timeout=10,
                      auth=requests.auth.HTTPDigestAuth(USER, PASSWORD))
    assert r.status_code == 200 and b"SIM-0001" in r.content
    r = requests.post(url, data=body, headers=hdrs, timeout=10,
                      auth=requests.auth.HTTPDigestAuth(USER, "wrong"))
    assert r.status_code == 401


def test_malformed_and_unknown_requests_get_sender_faults(sim):
    url = sim.base + "/onvif/device_service"
    hdrs = {"Content-Type": "application/soap+xml"}
    r = requests.post(url, data=b"<not xml", headers=hdrs, timeout=10)
    assert r.status_code == 400
    root = etree.fromstring(r.content)
    env = "http://www.w3.org/2003/05/soap-envelope"
    code = root.find(f".//{{{env}}}Code/{{{env}}}Value")
    prefix, _, local = code.text.partition(":")
    assert (code.nsmap[prefix], local) == (env, "Sender")
    sub = root.find(f".//{{{env}}}Code/{{{env}}}Subcode/{{{env}}}Value")
    prefix, _, local = sub.text.partition(":")
    assert (sub.nsmap[prefix], local) == ("http://www.onvif.org/ver10/error", "WellFormed")
    # An operation the device service does not implement is a receiver fault.
    body = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
            '<SystemReboot xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')
    r = requests.post(url, data=body, headers=hdrs, timeout=10,
                      auth=requests.auth.HTTPDigestAuth(USER, PASSWORD))
    assert r.status_code == 500 and b"ter:ActionNotSupported" in r.content


def test_ws_discovery_probe(sim):
    msg_id = f"uuid:{uuid.uuid4()}"
    probe = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        f'<e:Header><w:MessageID>{msg_id}</w:MessageID>'
        '<w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>'
        '<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>'
        '<e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>'
    )
    d = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
    a = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
    xaddrs = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(probe.encode(), ("127.0.0.1", sim.udp))
        while len(xaddrs) < 2:
            data, _ = s.recvfrom(65536)
            root = etree.fromstring(data)
            assert root.findtext(f".//{{{a}}}RelatesTo") == msg_id
            m = root.find(f".//{{{d}}}ProbeMatch")
            assert m.findtext(f"{{{a}}}EndpointReference/{{{a}}}Address").startswith("urn:uuid:")
            assert "NetworkVideoTransmitter" in m.findtext(f"{{{d}}}Types")
            assert "onvif://www.onvif.org/name/" in m.findtext(f"{{{d}}}Scopes")
            xaddrs.add(m.findtext(f"{{{d}}}XAddrs"))
    assert xaddrs == {sim.base + "/onvif/device_service", sim.base2 + "/onvif/device_service"}


def test_offline_device_stops_answering_until_back_online(sim):
    url = sim.base + "/onvif/device_service"
    body = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
            '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')
    sim.ctl("POST", "/sim/online", json={"online": False})
    try:
        with pytest.raises(requests.exceptions.Timeout):
            requests.post(url, data=body, headers={"Content-Type": "application/soap+xml"}, timeout=1.5)
    finally:
        sim.ctl("POST", "/sim/online", json={"online": True})
    r = requests.post(url, data=body, headers={"Content-Type": "application/soap+xml"}, timeout=10)
    assert r.status_code == 200
