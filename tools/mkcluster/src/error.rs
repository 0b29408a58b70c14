//! mkcluster's errors: every one names where the bad input is (file:line:column or a flag).

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad value in the inventory, at `source:line:column`.
    #[error("{source_name}:{line}:{column}: {message}")]
    At {
        source_name: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// A bad flag value.
    #[error("--{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    #[error(transparent)]
    Shared(#[from] hardway::Error),
}

impl Failure for Error {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, Error::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            Error::At { .. } | Error::Flag { .. } => Exit::Usage,
            Error::Shared(e) => e.exit(),
        }
    }
}

/// Where a value sits in the inventory, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    pub fn error(self, source: &str, message: impl Into<String>) -> Error {
        Error::At {
            source_name: source.to_string(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}
