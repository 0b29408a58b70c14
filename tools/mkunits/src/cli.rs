//! The `mkunits` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("mkunits")
        .about("Render every node's systemd units and configuration files")
        .version(env!("CARGO_PKG_VERSION"))
}
