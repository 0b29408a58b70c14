//! The NoCloud seed each node boots with: user-data, meta-data and network-config v2, packed into
//! an ISO 9660 image labelled `CIDATA` (NoCloud matches the label in either case; Joliet and Rock Ridge names, as cloud-localds makes it)
//! entirely in Rust, so neither genisoimage nor a temp file is needed; mkvm uploads the bytes
//! into a pool volume.
//!
//! Everything here is derived from the document, so the same document gives the same seed:
//! the machine-id is a name-based UUID of the cluster, node and MAC (unique per node, never the
//! image's), and the instance-id is a hash of the content, so a changed seed makes cloud-init run
//! again on the next boot.

use std::io::Cursor;
use std::net::IpAddr;
use std::sync::Arc;

use hadris_iso::joliet::JolietLevel;
use hadris_iso::read::PathSeparator;
use hadris_iso::rrip::RripOptions;
use hadris_iso::write::options::{BaseIsoLevel, CreationFeatures, FormatOptions};
use hadris_iso::write::{File as IsoFile, InputFiles, IsoImageWriter};
use ipnet::IpNet;
use serde_json::{json, Value};

use crate::error::MkvmError;

/// A name-based UUID namespace for machine-ids (fixed: changing it changes every machine-id).
const MACHINE_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("6b1f2a7e-3c4d-5e6f-8a9b-0c1d2e3f4a5b");

/// What a node's seed says, before it is rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedInput {
    pub cluster: String,
    pub hostname: String,
    pub fqdn: String,
    pub mac: String,
    /// Each address with the prefix length of its node network.
    pub addresses: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    pub dns: Vec<IpAddr>,
    pub search: Option<String>,
    pub ssh_public_key: String,
    /// Every node of the cluster as (primary ip, fqdn, name): one /etc/hosts on all of them.
    pub hosts: Vec<(IpAddr, String, String)>,
}

/// The three files of a NoCloud seed, and its content hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub user_data: String,
    pub meta_data: String,
    pub network_config: String,
    pub machine_id: String,
    /// sha256 of user-data and network-config: the seed's identity.
    pub sha256: String,
}

fn yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).expect("JSON values always render as YAML")
}

pub fn machine_id(cluster: &str, node: &str, mac: &str) -> String {
    uuid::Uuid::new_v5(
        &MACHINE_ID_NAMESPACE,
        format!("{cluster}/{node}/{mac}").as_bytes(),
    )
    .simple()
    .to_string()
}

