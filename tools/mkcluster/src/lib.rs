//! mkcluster: Turn a CSV or machines.txt inventory into a hardway cluster document.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("mkcluster", "not implemented yet"))
}
