//! Making the PKI idempotently: load what exists under `OUT/pki/`, decide per certificate whether
//! to reuse, re-issue or create it, and stage every file in memory.
//!
//! Certificates embed a serial number and a time, so "the same PKI" can only mean "the same
//! files": a leaf that still matches the plan (subject, SANs, usages, issuer, key algorithm, not
//! near expiry) is reused byte for byte, and keys and CAs that exist are never replaced. The caller
//! commits the staged files with `hardway::fsutil::FileSet`, which skips identical files, so a
//! second run writes nothing and a failed run writes nothing at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hardway::doc::{CertRecord, Document, Extra, FileEntry, Pki};
use hardway::fsutil::{sha256_hex, OutDir};
use hardway::paths;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::algo::{load_key, KeyAlgorithm};
use crate::error::MkcertsError;
use crate::kubeconfig;
use crate::plan::{self, Ca, Leaf, Plan, San};

pub const KEY_MODE: u32 = 0o600;
pub const PUBLIC_MODE: u32 = 0o644;
pub const DIR_MODE: u32 = 0o700;

/// Validity set back this far so a node whose clock is a little behind accepts new certificates.
const BACKDATE: Duration = Duration::minutes(5);

/// How the PKI is made.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub algorithm: KeyAlgorithm,
    pub ca_days: i64,
    pub days: i64,
    pub renew_before: Duration,
    /// `--ca-cert/--ca-key` and the etcd and front-proxy equivalents, indexed by [`Ca::index`].
    pub external_ca: [Option<(PathBuf, PathBuf)>; 3],
    /// `mkcerts renew`: re-issue every leaf.
    pub renew: bool,
    pub plan: plan::PlanOptions,
    pub now: OffsetDateTime,
}

/// What happens to one certificate, key or config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `create`, `reuse`, `reissue`, `rekey` or `import`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A file to have under OUT, relative path and contents.
#[derive(Debug, Clone)]
pub struct Staged {
    pub rel: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// The outcome of a run, before anything is written.
#[derive(Debug)]
pub struct Made {
    pub document: Document,
    pub files: Vec<Staged>,
    pub decisions: Vec<Decision>,
    pub warnings: Vec<String>,
}

/// A CA ready to sign.
struct CaMaterial {
    cert_der: Vec<u8>,
    key: KeyPair,
}

/// A leaf as it ends up: PEM text of the certificate and key.
struct LeafMaterial {
    cert_pem: String,
    key_pem: String,
}

/// Makes (in memory) the PKI for `doc` under `out` (`options.dir`, opened), reading what an
/// earlier run left there through `out` only: never through a link, never a file another user owns.
pub fn make(doc: &Document, options: &Options, out: &OutDir) -> Result<Made, MkcertsError> {
    let plan = plan::plan(doc, &options.plan)?;
    let mut run = Run {
        options,
        out,
        files: Vec::new(),
        decisions: Vec::new(),
        warnings: Vec::new(),
        records: Vec::new(),
    };
    let mut cas = Vec::new();
    for ca in Ca::ALL {
        cas.push(run.ca(ca, &doc.cluster.name)?);
    }
    let mut leaves: BTreeMap<(&str, Option<String>), LeafMaterial> = BTreeMap::new();
    for leaf in &plan.leaves {
        let material = run.leaf(leaf, &cas[leaf.ca.index()])?;
        leaves.insert((leaf.name, leaf.node.clone()), material);
    }
    run.service_account_keys()?;
    run.encryption_config()?;
    let ca_pem = pem_cert(&cas[Ca::Kubernetes.index()].cert_der);
    for config in &plan.kubeconfigs {
        let leaf = &leaves[&(config.leaf, config.node.clone())];
        let text = kubeconfig::render(
            &doc.cluster.name,
            &config.server,
            &config.user,
            &ca_pem,
            &leaf.cert_pem,
            &leaf.key_pem,
        )?;
        run.stage(&config.path, text.into_bytes(), KEY_MODE);
    }
    run.warnings.extend(plan.warnings.iter().cloned());
    let document = run.document(doc, &plan)?;
    Ok(Made {
        document,
        files: run.files,
        decisions: run.decisions,
        warnings: run.warnings,
    })
}

struct Run<'a> {
    options: &'a Options,
    out: &'a OutDir,
    files: Vec<Staged>,
    decisions: Vec<Decision>,
    warnings: Vec<String>,
    records: Vec<CertRecord>,
}

