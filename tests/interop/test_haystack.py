"""The Haystack 4 API driven by phable (PyPI) and checked with hszinc (PyPI),
two clients nobody on this project wrote, against `vgw demo` (login
demo/demo, operator), over both Zinc and JSON."""

from __future__ import annotations

import urllib.error

import pytest
import requests

phable = pytest.importorskip("phable")
hszinc = pytest.importorskip("hszinc")
from phable import AuthError, CallError, Grid, UnknownRecError, open_haystack_client  # noqa: E402

FORMATS = ["json", "zinc"]


def hs(gateway) -> str:
    return f"{gateway}/haystack"


def client(gateway, ct):
    return open_haystack_client(hs(gateway), "demo", "demo", content_type=ct)


def nvr1_points(gateway) -> set[str]:
    e = requests.get(f"{gateway}/api/equipment/nvr-1", timeout=10).json()
    return {f"hq.{p['id']}" for p in e["points"]}


def ref(v) -> str:
    return v.val if hasattr(v, "val") else str(v)


@pytest.mark.parametrize("ct", FORMATS)
def test_scram_login_about_and_close(gateway, ct):
    with client(gateway, ct) as c:
        about = c.about()
        token = c._auth_token
        assert about["productName"] == "vgw"
        assert about["haystackVersion"] == "4.0"
        assert about["whoami"] == "demo"
        assert about["serverName"] == "Harbour Tower"
    # The context manager closed the session: the token is revoked.
    r = requests.post(f"{hs(gateway)}/about", headers={"Authorization": f"BEARER authToken={token}"},
                      timeout=10)
    assert r.status_code == 401


def test_a_wrong_password_is_refused(gateway):
    with pytest.raises(AuthError):
        with open_haystack_client(hs(gateway), "demo", "not-the-password"):
            pass


@pytest.mark.parametrize("ct", FORMATS)
def test_read_by_filter_path_and_ids(gateway, ct):
    with client(gateway, ct) as c:
        g = c.read_all("point and equipRef==@hq.nvr-1")
        assert {ref(r["id"]) for r in g.rows} == nvr1_points(gateway)
        assert all("point" in r for r in g.rows)
        # Live tags from the point engine: no driver has reported yet.
        assert all(r["curStatus"] in ("unknown", "ok") for r in g.rows)
        limited = c.read_all("point", limit=3)
        assert len(limited.rows) == 3
        # A path: points whose equipment is an NVR.
        via = c.read_all("point and equipRef->nvr")
        assert via.rows and all(ref(r["equipRef"]).startswith("hq.nvr-") for r in via.rows)
        # By ids, in request order.
        rows = c.read_by_ids(["hq.ups-1", "hq.nvr-1"]).rows
        assert [ref(r["id"]) for r in rows] == ["hq.ups-1", "hq.nvr-1"]
        with pytest.raises(UnknownRecError):
            c.read_by_ids(["hq.nvr-1", "hq.no-such-thing"])


@pytest.mark.parametrize("ct", FORMATS)
def test_a_bad_filter_is_an_error_grid(gateway, ct):
    with client(gateway, ct) as c:
        with pytest.raises(CallError) as e:
            c.read_all("point and")
        meta = e.value.help_msg.meta
        assert "err" in meta and "invalid filter" in meta["dis"]
        assert "errTrace" not in meta


@pytest.mark.parametrize("ct", FORMATS)
def test_nav_walks_site_to_point(gateway, ct):
    with client(gateway, ct) as c:
        def children(nav_id):
            return c.call("nav", Grid.to_grid({"navId": nav_id})).rows

        buildings = children("hq.site")
        assert buildings and all("space" in b for b in buildings)
        floors = children(buildings[0]["navId"])
        assert floors
        # Down the tree until a level lists points.
        level, seen = floors, []
        for _ in range(6):
            points = [r for r in level if "point" in r]
            if points:
                break
            nxt = next(r for r in level if "navId" in r)
            seen.append(nxt["navId"])
            level = children(nxt["navId"])
        assert points, f"no points below {seen}"
        assert all("navId" not in p for p in points)


