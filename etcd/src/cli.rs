//! The arguments every etcd tool takes the same way: the document to read and the directory its
//! certificate paths are relative to. One definition, so etcd-check, etcd-sync and etcd-snapshot
//! cannot drift apart.

use clap::{value_parser, Arg};

/// The id of `-f/--file`.
pub const FILE: &str = "file";
/// The id of `--dir`.
pub const DIR: &str = "dir";

/// `-f/--file FILE`: the cluster document (`-` or none: stdin).
pub fn file_arg(help: &'static str) -> Arg {
    Arg::new(FILE)
        .short('f')
        .long("file")
        .value_name("FILE")
        .help(help)
        .value_parser(value_parser!(std::path::PathBuf))
}

/// `--dir DIR` (default `.`): where the document's PKI paths are relative to.
pub fn dir_arg(help: &'static str) -> Arg {
    Arg::new(DIR)
        .long(DIR)
        .value_name("DIR")
        .default_value(".")
        .help(help)
        .value_parser(value_parser!(std::path::PathBuf))
}
