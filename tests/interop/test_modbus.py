"""The Modbus UPS driver against a third-party server: pymodbus (PyPI).

pymodbus serves an APC Smart-UPS register image that this file writes
itself from APC's documentation (application note AN176 and its register
table 990-9840), NOT from vgw's own map file, so a mistake shared by our
map and our decoder cannot pass unnoticed. A real `vgw run` gateway with
one UPS pointed at it is read over its HTTP API.

Register image (holding registers, absolute addresses, big-endian words,
32-bit values high word first, binary point n = raw / 2**n):
   0-1  UPSStatus_BF        UINT32 bit field: bit 2 StateOnBattery, bit 5 Fault
  18    SimpleSignalingStatus_BF   } this block answers every read with
  22    BatterySystemError_BF      } exception 02 ILLEGAL DATA ADDRESS
 128-129 RunTimeRemaining   UINT32 seconds
 130    StateOfCharge_Pct   UINT16, binary point 9
 131    Battery voltage     INT16, binary point 5
 136    Output real power % UINT16, binary point 8
 142    Output voltage      UINT16, binary point 6
 151    Input voltage       UINT16, binary point 6

The tests run in file order: values, sentinel, exception, then the dead
server and its recovery.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, _stop, _tail, free_tcp_port, wait_healthy

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

UPS = "ups-1"
UNIT = 1
# Bounded waits: one poll (2 s) + the call timeout (1 s) + reconnect
# backoff (at most 10 s), with room for a slow CI machine.
WAIT_S = 30.0

# --- the image, from the APC documentation --------------------------------

RUNTIME_S = 70_000  # 0x0001_1170: the two words differ (1 and 4464)
CHARGE_PCT = 87.5
BATTERY_V = 27.25
LOAD_PCT = 31.25
INPUT_V = 229.75
SENTINEL = 0xFFFF  # output voltage "not available"
REFUSED = range(18, 23)  # status registers that raise ILLEGAL DATA ADDRESS


def apc_image() -> dict[int, int]:
    status = 1 << 2  # StateOnBattery; bit 5 (Fault) clear
    return {
        0: status >> 16,
        1: status & 0xFFFF,
        128: RUNTIME_S >> 16,
        129: RUNTIME_S & 0xFFFF,
        130: round(CHARGE_PCT * 2**9),
        131: round(BATTERY_V * 2**5) & 0xFFFF,
        136: round(LOAD_PCT * 2**8),
        142: SENTINEL,
        151: round(INPUT_V * 2**6),
    }


class PymodbusUps:
    """A pymodbus TCP server on its own event loop thread, restartable."""

    def __init__(self, port: int):
        self.port = port
        self.image = apc_image()
        self.server: ModbusTcpServer | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _action(self, function_code, start_address, address, count,
                      registers, set_values):
        # Refuse any read that touches the refused status registers, as a
        # card without that feature would; otherwise serve the image.
        if set_values is None and any(a in REFUSED for a in range(address, address + count)):
            return ExcCodes.ILLEGAL_ADDRESS
        for a, v in self.image.items():
            registers[a - start_address] = v
        return None

    def _device(self) -> SimDevice:
        return SimDevice(
            id=UNIT,
            simdata=[
                SimData(address=0, count=160, values=0, datatype=DataType.REGISTERS),
            ],
            action=self._action,
        )

    def _run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        async def go():
            self.server = ModbusTcpServer(self._device(), address=("127.0.0.1", self.port))
            await self.server.serve_forever(background=True)
        self._run(go())

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            self._run(server.shutdown())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def pymodbus_ups():
    ups = PymodbusUps(free_tcp_port())
    ups.start()
    try:
        yield ups
    finally:
        ups.close()


@pytest.fixture(scope="module")
def ups_gateway(vgw_bin, pymodbus_ups, tmp_path_factory):
    """`vgw run` with one APC UPS at the pymodbus server; yields a GET helper."""
    work = tmp_path_factory.mktemp("modbus")
    (work / "data").mkdir()
    site = work / "site.toml"
    site.write_text(f"""[site]
id = "mb"
name = "Modbus interop"
timezone = "Europe/Berlin"

[gateway]
anonymous_read = true

[[building]]
id = "b1"

[[floor]]
id = "f1"
building = "b1"
level = 1

[[space]]
id = "srv"
floor = "f1"
kind = "server_room"

