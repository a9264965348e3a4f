"""`/metrics` read by the Prometheus project's own text-format parser
(prometheus-client, PyPI) on the running demo gateway."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 10.0


def scrape(base: str) -> dict[str, list]:
    r = requests.get(f"{base}/metrics", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def value(fams: dict, name: str, **labels) -> float:
    for s in fams[name]:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no {name}{labels} in {fams.get(name)}")


def test_metrics_parse_and_cover_points_cameras_and_disk(gateway):
    fams = scrape(gateway)
    cameras = requests.get(f"{gateway}/api/equipment", params={"kind": "ip_camera"}, timeout=TIMEOUT).json()
    n_cameras = len(cameras["items"])
    assert n_cameras > 0
    # One ingest series per recorded camera, labelled by id.
    assert len({s.labels["camera"] for s in fams["vgw_camera_frames"]}) == n_cameras
    points = sum(s.value for s in fams["vgw_points"])
    health = requests.get(f"{gateway}/health", timeout=TIMEOUT).json()
    assert points == health["points"]
    assert value(fams, "vgw_recording_disk_size_bytes") > 0
    assert value(fams, "process_resident_memory_bytes") > 1e6


def test_request_counters_move_with_requests_and_haystack_errors(gateway):
    before = scrape(gateway)
    ok_before = value(before, "vgw_http_requests", api="api", code="2xx")
    err_before = value(before, "vgw_haystack_error_grids")
    for _ in range(3):
        assert requests.get(f"{gateway}/api/site", timeout=TIMEOUT).status_code == 200
    # A filter that does not parse: an error grid with HTTP 200.
    r = requests.get(f"{gateway}/haystack/read", params={"filter": "site and ("}, timeout=TIMEOUT)
    assert r.status_code == 200 and "err" in r.text
    after = scrape(gateway)
    assert value(after, "vgw_http_requests", api="api", code="2xx") == ok_before + 3
    assert value(after, "vgw_haystack_error_grids") == err_before + 1