def test_nav_root_is_the_site(gateway):
    with client(gateway, "json") as c:
        rows = c.call("nav", Grid.to_grid({})).rows
        assert [r["navId"] for r in rows] == ["hq.site"]


def test_hszinc_parses_every_ops_zinc(gateway):
    with client(gateway, "zinc") as c:
        token = c._auth_token
        auth = {"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"}
        bodies = {
            "about": None, "ops": None, "formats": None,
            "read": 'ver:"3.0"\nfilter,limit\n"point and equipRef==@hq.nvr-1",5\n',
            "nav": 'ver:"3.0"\nnavId\n"hq.site"\n',
            # defs and libs are made of Haystack 4 symbols (^tag), which
            # hszinc (a Haystack 3 parser) cannot read; phable reads them
            # in test_defs_and_libs_include_the_vgw_lib.
            "hisRead": 'ver:"3.0"\nid,range\n@hq.nvr-1.alarm-out-2,"today"\n',
            "pointWrite": 'ver:"3.0"\nid\n@hq.nvr-1.alarm-out-2\n',
            "watchSub": 'ver:"3.0" watchDis:"z" lease:10s\nid\n@hq.nvr-1.online\n',
            "read-bad": 'ver:"3.0"\nfilter\n"point and"\n',
        }
        for name, body in bodies.items():
            op = name.split("-")[0]
            if body is None:
                r = requests.get(f"{hs(gateway)}/{op}", headers=auth, timeout=10)
            else:
                r = requests.post(f"{hs(gateway)}/{op}", data=body.encode(), timeout=10,
                                  headers={**auth, "Content-Type": "text/zinc"})
            assert r.status_code == 200, (name, r.status_code, r.text)
            g = hszinc.parse(r.text, mode=hszinc.MODE_ZINC, single=True)
            assert g is not None, name
            if name == "read-bad":
                assert "err" in g.metadata
            elif name == "read":
                assert len(g) == 5 and all(str(row["id"]).startswith("@hq.nvr-1.") or
                                          getattr(row["id"], "name", "").startswith("hq.nvr-1.")
                                          for row in g)


def test_http_rules(gateway):
    with client(gateway, "json") as c:
        token = c._auth_token
        auth = {"Authorization": f"BEARER authToken={token}"}
        url = hs(gateway)
        # side effects need POST
        assert requests.get(f"{url}/close", headers=auth, timeout=10).status_code == 405
        # a format we do not speak
        assert requests.get(f"{url}/about", headers={**auth, "Accept": "text/html"},
                            timeout=10).status_code == 406
        # a body we cannot read
        assert requests.post(f"{url}/read", data="filter\nsite", timeout=10,
                             headers={**auth, "Content-Type": "text/csv"}).status_code == 415
        assert requests.post(f"{url}/read", data="ver:\"3.0\"\nfilter\n@@@", timeout=10,
                             headers={**auth, "Content-Type": "text/zinc"}).status_code == 400
        assert requests.get(f"{url}/nope", headers=auth, timeout=10).status_code == 404
        # GET args are a one-row request grid
        r = requests.get(f"{url}/read", params={"filter": "site"},
                         headers={**auth, "Accept": "application/json"}, timeout=10)
        assert r.status_code == 200 and [x["id"]["val"] for x in r.json()["rows"]] == ["hq.site"]
    # no login at all: the demo allows anonymous reads, but never side effects
    assert requests.get(f"{url}/about", timeout=10).status_code == 200
    assert requests.post(f"{url}/close", timeout=10).status_code == 401


