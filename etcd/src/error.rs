//! Errors of reading endpoints and credentials: all bad input (exit 2), found before any
//! connection is made. Talking to a member fails with etcd-client's own error.

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad or missing part of the document, at a JSON path.
    #[error("{at}: {message}")]
    Document { at: String, message: String },
    /// A certificate or key file that cannot be used.
    #[error("{path}: {message}")]
    Credential { path: String, message: String },
}

impl Error {
    pub fn document(at: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Document {
            at: at.into(),
            message: message.into(),
        }
    }
}

impl Failure for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Document { .. } | Error::Credential { .. } => Exit::Usage,
        }
    }
}
