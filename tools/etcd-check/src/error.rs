//! etcd-check's errors. A sick cluster is not an error (it is a verdict, printed as a report with
//! exit 1 or 3); these are the cases where no check could run: bad input (exit 2) or the tool's
//! own environment failing (exit 3).

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag value: `--flag: message`.
    #[error("--{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// A bad or missing part of the document, at a JSON path.
    #[error("{at}: {message}")]
    Document { at: String, message: String },
    /// A certificate or key file that cannot be used.
    #[error("{path}: {message}")]
    Credential { path: String, message: String },
    /// Bad endpoints, document or credentials (hardway-etcd).
    #[error(transparent)]
    Etcd(#[from] hardway_etcd::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Shared(#[from] hardway::Error),
}

impl Error {
    pub fn flag(flag: &'static str, message: impl Into<String>) -> Error {
        Error::Flag {
            flag,
            message: message.into(),
        }
    }

    pub fn document(at: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Document {
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
            Error::Flag { .. } | Error::Document { .. } | Error::Credential { .. } => Exit::Usage,
            Error::Etcd(e) => e.exit(),
            Error::Runtime(_) => Exit::External,
            Error::Shared(e) => e.exit(),
        }
    }
}
