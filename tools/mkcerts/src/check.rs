//! `mkcerts check`: every certificate and kubeconfig under OUT/pki, read back from disk: subject,
//! issuer, expiry, whether it chains to a CA found there, whether its key matches.
//!
//! It reads the files, not the document, so it also checks a PKI that was edited by hand or
//! copied from elsewhere.

use std::path::{Path, PathBuf};

use rcgen::PublicKeyData;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use crate::algo::load_key;
use crate::error::MkcertsError;
use crate::kubeconfig;
use crate::pki::{parse_der, pem_der, rfc3339};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Relative to OUT; for kubeconfigs, `path#user`.
    pub path: String,
    pub kind: &'static str,
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub days_left: i64,
    /// `valid`, `invalid` or `unknown issuer`.
    pub chain: &'static str,
    /// `matches`, `mismatch` or `missing`.
    pub key: &'static str,
    /// `ok`, or the first problem: `expired`, `expiring`, `bad chain`, `bad key`.
    pub status: &'static str,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
}

/// Checks everything under `dir/pki`; a certificate expiring within `warn_days` is a problem.
pub fn check(dir: &Path, warn_days: u32, now: OffsetDateTime) -> Result<Vec<Row>, MkcertsError> {
    let root = dir.join("pki");
    if !root.is_dir() {
        return Err(MkcertsError::bad(
            root.display().to_string(),
            "no PKI here: give the --dir of an earlier mkcerts run",
        ));
    }
    let mut files = Vec::new();
    walk(&root, &mut files)?;
    files.sort();

    // Every certificate first: the CAs among them are what chains are checked against.
    let mut certs = Vec::new();
    let mut kubeconfigs = Vec::new();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".pem") && !name.ends_with("-key.pem") {
            let bytes = std::fs::read(&path)
                .map_err(|e| hardway::Error::input(path.display().to_string(), e))?;
            if let Some(der) = pem_der(&bytes) {
                certs.push((path, der));
            }
        } else if name.ends_with(".kubeconfig") || name == "kubeconfig" {
            kubeconfigs.push(path);
        }
    }
    let cas: Vec<Vec<u8>> = certs
        .iter()
        .filter(|(_, der)| parse_der(der).is_ok_and(|c| c.is_ca()))
        .map(|(_, der)| der.clone())
        .collect();

    let rel = |path: &Path| path.strip_prefix(dir).unwrap_or(path).display().to_string();
    let mut rows = Vec::new();
    for (path, der) in &certs {
        let Ok(cert) = parse_der(der) else { continue };
        let key_path = path.with_file_name(
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .replace(".pem", "-key.pem"),
        );
        let key = match std::fs::read_to_string(&key_path) {
            Ok(text) => key_state(&cert, &text),
            Err(_) => "missing",
        };
        let chain = chain_state(&cert, &cas);
        rows.push(row(
            rel(path),
            "certificate",
            &cert,
            chain,
            key,
            warn_days,
            now,
        ));
    }
    for path in &kubeconfigs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| hardway::Error::input(path.display().to_string(), e))?;
        let config = kubeconfig::parse(&text).map_err(|e| MkcertsError::bad(rel(path), e))?;
        let ca = config
            .clusters
            .first()
            .and_then(|c| kubeconfig::decode(&c.cluster.certificate_authority_data).ok())
            .and_then(|pem| pem_der(&pem));
        for user in &config.users {
            let cert_der = kubeconfig::decode(&user.user.client_certificate_data)
                .ok()
                .and_then(|pem| pem_der(&pem));
            let Some(cert_der) = cert_der else {
                return Err(MkcertsError::bad(
                    rel(path),
                    format!(
                        "user {:?} has no readable client-certificate-data",
                        user.name
                    ),
                ));
            };
            let cert = parse_der(&cert_der).map_err(|e| MkcertsError::bad(rel(path), e))?;
            let key = kubeconfig::decode(&user.user.client_key_data)
                .ok()
                .and_then(|k| String::from_utf8(k).ok())
                .map_or("missing", |text| key_state(&cert, &text));
            let chain = chain_state(&cert, ca.as_slice());
            rows.push(row(
                format!("{}#{}", rel(path), user.name),
                "kubeconfig",
                &cert,
                chain,
                key,
                warn_days,
                now,
            ));
        }
    }
    Ok(rows)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), MkcertsError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| hardway::Error::input(dir.display().to_string(), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| hardway::Error::input(dir.display().to_string(), e))?
            .path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn key_state(cert: &X509Certificate, key_pem: &str) -> &'static str {
    match load_key(key_pem, "") {
        Ok(key) if key.subject_public_key_info().as_slice() == cert.public_key().raw => "matches",
        _ => "mismatch",
    }
}

fn chain_state(cert: &X509Certificate, cas: &[Vec<u8>]) -> &'static str {
    let mut issuer_known = false;
    for der in cas {
        let Ok(ca) = parse_der(der) else { continue };
        if ca.subject().as_raw() != cert.issuer().as_raw() {
            continue;
        }
        issuer_known = true;
        if cert.verify_signature(Some(ca.public_key())).is_ok() {
            return "valid";
        }
    }
    if issuer_known {
        "invalid"
    } else {
        "unknown issuer"
    }
}

fn row(
    path: String,
    kind: &'static str,
    cert: &X509Certificate,
    chain: &'static str,
    key: &'static str,
    warn_days: u32,
    now: OffsetDateTime,
) -> Row {
    let not_after = cert.validity().not_after.timestamp();
    let days_left = (not_after - now.unix_timestamp()).div_euclid(86_400);
    let status = if not_after <= now.unix_timestamp() {
        "expired"
    } else if days_left < i64::from(warn_days) {
        "expiring"
    } else if chain != "valid" {
        "bad chain"
    } else if key != "matches" {
        "bad key"
    } else {
        "ok"
    };
    Row {
        path,
        kind,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: rfc3339(not_after),
        days_left,
        chain,
        key,
        status,
    }
}

/// The `-o table` form.
pub fn table(rows: &[Row]) -> String {
    hardway::table::render(
        &[
            "path",
            "subject",
            "issuer",
            "not_after",
            "days",
            "chain",
            "key",
            "status",
        ],
        rows.iter().map(|r| {
            vec![
                r.path.clone(),
                r.subject.clone(),
                r.issuer.clone(),
                r.not_after.clone(),
                r.days_left.to_string(),
                r.chain.to_string(),
                r.key.to_string(),
                r.status.to_string(),
            ]
        }),
    )
}
