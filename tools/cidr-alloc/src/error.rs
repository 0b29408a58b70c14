//! cidr-alloc's errors. Each says what collides with what, or how many fit, and what to change.

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two ranges share addresses.
    #[error("{first} overlaps {second}: choose ranges that do not share addresses")]
    Overlap { first: String, second: String },
    /// A range has no room left.
    #[error("{range} is exhausted: {fit} fit, {need} needed; {hint}")]
    Exhausted {
        range: String,
        fit: String,
        need: String,
        hint: &'static str,
    },
    /// A value (pinned, previous, or a setting) is wrong; `at` is a JSON path, a file or a flag.
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    /// The previous output given with --previous cannot be used.
    #[error("--previous {path}: {message}")]
    Previous { path: String, message: String },
    /// The kernel's routing tables could not be read (--avoid-host-routes).
    #[error("cannot read the host's routes from {path}: {source}")]
    Routes {
        path: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Shared(#[from] hardway::Error),
}

impl Error {
    pub fn invalid(at: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            at: at.into(),
            message: message.into(),
        }
    }
}

impl Failure for Error {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, Error::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            Error::Overlap { .. }
            | Error::Exhausted { .. }
            | Error::Invalid { .. }
            | Error::Previous { .. } => Exit::Usage,
            Error::Routes { .. } => Exit::External,
            Error::Shared(e) => e.exit(),
        }
    }
}
