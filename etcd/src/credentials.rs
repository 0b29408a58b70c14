//! The TLS material for every connection to the members: read and checked once, before any
//! connection, then turned into rustls and tonic configurations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use etcd_client::{Certificate, Identity, TlsOptions};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

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

/// TLS configuration for both connections, built once (bad credentials are exit 2 before any
/// connection is tried).
pub struct Tls {
    /// For a TLS handshake of one's own (etcd-check reads the server certificate with it).
    pub rustls: Arc<rustls::ClientConfig>,
    /// For tonic's gRPC channel.
    pub tonic: TlsOptions,
}

impl Tls {
    pub fn new(credentials: &Credentials) -> Result<Option<Tls>, Error> {
        let Some(ca) = &credentials.ca else {
            return Ok(None);
        };
        let bad = |path: &std::path::Path, message: String| Error::Credential {
            path: path.display().to_string(),
            message,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca.pem) {
            let cert = cert.map_err(|e| bad(&ca.path, e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| bad(&ca.path, format!("not a usable CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots);
        let mut tonic = TlsOptions::new().ca_certificate(Certificate::from_pem(&ca.pem));
        let mut config = match &credentials.client {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert.pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(&cert.path, e.to_string()))?;
                let private = PrivateKeyDer::from_pem_slice(&key.pem)
                    .map_err(|e| bad(&key.path, e.to_string()))?;
                tonic = tonic.identity(Identity::from_pem(&cert.pem, &key.pem));
                builder.with_client_auth_cert(chain, private).map_err(|e| {
                    bad(
                        &key.path,
                        format!("does not go with {}: {e}", cert.path.display()),
                    )
                })?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(Tls {
            rustls: Arc::new(config),
            tonic: tonic.assume_http2(true),
        }))
    }
}
