//! The HTTP surface as a client meets it: access control, SPARQL protocol
//! errors and limits, user-graph updates, and topology answers on the demo
//! site ("what goes dark if UPS-2 fails?").

use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use vgw::app::App;
use vgw::model::kinds::Role;

struct Opts {
    anonymous_read: bool,
    update_role: Option<Role>,
    timeout_ms: u64,
    max_results: usize,
    /// A point recorded every second instead of on change.
    interval_point: Option<&'static str>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            anonymous_read: false,
            update_role: None,
            timeout_ms: 10_000,
            max_results: 100_000,
            interval_point: None,
        }
    }
}

/// Starts the demo site on a free port; returns its base URL.
async fn start(dir: &Path, o: Opts) -> String {
    let mut site = vgw::model::load_site(Path::new("config/demo.toml"), Some(dir)).unwrap();
    site.settings.anonymous_read = o.anonymous_read;
    site.settings.sparql_update_role = o.update_role;
    site.settings.sparql_timeout_ms = o.timeout_ms;
    site.settings.sparql_max_results = o.max_results;
    if let Some(id) = o.interval_point {
        let p = site.points.iter_mut().find(|p| p.id == id).unwrap();
        p.his_interval_s = Some(1);
    }
    let mut app = App::build(site, Some(dir)).unwrap();
    app.add_memory_user("viewer", "viewer-pw", Role::Viewer);
    app.add_memory_user("op", "op-pw", Role::Operator);
    app.add_memory_user("admin", "admin-pw", Role::Admin);
    let bound = vgw::http::bind("127.0.0.1:0", None).await.unwrap();
    let url = bound.url();
    let app = Arc::new(app);
    app.spawn_background();
    tokio::spawn(vgw::http::serve(app, bound));
    url
}

