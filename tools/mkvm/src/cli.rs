//! The `mkvm` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("mkvm")
        .about("Create, start, wait for and remove the cluster's libvirt VMs")
        .version(env!("CARGO_PKG_VERSION"))
}
