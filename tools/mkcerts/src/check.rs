//! `mkcerts check`: every certificate and kubeconfig under OUT/pki, read back from disk: subject,
//! issuer, expiry, whether it chains to a CA found there, whether its key matches.
//!
//! It reads the files, not the document, so it also checks a PKI that was edited by hand or
//! copied from elsewhere.

use std::path::Path;

use hardway::fsutil::{Access, OutDir};

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
/// Read through [`OutDir`], as mkcerts writes: no link is followed, no foreign file trusted.
pub fn check(dir: &Path, warn_days: u32, now: OffsetDateTime) -> Result<Vec<Row>, MkcertsError> {
    let out = OutDir::open(dir, Access::Read)?;
    let Some(files) = out.list("pki")? else {
        return Err(MkcertsError::bad(
            out.shown("pki"),
            "no PKI here: give the --dir of an earlier mkcerts run",
        ));
    };
    // Every certificate first: the CAs among them are what chains are checked against.
    let (certs, kubeconfigs) = certificates_and_kubeconfigs(&out, files)?;
    let cas: Vec<Vec<u8>> = certs
        .iter()
        .filter(|(_, der)| parse_der(der).is_ok_and(|c| c.is_ca()))
        .map(|(_, der)| der.clone())
        .collect();
    let mut rows = Vec::new();
    for (path, der) in &certs {
        rows.extend(certificate_row(&out, path, der, &cas, warn_days, now)?);
    }
    for path in &kubeconfigs {
        rows.extend(kubeconfig_rows(&out, path, warn_days, now)?);
    }
    Ok(rows)
}

/// The PEM certificates (path and DER; keys are not certificates) and the kubeconfigs among
/// `files`.
type Found = (Vec<(String, Vec<u8>)>, Vec<String>);

fn certificates_and_kubeconfigs(out: &OutDir, files: Vec<String>) -> Result<Found, MkcertsError> {
    let mut certs = Vec::new();
    let mut kubeconfigs = Vec::new();
    for path in files {
        let name = Path::new(&path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if name.ends_with(".pem") && !name.ends_with("-key.pem") {
            if let Some(der) = pem_der(&out.read(&path)?.unwrap_or_default()) {
                certs.push((path, der));
            }
        } else if name.ends_with(".kubeconfig") || name == "kubeconfig" {
            kubeconfigs.push(path);
        }
    }
    Ok((certs, kubeconfigs))
}

/// A certificate's row: its chain to one of `cas` and its `-key.pem` beside it.
fn certificate_row(
    out: &OutDir,
    path: &str,
    der: &[u8],
    cas: &[Vec<u8>],
    warn_days: u32,
    now: OffsetDateTime,
) -> Result<Option<Row>, MkcertsError> {
    let Ok(cert) = parse_der(der) else {
        return Ok(None);
    };
    let Some(stem) = path.strip_suffix(".pem") else {
        return Ok(None);
    };
    let key = match out.read(&format!("{stem}-key.pem"))? {
        Some(bytes) => key_state(&cert, &String::from_utf8_lossy(&bytes)),
        None => "missing",
    };
    let chain = chain_state(&cert, cas);
    Ok(Some(row(
        path.to_string(),
        "certificate",
        &cert,
        chain,
        key,
        warn_days,
        now,
    )))
}

/// One row per user of a kubeconfig: its embedded client certificate, chained to the
/// kubeconfig's own CA, and its embedded key.
fn kubeconfig_rows(
    out: &OutDir,
    path: &str,
    warn_days: u32,
    now: OffsetDateTime,
) -> Result<Vec<Row>, MkcertsError> {
    let bytes = out.read(path)?.unwrap_or_default();
    let config = kubeconfig::parse(&String::from_utf8_lossy(&bytes))
        .map_err(|e| MkcertsError::bad(path, e))?;
    let ca = config
        .clusters
        .first()
        .and_then(|c| kubeconfig::decode(&c.cluster.certificate_authority_data).ok())
        .and_then(|pem| pem_der(&pem));
    let mut rows = Vec::new();
    for user in &config.users {
        let cert_der = kubeconfig::decode(&user.user.client_certificate_data)
            .ok()
            .and_then(|pem| pem_der(&pem));
        let Some(cert_der) = cert_der else {
            return Err(MkcertsError::bad(
                path,
                format!(
                    "user {:?} has no readable client-certificate-data",
                    user.name
                ),
            ));
        };
        let cert = parse_der(&cert_der).map_err(|e| MkcertsError::bad(path, e))?;
        let key = kubeconfig::decode(&user.user.client_key_data)
            .ok()
            .and_then(|k| String::from_utf8(k).ok())
            .map_or("missing", |text| key_state(&cert, &text));
        let chain = chain_state(&cert, ca.as_slice());
        rows.push(row(
            format!("{path}#{}", user.name),
            "kubeconfig",
            &cert,
            chain,
            key,
            warn_days,
            now,
        ));
    }
    Ok(rows)
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
