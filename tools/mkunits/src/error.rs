//! mkunits' errors and their exit codes (the scheme is in hardway::error): the shared crate's,
//! and a binary the nodes need that is not where the user said.

use hardway::{Error, Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum MkunitsError {
    #[error(transparent)]
    Shared(#[from] Error),
    #[error("{path}: no such binary, which {why}")]
    MissingBinary { path: String, why: &'static str },
}

impl Failure for MkunitsError {
    fn exit(&self) -> Exit {
        match self {
            MkunitsError::Shared(e) => e.exit(),
            MkunitsError::MissingBinary { .. } => Exit::Usage,
        }
    }
}
