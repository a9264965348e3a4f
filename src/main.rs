//! The `vgw` command line. Each subcommand lives in `vgw::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = vgw::cli::Cli::parse();
    vgw::cli::run(cli)
}
