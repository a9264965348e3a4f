//! `vgw discover`: finds ONVIF devices with WS-Discovery and prints a
//! site-file snippet for them.

use crate::drivers::onvif::discovery;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    /// Seconds to wait for answers.
    #[arg(long, default_value_t = 3.0)]
    pub wait: f64,
    /// Probe this address (`host:port`) directly instead of the multicast
    /// group 239.255.255.250:3702; repeat for several.
    #[arg(long = "target")]
    pub targets: Vec<SocketAddr>,
    /// Print the devices as JSON instead of a table and a site-file snippet.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &DiscoverArgs) -> anyhow::Result<()> {
    if !(0.1..=60.0).contains(&args.wait) {
        anyhow::bail!("--wait must be between 0.1 and 60 seconds");
    }
    let targets: Vec<SocketAddr> = if args.targets.is_empty() {
        vec![discovery::MULTICAST.parse()?]
    } else {
        args.targets.clone()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let found = rt.block_on(discovery::probe(
        &targets,
        Duration::from_secs_f64(args.wait),
    ))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    if found.is_empty() {
        eprintln!(
            "no ONVIF device answered within {:.1} s (probed {}); devices on other subnets need --target HOST:3702",
            args.wait,
            targets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
        return Ok(());
    }
    eprintln!("{} device(s):", found.len());
    for f in &found {
        eprintln!(
            "  {:<28} {:<20} {}",
            f.name.as_deref().unwrap_or("(no name)"),
            f.hardware.as_deref().unwrap_or(""),
            f.xaddrs.first().map_or("", String::as_str)
        );
    }
    println!("# Site-file snippet (vgw discover). Pick the table ([[nvr]], [[ip_camera]], ...)");
    println!("# that fits each device and add its space, channels and alarm I/O counts.");
    for (i, f) in found.iter().enumerate() {
        let kind = if f
            .types
            .iter()
            .any(|t| t.ends_with("NetworkVideoTransmitter"))
        {
            "ip_camera"
        } else {
            "nvr"
        };
        println!();
        println!("[[{kind}]]");
        println!("id = \"{}\"", slug(f.name.as_deref(), i));
        if let Some(n) = &f.name {
            println!("name = {}", toml_str(n));
        }
        if let Some(h) = &f.hardware {
            println!("model = {}", toml_str(h));
        }
        if let Some(x) = f.xaddrs.first() {
            println!("onvif = {}", toml_str(x));
        }
        println!("credential = \"onvif-admin\"   # username/password go in the secrets file");
    }
    Ok(())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// An id from the device's name: lower case, `-` between words.
fn slug(name: Option<&str>, i: usize) -> String {
    let s: String = name
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() {
        format!("device-{}", i + 1)
    } else {
        s
    }
}
