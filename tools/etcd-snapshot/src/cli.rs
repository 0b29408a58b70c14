//! The `etcd-snapshot` command line: the clap `Command` that main, the man page and completions share.

use clap::{value_parser, Arg, ArgAction, Command};

/// Argument ids, shared by the parser and `Options::from_matches`.
pub mod options {
    pub const FILE: &str = hardway_etcd::cli::FILE;
    pub const DIR: &str = hardway_etcd::cli::DIR;
    pub const TIMEOUT: &str = "timeout";
    pub const SNAPSHOT: &str = "snapshot";
    pub const FORCE: &str = "force";
    pub const SAVE: &str = "save";
    pub const RESTORE: &str = "restore";
    pub const OUTPUT: &str = "output";
}

const AFTER_HELP: &str = "\
save streams a snapshot from the first etcd member that answers (Maintenance.Snapshot) into
DIR/snapshots/etcd-<UTC time>-rev<revision>.db (0600, in a 0700 directory, written atomically),
checks the sha256 etcd appends to it, and prints a report: file, revision, size, sha256, member.

restore checks a snapshot the same way and, for every etcd node of the document, adds to its
files the snapshot and a oneshot unit hardway-etcd-restore.service (before etcd.service) that runs
`etcdctl snapshot restore` with the document's membership into a fresh data directory, keeping
the old one aside; it prints the document. node-push then installs and starts it. A cluster that
answers is refused unless --force (stop etcd on every member first).

Exit status: 0 done, 2 bad input (a snapshot that fails its check), 3 etcd unavailable (save) or
running (restore without --force), or the disk failed.

Examples:
  etcd-snapshot save -f out/cluster.json --dir out
  etcd-snapshot restore -f out/cluster.json --dir out --snapshot out/snapshots/etcd-….db \\
    | node-push > out/cluster.json.new";

fn common(command: Command) -> Command {
    use options::*;
    command
        .arg(hardway_etcd::cli::file_arg(
            "The cluster document; '-' or none reads stdin",
        ))
        .arg(hardway_etcd::cli::dir_arg(
            "The output directory: the PKI paths are relative to it, snapshots go under it",
        ))
        .arg(
            Arg::new(TIMEOUT)
                .long(TIMEOUT)
                .value_name("DURATION")
                .default_value("5s")
                .help(format!(
                    "Bound on connecting to each member; DURATION is {}",
                    hardway::duration::GRAMMAR
                )),
        )
        .arg(hardway::fsutil::lock_timeout_arg())
}

pub fn command() -> Command {
    use options::*;
    Command::new("etcd-snapshot")
        .about("Save etcd snapshots through the Maintenance API, and restore every member from one")
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .subcommand_required(true)
        .subcommand(
            common(Command::new(SAVE).about("Stream a snapshot into a verified file under --dir"))
                .arg(hardway::table::output_arg("Report format")),
        )
        .subcommand(
            common(
                Command::new(RESTORE).about(
                    "Add to every etcd node the snapshot and a oneshot unit that restores it",
                ),
            )
            .arg(
                Arg::new(SNAPSHOT)
                    .long(SNAPSHOT)
                    .value_name("FILE")
                    .required(true)
                    .help("A snapshot etcd-snapshot save (or etcdctl snapshot save) wrote")
                    .value_parser(value_parser!(std::path::PathBuf)),
            )
            .arg(
                Arg::new(FORCE).long(FORCE).action(ArgAction::SetTrue).help(
                    "Restore even though a member answers (it will lose what was written since)",
                ),
            ),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn options_are_typed_once() {
        use crate::{Action, Options};
        let parse = |args: &[&str]| {
            let m = super::command()
                .try_get_matches_from(std::iter::once("etcd-snapshot").chain(args.iter().copied()))
                .unwrap();
            Options::from_matches(&m)
        };
        let save = parse(&["save", "--timeout", "500ms", "-o", "table"]).unwrap();
        assert_eq!(save.timeout, std::time::Duration::from_millis(500));
        assert_eq!(
            save.action,
            Action::Save {
                format: hardway::table::Format::Table
            }
        );
        let restore = parse(&["restore", "--snapshot", "s.db", "--force"]).unwrap();
        assert_eq!(
            restore.action,
            Action::Restore {
                snapshot: "s.db".into(),
                force: true
            }
        );
        // A bare number meant seconds: refused with that spelling.
        let err = parse(&["save", "--timeout", "5"]).unwrap_err().to_string();
        assert!(
            err.starts_with("--timeout: \"5\" has no unit: write 5s"),
            "{err}"
        );
    }
}
