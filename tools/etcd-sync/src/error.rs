//! etcd-sync's errors and their exit codes: bad input 2; the cluster unavailable, a change
//! refused to keep quorum, or a change that failed: 3.

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No member answered: nothing was changed.
    #[error("etcd is unavailable: {0}")]
    Unavailable(String),
    /// A change was not made because it would lose quorum (or leave no member).
    #[error("refused: {0}")]
    Refused(String),
    /// A member refused or failed a change.
    #[error("{0}")]
    Change(String),
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
            Error::Unavailable(_) | Error::Refused(_) | Error::Change(_) | Error::Runtime(_) => {
                Exit::External
            }
            Error::Etcd(e) => e.exit(),
            Error::Shared(e) => e.exit(),
        }
    }
}
