//! Where the members are and which certificates to use, from the cluster document: one target
//! per etcd node (`https://IP:2379`), the PKI's etcd CA and health-check client certificate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hardway::doc::Document;
use hardway::paths::cert;
use hardway::paths::etcd::CLIENT_PORT;
use hardway::Role;

use crate::endpoint::parse_endpoint;
use crate::{Error, Target};

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

    fn lab() -> Document {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/lab.json"),
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
