//! mkvm's errors and the exit code each one maps to (docs/ARCHITECTURE.md: 1 changed, 2 input, 3 libvirt).

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum MkvmError {
    #[error(transparent)]
    Shared(#[from] hardway::Error),
    /// Bad input or a refused plan, found before anything was touched: exit 2.
    #[error("{at}: {message}")]
    Preflight { at: String, message: String },
    /// Nodes or the network differ from what exists and `--recreate` was not given: exit 1.
    #[error("{0}; nothing was changed: re-run with --recreate to replace them")]
    Changed(String),
    /// libvirt failed; `rollback` says what was undone.
    #[error("libvirt ({uri}): {what}: {message}{rollback}")]
    Libvirt {
        uri: String,
        what: String,
        message: String,
        rollback: String,
    },
    /// A staged wait ran out of time or SSH failed: exit 3.
    #[error("{node}: {message}")]
    Wait { node: String, message: String },
}

impl MkvmError {
    pub fn preflight(at: impl Into<String>, message: impl Into<String>) -> MkvmError {
        MkvmError::Preflight {
            at: at.into(),
            message: message.into(),
        }
    }

    pub fn libvirt(uri: &str, what: impl Into<String>, error: &virt::error::Error) -> MkvmError {
        MkvmError::Libvirt {
            uri: uri.to_string(),
            what: what.into(),
            message: error.message().to_string(),
            rollback: String::new(),
        }
    }

    /// A domain mkvm had seen was removed by another libvirt client while mkvm ran: a race with
    /// the outside world, exit 3, not a panic.
    pub fn vanished(uri: &str, node: &str, when: &str) -> MkvmError {
        MkvmError::Libvirt {
            uri: uri.to_string(),
            what: format!("domain {node}"),
            message: format!(
                "another libvirt client removed it {when}; run mkvm up again to recreate it"
            ),
            rollback: String::new(),
        }
    }

    /// Appends what the rollback did (or failed to do) to a libvirt error's message.
    pub fn with_rollback(self, note: String) -> MkvmError {
        match self {
            MkvmError::Libvirt {
                uri, what, message, ..
            } => MkvmError::Libvirt {
                uri,
                what,
                message,
                rollback: note,
            },
            MkvmError::Wait { node, message } => MkvmError::Wait {
                node,
                message: format!("{message}{note}"),
            },
            other => other,
        }
    }
}

impl Failure for MkvmError {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, MkvmError::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            MkvmError::Shared(e) => e.exit(),
            MkvmError::Preflight { .. } => Exit::Usage,
            MkvmError::Changed(_) => Exit::Problem,
            MkvmError::Libvirt { .. } | MkvmError::Wait { .. } => Exit::External,
        }
    }
}
