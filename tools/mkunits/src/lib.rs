//! mkunits: Render every node's systemd units and configuration files.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("mkunits", "not implemented yet"))
}