impl Run<'_> {
    /// `OUT/rel`, for messages.
    fn path(&self, rel: &str) -> String {
        self.out.shown(rel)
    }

    /// The bytes of a file under OUT, `None` when it does not exist.
    fn existing(&self, rel: &str) -> Result<Option<Vec<u8>>, MkcertsError> {
        Ok(self.out.read(rel)?)
    }

    fn stage(&mut self, rel: &str, contents: Vec<u8>, mode: u32) {
        self.files.push(Staged {
            rel: rel.to_string(),
            contents,
            mode,
        });
    }

    fn decide(
        &mut self,
        name: &str,
        node: Option<&str>,
        action: &'static str,
        reason: Option<String>,
    ) {
        self.decisions.push(Decision {
            name: name.to_string(),
            node: node.map(str::to_string),
            action,
            reason,
        });
    }

    /// A CA: imported from the command line, else the one under OUT, else a new one. A CA is
    /// never replaced, nor half of one.
    fn ca(&mut self, ca: Ca, cluster: &str) -> Result<CaMaterial, MkcertsError> {
        let (cert_rel, key_rel) = (ca.cert_path(), ca.key_path());
        let local = (self.existing(&cert_rel)?, self.existing(&key_rel)?);
        let material = match (&self.options.external_ca[ca.index()], local) {
            (Some((cert_file, key_file)), local) => {
                let (cert_file, key_file) = (cert_file.clone(), key_file.clone());
                self.import_ca(ca, &cert_file, &key_file, local)?
            }
            (None, (Some(cert), Some(key))) => self.reuse_ca(ca, cert, key)?,
            (None, (None, None)) => self.new_ca(ca, cluster)?,
            (None, (cert, _)) => return Err(self.half_a_ca(ca, cert.is_some())),
        };
        self.record_ca(ca, &material)?;
        Ok(material)
    }

    /// `--ca-cert/--ca-key`: imported, or reused when OUT already holds that same CA.
    fn import_ca(
        &mut self,
        ca: Ca,
        cert_file: &Path,
        key_file: &Path,
        local: (Option<Vec<u8>>, Option<Vec<u8>>),
    ) -> Result<CaMaterial, MkcertsError> {
        let (cert_rel, key_rel) = (ca.cert_path(), ca.key_path());
        let cert_bytes = read_input(cert_file)?;
        let key_bytes = read_input(key_file)?;
        let material = validate_ca(
            &cert_bytes,
            &key_bytes,
            &cert_file.display().to_string(),
            &key_file.display().to_string(),
        )?;
        let same_as_local = match &local {
            (None, None) => false,
            (Some(c), Some(k)) if same_ca(&material, c, k) => true,
            _ => {
                return Err(MkcertsError::bad(
                    self.path(&cert_rel),
                    format!(
                        "already holds a different {} and mkcerts never overwrites a CA: \
                         move {} away to import {}, or drop the flag",
                        ca.name(),
                        self.path("pki/ca"),
                        cert_file.display()
                    ),
                ))
            }
        };
        // Keep the local copy's bytes when it is the same CA, so nothing is rewritten.
        let (cert_out, key_out) = match (same_as_local, local) {
            (true, (Some(c), Some(k))) => (c, k),
            _ => (cert_bytes, key_bytes),
        };
        self.stage(&cert_rel, cert_out, PUBLIC_MODE);
        self.stage(&key_rel, key_out, KEY_MODE);
        let action = if same_as_local { "reuse" } else { "import" };
        self.decide(ca.name(), None, action, None);
        Ok(material)
    }

    /// The CA under OUT, kept whatever `--key-algorithm` says (with a warning when they differ).
    fn reuse_ca(
        &mut self,
        ca: Ca,
        cert: Vec<u8>,
        key: Vec<u8>,
    ) -> Result<CaMaterial, MkcertsError> {
        let (cert_rel, key_rel) = (ca.cert_path(), ca.key_path());
        let material = validate_ca(&cert, &key, &self.path(&cert_rel), &self.path(&key_rel))?;
        if KeyAlgorithm::of_key(&material.key) != Some(self.options.algorithm) {
            self.warnings.push(format!(
                "{} keeps its {} key (a CA is never replaced; --key-algorithm {} applies to new keys)",
                ca.name(),
                KeyAlgorithm::of_key(&material.key).map_or("other", KeyAlgorithm::as_str),
                self.options.algorithm
            ));
        }
        self.stage(&cert_rel, cert, PUBLIC_MODE);
        self.stage(&key_rel, key, KEY_MODE);
        self.decide(ca.name(), None, "reuse", None);
        Ok(material)
    }

    /// OUT holds a CA's certificate without its key, or the key without the certificate.
    fn half_a_ca(&self, ca: Ca, has_cert: bool) -> MkcertsError {
        let (cert_rel, key_rel) = (ca.cert_path(), ca.key_path());
        let (has, lacks) = if has_cert {
            (&cert_rel, &key_rel)
        } else {
            (&key_rel, &cert_rel)
        };
        MkcertsError::bad(
            self.path(has),
            format!(
                "{} is missing, and mkcerts never replaces half of a CA: restore it, or \
                 move {} away to make a new {}",
                self.path(lacks),
                self.path(has),
                ca.name()
            ),
        )
    }

    /// A new self-signed CA, its organization the cluster's name.
    fn new_ca(&mut self, ca: Ca, cluster: &str) -> Result<CaMaterial, MkcertsError> {
        let key = self.options.algorithm.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, ca.name());
        dn.push(DnType::OrganizationName, cluster);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.not_before = self.options.now - BACKDATE;
        params.not_after = self.options.now + Duration::days(self.options.ca_days);
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&key)
            .map_err(|e| MkcertsError::crypto(ca.name(), e))?;
        self.stage(&ca.cert_path(), cert.pem().into_bytes(), PUBLIC_MODE);
        self.stage(&ca.key_path(), key.serialize_pem().into_bytes(), KEY_MODE);
        self.decide(ca.name(), None, "create", None);
        Ok(CaMaterial {
            cert_der: cert.der().to_vec(),
            key,
        })
    }

    fn record_ca(&mut self, ca: Ca, material: &CaMaterial) -> Result<(), MkcertsError> {
        let record = record(
            ca.name(),
            None,
            &ca.cert_path(),
            &ca.key_path(),
            &material.cert_der,
        )?;
        self.records.push(record);
        Ok(())
    }

    fn leaf(&mut self, leaf: &Leaf, ca: &CaMaterial) -> Result<LeafMaterial, MkcertsError> {
        let (cert_rel, key_rel) = (leaf.cert_path(), leaf.key_path());
        let want = self.options.algorithm;
        let node = leaf.node.as_deref();

        // The key: kept whenever it exists and is of the wanted algorithm.
        let (key, key_pem, mut verdict) = match self.existing(&key_rel)? {
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let key = load_key(&text, &self.path(&key_rel))?;
                match KeyAlgorithm::of_key(&key) {
                    Some(have) if have == want => (key, text, None),
                    have => {
                        let reason = format!(
                            "key algorithm {} is not {want}",
                            have.map_or("unknown", KeyAlgorithm::as_str)
                        );
                        let key = want.generate()?;
                        let pem = key.serialize_pem();
                        (key, pem, Some(("rekey", reason)))
                    }
                }
            }
            None => {
                let key = want.generate()?;
                let pem = key.serialize_pem();
                (key, pem, Some(("create", "no key".to_string())))
            }
        };

        let existing_cert = self.existing(&cert_rel)?;
        if verdict.is_none() {
            verdict = match &existing_cert {
                None => Some(("reissue", "certificate missing".to_string())),
                Some(_) if self.options.renew => Some(("reissue", "renew".to_string())),
                Some(bytes) => {
                    stale(bytes, leaf, ca, &key, self.options).map(|reason| ("reissue", reason))
                }
            };
        }
        let cert_pem = match (&verdict, existing_cert) {
            (None, Some(bytes)) => {
                self.decide(leaf.name, node, "reuse", None);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => {
                let (action, reason) = verdict.expect("a leaf without a verdict exists");
                let pem = self.issue(leaf, ca, &key)?;
                let reason = (action != "create").then_some(reason);
                self.decide(leaf.name, node, action, reason);
                pem
            }
        };
        self.stage(&cert_rel, cert_pem.clone().into_bytes(), PUBLIC_MODE);
        self.stage(&key_rel, key_pem.clone().into_bytes(), KEY_MODE);
        let der = pem_der(cert_pem.as_bytes())
            .ok_or_else(|| MkcertsError::crypto(leaf.label(), "issued certificate is not PEM"))?;
        self.records.push(record(
            leaf.name,
            leaf.node.clone(),
            &cert_rel,
            &key_rel,
            &der,
        )?);
        Ok(LeafMaterial { cert_pem, key_pem })
    }

    fn issue(&self, leaf: &Leaf, ca: &CaMaterial, key: &KeyPair) -> Result<String, MkcertsError> {
        let failed = |e: rcgen::Error| MkcertsError::crypto(leaf.label(), e);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for org in &leaf.organizations {
            dn.push(DnType::OrganizationName, org.as_str());
        }
        dn.push(DnType::CommonName, leaf.common_name.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = leaf
            .sans
            .iter()
            .map(|san| match san {
                San::Dns(name) => rcgen::string::Ia5String::try_from(name.as_str())
                    .map(SanType::DnsName)
                    .map_err(|_| {
                        MkcertsError::bad(
                            leaf.label(),
                            format!("SAN {} is not ASCII", hardway::error::quote(name)),
                        )
                    }),
                San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if self.options.algorithm.is_rsa() {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        if leaf.usage.server() {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.usage.client() {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = self.options.now - BACKDATE;
        let ca_not_after = parse_der(&ca.cert_der)
            .map(|c| c.validity().not_after.timestamp())
            .ok()
            .and_then(|ts| OffsetDateTime::from_unix_timestamp(ts).ok());
        let mut not_after = self.options.now + Duration::days(self.options.days);
        if let Some(limit) = ca_not_after {
            not_after = not_after.min(limit);
        }
        params.not_after = not_after;
        let issuer =
            Issuer::from_ca_cert_der(&ca.cert_der.as_slice().into(), &ca.key).map_err(failed)?;
        let cert = params.signed_by(key, &issuer).map_err(failed)?;
        Ok(cert.pem())
    }

    /// The service-account token key pair; the key is kept once made.
    fn service_account_keys(&mut self) -> Result<(), MkcertsError> {
        let (key, pem, action) = match self.existing(plan::SA_KEY)? {
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let key = load_key(&text, &self.path(plan::SA_KEY))?;
                (key, text, "reuse")
            }
            None => {
                let key = self.options.algorithm.generate()?;
                let pem = key.serialize_pem();
                (key, pem, "create")
            }
        };
        self.stage(plan::SA_KEY, pem.into_bytes(), KEY_MODE);
        self.stage(plan::SA_PUB, key.public_key_pem().into_bytes(), PUBLIC_MODE);
        self.decide("sa", None, action, None);
        Ok(())
    }

    /// Secrets encryption at rest; the key is made once and never changed.
    fn encryption_config(&mut self) -> Result<(), MkcertsError> {
        let (contents, action) = match self.existing(plan::ENCRYPTION_CONFIG)? {
            Some(bytes) => {
                kubeconfig::check_encryption_config(&bytes)
                    .map_err(|why| MkcertsError::bad(self.path(plan::ENCRYPTION_CONFIG), why))?;
                (bytes, "reuse")
            }
            None => (
                kubeconfig::encryption_config(&rand::random::<[u8; 32]>())?.into_bytes(),
                "create",
            ),
        };
        self.stage(plan::ENCRYPTION_CONFIG, contents, KEY_MODE);
        self.decide("encryption-config", None, action, None);
        Ok(())
    }

    /// The input document with this run's `files` and `pki` section.
    fn document(&mut self, doc: &Document, plan: &Plan) -> Result<Document, MkcertsError> {
        let sha: BTreeMap<&str, String> = self
            .files
            .iter()
            .map(|f| (f.rel.as_str(), sha256_hex(&f.contents)))
            .collect();
        let mut out = doc.clone();
        for (node, (name, installs)) in out.nodes.iter_mut().zip(&plan.installs) {
            debug_assert_eq!(&node.name, name);
            let files = installs
                .iter()
                .map(|install| FileEntry {
                    src: install.src.clone(),
                    dest: install.dest.to_string(),
                    mode: if install.secret {
                        paths::mode::SECRET
                    } else {
                        paths::mode::PUBLIC
                    }
                    .to_string(),
                    owner: paths::mode::ROOT.to_string(),
                    sha256: sha.get(install.src.as_str()).cloned().unwrap_or_default(),
                    extra: Extra::new(),
                })
                .collect();
            node.replace_files("pki/", files);
        }
        let extra = doc
            .pki
            .as_ref()
            .map(|p| p.extra.clone())
            .unwrap_or_default();
        out.pki = Some(Pki {
            dir: "pki".into(),
            algorithm: self.options.algorithm.as_str().into(),
            certs: std::mem::take(&mut self.records),
            extra,
        });
        Ok(out)
    }
}

/// True when the local certificate and key are the imported CA's.
fn same_ca(material: &CaMaterial, cert: &[u8], key: &[u8]) -> bool {
    pem_der(cert) == Some(material.cert_der.clone())
        && load_key(&String::from_utf8_lossy(key), "")
            .ok()
            .map(|k| k.subject_public_key_info())
            == Some(material.key.subject_public_key_info())
}

/// Why an existing leaf no longer fits the plan, or `None` when it can be kept.
fn stale(
    cert_pem: &[u8],
    leaf: &Leaf,
    ca: &CaMaterial,
    key: &KeyPair,
    options: &Options,
) -> Option<String> {
    let Some(der) = pem_der(cert_pem) else {
        return Some("certificate is not readable PEM".into());
    };
    let Ok(cert) = parse_der(&der) else {
        return Some("certificate does not parse".into());
    };
    let ca_cert = parse_der(&ca.cert_der).ok()?;
    let names = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let cns = names(&mut cert.subject().iter_common_name());
    let mut orgs = names(&mut cert.subject().iter_organization());
    let mut want_orgs = leaf.organizations.clone();
    orgs.sort();
    want_orgs.sort();
    if cns != [leaf.common_name.clone()] || orgs != want_orgs {
        return Some(format!("subject {} changed", cert.subject()));
    }
    let mut have = cert_sans(&cert);
    let mut want = leaf.sans.clone();
    have.sort();
    want.sort();
    if have != want {
        return Some("SANs changed".into());
    }
    let eku = cert.extended_key_usage().ok().flatten();
    let (server, client) = eku.map_or((false, false), |e| {
        (e.value.server_auth, e.value.client_auth)
    });
    if server != leaf.usage.server() || client != leaf.usage.client() {
        return Some("key usages changed".into());
    }
    if cert.issuer().as_raw() != ca_cert.subject().as_raw()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Some(format!("not signed by the current {}", leaf.ca.name()));
    }
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Some("certificate does not match its key".into());
    }
    let not_after = cert.validity().not_after.timestamp();
    if not_after < (options.now + options.renew_before).unix_timestamp() {
        return Some(format!("expires {}", rfc3339(not_after)));
    }
    None
}

fn validate_ca(
    cert_bytes: &[u8],
    key_bytes: &[u8],
    cert_at: &str,
    key_at: &str,
) -> Result<CaMaterial, MkcertsError> {
    let der =
        pem_der(cert_bytes).ok_or_else(|| MkcertsError::bad(cert_at, "not a PEM certificate"))?;
    let cert = parse_der(&der)
        .map_err(|e| MkcertsError::bad(cert_at, format!("not a valid certificate: {e}")))?;
    if !cert.is_ca() {
        return Err(MkcertsError::bad(
            cert_at,
            format!(
                "{} is not a CA certificate (no CA:TRUE basic constraint)",
                cert.subject()
            ),
        ));
    }
    let key = load_key(&String::from_utf8_lossy(key_bytes), key_at)?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(MkcertsError::bad(
            key_at,
            format!("does not match the CA certificate {cert_at}: give the key that belongs to it"),
        ));
    }
    Ok(CaMaterial { cert_der: der, key })
}

fn record(
    name: &str,
    node: Option<String>,
    path: &str,
    key: &str,
    der: &[u8],
) -> Result<CertRecord, MkcertsError> {
    let cert = parse_der(der).map_err(|e| MkcertsError::crypto(path, e))?;
    Ok(CertRecord {
        name: name.to_string(),
        node,
        path: path.to_string(),
        key: Some(key.to_string()),
        subject: cert.subject().to_string(),
        sans: cert_sans(&cert).iter().map(San::to_string).collect(),
        issuer: cert.issuer().to_string(),
        not_after: rfc3339(cert.validity().not_after.timestamp()),
        sha256: sha256_hex(der),
        extra: Extra::new(),
    })
}

/// The DNS and IP SANs of a certificate.
pub fn cert_sans(cert: &X509Certificate) -> Vec<San> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(San::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(San::Ip(<[u8; 4]>::try_from(*bytes).ok()?.into())),
                16 => Some(San::Ip(<[u8; 16]>::try_from(*bytes).ok()?.into())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The DER of the first PEM block of `bytes`.
pub fn pem_der(bytes: &[u8]) -> Option<Vec<u8>> {
    x509_parser::pem::parse_x509_pem(bytes)
        .ok()
        .map(|(_, pem)| pem.contents)
}

pub fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| e.to_string())
}

fn pem_cert(der: &[u8]) -> String {
    let body = base64_lines(der);
    format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A random positive 127-bit serial (RFC 5280 allows up to 20 octets).
fn random_serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from(bytes.to_vec())
}

fn read_input(path: &Path) -> Result<Vec<u8>, MkcertsError> {
    std::fs::read(path).map_err(|e| hardway::Error::input(path.display().to_string(), e).into())
}
