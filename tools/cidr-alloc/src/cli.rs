//! The `cidr-alloc` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("cidr-alloc")
        .about("Decide every address of the cluster, once, up front")
        .version(env!("CARGO_PKG_VERSION"))
}
