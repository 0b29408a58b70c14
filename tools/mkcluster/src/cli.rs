//! The `mkcluster` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("mkcluster")
        .about("Turn a CSV or machines.txt inventory into a hardway cluster document")
        .version(env!("CARGO_PKG_VERSION"))
}
