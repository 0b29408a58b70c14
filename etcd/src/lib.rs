//! hardway-etcd: what every etcd tool needs to talk to the members — their client URLs and the
//! TLS credentials from the cluster document's PKI (or etcdctl-style flags), and one plain gRPC
//! channel per member. Shared by etcd-check, etcd-sync and etcd-snapshot; the `hardway` crate
//! stays free of async and gRPC (docs/ARCHITECTURE.md, Layout).

pub mod cli;
pub mod credentials;
pub mod document;
pub mod endpoint;
pub mod error;

use std::time::Duration;

pub use credentials::{Credentials, PemFile, Tls};
pub use document::{from_document, FromDocument};
pub use endpoint::{parse_endpoint, parse_endpoint_flag, Host, Target};
pub use error::Error;

use etcd_client::Client;

/// The members and the credentials the document names, read and checked: the start of every
/// tool that talks to the cluster the document describes. `dir` is what the PKI paths are
/// relative to.
pub fn members_from_document(
    document: &hardway::doc::Document,
    dir: &std::path::Path,
) -> Result<(Vec<Target>, Tls), Error> {
    let found = from_document(document, dir)?;
    let client = found
        .client
        .as_ref()
        .map(|(c, k)| (c.as_path(), k.as_path()));
    let credentials = Credentials::load(found.ca.as_deref(), client)?;
    let tls = Tls::new(&credentials)?.expect("from_document always finds a CA");
    Ok((found.targets, tls))
}

/// A client over one plain (not load-balanced) channel to this one member, so every answer is
/// known to come from it: membership changes and snapshots are about a particular member.
pub async fn connect(
    target: &Target,
    tls: Option<&Tls>,
    timeout: Duration,
) -> Result<Client, String> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(target.url.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    if let Some(tls) = tls.filter(|_| target.tls) {
        endpoint = endpoint
            .tls_config(tls.tonic.clone())
            .map_err(|e| error_chain(&e))?;
    }
    let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
        Err(_) => return Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => return Err(error_chain(&e)),
        Ok(Ok(channel)) => channel,
    };
    Client::from_channel(etcd_client::Channel::Tonic(channel), None)
        .await
        .map_err(|e| grpc_error(&e))
}

/// A gRPC error as one line: the server's message for a status, else the transport's chain.
pub fn grpc_error(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(s) => format!("{:?}: {}", s.code(), s.message()),
        other => error_chain(other),
    }
}

/// An error with its sources, joined by ": ", as one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
