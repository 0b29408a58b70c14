//! Errors and exit codes shared by every tool.
//!
//! The scheme (docs/ARCHITECTURE.md): 0 done or healthy, 1 a check found a problem, 2 bad input or usage,
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

    /// True only when writing the tool's output to stdout found the reader gone (`tool | head`):
    /// the one error [`crate::tool::main`] ends with silently, exit 0. A tool forwards it from its
    /// wrapped [`Error`]; an EPIPE anywhere else (an SSH channel, a socket) is a real error.
    fn is_closed_stdout(&self) -> bool {
        false
    }
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
    /// Writing the tool's output to stdout failed. Its own variant, so a closed pipe is known by
    /// its type (and only here), never by the text of a message.
    #[error("cannot write stdout: {source}")]
    Stdout { source: io::Error },
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

    /// A failed write to stdout.
    pub fn stdout(source: io::Error) -> Error {
        Error::Stdout { source }
    }
}

impl Failure for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Parse { .. } | Error::Invalid { .. } | Error::Input { .. } => Exit::Usage,
            Error::Io { .. } | Error::Stdout { .. } => Exit::External,
        }
    }

    fn is_closed_stdout(&self) -> bool {
        matches!(self, Error::Stdout { source } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The most of an input value an error message quotes, in characters.
pub const QUOTE_MAX: usize = 80;

/// An input value as error messages quote it: in double quotes with every control character
/// escaped (Rust's `{:?}`, so a newline cannot split the error line), and cut to [`QUOTE_MAX`]
/// characters with `…` (a 10 MB name is not repeated whole). Every message that quotes a value
/// from the document, an inventory or a flag goes through this.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_MAX) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
    }
}
