//! etcd-check: Say whether an etcd cluster is healthy, degraded or unavailable.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("etcd-check", "not implemented yet"))
}
