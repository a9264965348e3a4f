//! Subcommands: run, demo, check, export, discover, user, sim, bench.

mod bench;
mod bench_bacnet;
mod clip;
mod discover;
mod gen_site;
mod reload;
pub mod serve;
mod user;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "vgw", version, about = "Building-automation video gateway: models a building's video equipment as Brick + Haystack, serves it over SPARQL and a topology API", long_about = None)]
pub struct Cli {
    /// Log level: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long, global = true, default_value = "info", env = "VGW_LOG")]
    pub log: String,
    /// Log line format on standard error: `text` (for people) or `json` (one object per line, for journald/Loki/Elastic).
    #[arg(long, global = true, default_value = "text", env = "VGW_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway on a site file.
    Run {
        /// The site file (TOML; see docs/config.md).
        #[arg(long, short)]
        config: PathBuf,
        /// Where state lives: BACnet instance numbers, the SPARQL user graph.
        #[arg(long, default_value = "vgw-data")]
        data_dir: PathBuf,
        /// HTTP listen address (overrides [http] listen; default 127.0.0.1:8080).
        #[arg(long)]
        http: Option<String>,
        /// BACnet/IP UDP address and port (overrides [bacnet] listen; default 0.0.0.0:47808), or `off`.
        #[arg(long)]
        bacnet: Option<String>,
        /// MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (overrides [mqtt] broker), or `off`.
        #[arg(long)]
        mqtt: Option<String>,
    },
    /// Run the built-in demo site (a 15-floor tower, 3 recorders, 64 cameras) with anonymous read and a demo/demo operator login.
    Demo {
        /// State directory (default: $XDG_DATA_HOME/vgw/demo or ~/.local/share/vgw/demo).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// BACnet/IP UDP address and port, or `off`.
        #[arg(long, default_value = "127.0.0.1:47808")]
        bacnet: String,
        /// Publish to this MQTT broker (mqtt://HOST[:PORT]); the demo's relays may be switched over MQTT. Default: no MQTT.
        #[arg(long)]
        mqtt: Option<String>,
    },
    /// Check site files and report every error with file:line:key; exit 1 on any error.
    Check {
        /// Site files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Export the site model as RDF (Brick + Haystack triples), or the BACnet point list (EDE or CSV).
    Export {
        /// The site file.
        #[arg(long, short)]
        config: PathBuf,
        /// ttl (Turtle), nt (N-Triples), jsonld (JSON-LD), rdfxml; or the BACnet point list: ede (EDE 2.3 file plus its _StateTexts.csv beside it; needs -o) or csv.
        #[arg(long, short, default_value = "ttl")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Use (never change) the BACnet numbers persisted in this data dir, so the export matches the running gateway.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Which graph: model (default), ontology (Brick + vgw + units), user (SPARQL edits; needs --data-dir) or all.
        #[arg(long, default_value = "model")]
        graph: String,
    },
    /// Export a camera's video for a time range to an MP4, through the running gateway.
    Clip(clip::ClipArgs),
    /// Find ONVIF devices on the network (WS-Discovery) and print a site-file snippet.
    Discover(discover::DiscoverArgs),
    /// Manage users in a site file.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Simulation helpers.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Benchmarks (results go in docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Model build time, memory, canned topology queries and topology API latency on a site file.
    Model(bench::BenchModelArgs),
    /// ReadProperty load on any BACnet/IP device: throughput and latency with N requests in flight.
    BacnetRp(bench_bacnet::BenchBacnetArgs),
    /// Fill a recording store with an hour (or --minutes) of padded test video ending now, for export benchmarks (benches/export_bench.py).
    FillStore(bench::FillStoreArgs),
}

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Generate a large synthetic site file for benchmarks.
    GenSite(gen_site::GenSiteArgs),
    /// Serve a simulated Modbus TCP UPS.
    Ups(crate::sim::modbus_ups::Args),
    /// Serve simulated ONVIF devices.
    Onvif(crate::sim::onvif::Args),
    /// Serve a simulated NTP server.
    Ntp(crate::sim::ntp::Args),
    // About and long help come from the Args type (src/sim/rtsp).
    Rtsp(crate::sim::rtsp::Args),
}

