//! route-sync: Make the kernel's pod routes match the cluster document, via netlink.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("route-sync", "not implemented yet"))
}