[[ups]]
id = "{UPS}"
space = "srv"
modbus = "127.0.0.1:{pymodbus_ups.port}"
modbus_unit = {UNIT}
map = "apc"
""")
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    out_path, err_path = work / "stdout.log", work / "stderr.log"
    cmd = [str(vgw_bin), "run", "--config", str(site), "--data-dir", str(work / "data"),
           "--http", f"127.0.0.1:{port}", "--bacnet", "off"]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
            stdout=out, stderr=err, env={**os.environ, "RUST_BACKTRACE": "1"})

    def logs() -> str:
        return f"--- stderr ---\n{_tail(err_path)}\n--- stdout ---\n{_tail(out_path)}"

    try:
        wait_healthy(proc, base, logs, WAIT_S)

        class Gateway:
            def point(self, key: str) -> dict:
                r = requests.get(f"{base}/api/points/{UPS}.{key}", timeout=5)
                assert r.status_code == 200, f"{key}: HTTP {r.status_code} {r.text}\n{logs()}"
                return r.json()

            def wait_for(self, what: str, cond) -> None:
                deadline = time.monotonic() + WAIT_S
                while not cond(self):
                    if time.monotonic() > deadline:
                        pytest.fail(f"{what}: not within {WAIT_S} s\n{logs()}", pytrace=False)
                    time.sleep(0.2)

            stderr = staticmethod(lambda: _tail(err_path))

        gw = Gateway()
        gw.wait_for("UPS online", lambda g: g.point("online")["value"] is True
                    and g.point("battery.battery-charge")["quality"] == "ok")
        yield gw
    finally:
        _stop(proc)


def value(gw, key):
    p = gw.point(key)
    assert p["quality"] == "ok", f"{key}: {p}"
    return p["value"]


def test_values_decode_including_the_32_bit_runtime_word_order(ups_gateway):
    gw = ups_gateway
    # 70000 s = words 0x0001, 0x1170: high word first is 1166.7 min; the
    # other order would read about 4.9 million minutes.
    assert value(gw, "runtime") == pytest.approx(RUNTIME_S / 60, abs=0.01)
    assert value(gw, "battery.battery-charge") == pytest.approx(CHARGE_PCT)
    assert value(gw, "battery.battery-voltage") == pytest.approx(BATTERY_V)
    assert value(gw, "load") == pytest.approx(LOAD_PCT)
    assert value(gw, "input-voltage") == pytest.approx(INPUT_V)
    # Bit 2 of the 32-bit status (in the second register) and bit 5 clear.
    assert value(gw, "on-battery") is True
    assert value(gw, "fault") is False


def test_a_sentinel_register_is_a_fault_not_a_number(ups_gateway):
    p = ups_gateway.point("output-voltage")
    assert p["quality"] == "fault", p
    assert p["value"] != pytest.approx(SENTINEL / 64), "the sentinel is never shown as a voltage"


def test_a_block_refused_with_an_exception_faults_only_its_points(ups_gateway):
    gw = ups_gateway
    for key in ("battery.low-battery", "battery.replace-battery"):
        assert gw.point(key)["quality"] == "fault", key
    assert gw.point("online")["value"] is True, "the UPS answered: it is online"
    assert gw.point("runtime")["quality"] == "ok"
    assert "ILLEGAL DATA ADDRESS" in gw.stderr(), "the warning names the exception"


def test_a_dead_server_faults_everything_and_recovery_needs_no_one(ups_gateway, pymodbus_ups):
    gw = ups_gateway
    pymodbus_ups.stop()
    gw.wait_for("UPS offline", lambda g: g.point("online")["value"] is False)
    for key in ("on-battery", "runtime", "load", "input-voltage", "fault",
                "battery.battery-charge", "battery.battery-voltage"):
        p = gw.point(key)
        assert p["quality"] == "fault", (key, p)
    # The last value is kept for the record.
    assert gw.point("battery.battery-charge")["value"] == pytest.approx(CHARGE_PCT)

    pymodbus_ups.image[130] = round(50.0 * 2**9)
    pymodbus_ups.start()
    gw.wait_for("UPS back with a fresh charge",
                lambda g: g.point("online")["value"] is True
                and g.point("battery.battery-charge")["quality"] == "ok"
                and g.point("battery.battery-charge")["value"] == pytest.approx(50.0))
    assert value(gw, "runtime") == pytest.approx(RUNTIME_S / 60, abs=0.01)
