//! mkcerts: Make the cluster's whole PKI and kubeconfigs.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("mkcerts", "not implemented yet"))
}
