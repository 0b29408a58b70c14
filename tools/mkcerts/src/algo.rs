//! Key algorithms: generating keys, and telling which algorithm an existing key or certificate uses
//! (a leaf whose key no longer matches `--key-algorithm` is re-keyed).
//!
//! rcgen's ring backend signs with RSA keys but cannot generate them, so RSA keys come from
//! OpenSSL (the `openssl` crate) as PKCS#8 and are handed to rcgen like any loaded key.

use std::fmt;

use rcgen::{KeyPair, PublicKeyData};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::MkcertsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa4096,
}

impl KeyAlgorithm {
    pub const NAMES: [&'static str; 4] = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-4096"];

    pub fn parse(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "ecdsa-p256" => Some(KeyAlgorithm::EcdsaP256),
            "ecdsa-p384" => Some(KeyAlgorithm::EcdsaP384),
            "rsa-2048" => Some(KeyAlgorithm::Rsa2048),
            "rsa-4096" => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096)
    }

    /// A new private key of this algorithm.
    pub fn generate(self) -> Result<KeyPair, MkcertsError> {
        let failed = |e: &dyn fmt::Display| MkcertsError::crypto("key generation", e);
        match self {
            KeyAlgorithm::EcdsaP256 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| failed(&e))
            }
            KeyAlgorithm::EcdsaP384 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(|e| failed(&e))
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096 => {
                let bits = if self == KeyAlgorithm::Rsa2048 {
                    2048
                } else {
                    4096
                };
                let rsa = openssl::rsa::Rsa::generate(bits).map_err(|e| failed(&e))?;
                let pkey = openssl::pkey::PKey::from_rsa(rsa).map_err(|e| failed(&e))?;
                let pkcs8 = pkey.private_key_to_pkcs8().map_err(|e| failed(&e))?;
                KeyPair::from_pkcs8_der_and_sign_algo(
                    &pkcs8.as_slice().into(),
                    &rcgen::PKCS_RSA_SHA256,
                )
                .map_err(|e| failed(&e))
            }
        }
    }

    /// The algorithm of a DER SubjectPublicKeyInfo, if it is one of ours.
    pub fn of_spki(spki_der: &[u8]) -> Option<KeyAlgorithm> {
        let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
        match spki.parsed().ok()? {
            PublicKey::EC(point) => match point.key_size() {
                256 => Some(KeyAlgorithm::EcdsaP256),
                384 => Some(KeyAlgorithm::EcdsaP384),
                _ => None,
            },
            PublicKey::RSA(rsa) => match rsa.key_size() {
                2048 => Some(KeyAlgorithm::Rsa2048),
                4096 => Some(KeyAlgorithm::Rsa4096),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn of_key(key: &KeyPair) -> Option<KeyAlgorithm> {
        KeyAlgorithm::of_spki(&key.subject_public_key_info())
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a PEM private key (PKCS#8, "PRIVATE KEY"); `at` names the file in errors.
pub fn load_key(pem: &str, at: &str) -> Result<KeyPair, MkcertsError> {
    KeyPair::from_pem(pem).map_err(|e| {
        MkcertsError::bad(
            at,
            format!(
                "not a usable private key ({e}): give an unencrypted PKCS#8 PEM key \
                 (convert with `openssl pkcs8 -topk8 -nocrypt -in KEY`)"
            ),
        )
    })
}
