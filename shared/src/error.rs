//! Errors and exit codes shared by every tool.
//!
//! The scheme (DESIGN.md): 0 done or healthy, 1 a check found a problem, 2 bad input or usage,
//! 3 an outside system failed. Each tool has its own error enum that implements [`Failure`];
//! [`crate::tool::main`] prints it once as `tool: error: …` and exits with its code.

use std::fmt;
use std::io;

/// A tool's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Done; for a check: healthy, in sync.
    Ok = 0,
    /// A check found a problem: degraded, out of sync, expiring.
    Problem = 1,
    /// Bad input or usage.
    Usage = 2,
    /// An outside system failed: libvirt, netlink, SSH, etcd, the disk.
    External = 3,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error a tool can end with: its message (one line) and its exit code.
pub trait Failure: fmt::Display {
    fn exit(&self) -> Exit;
}

/// Errors from the shared crate: reading the document and inputs, validation, file writes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a well-formed document.
    #[error("{input}:{line}:{column}: {}{message}", json_path_prefix(.json_path))]
    Parse {
        input: String,
        line: usize,
        column: usize,
        json_path: String,
        message: String,
    },
    /// A value is well-formed but wrong; `at` is a JSON path, a `file:line:column`, or a flag.
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    /// An input (document, inventory, key) could not be read: bad input, exit 2.
    #[error("cannot read {what}: {source}")]
    Input { what: String, source: io::Error },
    /// Writing or syncing an output failed: exit 3.
    #[error("cannot write {what}: {source}")]
    Io { what: String, source: io::Error },
}

/// `path: ` when serde knew where in the document it was, nothing when it did not (`?`, `.`).
fn json_path_prefix(path: &str) -> String {
    match path {
        "" | "?" | "." => String::new(),
        path => format!("{path}: "),
    }
}

impl Error {
    pub fn invalid(at: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            at: at.into(),
            message: message.into(),
        }
    }

    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn input(what: impl Into<String>, source: io::Error) -> Error {
        Error::Input {
            what: what.into(),
            source,
        }
    }

    /// True for a write to a closed pipe (`tool | head`), which is not worth an error message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl Failure for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Parse { .. } | Error::Invalid { .. } | Error::Input { .. } => Exit::Usage,
            Error::Io { .. } => Exit::External,
        }
    }
}
