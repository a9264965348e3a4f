//! The HTTP server (axum): SPARQL protocol, topology API, health.

pub mod access;
pub mod api;
pub mod dashboard;
pub mod haystack;
pub mod live;
pub mod metrics;
pub mod sparql;
pub mod ui;
pub mod video;

use crate::app::App;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;

pub type AppState = Arc<App>;

/// Largest request body accepted (queries, updates, logins).
const MAX_BODY: usize = 1 << 20;

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/", get(ui::root))
        .route("/api", get(index))
        .route("/ui", get(ui::root))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::file))
        .route("/api/live", get(live::live))
        .route("/api/session", get(dashboard::session))
        .route("/api/topology", get(dashboard::topology))
        .route("/api/storage", get(dashboard::storage))
        .route("/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/sparql", get(sparql::query_get).post(sparql::query_post))
        .route("/sparql/update", post(sparql::update_post))
        .route("/sparql/graph", get(sparql::graph_get))
        .route("/api/site", get(api::site))
        .route("/api/equipment", get(api::equipment_list))
        .route("/api/equipment/{id}", get(api::equipment_one))
        .route("/api/equipment/{id}/downstream", get(api::downstream))
        .route("/api/equipment/{id}/upstream", get(api::upstream))
        .route("/api/equipment/{id}/impact", get(api::impact))
        .route("/api/points/{id}", get(api::point_one))
        .route("/api/points/{id}/command", post(api::point_command))
        .route("/api/points/{id}/override", post(api::point_override))
        .route("/api/alarms", get(api::alarms_active))
        .route("/api/alarms/{id}/ack", post(api::alarm_ack))
        .route("/api/bacnet/ede.csv", get(api::bacnet_ede))
        .route("/api/bacnet/state-texts.csv", get(api::bacnet_state_texts))
        .route("/api/bacnet/points.csv", get(api::bacnet_points_csv))
        .route("/api/points/{id}/history", get(api::point_history))
        .route("/api/cameras/{id}/recordings", get(video::recordings))
        .route("/api/cameras/{id}/clip.mp4", get(video::clip))
        .route("/api/cameras/{id}/locks", post(video::lock))
        .route("/api/recording/audit", get(video::audit))
        .route("/haystack/{op}", axum::routing::any(haystack::op))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .with_state(app)
}

async fn health(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "site": app.site.id,
        "equipment": app.site.equipment.len(),
        "points": app.site.points.len(),
        "triples": app.graph.len(),
        "recording": app.recording.get().map(|r| serde_json::json!({
            "cameras": r.cameras().count(),
            "fragments_dropped": r.store.dropped(),
            "queued_bytes": r.store.queued_bytes(),
            "durability_lag_p99_ms": r.store.durability_lag_p99().map(|d| d.as_millis() as u64),
            "write_error": r.store.write_error(),
        })),
    }))
}

async fn index(State(app): State<AppState>) -> Html<String> {
    let s = &app.site;
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>vgw — {name}</title>\
         <h1>vgw — {name}</h1><p>{eq} equipment, {pts} points, {tr} triples.</p><ul>\
         <li><a href=/api/site>/api/site</a> — buildings, floors, rooms</li>\
         <li><a href=/api/equipment>/api/equipment</a> — equipment list (filters: kind, space, floor, building)</li>\
         <li>/api/equipment/ID, …/upstream, …/downstream?relation=power|video|time|all, …/impact</li>\
         <li><a href=/sparql>/sparql</a> — SPARQL 1.1 endpoint</li>\
         <li><a href=/sparql/graph>/sparql/graph</a> — the model as Turtle</li></ul>",
        name = html_escape(&s.name),
        eq = s.equipment.len(),
        pts = s.points.len(),
        tr = app.graph.len()
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A listener that is already bound, so callers can print the real port.
pub struct Bound {
    listener: std::net::TcpListener,
    pub addr: SocketAddr,
    /// Loaded before anything is announced, so a bad certificate fails
    /// the start instead of a banner promising an https URL.
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl Bound {
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// Binds the listener and, with `tls` = (certificate, key) PEM paths, loads
/// the TLS configuration.
pub async fn bind(
    addr: &str,
    tls: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> anyhow::Result<Bound> {
    let tls = match tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "TLS certificate {} / key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?;
            Some(config)
        }
        None => None,
    };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        listener,
        addr,
        tls,
    })
}

/// Requests in flight get this long after SIGTERM before their
/// connections are closed (a long clip download must not hold up the stop).
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(app: AppState, bound: Bound) -> anyhow::Result<()> {
    let stopping = app.stopping.clone();
    let router = router(app);
    // The signal also ends live streams, which would otherwise never finish.
    let signalled = async move {
        shutdown_signal().await;
        stopping.send_replace(true);
    };
    if let Some(config) = bound.tls {
        let handle = axum_server::Handle::new();
        let h2 = handle.clone();
        tokio::spawn(async move {
            signalled.await;
            h2.graceful_shutdown(Some(DRAIN));
        });
        axum_server::from_tcp_rustls(bound.listener, config)
            .handle(handle)
            .serve(router.into_make_service())
            .await?;
    } else {
        let listener = tokio::net::TcpListener::from_std(bound.listener)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            signalled.await;
            let _ = tx.send(());
        });
        let drained = async move {
            if rx.await.is_ok() {
                tokio::time::sleep(DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = server => r?,
            _ = drained => tracing::warn!("requests still open {DRAIN:?} after the stop signal; closing them"),
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
