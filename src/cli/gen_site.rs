//! `vgw sim gen-site`: a large synthetic site for benchmarks. Each building
//! has floors, a server room with its NVRs, a UPS, one PoE switch per NVR
//! and cameras spread over the floors; one NTP and one VMS server per site.

use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct GenSiteArgs {
    /// Buildings.
    #[arg(long, default_value_t = 10)]
    pub buildings: u32,
    /// Floors per building.
    #[arg(long, default_value_t = 10)]
    pub floors: u32,
    /// NVRs per building.
    #[arg(long, default_value_t = 10)]
    pub nvrs: u32,
    /// IP cameras per NVR (also its channel count).
    #[arg(long, default_value_t = 64)]
    pub cameras: u32,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn generate(a: &GenSiteArgs) -> String {
    let mut s = String::with_capacity((a.buildings * a.nvrs * a.cameras) as usize * 200);
    let _ = writeln!(
        s,
        "# Synthetic site: {} buildings x {} NVRs x {} cameras (vgw sim gen-site)",
        a.buildings, a.nvrs, a.cameras
    );
    let _ = writeln!(
        s,
        "[site]\nid = \"synth\"\nname = \"Synthetic campus\"\ntimezone = \"UTC\"\n"
    );
    let _ = writeln!(s, "[[space]]\nid = \"noc\"\nbuilding = \"b001\"\nkind = \"outdoor\"\nname = \"Campus NOC yard\"\n");
    let _ = writeln!(s, "[[ntp_server]]\nid = \"ntp\"\nspace = \"noc\"\n\n[[vms_server]]\nid = \"vms\"\nspace = \"noc\"\ntime_source = \"ntp\"\n");
    for b in 1..=a.buildings {
        let _ = writeln!(
            s,
            "[[building]]\nid = \"b{b:03}\"\nname = \"Building {b}\"\n"
        );
        for f in 1..=a.floors {
            let _ = writeln!(
                s,
                "[[floor]]\nid = \"b{b:03}-f{f:02}\"\nbuilding = \"b{b:03}\"\nlevel = {f}\n"
            );
            let _ = writeln!(s, "[[space]]\nid = \"b{b:03}-f{f:02}-c\"\nfloor = \"b{b:03}-f{f:02}\"\nkind = \"room\"\n");
        }
        let _ = writeln!(
            s,
            "[[space]]\nid = \"b{b:03}-srv\"\nfloor = \"b{b:03}-f01\"\nkind = \"server_room\"\n"
        );
        let _ = writeln!(
            s,
            "[[ups]]\nid = \"b{b:03}-ups\"\nspace = \"b{b:03}-srv\"\ncapacity_va = 10000\n"
        );
        for n in 1..=a.nvrs {
            let nvr = format!("b{b:03}-nvr{n:02}");
            let _ = writeln!(
                s,
                "[[nvr]]\nid = \"{nvr}\"\nvariant = \"rack\"\nspace = \"b{b:03}-srv\"\nchannels = {}\nalarm_inputs = 8\nalarm_outputs = 2\nstorage_tb = 64\nfed_by = \"b{b:03}-ups\"\ntime_source = \"ntp\"\nstreams_to = \"vms\"\noperating_temp = [-10, 55]\n",
                a.cameras
            );
            let _ = writeln!(s, "[[poe_switch]]\nid = \"{nvr}-poe\"\nspace = \"b{b:03}-srv\"\nfed_by = \"b{b:03}-ups\"\n");
            for c in 1..=a.cameras {
                let floor = (c - 1) % a.floors + 1;
                let _ = writeln!(
                    s,
                    "[[ip_camera]]\nid = \"{nvr}-c{c:03}\"\nspace = \"b{b:03}-f{floor:02}-c\"\nstreams_to = \"{nvr}\"\nfed_by = \"{nvr}-poe\"\ntime_source = \"ntp\"\n"
                );
            }
        }
    }
    s
}

pub fn run(a: &GenSiteArgs) -> anyhow::Result<()> {
    let text = generate(a);
    match &a.output {
        Some(p) => std::fs::write(p, text)?,
        None => print!("{text}"),
    }
    Ok(())
}
