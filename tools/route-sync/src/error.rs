//! route-sync's errors and their exit codes: 2 for a document or flag that cannot be routed,
//! 3 when the kernel refuses or the machine cannot reach a gateway.

use hardway::{Exit, Failure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or validating the document, or a bad flag value.
    #[error(transparent)]
    Shared(#[from] hardway::Error),

    /// A desired route's gateway is on none of this machine's connected subnets.
    #[error(
        "route {dst} via {gateway} ({target}): the gateway is on no directly connected subnet \
         here (connected: {connected}); check the address in the document or this machine's \
         interfaces"
    )]
    Unreachable {
        dst: String,
        gateway: String,
        /// `node "NAME"`, or `hypervisor "NAME"'s node slice`.
        target: String,
        connected: String,
    },

    /// The netlink socket could not be opened or a dump failed.
    #[error("netlink: {what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },

    /// Some route requests failed; the first is named, with the errno.
    #[error(
        "netlink: {first}{more}; run again to converge, or `ip route` to see what is there",
        more = if *others > 0 { format!(" (and {others} more failed)") } else { String::new() }
    )]
    Apply { first: String, others: usize },
}

impl Failure for Error {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, Error::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            Error::Shared(e) => e.exit(),
            Error::Unreachable { .. } | Error::Netlink { .. } | Error::Apply { .. } => {
                Exit::External
            }
        }
    }
}

impl Error {
    pub fn invalid(at: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Shared(hardway::Error::invalid(at, message))
    }
}
