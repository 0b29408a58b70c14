//! What to check and with which credentials: from the cluster document (etcd nodes' client URLs,
//! the PKI's etcd CA and health-check client certificate) or from etcdctl-style flags. Everything
//! here is checked before any connection is made, so bad input is exit 2 with one line.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use hardway::table::Format;

use crate::cli::options;
use crate::error::Error;

pub use hardway_etcd::{
    from_document, parse_endpoint, parse_endpoint_flag, Credentials, FromDocument, Host, PemFile,
    Target,
};

/// Parses a duration: `5s`, `500ms`, `1m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // Quoted and cut to a sane length in every message (hardway::error::quote).
    let quoted = hardway::error::quote(text);
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{quoted} is not a duration (e.g. 5s, 500ms, 1m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("{quoted}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(seconds > 0.0 && seconds < 86_400.0) {
        return Err(format!("{quoted} must be above zero and below a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

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
        let timeout = parse_duration(m.get_one::<String>(options::TIMEOUT).expect("default"))
            .map_err(|e| Error::flag(options::TIMEOUT, e))?;
        let connect_timeout = parse_duration(
            m.get_one::<String>(options::CONNECT_TIMEOUT)
                .expect("default"),
        )
        .map_err(|e| Error::flag(options::CONNECT_TIMEOUT, e))?
        .min(timeout);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "0", "5h", "s", "-1s", "1e9"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }
}