/// Renders the seed's files.
pub fn render(input: &SeedInput) -> Seed {
    let machine_id = machine_id(&input.cluster, &input.hostname, &input.mac);
    // manage_etc_hosts re-renders /etc/hosts from this template on every boot; write_files runs
    // before update_etc_hosts, so every node lists the whole cluster (docs/sources.md#seed-003's shared hosts file).
    let mut hosts_template = String::from(
        "## template:jinja\n# Managed by cloud-init from mkvm's seed: every node of the cluster.\n\
         127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    );
    for (ip, fqdn, name) in &input.hosts {
        hosts_template.push_str(&format!("{ip} {fqdn} {name}\n"));
    }
    // The image ships an empty /etc/machine-id, so systemd makes a random one on the first boot;
    // bootcmd pins this node's own from then on (no clone shares the image's).
    let set_machine_id = format!(
        "[ \"$(cat /etc/machine-id 2>/dev/null)\" = {machine_id} ] || {{ umount /etc/machine-id 2>/dev/null; echo {machine_id} > /etc/machine-id; rm -f /var/lib/dbus/machine-id; }}"
    );
    let user_data = json!({
        "hostname": input.hostname,
        "fqdn": input.fqdn,
        "prefer_fqdn_over_hostname": false,
        "manage_etc_hosts": true,
        "disable_root": false,
        "users": [],
        "ssh_pwauth": false,
        // A minimal image has no `locales`: update-locale would fail the boot's cloud-init.
        "locale": false,
        "ssh_deletekeys": true,
        "ssh_authorized_keys": [input.ssh_public_key],
        "bootcmd": [["sh", "-c", set_machine_id]],
        "write_files": [
            {"path": "/etc/cloud/templates/hosts.debian.tmpl", "permissions": "0644", "content": hosts_template},
        ],
    });
    let user_data = format!("#cloud-config\n{}", yaml(&user_data));

    let mut ethernet = serde_json::Map::new();
    ethernet.insert("match".into(), json!({"macaddress": input.mac}));
    ethernet.insert("set-name".into(), json!("eth0"));
    ethernet.insert(
        "addresses".into(),
        json!(input
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()),
    );
    for gateway in &input.gateways {
        let key = if gateway.is_ipv4() {
            "gateway4"
        } else {
            "gateway6"
        };
        ethernet.insert(key.into(), json!(gateway.to_string()));
    }
    let mut nameservers = serde_json::Map::new();
    nameservers.insert(
        "addresses".into(),
        json!(input
            .dns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()),
    );
    if let Some(search) = &input.search {
        nameservers.insert("search".into(), json!([search]));
    }
    ethernet.insert("nameservers".into(), Value::Object(nameservers));
    let network_config = yaml(&json!({"version": 2, "ethernets": {"eth0": ethernet}}));

    let sha256 = hardway::fsutil::sha256_hex(format!("{user_data}\0{network_config}").as_bytes());
    let meta_data = yaml(&json!({
        "instance-id": format!("hardway-{}", &sha256[..16]),
        "local-hostname": input.hostname,
    }));
    Seed {
        user_data,
        meta_data,
        network_config,
        machine_id,
        sha256,
    }
}

/// Packs the seed into an ISO 9660 image labelled `CIDATA` (ISO 9660 volume ids are upper
/// case; NoCloud looks for `cidata` in either case).
pub fn iso(seed: &Seed) -> Result<Vec<u8>, MkvmError> {
    let file = |name: &str, text: &str| IsoFile::File {
        name: Arc::new(name.to_string()),
        contents: text.as_bytes().to_vec(),
    };
    let files = InputFiles {
        path_separator: PathSeparator::ForwardSlash,
        files: vec![
            file("meta-data", &seed.meta_data),
            file("network-config", &seed.network_config),
            file("user-data", &seed.user_data),
        ],
    };
    let options = FormatOptions {
        volume_name: "CIDATA".to_string(),
        sector_size: 2048,
        path_seperator: PathSeparator::ForwardSlash,
        features: CreationFeatures {
            filenames: BaseIsoLevel::Level2 {
                supports_lowercase: false,
                supports_rrip: true,
            },
            long_filenames: false,
            joliet: Some(JolietLevel::Level3),
            rock_ridge: Some(RripOptions::default()),
            el_torito: None,
            hybrid_boot: None,
        },
    };
    // The writer seeks and reads back within its buffer, so it needs the space up front; the
    // image is then cut to the size its primary volume descriptor records.
    let content: usize = [&seed.user_data, &seed.meta_data, &seed.network_config]
        .iter()
        .map(|t| t.len().div_ceil(2048) * 2048)
        .sum();
    let mut buffer = Cursor::new(vec![0u8; content + 512 * 1024]);
    IsoImageWriter::format_new(&mut buffer, files, options)
        .map_err(|e| MkvmError::preflight("seed", format!("cannot build the cidata ISO: {e}")))?;
    let mut bytes = buffer.into_inner();
    let pvd = 16 * 2048;
    let sectors = u32::from_le_bytes(bytes[pvd + 80..pvd + 84].try_into().expect("4 bytes"));
    let used = (sectors as usize * 2048).clamp(pvd + 2048, bytes.len());
    bytes.truncate(used);
    fix_joliet_descriptor(&mut bytes);
    Ok(bytes)
}

/// hadris-iso 0.2.1 writes the Joliet descriptor's volume id in ASCII and pads the escape
/// sequence with spaces; blkid then reads the label as UCS-2 garbage and NoCloud never finds
/// the seed. Rewrite both as the Joliet spec (and genisoimage) have them: the id in UCS-2BE
/// (lower-case `cidata`, space padded), the escape sequence zero padded.
fn fix_joliet_descriptor(bytes: &mut [u8]) {
    let mut sector = 16;
    while (sector + 1) * 2048 <= bytes.len() {
        let d = &mut bytes[sector * 2048..(sector + 1) * 2048];
        if &d[1..6] != b"CD001" || d[0] == 255 {
            break;
        }
        if d[0] == 2 && d[88] == b'%' && d[89] == b'/' {
            let mut id = [0u8; 32];
            for (i, unit) in "cidata"
                .encode_utf16()
                .chain(std::iter::repeat(0x20))
                .take(16)
                .enumerate()
            {
                id[2 * i..2 * i + 2].copy_from_slice(&unit.to_be_bytes());
            }
            d[40..72].copy_from_slice(&id);
            d[91..120].fill(0);
        }
        sector += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SeedInput {
        SeedInput {
            cluster: "lab".into(),
            hostname: "node-1".into(),
            fqdn: "node-1.example.com".into(),
            mac: "52:54:00:3a:71:0c".into(),
            addresses: vec!["10.240.0.11/24".parse().unwrap()],
            gateways: vec!["10.240.0.1".parse().unwrap()],
            dns: vec!["10.240.0.1".parse().unwrap()],
            search: Some("example.com".into()),
            ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE test".into(),
            hosts: vec![(
                "10.240.0.11".parse().unwrap(),
                "node-1.example.com".into(),
                "node-1".into(),
            )],
        }
    }

    #[test]
    fn seeds_are_deterministic_and_change_with_content() {
        let a = render(&input());
        assert_eq!(a, render(&input()));
        assert!(a.user_data.starts_with("#cloud-config\n"));
        let user: Value = serde_yaml_ng::from_str(&a.user_data).unwrap();
        assert_eq!(user["fqdn"], "node-1.example.com");
        assert_eq!(user["manage_etc_hosts"], true);
        assert_eq!(user["ssh_authorized_keys"][0], input().ssh_public_key);
        let net: Value = serde_yaml_ng::from_str(&a.network_config).unwrap();
        assert_eq!(net["ethernets"]["eth0"]["addresses"][0], "10.240.0.11/24");
        assert_eq!(net["ethernets"]["eth0"]["gateway4"], "10.240.0.1");
        let meta: Value = serde_yaml_ng::from_str(&a.meta_data).unwrap();
        assert_eq!(meta["instance-id"], format!("hardway-{}", &a.sha256[..16]));
        let mut other = input();
        other.addresses = vec!["10.240.0.99/24".parse().unwrap()];
        assert_ne!(render(&other).sha256, a.sha256);
        // Another node never shares a machine-id.
        assert_ne!(
            machine_id("lab", "node-1", &other.mac),
            machine_id("lab", "node-2", &other.mac)
        );
        assert_eq!(a.machine_id.len(), 32);
    }

    #[test]
    fn the_iso_is_labelled_cidata_and_holds_the_files() {
        let bytes = iso(&render(&input())).unwrap();
        // The primary volume descriptor at sector 16: "CD001", volume id at offset 40.
        let pvd = &bytes[16 * 2048..17 * 2048];
        assert_eq!(&pvd[1..6], b"CD001");
        assert!(pvd[40..72].starts_with(b"CIDATA") || pvd[40..72].starts_with(b"cidata"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("#cloud-config"));
        assert!(text.contains("instance-id"));
    }
}
