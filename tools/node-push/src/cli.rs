//! The `node-push` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("node-push")
        .about("Install each node's files and start its services over SSH")
        .version(env!("CARGO_PKG_VERSION"))
}
