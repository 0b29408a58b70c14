//! The `route-sync` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("route-sync")
        .about("Make the kernel's pod routes match the cluster document, via netlink")
        .version(env!("CARGO_PKG_VERSION"))
}
