//! cidr-alloc: Decide every address of the cluster, once, up front.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("cidr-alloc", "not implemented yet"))
}
