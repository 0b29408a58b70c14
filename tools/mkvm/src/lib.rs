//! mkvm: Create, start, wait for and remove the cluster's libvirt VMs.

pub mod cli;

use hardway::{Error, Exit};

pub fn run(_matches: &clap::ArgMatches) -> Result<Exit, Error> {
    Err(Error::invalid("mkvm", "not implemented yet"))
}