def test_haystack_entities_equal_the_haystack_triples_in_the_rdf_store(gateway):
    """Same ids, same tags (markers and valued tags): the API and the store
    are one projection."""
    q = """SELECT ?s ?p ?o WHERE { ?s ?p ?o
             FILTER(STRSTARTS(STR(?p), "https://project-haystack.org/def/")
                 || STRSTARTS(STR(?p), "https://w3id.org/vgw/haystack#")) }"""
    r = requests.post(gateway.sparql_url, data={"query": q},
                      headers={"Accept": "application/sparql-results+json"}, timeout=120)
    assert r.status_code == 200, r.text
    store: dict[str, set[str]] = {}
    for b in r.json()["results"]["bindings"]:
        sid = "hq." + b["s"]["value"].removeprefix("urn:vgw:hq/")
        pred = b["p"]["value"].rsplit("#", 1)[1]
        # Markers are `ph:hasTag <tag def>`; every other tag is its own predicate.
        tag = b["o"]["value"].rsplit("#", 1)[1] if pred == "hasTag" else pred
        store.setdefault(sid, set()).add(tag)
    live = {"curVal", "curStatus", "writeVal", "writeLevel"}
    with client(gateway, "json") as c:
        rows = c.read_all("id").rows
    api = {ref(r["id"]): set(r) - {"id", "dis"} - live for r in rows}
    assert set(api) == set(store)
    different = {i: sorted(api[i] ^ store[i]) for i in api if api[i] != store[i]}
    assert not different, list(different.items())[:5]


RELAY = "hq.nvr-1.alarm-out-2"


def meta_grid(meta: dict) -> Grid:
    """A request grid with meta and no rows (phable's to_grid needs a row)."""
    from phable.kinds import GridCol
    return Grid(meta={"ver": "3.0", **meta}, cols=[GridCol("empty")], rows=[])


@pytest.mark.parametrize("ct", FORMATS)
def test_point_write_lands_in_the_shared_priority_array(gateway, ct):
    with client(gateway, ct) as c:
        c.point_write(phable.Ref(RELAY), 8, True, "pytest")
        array = c.point_write_array(phable.Ref(RELAY)).rows
        assert [int(r["level"].val) for r in array] == list(range(1, 18))
        eight = array[7]
        assert eight["val"] is True and eight["who"] == "haystack:demo:pytest"
        assert array[16]["val"] is False, "the relinquish default"
        # The same array the HTTP API (and BACnet) serve.
        p = requests.get(f"{gateway}/api/points/nvr-1.alarm-out-2", timeout=10).json()
        assert p["active_level"] == 8 and p["value"] is True
        c.point_write(phable.Ref(RELAY), 8)  # no val: relinquish
        assert "val" not in c.point_write_array(phable.Ref(RELAY)).rows[7]
        with pytest.raises(CallError):
            c.point_write(phable.Ref("hq.nvr-1.online"), 8, True)  # an input


@pytest.mark.parametrize("ct", FORMATS)
def test_his_read_every_range_form(gateway, ct):
    import datetime
    from zoneinfo import ZoneInfo

    from phable import DateRange, DateTimeRange

    with client(gateway, ct) as c:
        for v in (True, False):
            c.point_write(phable.Ref(RELAY), 9, v, "his")
        c.point_write(phable.Ref(RELAY), 9)
        berlin = ZoneInfo("Europe/Berlin")
        today = datetime.datetime.now(berlin).date()
        start = datetime.datetime.combine(today, datetime.time(), berlin)
        forms = {
            "today": "today",
            "date": today,
            "date range": DateRange(today - datetime.timedelta(days=1), today),
            "dateTime range": DateTimeRange(start, start + datetime.timedelta(days=1)),
            "lone dateTime": DateTimeRange(start),
        }
        for name, rng in forms.items():
            # phable polls nothing: the recorder writes in the background.
            for _ in range(50):
                g = c.his_read_by_id(phable.Ref(RELAY), rng)
                if len(g.rows) >= 2:
                    break
                import time
                time.sleep(0.1)
            vals = [r["val"] for r in g.rows]
            assert True in vals and False in vals, (name, vals)
            ts = [r["ts"] for r in g.rows]
            assert ts == sorted(ts), name
            assert all(t.tzinfo is not None for t in ts), name
        # Yesterday ended before this run's writes.
        assert not [r for r in c.his_read_by_id(phable.Ref(RELAY), "yesterday").rows
                    if r["ts"].date() == today]
        with pytest.raises(CallError):
            c.his_read_by_id(phable.Ref("hq.cam-001.last-frame-age"), "today")  # not historised
        with pytest.raises(CallError) as e:
            c.his_write_by_id(phable.Ref(RELAY), [{"ts": start, "val": True}])
        assert "does not take written history" in e.value.help_msg.meta["dis"]


