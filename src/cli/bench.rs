//! `vgw bench model`: builds a site (parse, validate, project, load) and
//! times each phase, then times the canned topology queries and the
//! topology API over HTTP. Results go in docs/BENCHMARKS.md.

use crate::app::App;
use crate::graph::queries::{self, Direction, Relation};
use crate::model::kinds::EquipKind;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BenchModelArgs {
    /// Site file (e.g. from `vgw sim gen-site`).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Requests per topology API endpoint.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Also write the canned queries and sample IRIs as JSON here (for the rdflib comparison script).
    #[arg(long)]
    pub queries_out: Option<PathBuf>,
}

/// `vgw bench fill-store`: hours of recording written in seconds.
#[derive(Args, Debug)]
pub struct FillStoreArgs {
    /// The gateway's data dir (the store is its `recordings/`); stop the gateway first.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Camera id to record under.
    #[arg(long, default_value = "cam-001")]
    pub camera: String,
    /// Minutes of video, ending now.
    #[arg(long, default_value_t = 60.0)]
    pub minutes: f64,
    /// Bitrate the committed H.264 test clip is padded to (filler data), Mbit/s.
    #[arg(long, default_value_t = 4.0)]
    pub mbps: f64,
}

/// Records the committed H.264 clip, looped and padded to `--mbps`, into
/// the store through the recorder's own path, as if the camera had sent
/// it over the last `--minutes`: for export benchmarks that need an hour
/// of video without waiting an hour.
pub fn fill_store(a: &FillStoreArgs) -> anyhow::Result<()> {
    use crate::video::{h26x::Codec, recorder, store};
    anyhow::ensure!(
        a.minutes > 0.0 && a.minutes <= 24.0 * 60.0,
        "--minutes must be within 0..=1440"
    );
    anyhow::ensure!(
        a.mbps > 0.0 && a.mbps <= 100.0,
        "--mbps must be within 0..=100"
    );
    anyhow::ensure!(
        crate::config::valid_id(&a.camera),
        "--camera `{}` is not a valid id",
        a.camera
    );
    let s = store::Store::open(&a.data_dir, store::StoreConfig::default())
        .map_err(|e| anyhow::anyhow!("store in {}: {e}", a.data_dir.display()))?;
    let writer = s.stream(&a.camera, "main", 0, 1);
    let duration = Duration::from_secs_f64(a.minutes * 60.0);
    let start = std::time::SystemTime::now() - duration;
    let t0 = Instant::now();
    let mut pace = || {
        // The writer must keep up, or the queue would drop fragments.
        let _ = s.sync_now();
    };
    let frames = recorder::replay_clip(
        &writer,
        Codec::H264,
        crate::sim::rtsp::annex_b(crate::sim::rtsp::Codec::H264),
        start,
        duration,
        Some(a.mbps * 1e6),
        &mut pace,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    writer.close().map_err(|e| anyhow::anyhow!("{e}"))?;
    s.sync_now().map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(s.dropped() == 0, "{} fragments dropped", s.dropped());
    let usage = s.usage(&a.camera).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}: {} frames, {:.1} min, {:.0} MB in {} segments, written in {:.1} s",
        a.camera,
        frames,
        a.minutes,
        usage.bytes as f64 / 1e6,
        usage.segments,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn rss_mb() -> f64 {
    crate::http::metrics::resident_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(a: &BenchModelArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let loaded = crate::config::load(&a.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t_parse = t0.elapsed();
    let t1 = Instant::now();
    let site = crate::model::build(
        &loaded,
        &mut crate::model::instances::InstanceRegistry::ephemeral(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(loaded);
    let t_model = t1.elapsed();
    // Projection alone, into a sink that only counts: separates our cost
    // from Oxigraph's insert cost in the next phase.
    struct Count(usize);
    impl crate::graph::project::Sink for Count {
        fn triple(&mut self, _: &str, _: &str, _: crate::graph::project::Obj<'_>) {
            self.0 += 1;
        }
    }
    let tp = Instant::now();
    let mut count = Count(0);
    let _ = crate::graph::project::project(&site, &mut count, true);
    let t_project_only = tp.elapsed();
    let t2 = Instant::now();
    let app = App::build(site, None)?;
    let t_project = t2.elapsed();
    let triples = app.graph.len();
    println!(
        "site: {} equipment, {} points, {} triples",
        app.site.equipment.len(),
        app.site.points.len(),
        triples
    );
    println!("parse+validate: {:.2} s; model: {:.2} s; projection+load into Oxigraph: {:.2} s; RSS {:.0} MB", t_parse.as_secs_f64(), t_model.as_secs_f64(), t_project.as_secs_f64(), rss_mb());
    println!(
        "  of which projection alone (counting sink, {} triples): {:.2} s",
        count.0,
        t_project_only.as_secs_f64()
    );

    // Sample subjects: the first UPS, NVR, camera and NTP server.
    let first = |k: EquipKind| {
        app.site
            .equipment
            .iter()
            .find(|e| e.kind == k)
            .map(|e| e.id.clone())
    };
    let ups = first(EquipKind::Ups).unwrap_or_default();
    let nvr = first(EquipKind::Nvr).unwrap_or_default();
    let cam = first(EquipKind::IpCamera).unwrap_or_default();
    let ntp = first(EquipKind::NtpServer).unwrap_or_default();
    let cases: Vec<(String, String)> = vec![
        (
            "power downstream of a UPS".into(),
            queries::traversal_query(&app.site.iri(&ups), Relation::Power, Direction::Downstream),
        ),
        (
            "video upstream of an NVR".into(),
            queries::traversal_query(&app.site.iri(&nvr), Relation::Video, Direction::Upstream),
        ),
        (
            "all upstream of a camera".into(),
            queries::traversal_query(&app.site.iri(&cam), Relation::All, Direction::Upstream),
        ),
        (
            "time clients of the NTP server".into(),
            queries::traversal_query(&app.site.iri(&ntp), Relation::Time, Direction::Downstream),
        ),
        (
            "unpowered if a UPS fails".into(),
            queries::unpowered_query(&app.site.iri(&ups)),
        ),
    ];
    println!("canned topology queries (Oxigraph, median of 5):");
    for (name, q) in &cases {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..5 {
            let t = Instant::now();
            rows = app.graph.select(q)?.len();
            times.push(t.elapsed());
        }
        times.sort();
        println!("  {name}: {rows} rows, {:.2} ms", percentile(&times, 0.5));
    }
    if let Some(out) = &a.queries_out {
        let json = serde_json::json!(cases
            .iter()
            .map(|(n, q)| serde_json::json!({"name": n, "query": q}))
            .collect::<Vec<_>>());
        std::fs::write(out, serde_json::to_vec_pretty(&json)?)?;
    }

    // The topology API over loopback HTTP, one request at a time.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut app = app;
    app.site.settings.anonymous_read = true;
    let app = std::sync::Arc::new(app);
    rt.block_on(async {
        let bound = crate::http::bind("127.0.0.1:0", None).await?;
        let base = bound.url();
        let server = tokio::spawn(crate::http::serve(app.clone(), bound));
        let client = reqwest_like::Client::new();
        let paths = [
            format!("/api/equipment/{nvr}"),
            format!("/api/equipment/{cam}/upstream?relation=all"),
            format!("/api/equipment/{ups}/downstream?relation=power"),
            format!("/api/equipment/{ups}/impact"),
            format!("/api/equipment/{cam}/impact"),
        ];
        println!(
            "topology API over HTTP ({} requests each, sequential):",
            a.requests
        );
        for p in &paths {
            let mut times = Vec::with_capacity(a.requests);
            let mut bytes = 0;
            for _ in 0..a.requests {
                let t = Instant::now();
                bytes = client.get(&format!("{base}{p}")).await?;
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "  GET {p}: p50 {:.2} ms, p99 {:.2} ms ({bytes} bytes)",
                percentile(&times, 0.5),
                percentile(&times, 0.99)
            );
        }
        server.abort();
        anyhow::Ok(())
    })?;
    println!("RSS at end: {:.0} MB", rss_mb());
    Ok(())
}

/// A minimal HTTP/1.1 GET client on a raw TCP stream (keeps the bench free
/// of a client stack and its own costs).
mod reqwest_like {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client;

    impl Client {
        pub fn new() -> Self {
            Client
        }
        /// Returns the body length; fails on a non-200 status.
        pub async fn get(&self, url: &str) -> anyhow::Result<usize> {
            let rest = url
                .strip_prefix("http://")
                .ok_or_else(|| anyhow::anyhow!("http only"))?;
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let mut s = tokio::net::TcpStream::connect(host).await?;
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await?;
            let text = String::from_utf8_lossy(&buf);
            if !text.starts_with("HTTP/1.1 200") {
                anyhow::bail!("{path}: {}", text.lines().next().unwrap_or(""));
            }
            Ok(text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len()))
        }
    }
}
