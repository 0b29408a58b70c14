//! Kubeconfigs and the Secrets encryption config, as YAML.
//!
//! Written with serde_yaml_ng: serde_yaml is archived by its author (no fixes since 2024), and
//! serde_yaml_ng is its maintained fork with the same serde API, so the files are plain serde
//! structs, rendered deterministically (same inputs, same bytes, so FileSet skips them).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::MkcertsError;

/// A kubeconfig as client-go reads it (k8s.io/client-go/tools/clientcmd/api/v1 types.go): the
/// type meta is camelCase (`apiVersion`, `kind`), every other key kebab-case
/// (`current-context`, `certificate-authority-data`). Strict readers refuse `api-version`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub clusters: Vec<NamedCluster>,
    pub users: Vec<NamedUser>,
    pub contexts: Vec<NamedContext>,
    pub current_context: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: ClusterEntry,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterEntry {
    pub certificate_authority_data: String,
    pub server: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: UserEntry,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UserEntry {
    pub client_certificate_data: String,
    pub client_key_data: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: ContextEntry,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContextEntry {
    pub cluster: String,
    pub user: String,
}

/// A kubeconfig with the CA, client certificate and key embedded (`*-data`), one context.
pub fn render(
    cluster: &str,
    server: &str,
    user: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<String, MkcertsError> {
    let config = Config {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![NamedCluster {
            name: cluster.into(),
            cluster: ClusterEntry {
                certificate_authority_data: STANDARD.encode(ca_pem),
                server: server.into(),
            },
        }],
        users: vec![NamedUser {
            name: user.into(),
            user: UserEntry {
                client_certificate_data: STANDARD.encode(cert_pem),
                client_key_data: STANDARD.encode(key_pem),
            },
        }],
        contexts: vec![NamedContext {
            name: "default".into(),
            context: ContextEntry {
                cluster: cluster.into(),
                user: user.into(),
            },
        }],
        current_context: "default".into(),
    };
    serde_yaml_ng::to_string(&config).map_err(|e| MkcertsError::crypto("kubeconfig", e))
}

/// Parses a kubeconfig written by [`render`] (or kubectl).
pub fn parse(text: &str) -> Result<Config, String> {
    serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
}

/// Decodes a `*-data` field.
pub fn decode(data: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(data.trim()).map_err(|e| e.to_string())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptionConfiguration {
    api_version: String,
    kind: String,
    resources: Vec<EncryptedResources>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EncryptedResources {
    resources: Vec<String>,
    providers: Vec<Provider>,
}

/// One provider: exactly one of the fields is set (a YAML map with one key, as Kubernetes reads it).
///
/// mkcerts writes `secretbox` (XSalsa20-Poly1305) first and `identity` last, so Secrets written
/// before encryption was turned on can still be read. secretbox over aescbc: Kubernetes' docs
/// rate aescbc as weak (CBC is open to padding-oracle attacks) and secretbox as strong and fast;
/// both take a 32-byte key and need no KMS plugin, which a hard-way cluster does not have. (Older
/// CIS benchmarks preferred aescbc, and the docs note secretbox may not pass a FIPS-style review;
/// [`check_encryption_config`] accepts an aescbc config a user puts in place, and keeps it.)
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Provider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secretbox: Option<Keys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aescbc: Option<Keys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aesgcm: Option<Keys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<Identity>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Keys {
    keys: Vec<Key>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Identity {}

#[derive(Debug, Serialize, Deserialize)]
struct Key {
    name: String,
    secret: String,
}

pub fn encryption_config(key: &[u8; 32]) -> Result<String, MkcertsError> {
    let config = EncryptionConfiguration {
        api_version: "apiserver.config.k8s.io/v1".into(),
        kind: "EncryptionConfiguration".into(),
        resources: vec![EncryptedResources {
            resources: vec!["secrets".into()],
            providers: vec![
                Provider {
                    secretbox: Some(Keys {
                        keys: vec![Key {
                            name: "key1".into(),
                            secret: STANDARD.encode(key),
                        }],
                    }),
                    ..Provider::default()
                },
                Provider {
                    identity: Some(Identity {}),
                    ..Provider::default()
                },
            ],
        }],
    };
    serde_yaml_ng::to_string(&config).map_err(|e| MkcertsError::crypto("encryption config", e))
}

/// Checks that an existing encryption config is one mkcerts can keep: parses, and every key is
/// 32 bytes of base64.
pub fn check_encryption_config(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let config: EncryptionConfiguration = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("not an EncryptionConfiguration ({e}): fix or move it away"))?;
    for resource in &config.resources {
        for provider in &resource.providers {
            let keyed = [&provider.secretbox, &provider.aescbc, &provider.aesgcm];
            for key in keyed.into_iter().flatten().flat_map(|k| &k.keys) {
                let len = decode(&key.secret).map(|k| k.len()).unwrap_or(0);
                if !matches!(len, 16 | 24 | 32) {
                    return Err(format!(
                        "key {:?} is not 16, 24 or 32 bytes of base64",
                        key.name
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_config_round_trips_and_holds_a_32_byte_secretbox_key() {
        let text = encryption_config(&[7u8; 32]).unwrap();
        assert!(text.contains("secretbox:"), "{text}");
        assert!(text.contains("identity: {}"), "{text}");
        check_encryption_config(text.as_bytes()).unwrap();
        assert!(check_encryption_config(b"kind: [").is_err());
    }

    #[test]
    fn kubeconfig_is_deterministic_and_parses_back() {
        let a = render("lab", "https://10.0.0.1:6443", "admin", "CA", "CERT", "KEY").unwrap();
        let b = render("lab", "https://10.0.0.1:6443", "admin", "CA", "CERT", "KEY").unwrap();
        assert_eq!(a, b);
        let config = parse(&a).unwrap();
        assert_eq!(config.api_version, "v1");
        assert_eq!(config.current_context, "default");
        // The key itself, as client-go's strict decoding reads it.
        let keys: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(&a).unwrap();
        assert!(keys.contains_key("apiVersion"), "{a}");
        assert!(!keys.contains_key("api-version"), "{a}");
        assert_eq!(
            decode(&config.users[0].user.client_key_data).unwrap(),
            b"KEY"
        );
    }
}
