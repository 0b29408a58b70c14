//! The `etcd-check` command line: the clap `Command` that main, the man page and completions share.

use clap::Command;

pub fn command() -> Command {
    Command::new("etcd-check")
        .about("Say whether an etcd cluster is healthy, degraded or unavailable")
        .version(env!("CARGO_PKG_VERSION"))
}
