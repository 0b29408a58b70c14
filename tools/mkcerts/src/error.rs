//! mkcerts' errors: each says what is wrong, where (file, JSON path or flag) and what to do, and
//! maps to the shared exit codes (2 bad input, 3 the disk failed).

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum MkcertsError {
    /// Reading the document, validation, writing files.
    #[error(transparent)]
    Shared(#[from] hardway::Error),
    /// A key, certificate or CA given or found is unusable: bad input, exit 2.
    #[error("{at}: {message}")]
    BadMaterial { at: String, message: String },
    /// Generating or signing failed (the crypto library refused): exit 3.
    #[error("{what}: {message}")]
    Crypto { what: String, message: String },
}

impl MkcertsError {
    pub fn bad(at: impl Into<String>, message: impl Into<String>) -> MkcertsError {
        MkcertsError::BadMaterial {
            at: at.into(),
            message: message.into(),
        }
    }

    pub fn crypto(what: impl Into<String>, message: impl std::fmt::Display) -> MkcertsError {
        MkcertsError::Crypto {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

impl Failure for MkcertsError {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, MkcertsError::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            MkcertsError::Shared(e) => e.exit(),
            MkcertsError::BadMaterial { .. } => Exit::Usage,
            MkcertsError::Crypto { .. } => Exit::External,
        }
    }
}
