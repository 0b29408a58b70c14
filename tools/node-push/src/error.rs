//! node-push's errors: those that end the run (bad input, exit 2; a report that cannot be
//! written, exit 3) and those that fail one node, which go into that node's report.

use hardway::{Exit, Failure};

/// An error that ends the whole run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Shared(#[from] hardway::Error),
    /// No way to log in was given or found.
    #[error("no SSH identity: pass --identity KEY, start an agent (SSH_AUTH_SOCK), or create ~/.ssh/id_ed25519")]
    NoIdentity,
}

impl Failure for Error {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, Error::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            Error::Shared(e) => e.exit(),
            Error::NoIdentity => Exit::Usage,
        }
    }
}

/// Why one node failed; printed in its report and as one log line.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{what}: {source}")]
    Ssh { what: String, source: ssh2::Error },
    #[error("{0}")]
    Protocol(String),
    #[error(
        "HOST KEY CHANGED: the server offers {offered} but {file} records {}; nothing was sent. \
         If the node was rebuilt, remove its old entry (ssh-keygen -R HOST -f {file}) and re-run",
        recorded.join(", ")
    )]
    HostKeyChanged {
        offered: String,
        recorded: Vec<String>,
        file: String,
    },
    #[error("host key {offered} is marked @revoked in {file}; nothing was sent")]
    HostKeyRevoked { offered: String, file: String },
    #[error(
        "unknown host key {offered} (not in {file}); nothing was sent: check it, then re-run \
         with --accept-new or add it with ssh-keyscan"
    )]
    HostKeyUnknown { offered: String, file: String },
    #[error("cannot record the host key: {0}")]
    KnownHosts(hardway::Error),
    #[error("cannot log in as {user}: {why}")]
    Auth { user: String, why: String },
    #[error("`{command}` failed (exit {status}): {stderr}")]
    Remote {
        command: String,
        status: i32,
        stderr: String,
    },
    #[error("{what}: {source}")]
    Local {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot resolve {host}: no answer within {seconds} s (--timeout)")]
    ResolveTimeout { host: String, seconds: u64 },
    #[error("timed out after {0} s (--timeout)")]
    Timeout(u64),
}

impl NodeError {
    /// True for libssh2's "timed out waiting" (the session timeout, set to the time left).
    pub fn is_timeout(&self) -> bool {
        const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
        match self {
            NodeError::Timeout(_) => true,
            NodeError::Ssh { source, .. } => {
                source.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT)
            }
            NodeError::Local { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// Wraps an ssh2 error with what was being done, for `map_err`.
    pub fn ssh(what: &str) -> impl Fn(ssh2::Error) -> NodeError + '_ {
        move |source| NodeError::Ssh {
            what: what.to_string(),
            source,
        }
    }
}