pub fn run(cli: Cli) -> ExitCode {
    init_logging(&cli.log, cli.log_format == "json");
    let result = match cli.command {
        Command::Run {
            config,
            data_dir,
            http,
            bacnet,
            mqtt,
        } => serve::run(&config, &data_dir, http, bacnet, mqtt),
        Command::Demo {
            data_dir,
            http,
            bacnet,
            mqtt,
        } => serve::demo(data_dir, &http, &bacnet, mqtt.as_deref()),
        Command::Check { files } => return check(&files),
        Command::Export {
            config,
            format,
            output,
            data_dir,
            graph,
        } => serve::export(
            &config,
            &format,
            output.as_deref(),
            data_dir.as_deref(),
            &graph,
        ),
        Command::User(cmd) => user::run(cmd),
        Command::Discover(args) => discover::run(&args),
        Command::Clip(args) => clip::run(&args),
        Command::Sim(SimCommand::GenSite(args)) => gen_site::run(&args),
        Command::Sim(SimCommand::Ups(args)) => crate::sim::modbus_ups::run_cli(&args),
        Command::Sim(SimCommand::Onvif(args)) => crate::sim::onvif::run_cli(&args),
        Command::Sim(SimCommand::Ntp(args)) => crate::sim::ntp::run_cli(&args),
        Command::Sim(SimCommand::Rtsp(args)) => crate::sim::rtsp::run_cli(&args),
        Command::Bench(BenchCommand::Model(args)) => bench::run(&args),
        Command::Bench(BenchCommand::BacnetRp(args)) => bench_bacnet::run(&args),
        Command::Bench(BenchCommand::FillStore(args)) => bench::fill_store(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `vgw export | head` is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, json: bool) {
    // The BACnet stack warns at every start that the vendor id is 0; vgw
    // has no ASHRAE vendor id (docs/bacnet.md), so that line is noise
    // unless the user asks for the stack's logs by name.
    let directives = if level.contains("bacnet_server") {
        level.to_string()
    } else {
        format!("{level},bacnet_server::server::lifecycle=error")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        match crate::model::load_site(f, None) {
            Ok(site) => {
                for w in credential_warnings(&site) {
                    eprintln!("{}: warning: {w}", f.display());
                }
                println!(
                    "{}: ok — {} locations, {} equipment, {} points",
                    f.display(),
                    site.locations.len(),
                    site.equipment.len(),
                    site.points.len()
                )
            }
            Err(errors) => {
                failed = true;
                eprintln!("{errors}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Credentials named in the site file that neither the secrets file nor
/// the environment provide: drivers could not log in to those devices.
fn credential_warnings(site: &crate::model::Site) -> Vec<String> {
    let secrets = match crate::config::secrets::Secrets::load(site.settings.secrets_file.as_deref())
    {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let mut missing: std::collections::BTreeMap<&str, Vec<&str>> =
        std::collections::BTreeMap::new();
    for e in &site.equipment {
        if let Some(c) = &e.credential {
            if secrets.get(c).is_none() {
                missing.entry(c).or_default().push(&e.id);
            }
        }
    }
    missing
        .into_iter()
        .map(|(c, users)| {
            let more = if users.len() > 3 { format!(" and {} more", users.len() - 3) } else { String::new() };
            format!(
                "credential `{c}` (used by {}{more}) is in neither the secrets file nor VGW_CRED_{}_USERNAME/_PASSWORD",
                users.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                c.to_uppercase().replace('-', "_")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example systemd unit runs commands this CLI accepts, and sets
    /// only values the global flags take (a renamed flag would otherwise
    /// break every installed unit silently).
    #[test]
    fn the_systemd_unit_runs_commands_the_cli_accepts() {
        let unit = include_str!("../../config/systemd/vgw.service");
        let mut commands = 0;
        for line in unit.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "ExecStart" | "ExecStartPre" => {
                    let args: Vec<&str> = value.split_whitespace().collect();
                    assert!(args[0].ends_with("/vgw"), "{line}");
                    Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{line}: {e}"));
                    commands += 1;
                }
                "Environment" => {
                    let (var, v) = value.split_once('=').expect("VAR=value");
                    let flag = match var {
                        "VGW_LOG" => "--log",
                        "VGW_LOG_FORMAT" => "--log-format",
                        other => panic!("the unit sets {other}, which vgw does not read"),
                    };
                    Cli::try_parse_from(["vgw", flag, v, "check", "x.toml"])
                        .unwrap_or_else(|e| panic!("{line}: {e}"));
                }
                _ => {}
            }
        }
        assert_eq!(commands, 2);
    }
}
