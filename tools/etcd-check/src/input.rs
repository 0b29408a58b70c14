//! What to check and with which credentials: from the cluster document (etcd nodes' client URLs,
//! the PKI's etcd CA and health-check client certificate) or from etcdctl-style flags. Everything
//! here is checked before any connection is made, so bad input is exit 2 with one line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use hardway::doc::Document;
use hardway::paths::cert;
use hardway::table::Format;
use hardway::Role;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::cli::options;
use crate::error::Error;

use hardway::paths::etcd::CLIENT_PORT;

/// A member to check: its client URL, split into what a TCP connect and a TLS handshake need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name when the endpoint came from the document.
    pub name: Option<String>,
    /// The URL as the user or the document gave it, normalised (no trailing slash).
    pub url: String,
    pub tls: bool,
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Parses an `--endpoints` entry. As etcdctl, a bare `HOST:PORT` is accepted: TLS when a CA is
/// given, plain HTTP otherwise. Anything with a scheme or a slash goes through [`parse_endpoint`].
pub fn parse_endpoint_flag(text: &str, tls: bool) -> Result<Target, String> {
    let text = text.trim();
    if text.contains("://") || text.contains('/') || text.is_empty() {
        return parse_endpoint(text);
    }
    let scheme = if tls { "https" } else { "http" };
    parse_endpoint(&format!("{scheme}://{text}"))
}

/// Parses an etcd client URL as etcdctl's `--endpoints` takes it: `https://HOST:PORT` or
/// `http://HOST:PORT`, HOST an IPv4 address, a bracketed IPv6 address or a DNS name. A missing
/// port is 2379; anything else (a path, a user, a typo in the scheme) is refused, so a typo'd
/// endpoint is a usage error rather than a member that "does not answer".
pub fn parse_endpoint(text: &str) -> Result<Target, String> {
    let want = "want https://HOST:PORT, e.g. https://10.240.0.11:2379";
    let text = text.trim();
    let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "{} is not an etcd client URL ({want})",
            hardway::error::quote(text)
        ));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return Err(format!(
            "{} is not an etcd client URL ({want})",
            hardway::error::quote(text)
        ));
    }
    let (host_text, port_text) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{}: unclosed '[' ({want})", hardway::error::quote(text)))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                format!("{}: junk after ']' ({want})", hardway::error::quote(text))
            })?),
        };
        (addr, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port_text {
        None => CLIENT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("{text:?}: {p:?} is not a port ({want})")),
        },
    };
    let host = if let Ok(ip) = host_text.parse::<IpAddr>() {
        if ip.is_ipv6() && !authority.starts_with('[') {
            return Err(format!(
                "{}: an IPv6 address needs brackets ({want})",
                hardway::error::quote(text)
            ));
        }
        Host::Ip(ip)
    } else if hardway::validate::dns_name(host_text).is_ok() {
        Host::Name(host_text.to_ascii_lowercase())
    } else {
        return Err(format!(
            "{text:?}: {host_text:?} is neither an IP address nor a DNS name ({want})"
        ));
    };
    let scheme = if tls { "https" } else { "http" };
    let url = match &host {
        Host::Ip(IpAddr::V6(ip)) => format!("{scheme}://[{ip}]:{port}"),
        h => format!("{scheme}://{h}:{port}"),
    };
    Ok(Target {
        name: None,
        url,
        tls,
        host,
        port,
    })
}

