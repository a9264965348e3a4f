//! (being written)

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run_cli(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
