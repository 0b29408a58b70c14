//! node-push: Install each node's files and start its services over SSH.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("node-push", "not implemented yet"))
}