/// Parses a duration: `5s`, `500ms`, `1m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!(
            "{} is not a duration (e.g. 5s, 500ms, 1m)",
            hardway::error::quote(text)
        )
    })?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(seconds > 0.0 && seconds < 86_400.0) {
        return Err(format!(
            "{} must be above zero and below a day",
            hardway::error::quote(text)
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A PEM file read and checked up front.
#[derive(Debug, Clone)]
pub struct PemFile {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

/// The TLS material for every connection: the CA to verify servers with and the client identity.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub ca: Option<PemFile>,
    pub client: Option<(PemFile, PemFile)>,
}

impl Credentials {
    /// Reads and checks the files: the CA and certificate must hold certificates, the key a
    /// private key. Errors name the file and say what to do.
    pub fn load(ca: Option<&Path>, client: Option<(&Path, &Path)>) -> Result<Credentials, Error> {
        let ca = ca.map(|p| read_certs(p, "CA certificate")).transpose()?;
        let client = match client {
            Some((cert, key)) => {
                let cert = read_certs(cert, "client certificate")?;
                let key = read_key(key)?;
                Some((cert, key))
            }
            None => None,
        };
        Ok(Credentials { ca, client })
    }
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Credential {
        path: path.display().to_string(),
        message: format!("cannot read the {what}: {e}"),
    })
}

fn read_certs(path: &Path, what: &str) -> Result<PemFile, Error> {
    let pem = read_file(path, what)?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Credential {
            path: path.display().to_string(),
            message: format!("the {what} is not valid PEM: {e}"),
        })?
        .len();
    if count == 0 {
        return Err(Error::Credential {
            path: path.display().to_string(),
            message: format!("no certificate in this file (want the {what}, PEM)"),
        });
    }
    Ok(PemFile {
        path: path.to_path_buf(),
        pem,
    })
}

fn read_key(path: &Path) -> Result<PemFile, Error> {
    let pem = read_file(path, "client key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| Error::Credential {
        path: path.display().to_string(),
        message: format!("no usable private key in this file ({e}); want the client key, PEM"),
    })?;
    Ok(PemFile {
        path: path.to_path_buf(),
        pem,
    })
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

/// What the document says: one target per etcd node, and the PKI's CA and client certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct FromDocument {
    pub targets: Vec<Target>,
    pub ca: Option<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Reads the etcd members and the PKI paths from a document; paths are resolved against `dir`.
pub fn from_document(document: &Document, dir: &Path) -> Result<FromDocument, Error> {
    let mut targets = Vec::new();
    for (i, node) in document.nodes.iter().enumerate() {
        if !node.has_role(Role::Etcd) {
            continue;
        }
        let ip = node.primary_ip().ok_or_else(|| {
            Error::document(
                format!("nodes[{i}].ips"),
                format!(
                    "etcd node {:?} has no address yet (run cidr-alloc first)",
                    node.name
                ),
            )
        })?;
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let mut target = parse_endpoint(&format!("https://{host}:{CLIENT_PORT}"))
            .map_err(|e| Error::document(format!("nodes[{i}].ips[0]"), e))?;
        target.name = Some(node.name.clone());
        targets.push(target);
    }
    if targets.is_empty() {
        return Err(Error::document(
            "nodes",
            "no node has the role etcd; nothing to check (or give --endpoints)",
        ));
    }
    let (ca, client) = match &document.pki {
        None => (None, None),
        Some(pki) => {
            let find = |name: &str| {
                pki.cert(name, None)
                    .or_else(|| pki.certs.iter().find(|c| c.name == name))
            };
            let ca = find(cert::ETCD_CA).map(|c| dir.join(&c.path));
            let client = find(cert::ETCD_HEALTHCHECK_CLIENT)
                .and_then(|c| c.key.as_ref().map(|k| (dir.join(&c.path), dir.join(k))));
            (ca, client)
        }
    };
    if ca.is_none() {
        return Err(Error::document(
            "pki.certs",
            format!(
                "no {:?} certificate (run mkcerts --dir DIR first, or give --cacert)",
                cert::ETCD_CA
            ),
        ));
    }
    if client.is_none() {
        return Err(Error::document(
            "pki.certs",
            format!(
                "no {:?} certificate with a key (run mkcerts --dir DIR first, or give --cert and --key)",
                cert::ETCD_HEALTHCHECK_CLIENT
            ),
        ));
    }
    Ok(FromDocument {
        targets,
        ca,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_etcdctl() {
        let t = parse_endpoint("https://10.240.0.11:2379").unwrap();
        assert_eq!(t.host, Host::Ip("10.240.0.11".parse().unwrap()));
        assert_eq!((t.tls, t.port), (true, 2379));
        assert_eq!(
            parse_endpoint("http://etcd-1/").unwrap().url,
            "http://etcd-1:2379"
        );
        let v6 = parse_endpoint("https://[fd00::1]:2379").unwrap();
        assert_eq!(v6.url, "https://[fd00::1]:2379");
        assert_eq!(parse_endpoint("https://[fd00::1]").unwrap().port, 2379);
    }

    #[test]
    fn bare_host_port_as_etcdctl() {
        assert_eq!(
            parse_endpoint_flag("127.0.0.1:2379", true).unwrap().url,
            "https://127.0.0.1:2379"
        );
        assert_eq!(
            parse_endpoint_flag("etcd-1:2379", false).unwrap().url,
            "http://etcd-1:2379"
        );
        for bad in [
            "https//127.0.0.1:2379",
            "htps://127.0.0.1:2379",
            "127.0.0.1:x",
            "",
        ] {
            assert!(parse_endpoint_flag(bad, true).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn typos_are_refused() {
        for bad in [
            "htps://127.0.0.1:2379",
            "https//127.0.0.1:2379",
            "https:/127.0.0.1:2379",
            "https://127.0.0.1:23790000",
            "https://127.0.0.1:",
            "https://127.0.0.1:2379/v3",
            "https://fd00::1:2379",
            "https://exa mple:2379",
            "https://under_score:2379",
            "https://",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad} accepted");
        }
    }

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

    fn lab() -> Document {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lab.json"),
        )
        .unwrap();
        hardway::doc::from_str(&text, "lab.json").unwrap()
    }

    #[test]
    fn document_without_pki_names_what_to_run() {
        let e = from_document(&lab(), Path::new("out")).unwrap_err();
        assert!(e.to_string().contains("mkcerts"), "{e}");
    }

    #[test]
    fn document_gives_targets_and_paths() {
        let mut doc = lab();
        let record = |name: &str, path: &str, key: Option<&str>| hardway::doc::CertRecord {
            name: name.into(),
            node: None,
            path: path.into(),
            key: key.map(String::from),
            subject: "CN=x".into(),
            sans: vec![],
            issuer: "CN=x".into(),
            not_after: "2030-01-01T00:00:00Z".into(),
            sha256: "00".into(),
            extra: Default::default(),
        };
        doc.pki = Some(hardway::doc::Pki {
            dir: "pki".into(),
            algorithm: "ecdsa-p256".into(),
            certs: vec![
                record(
                    cert::ETCD_CA,
                    "pki/etcd-ca.pem",
                    Some("pki/etcd-ca-key.pem"),
                ),
                record(
                    cert::ETCD_HEALTHCHECK_CLIENT,
                    "pki/hc.pem",
                    Some("pki/hc-key.pem"),
                ),
            ],
            extra: Default::default(),
        });
        let got = from_document(&doc, Path::new("/out")).unwrap();
        let urls: Vec<_> = got.targets.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://10.240.0.11:2379",
                "https://10.240.0.12:2379",
                "https://10.240.0.13:2379"
            ]
        );
        assert_eq!(got.targets[0].name.as_deref(), Some("node-1"));
        assert_eq!(got.ca, Some(PathBuf::from("/out/pki/etcd-ca.pem")));
        assert_eq!(
            got.client,
            Some((
                PathBuf::from("/out/pki/hc.pem"),
                PathBuf::from("/out/pki/hc-key.pem")
            ))
        );
    }
}