@pytest.mark.parametrize("ct", FORMATS)
def test_watch_reports_a_point_after_it_changes(gateway, ct):
    # A point no driver feeds (the demo's recorders have live simulators).
    door = "vms-1.online"
    with client(gateway, ct) as c:
        token = c._auth_token
        sub = c.call("watchSub", Grid.to_grid(
            [{"id": phable.Ref(f"hq.{door}")}, {"id": phable.Ref("hq.vms-1")}],
            {"watchDis": "pytest", "lease": phable.Number(30, "s")}))
        watch_id = sub.meta["watchId"]
        assert int(sub.meta["lease"].val) == 30
        rows = {ref(r["id"]): r for r in sub.rows}
        assert rows[f"hq.{door}"]["curStatus"] == "unknown"  # no driver yet
        poll = lambda **m: c.call("watchPoll", meta_grid({"watchId": watch_id, **m})).rows  # noqa: E731
        assert poll() == [], "nothing changed yet"
        r = requests.post(f"{gateway}/api/points/{door}/override", json={"value": True},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text
        changed = poll()
        assert [ref(x["id"]) for x in changed] == [f"hq.{door}"]
        assert changed[0]["curVal"] is True and changed[0]["curStatus"] == "ok"
        assert poll() == [], "reported once"
        assert len(poll(refresh=phable.Marker())) == 2
        c.call("watchUnsub", meta_grid({"watchId": watch_id, "close": phable.Marker()}))
        with pytest.raises(CallError):
            poll()
        requests.post(f"{gateway}/api/points/{door}/override", json={"value": None},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.parametrize("ct", FORMATS)
def test_defs_and_libs_include_the_vgw_lib(gateway, ct):
    with client(gateway, ct) as c:
        libs = {str(r["def"]).lstrip("^") for r in c.call("libs", Grid.to_grid({"x": phable.Marker()})).rows}
        assert {"lib:ph", "lib:phIoT", "lib:vgw"} <= libs
        defs = c.call("defs", Grid.to_grid({"filter": "lib==^lib:vgw"})).rows
        names = {str(r["def"]).lstrip("^") for r in defs}
        assert {"lib:vgw", "building", "nvr"} <= names
        assert "site" not in names, "standard tags are not in the vgw lib"


def test_invoke_action_pulses_a_relay(gateway):
    relay = "nvr-1.alarm-out-3"
    with client(gateway, "json") as c:
        g = Grid.to_grid({"duration": phable.Number(2, "s")},
                         {"id": phable.Ref(f"hq.{relay}"), "action": "pulse"})
        c.call("invokeAction", g)
        p = requests.get(f"{gateway}/api/points/{relay}", timeout=10).json()
        assert p["value"] is True and p["active_level"] == 8
        eight = p["priority_array"][7]
        assert eight["who"] == "haystack:demo:pulse" and eight["expires_in_s"] <= 2
        with pytest.raises(CallError):
            c.call("invokeAction", Grid.to_grid({"x": phable.Marker()},
                                                {"id": phable.Ref("hq.nvr-1.online"), "action": "pulse"}))
