//! What to check and with which credentials: from the cluster document (etcd nodes' client URLs,
//! the PKI's etcd CA and health-check client certificate) or from etcdctl-style flags. Everything
//! here is checked before any connection is made, so bad input is exit 2 with one line.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use hardway::duration::Unit;
use hardway::table::Format;

use crate::cli::options;
use crate::error::Error;

pub use hardway_etcd::{
    from_document, parse_endpoint, parse_endpoint_flag, Credentials, FromDocument, Host, PemFile,
    Target,
};

/// Everything a check needs, resolved from the flags and the document.
#[derive(Debug, Clone)]
pub struct Options {
    pub targets: Vec<Target>,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_lag: u64,
    pub warn_days: u64,
    pub format: Format,
    pub watch: Option<Duration>,
}

impl Options {
    pub fn from_matches(m: &ArgMatches) -> Result<Options, Error> {
        let timeout = duration_flag(m, options::TIMEOUT)?;
        let connect_timeout = duration_flag(m, options::CONNECT_TIMEOUT)?.min(timeout);
        let format = Format::parse(m.get_one::<String>(options::OUTPUT).expect("default"))
            .expect("clap checked the format");
        let cacert = m.get_one::<PathBuf>(options::CACERT).cloned();
        let cert = m.get_one::<PathBuf>(options::CERT).cloned();
        let key = m.get_one::<PathBuf>(options::KEY).cloned();

        let (targets, ca, client) = match m.get_many::<String>(options::ENDPOINTS) {
            Some(urls) => {
                let mut targets = Vec::new();
                for url in urls {
                    targets.push(
                        parse_endpoint_flag(url, cacert.is_some())
                            .map_err(|e| Error::flag(options::ENDPOINTS, e))?,
                    );
                }
                (targets, cacert, cert.zip(key))
            }
            None => {
                let file = m.get_one::<PathBuf>(options::FILE).map(PathBuf::as_path);
                let document = hardway::doc::read(file)?;
                let dir = m.get_one::<PathBuf>(options::DIR).expect("default");
                let from_doc = from_document(&document, dir)?;
                let ca = cacert.or(from_doc.ca);
                let client = cert.zip(key).or(from_doc.client);
                (from_doc.targets, ca, client)
            }
        };
        if targets.is_empty() {
            return Err(Error::flag(options::ENDPOINTS, "no endpoint to check"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &targets {
            if !seen.insert(t.url.as_str()) {
                return Err(Error::flag(
                    options::ENDPOINTS,
                    format!("{} is listed twice", t.url),
                ));
            }
        }
        if targets.iter().any(|t| t.tls) && ca.is_none() {
            return Err(Error::flag(
                options::CACERT,
                "https endpoints need the CA that signed the members' certificates (--cacert FILE)",
            ));
        }
        let credentials = Credentials::load(
            ca.as_deref(),
            client.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )?;
        Ok(Options {
            targets,
            credentials,
            timeout,
            connect_timeout,
            max_lag: *m.get_one::<u64>(options::MAX_LAG).expect("default"),
            warn_days: *m.get_one::<u64>(options::WARN_DAYS).expect("default"),
            format,
            watch: m
                .get_one::<u64>(options::WATCH)
                .map(|s| Duration::from_secs(*s)),
        })
    }
}

/// A timeout flag in the shared DURATION grammar; a bare number meant seconds here.
fn duration_flag(m: &ArgMatches, id: &'static str) -> Result<Duration, Error> {
    let text = m.get_one::<String>(id).expect("default");
    hardway::duration::timeout(text, Unit::Seconds).map_err(|e| Error::flag(id, e))
}