/// The demo site with anonymous read, as `vgw demo` serves it.
async fn open_gateway(dir: &Path) -> String {
    start(
        dir,
        Opts {
            anonymous_read: true,
            ..Opts::default()
        },
    )
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn login(base: &str, user: &str, pw: &str) -> String {
    let r = client()
        .post(format!("{base}/api/login"))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn sparql(base: &str, token: Option<&str>, q: &str) -> reqwest::Response {
    let mut req = client()
        .post(format!("{base}/sparql"))
        .header("content-type", "application/sparql-query")
        .body(q.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_the_model_needs_a_login_unless_anonymous_read_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let base = start(dir.path(), Opts::default()).await;
    let c = client();
    let r = c.get(format!("{base}/api/site")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        sparql(&base, None, "ASK {}").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.get(format!("{base}/api/site"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let bad = c
        .post(format!("{base}/api/login"))
        .basic_auth("viewer", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let token = login(&base, "viewer", "viewer-pw").await;
    assert_eq!(token.len(), 64);
    let site: Value = c
        .get(format!("{base}/api/site"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(site["id"], "hq");
    assert_eq!(site["buildings"][0]["floors"].as_array().unwrap().len(), 15);
    // Basic credentials on the request itself work too (scripts, curl -u).
    assert_eq!(
        c.get(format!("{base}/api/site"))
            .basic_auth("op", Some("op-pw"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    assert_eq!(
        c.post(format!("{base}/api/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(format!("{base}/api/site"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let dir2 = tempfile::tempdir().unwrap();
    let open = start(
        dir2.path(),
        Opts {
            anonymous_read: true,
            ..Opts::default()
        },
    )
    .await;
    assert_eq!(
        c.get(format!("{open}/api/site"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(sparql(&open, None, "ASK {}").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_wrong_passwords_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let base = start(dir.path(), Opts::default()).await;
    let c = client();
    for _ in 0..5 {
        let r = c
            .post(format!("{base}/api/login"))
            .basic_auth("op", Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = c
        .post(format!("{base}/api/login"))
        .basic_auth("op", Some("op-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sparql_protocol_errors_are_explicit() {
    let dir = tempfile::tempdir().unwrap();
    let base = start(
        dir.path(),
        Opts {
            anonymous_read: true,
            max_results: 50,
            ..Opts::default()
        },
    )
    .await;
    let c = client();
    let r = sparql(&base, None, "SELECT * WHERE { ?s ?p }").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text().await.unwrap().contains("error"),
        "parse error text in the body"
    );

    let r = c
        .get(format!("{base}/sparql"))
        .query(&[("query", "ASK {}")])
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);

    let r = c
        .post(format!("{base}/sparql"))
        .header("content-type", "text/plain")
        .body("ASK {}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = c
        .get(format!("{base}/sparql"))
        .query(&[("query", "ASK {}"), ("query", "ASK {}")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = sparql(&base, None, "SELECT ?s WHERE { ?s ?p ?o }").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("more than 50 rows"));

    let r = sparql(&base, None, "SELECT ?s WHERE { ?s ?p ?o } LIMIT 50").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/sparql-results+json"));

    let r = c
        .get(format!("{base}/sparql/graph"))
        .header("accept", "application/n-triples")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().lines().count() > 10_000);
}

/// Own runtime: a runaway query may still run on a blocking thread at the
/// end, and a `#[tokio::test]` runtime would wait for it on drop.
#[test]
fn a_runaway_query_is_cancelled_at_the_time_limit() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(runaway_query_body());
    rt.shutdown_background();
}

async fn runaway_query_body() {
    let dir = tempfile::tempdir().unwrap();
    let base = start(
        dir.path(),
        Opts {
            anonymous_read: true,
            timeout_ms: 300,
            max_results: usize::MAX,
            ..Opts::default()
        },
    )
    .await;
    // Every pair of nodes linked by any path: reads the store endlessly.
    let r = sparql(
        &base,
        None,
        "SELECT (COUNT(*) AS ?n) WHERE { ?a (!<urn:x:none>|^!<urn:x:none>)* ?b . ?b ?p ?c }",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("time limit"));
    // (Without the limit this request would run for minutes and hit the
    // client's 30 s timeout.)
    // The server still answers afterwards (the runaway holds one of its slots).
    assert_eq!(sparql(&base, None, "ASK {}").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_go_to_the_user_graph_only_and_survive_a_restart() {
    let off_dir = tempfile::tempdir().unwrap();
    let off = start(off_dir.path(), Opts::default()).await;
    let admin_off = login(&off, "admin", "admin-pw").await;
    let c = client();
    let upd = |base: &str, token: &str, body: &str| {
        c.post(format!("{base}/sparql/update"))
            .bearer_auth(token)
            .header("content-type", "application/sparql-update")
            .body(body.to_string())
            .send()
    };
    let r = upd(&off, &admin_off, "INSERT DATA { <urn:x> <urn:p> 1 }")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("disabled"));

    let dir = tempfile::tempdir().unwrap();
    let base = start(
        dir.path(),
        Opts {
            update_role: Some(Role::Admin),
            ..Opts::default()
        },
    )
    .await;
    let viewer = login(&base, "viewer", "viewer-pw").await;
    let admin = login(&base, "admin", "admin-pw").await;
    let note = "INSERT DATA { <urn:vgw:hq/cam-001> <http://www.w3.org/2000/01/rdf-schema#comment> \"replaced lens 2026-11\" }";
    assert_eq!(
        upd(&base, &viewer, note).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.post(format!("{base}/sparql/update"))
            .header("content-type", "application/sparql-update")
            .body(note)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = upd(&base, &admin, note).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        upd(
            &base,
            &admin,
            "INSERT DATA { GRAPH <urn:vgw:graph:model> { <urn:a> <urn:b> <urn:c> } }"
        )
        .await
        .unwrap()
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upd(&base, &admin, "INSERT DATA { <urn:a> ")
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    // Deleting model triples through the update endpoint changes nothing.
    let r = upd(&base, &admin, "DELETE WHERE { ?s ?p ?o }")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        upd(&base, &admin, note).await.unwrap().status(),
        StatusCode::OK
    );

    let ask_user =
        "ASK { GRAPH <urn:vgw:graph:user> { <urn:vgw:hq/cam-001> ?p \"replaced lens 2026-11\" } }";
    let ask_model = "ASK { GRAPH <urn:vgw:graph:model> { <urn:vgw:hq/cam-001> a ?c } }";
    let yes = |v: Value| v["boolean"].as_bool().unwrap();
    assert!(yes(sparql(&base, Some(&viewer), ask_user)
        .await
        .json()
        .await
        .unwrap()));
    assert!(yes(sparql(&base, Some(&viewer), ask_model)
        .await
        .json()
        .await
        .unwrap()));

    // Restart on the same data dir: the edit is still there.
    let again = start(dir.path(), Opts::default()).await;
    let v2 = login(&again, "viewer", "viewer-pw").await;
    assert!(yes(sparql(&again, Some(&v2), ask_user)
        .await
        .json()
        .await
        .unwrap()));
    assert!(dir.path().join("user-graph.nt").exists());
}

async fn get_json(base: &str, path: &str) -> (StatusCode, Value) {
    let r = client().get(format!("{base}{path}")).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn cams(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|n| format!("cam-{n:03}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn topology_answers_what_goes_dark() {
    let dir = tempfile::tempdir().unwrap();
    let base = open_gateway(dir.path()).await;

    // UPS 2 feeds PoE switch 2, which powers the cameras of floors 9-15.
    let (s, v) = get_json(&base, "/api/equipment/ups-2/impact").await;
    assert_eq!(s, StatusCode::OK);
    let mut expect = cams(33..=60);
    expect.extend([
        "poe-2".to_string(),
        "ups-2".to_string(),
        "ups-2.battery".to_string(),
    ]);
    expect.sort();
    assert_eq!(ids(&v["unpowered"]), expect);
    assert!(
        ids(&v["not_recorded"]).is_empty(),
        "the recorders are on UPS 1"
    );
    assert!(v["points"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "cam-033.online"));

    // UPS 1 takes the recorders, the encoder and the NTP server down: the
    // cameras on UPS 2 stay powered but are no longer recorded or timed.
    let (_, v) = get_json(&base, "/api/equipment/ups-1/impact").await;
    let dark = ids(&v["unpowered"]);
    for d in [
        "nvr-1",
        "nvr-2",
        "nvr-3",
        "enc-1",
        "ntp-1",
        "vms-1",
        "poe-1",
        "cam-001",
        "nvr-1.disk-1",
    ] {
        assert!(
            dark.contains(&d.to_string()),
            "{d} should be dark: {dark:?}"
        );
    }
    let unrecorded = ids(&v["not_recorded"]);
    let mut expect: Vec<String> = cams(33..=60);
    expect.extend((1..=4).map(|n| format!("acam-{n}")));
    expect.sort();
    assert_eq!(unrecorded, expect);
    assert_eq!(ids(&v["time_unsynced"]), cams(33..=60));

    // Upstream: what it depends on for power and time; video flows from
    // the camera downstream to its recorder and the VMS.
    // A VMS failure costs live view, not recording: the NVRs keep recording.
    let (_, v) = get_json(&base, "/api/equipment/vms-1/impact").await;
    assert!(ids(&v["not_recorded"]).is_empty(), "{}", v["not_recorded"]);
    assert_eq!(ids(&v["unpowered"]), ["vms-1"]);

    let (_, v) = get_json(&base, "/api/equipment/cam-001/upstream?relation=all").await;
    assert_eq!(ids(&v["equipment"]), ["ntp-1", "poe-1", "ups-1"]);
    let (_, v) = get_json(&base, "/api/equipment/cam-001/downstream?relation=all").await;
    assert_eq!(ids(&v["equipment"]), ["nvr-1", "vms-1"]);
    let (_, v) = get_json(&base, "/api/equipment/poe-2/downstream?relation=power").await;
    assert_eq!(ids(&v["equipment"]), cams(33..=60));
    let (_, v) = get_json(&base, "/api/equipment/acam-2/downstream?relation=video").await;
    assert_eq!(ids(&v["equipment"]), ["enc-1", "nvr-3", "vms-1"]);
    let (_, v) = get_json(&base, "/api/equipment/ntp-1/downstream?relation=time").await;
    assert_eq!(
        v["count"],
        60 + 3 + 1 + 1,
        "60 cameras, 3 recorders, the encoder and the VMS"
    );

    let (s, v) = get_json(&base, "/api/equipment/nope/impact").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("nope"));
    let (s, _) = get_json(&base, "/api/equipment/ups-1/downstream?relation=water").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_equipment_with_points_relations_and_both_views() {
    let dir = tempfile::tempdir().unwrap();
    let base = open_gateway(dir.path()).await;
    let (s, v) = get_json(&base, "/api/equipment/nvr-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["class"],
        "https://brickschema.org/schema/Brick#Network_Video_Recorder"
    );
    assert_eq!(v["haystack_id"], "@hq.nvr-1");
    assert_eq!(ids(&v["relations"]["fed_by"]), ["ups-1"]);
    assert_eq!(ids(&v["relations"]["video_sources"]).len(), 48);
    assert_eq!(
        ids(&v["relations"]["parts"]).len(),
        8 + 4,
        "8 disks and 4 relays"
    );
    assert_eq!(v["properties"]["channelCount"], 64);
    assert!(v["haystack"]["nvr"].is_object() && v["haystack"]["equip"].is_object());
    let points = v["points"].as_array().unwrap();
    assert_eq!(
        points
            .iter()
            .filter(|p| p["id"].as_str().unwrap().contains(".alarm-in-"))
            .count(),
        16
    );
    let relay = points
        .iter()
        .find(|p| p["id"] == "nvr-1.alarm-out-1")
        .unwrap();
    assert_eq!(relay["writable"], true);
    assert!(relay["bacnet"]["object"]
        .as_str()
        .unwrap()
        .starts_with("binary-output,"));
    assert_eq!(relay["name"], "Lobby siren");
    let temp = points.iter().find(|p| p["id"] == "nvr-1.temp").unwrap();
    assert_eq!(temp["limits"]["high"], 55.0);

    let (_, list) = get_json(&base, "/api/equipment?kind=ip_camera&floor=f03").await;
    assert_eq!(list["total"], 4);
    let (s, _) = get_json(&base, "/api/equipment?colour=red").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Hostile requests get a 4xx with a reason, never a 5xx or a dead server.
#[tokio::test(flavor = "multi_thread")]
async fn garbage_requests_get_client_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = open_gateway(dir.path()).await;
    // A connection per request: the oversized body below ends with the
    // server closing its connection, which a pooled client would reuse.
    let c = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let cases: Vec<(reqwest::RequestBuilder, StatusCode)> = vec![
        (
            c.post(format!("{base}/api/login")).body("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.post(format!("{base}/api/login"))
                .header("authorization", "Basic !!!"),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!("{base}/api/site"))
                .header("authorization", "Basic bm9jb2xvbg=="),
            StatusCode::UNAUTHORIZED,
        ),
        (
            c.get(format!("{base}/api/site"))
                .header("authorization", "Digest x"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            c.post(format!("{base}/sparql"))
                .header("content-type", "application/sparql-query")
                .body(vec![0xff, 0xfe, 0x00]),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.post(format!("{base}/sparql"))
                .header("content-type", "application/sparql-query")
                .body(vec![b'#'; 2 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            c.post(format!("{base}/sparql"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("q=1"),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!("{base}/sparql?query=%ZZ")),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!("{base}/sparql/graph?graph=urn:nope")),
            StatusCode::NOT_FOUND,
        ),
        (
            c.get(format!("{base}/sparql/graph?graph=a&default")),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!(
                "{base}/sparql?query=SELECT&default-graph-uri=not%20an%20iri"
            )),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!("{base}/api/equipment/..%2F..%2Fetc%2Fpasswd")),
            StatusCode::NOT_FOUND,
        ),
        (
            c.get(format!(
                "{base}/api/equipment/cam-001/upstream?relation=all&x=1"
            )),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!("{base}/api/equipment?limit=-1")),
            StatusCode::BAD_REQUEST,
        ),
        (
            c.get(format!("{base}/sparql/update")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let r = match req.send().await {
            Ok(r) => r,
            // The server answers 413 and closes as soon as the body is
            // over the limit; the client may still be writing it and see
            // the connection go (a refusal all the same).
            Err(e) if want == StatusCode::PAYLOAD_TOO_LARGE && e.is_request() => continue,
            Err(e) => panic!("case {i}: {e}"),
        };
        assert_eq!(
            r.status(),
            want,
            "case {i}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    assert_eq!(
        c.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// Commands land in the point's priority array; only operators may write,
/// and read-only points refuse.
#[tokio::test(flavor = "multi_thread")]
async fn operators_command_relays_through_the_priority_array() {
    let dir = tempfile::tempdir().unwrap();
    let base = open_gateway(dir.path()).await;
    let c = client();
    let url = format!("{base}/api/points/nvr-1.alarm-out-1/command");
    let body = serde_json::json!({ "level": 8, "value": true });
    assert_eq!(
        c.post(&url).json(&body).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let viewer = login(&base, "viewer", "viewer-pw").await;
    assert_eq!(
        c.post(&url)
            .bearer_auth(&viewer)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    let op = login(&base, "op", "op-pw").await;
    let r: Value = c
        .post(&url)
        .bearer_auth(&op)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["value"], true);
    assert_eq!(r["active_level"], 8);
    assert_eq!(r["priority_array"][7]["who"], "api:op");
    assert_eq!(r["quality"], "overridden");

    let (_, p) = get_json(&base, "/api/points/nvr-1.alarm-out-1").await;
    assert_eq!(p["value"], true);
    assert_eq!(p["priority_array"].as_array().unwrap().len(), 17);

    let r: Value = c
        .post(&url)
        .bearer_auth(&op)
        .json(&serde_json::json!({ "level": 8, "value": null }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["value"], false, "relinquished: back to the default");

    let bad = |b: Value| c.post(&url).bearer_auth(&op).json(&b).send();
    assert_eq!(
        bad(serde_json::json!({ "level": 18, "value": true }))
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bad(serde_json::json!({ "level": 8, "value": "on" }))
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let ro = c
        .post(format!("{base}/api/points/nvr-1.online/command"))
        .bearer_auth(&op)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ro.status(), StatusCode::FORBIDDEN);
    let (_, online) = get_json(&base, "/api/points/nvr-1.online").await;
    assert_eq!(online["quality"], "initial");
    assert!(online["value"].is_null());
}

/// Changes of historised points are recorded and read back by range.
#[tokio::test(flavor = "multi_thread")]
async fn commands_are_recorded_in_point_history() {
    let dir = tempfile::tempdir().unwrap();
    let base = open_gateway(dir.path()).await;
    let c = client();
    let op = login(&base, "op", "op-pw").await;
    let url = format!("{base}/api/points/nvr-1.alarm-out-2/command");
    for v in [true, false, true] {
        let r = c
            .post(&url)
            .bearer_auth(&op)
            .json(&serde_json::json!({ "level": 8, "value": v }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The recorder writes in the background; poll (bounded) until it has.
    let mut samples = Vec::new();
    for _ in 0..100 {
        let (s, v) = get_json(&base, "/api/points/nvr-1.alarm-out-2/history").await;
        assert_eq!(s, StatusCode::OK);
        samples = v["samples"].as_array().unwrap().clone();
        if samples.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let values: Vec<&Value> = samples.iter().map(|s| &s["value"]).collect();
    assert_eq!(
        values,
        [&Value::Bool(true), &Value::Bool(false), &Value::Bool(true)]
    );
    assert!(samples
        .windows(2)
        .all(|w| w[0]["ts"].as_i64() <= w[1]["ts"].as_i64()));
    // An empty window before the first write.
    let first = samples[0]["ts"].as_i64().unwrap();
    let (_, v) = get_json(
        &base,
        &format!("/api/points/nvr-1.alarm-out-2/history?start=0&end={first}"),
    )
    .await;
    assert_eq!(v["count"], 0, "end is exclusive");

    let (s, _) = get_json(&base, "/api/points/cam-001.last-frame-age/history").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not historised");
    let (s, _) = get_json(&base, "/api/points/nope/history").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(dir.path().join("history.sqlite").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_points_are_sampled_and_inputs_can_be_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let base = start(
        dir.path(),
        Opts {
            anonymous_read: true,
            interval_point: Some("ups-1.load"),
            ..Opts::default()
        },
    )
    .await;
    let c = client();
    let op = login(&base, "op", "op-pw").await;
    let post = |path: &str, body: serde_json::Value| {
        c.post(format!("{base}{path}"))
            .bearer_auth(&op)
            .json(&body)
            .send()
    };
    let r = post(
        "/api/points/ups-1.load/override",
        serde_json::json!({ "value": 42.5 }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["value"].as_f64(), v["quality"].as_str()),
        (Some(42.5), Some("overridden"))
    );

    // One change, but a sample every second: the interval recorder wrote them.
    let mut samples = Vec::new();
    for _ in 0..100 {
        let (_, v) = get_json(&base, "/api/points/ups-1.load/history?start=0").await;
        samples = v["samples"].as_array().unwrap().clone();
        if samples.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(samples.len() >= 3, "{samples:?}");
    assert!(samples
        .iter()
        .skip(1)
        .all(|s| s["value"] == 42.5 && s["quality"] == "overridden"));

    // Outputs are commanded, not overridden; values must fit the point.
    let r = post(
        "/api/points/nvr-1.alarm-out-1/override",
        serde_json::json!({ "value": true }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post(
        "/api/points/nvr-1.alarm-in-1/override",
        serde_json::json!({ "value": 3 }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(
        "/api/points/nvr-1.alarm-in-1/override",
        serde_json::json!({ "value": "on" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Releasing hands the point back: no value, initial quality.
    let r = post(
        "/api/points/ups-1.load/override",
        serde_json::json!({ "value": null }),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["value"].clone(), v["quality"].as_str()),
        (Value::Null, Some("initial"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_is_listed_acknowledged_once_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let base = open_gateway(dir.path()).await;
    let c = client();
    let op = login(&base, "op", "op-pw").await;
    let door = "nvr-1.alarm-in-2";
    let set = |v: serde_json::Value| {
        c.post(format!("{base}/api/points/{door}/override"))
            .bearer_auth(&op)
            .json(&serde_json::json!({ "value": v }))
            .send()
    };
    let listed = |v: &Value| {
        v["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == door)
            .cloned()
    };
    // Alarm evaluation follows the change bus: poll (bounded) for it.
    async fn until(base: &str, f: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            let (_, v) = get_json(base, "/api/alarms").await;
            if f(&v) {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("alarm list never got there");
    }
    assert_eq!(
        set(serde_json::json!(false)).await.unwrap().status(),
        StatusCode::OK
    );
    until(&base, |v| listed(v).is_none()).await;
    set(serde_json::json!(true)).await.unwrap();
    let v = until(&base, |v| {
        listed(v).is_some_and(|a| a["state"] == "offnormal")
    })
    .await;
    let a = listed(&v).unwrap();
    assert_eq!(
        (a["acked"].as_bool(), a["class"].as_u64()),
        (Some(false), Some(1))
    );

    let ack = format!("{base}/api/alarms/{door}/ack");
    let r = c.post(&ack).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "acknowledging needs an operator"
    );
    let r = c.post(&ack).bearer_auth(&op).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let a: Value = r.json().await.unwrap();
    assert_eq!(
        (a["acked"].as_bool(), a["acked_by"].as_str()),
        (Some(true), Some("api:op"))
    );
    let r = c.post(&ack).bearer_auth(&op).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "already acknowledged");
    let r = c
        .post(format!("{base}/api/alarms/cam-001.motion/ack"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "motion has no alarm");

    set(serde_json::json!(false)).await.unwrap();
    until(&base, |v| listed(v).is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haystack_writes_need_an_operator_and_reads_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let base = start(dir.path(), Opts::default()).await;
    let c = client();
    let write = "ver:\"3.0\"\nid,level,val\n@hq.nvr-1.alarm-out-1,8,T\n";
    let post = |token: Option<String>, op: &str, body: &'static str| {
        let mut r = c
            .post(format!("{base}/haystack/{op}"))
            .header("Content-Type", "text/zinc")
            .body(body);
        if let Some(t) = token {
            r = r.header("Authorization", format!("BEARER authToken={t}"));
        }
        r.send()
    };
    // Without anonymous read, nothing without a login.
    assert_eq!(
        post(None, "read", "ver:\"3.0\"\nfilter\n\"site\"\n")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A viewer reads but may not write; an operator writes.
    let viewer = login(&base, "viewer", "viewer-pw").await;
    let r = post(
        Some(viewer.clone()),
        "read",
        "ver:\"3.0\"\nfilter\n\"site\"\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("@hq.site"));
    assert_eq!(
        post(Some(viewer.clone()), "pointWrite", write)
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    // The read form of pointWrite is a read.
    let r = post(
        Some(viewer),
        "pointWrite",
        "ver:\"3.0\"\nid\n@hq.nvr-1.alarm-out-1\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let op = login(&base, "op", "op-pw").await;
    let r = post(Some(op), "pointWrite", write).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, p) = get_json_as(
        &base,
        "/api/points/nvr-1.alarm-out-1",
        &login(&base, "viewer", "viewer-pw").await,
    )
    .await;
    assert_eq!(
        (p["active_level"].as_u64(), p["value"].as_bool()),
        (Some(8), Some(true))
    );
}

async fn get_json_as(base: &str, path: &str, token: &str) -> (StatusCode, Value) {
    let r = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}
