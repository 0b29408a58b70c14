//! etcd-snapshot's errors and their exit codes.

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A snapshot file that is not one, or fails etcd's integrity hash.
    #[error("{path}: {message}")]
    BadSnapshot { path: String, message: String },
    /// No member answered (save), or the stream broke.
    #[error("etcd is unavailable: {0}")]
    Unavailable(String),
    /// restore without --force while a member answers.
    #[error("etcd is running ({0}): stop etcd.service on every member first, or give --force")]
    Running(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Etcd(#[from] hardway_etcd::Error),
    #[error(transparent)]
    Shared(#[from] hardway::Error),
}

impl Failure for Error {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, Error::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            Error::BadSnapshot { .. } => Exit::Usage,
            Error::Unavailable(_) | Error::Running(_) | Error::Runtime(_) => Exit::External,
            Error::Etcd(e) => e.exit(),
            Error::Shared(e) => e.exit(),
        }
    }
}
