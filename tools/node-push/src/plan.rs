//! What to push where, decided before any connection: the nodes selected, their addresses, their
//! files checked and hashed locally, and which services each file's change restarts.
//!
//! Everything here is checked up front so bad input (a missing file, a stale sha256, a relative
//! destination, an unknown node in `--only`) exits 2 before a single host is contacted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hardway::doc::{Document, Node, Role};
use hardway::Error;
use sha2::{Digest, Sha256};

/// Files larger than this are not scanned for paths they mention (they are data, not configs).
const SCAN_LIMIT: u64 = 1 << 20;

/// A unit or drop-in lives in a `…/systemd/system/` directory (/etc, /run, /usr/lib, /lib, or
/// the same under another root): a change there needs `systemctl daemon-reload`.
const UNIT_DIR: &str = "/systemd/system/";

/// Where a node's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFrom {
    /// The node's first IP (`nodes[].ips[0]`).
    Ip,
    /// The address mkvm saw (`nodes[].vm.address`).
    Vm,
}

/// A host and port to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parses `HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address.
    pub fn parse(text: &str, default_port: u16) -> Option<Target> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => default_port,
                _ => after.strip_prefix(':')?.parse().ok()?,
            };
            return valid_host(host).then(|| Target {
                host: host.into(),
                port,
            });
        }
        if text.parse::<IpAddr>().is_ok() {
            return Some(Target {
                host: text.into(),
                port: default_port,
            });
        }
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (text, default_port),
        };
        (valid_host(host) && port != 0).then(|| Target {
            host: host.into(),
            port,
        })
    }

    /// The name known_hosts uses: `host` on port 22, `[host]:port` otherwise (as OpenSSH).
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_' | '%'))
}

/// How to select and reach nodes.
#[derive(Debug, Clone)]
pub struct Selection {
    pub dir: PathBuf,
    pub port: u16,
    pub address_from: AddressFrom,
    /// `--address NODE=HOST[:PORT]` overrides.
    pub addresses: BTreeMap<String, Target>,
    /// `--only`: empty means every node.
    pub only: Vec<String>,
    /// `--roles`: empty means any role.
    pub roles: Vec<Role>,
}

/// One file to install, checked and hashed locally.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFile {
    /// The file under `--dir`.
    pub path: PathBuf,
    /// Absolute path on the node.
    pub dest: String,
    pub mode: u32,
    pub owner: String,
    pub sha256: String,
    pub size: u64,
    /// The node's services to restart when this file changes, in the node's service order.
    pub restarts: Vec<String>,
    /// True for a systemd unit or drop-in: its change needs a daemon-reload.
    pub is_unit: bool,
}

/// Everything to do on one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    pub name: String,
    pub target: Target,
    pub files: Vec<LocalFile>,
    pub services: Vec<String>,
    /// Where its restart goes in a rollout.
    pub tier: crate::waves::Tier,
}

/// Parses `NODE=HOST[:PORT]`.
pub fn parse_address_override(text: &str, default_port: u16) -> Result<(String, Target), Error> {
    let bad = || {
        Error::invalid(
            "--address",
            format!(
                "{} is not NODE=HOST[:PORT] (e.g. node-1=127.0.0.1:2222)",
                hardway::error::quote(text)
            ),
        )
    };
    let (node, address) = text.split_once('=').ok_or_else(bad)?;
    let target = Target::parse(address, default_port).ok_or_else(bad)?;
    Ok((node.trim().to_string(), target))
}

/// Selects the nodes, resolves their addresses and checks and hashes their files.
pub fn plan(doc: &Document, selection: &Selection) -> Result<Vec<NodePlan>, Error> {
    for name in selection.only.iter().chain(selection.addresses.keys()) {
        if doc.node(name).is_none() {
            let known: Vec<&str> = doc.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::invalid(
                "--only/--address",
                format!(
                    "no node named {name:?} in the document (nodes: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    let dir = crate::local::resolve_dir(&selection.dir)
        .map_err(|e| Error::input(format!("--dir {}", selection.dir.display()), e))?;
    let mut hashes = HashCache::default();
    let mut plans = Vec::new();
    for (index, node) in doc.nodes.iter().enumerate() {
        if !selection.only.is_empty() && !selection.only.contains(&node.name) {
            continue;
        }
        if !selection.roles.is_empty() && !selection.roles.iter().any(|r| node.has_role(*r)) {
            continue;
        }
        plans.push(plan_node(index, node, selection, &dir, &mut hashes)?);
    }
    Ok(plans)
}

fn plan_node(
    index: usize,
    node: &Node,
    selection: &Selection,
    dir: &Path,
    hashes: &mut HashCache,
) -> Result<NodePlan, Error> {
    let at = format!("nodes[{index}]");
    let target = match selection.addresses.get(&node.name) {
        Some(target) => target.clone(),
        None => address_of(&at, node, selection)?,
    };
    // Unit names, destinations, modes, owners and sources were checked when the document was
    // read (hardway::doc::read): here they are only used.
    let mut files = Vec::with_capacity(node.files.len());
    let mut dests = BTreeSet::new();
    let mut texts = Vec::with_capacity(node.files.len());
    for (f, entry) in node.files.iter().enumerate() {
        let at = format!("{at}.files[{f}]");
        if !dests.insert(entry.dest.as_str()) {
            return Err(Error::invalid(
                format!("{at}.dest"),
                format!("{} is listed twice for node {}", entry.dest, node.name),
            ));
        }
        let mode = hardway::validate::file_mode(&entry.mode)
            .map_err(|why| Error::invalid(format!("{at}.mode"), why))?;
        hardway::validate::relative_path(&entry.src)
            .map_err(|why| Error::invalid(format!("{at}.src"), why))?;
        let path = dir.join(&entry.src);
        let local = hashes.get(&path, &format!("{at}.src"))?;
        if !entry.sha256.is_empty() && !entry.sha256.eq_ignore_ascii_case(&local.sha256) {
            return Err(Error::invalid(
                format!("{at}.sha256"),
                format!(
                    "{} has sha256 {} but the document says {}: the file changed after the \
                     document was written; re-run the tool that wrote it",
                    path.display(),
                    local.sha256,
                    entry.sha256
                ),
            ));
        }
        let explicit: Vec<String> = entry
            .extra
            .get("restart")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        texts.push((entry.dest.clone(), local.text.clone(), explicit));
        files.push(LocalFile {
            path,
            dest: entry.dest.clone(),
            mode,
            owner: entry.owner.clone(),
            sha256: local.sha256.clone(),
            size: local.size,
            restarts: Vec::new(),
            is_unit: is_unit(&entry.dest),
        });
    }
    let restarts = services_affected(&texts, &node.services);
    for (file, restarts) in files.iter_mut().zip(restarts) {
        file.restarts = restarts;
    }
    Ok(NodePlan {
        name: node.name.clone(),
        target,
        files,
        services: node.services.clone(),
        tier: crate::waves::Tier::of(node),
    })
}

fn address_of(at: &str, node: &Node, selection: &Selection) -> Result<Target, Error> {
    let host = match selection.address_from {
        AddressFrom::Ip => node.primary_ip().map(|ip| ip.to_string()).ok_or_else(|| {
            Error::invalid(
                format!("{at}.ips"),
                format!(
                    "node {} has no address: run cidr-alloc first, or pass --address {}=HOST",
                    node.name, node.name
                ),
            )
        })?,
        AddressFrom::Vm => node
            .vm
            .as_ref()
            .and_then(|vm| vm.address)
            .map(|ip| ip.to_string())
            .ok_or_else(|| {
                Error::invalid(
                    format!("{at}.vm.address"),
                    format!(
                        "node {} has no vm.address: run mkvm up first, or use --address-from ip",
                        node.name
                    ),
                )
            })?,
    };
    Target::parse(&host, selection.port).ok_or_else(|| {
        Error::invalid(
            format!("{at}.ips"),
            format!(
                "{} is not an address node-push can connect to",
                hardway::error::quote(&host)
            ),
        )
    })
}

/// True for a path in one of systemd's unit directories.
pub fn is_unit(dest: &str) -> bool {
    dest.contains(UNIT_DIR)
}

/// For each file, the services whose unit, drop-ins or (transitively) mentioned files include
/// it, plus those its entry names in `restart`; in the order of `services`.
///
/// `files` holds each file's destination, its text (None when too large or not text) and its
/// explicit `restart` list.
pub fn services_affected(
    files: &[(String, Option<String>, Vec<String>)],
    services: &[String],
) -> Vec<Vec<String>> {
    let mut affected: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); files.len()];
    for (s, service) in services.iter().enumerate() {
        let drop_in_dir = format!("/{service}.d/");
        let mut reached: BTreeSet<usize> = files
            .iter()
            .enumerate()
            .filter(|(_, (dest, _, explicit))| {
                dest.rsplit('/').next() == Some(service.as_str())
                    || (is_unit(dest) && dest.contains(&drop_in_dir))
                    || explicit.contains(service)
            })
            .map(|(i, _)| i)
            .collect();
        let mut frontier: Vec<usize> = reached.iter().copied().collect();
        while let Some(from) = frontier.pop() {
            let Some(text) = &files[from].1 else { continue };
            for (to, (dest, _, _)) in files.iter().enumerate() {
                if !reached.contains(&to) && mentions(text, dest) {
                    reached.insert(to);
                    frontier.push(to);
                }
            }
        }
        for file in reached {
            affected[file].insert(s);
        }
    }
    affected
        .into_iter()
        .map(|set| set.into_iter().map(|s| services[s].clone()).collect())
        .collect()
}

/// True when `text` names `path` as a whole path (not as the prefix of a longer one).
fn mentions(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(at, _)| {
        let after = text[at + path.len()..].chars().next();
        !matches!(after, Some(c) if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    })
}

#[derive(Debug, Clone)]
struct Hashed {
    sha256: String,
    size: u64,
    text: Option<String>,
}

/// Each local file is read once however many nodes get it.
#[derive(Default)]
struct HashCache {
    seen: BTreeMap<PathBuf, Hashed>,
}

impl HashCache {
    /// The hash of a plain file inside --dir; `at` is the JSON path that names it.
    fn get(&mut self, path: &Path, at: &str) -> Result<&Hashed, Error> {
        if !self.seen.contains_key(path) {
            let hashed = hash_file(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidInput => {
                    Error::invalid(at, format!("{}: {e}", path.display()))
                }
                _ => Error::input(
                    format!(
                        "{} (run mkcerts/mkunits with this --dir first, or pass the right --dir)",
                        path.display()
                    ),
                    e,
                ),
            })?;
            self.seen.insert(path.to_path_buf(), hashed);
        }
        Ok(&self.seen[path])
    }
}

fn hash_file(path: &Path) -> std::io::Result<Hashed> {
    let mut file = crate::local::open_plain(path)?;
    let size = file.metadata()?.len();
    let mut hasher = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if size <= SCAN_LIMIT {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    Ok(Hashed {
        sha256: hex::encode(hasher.finalize()),
        size,
        text: String::from_utf8(kept).ok().filter(|_| size <= SCAN_LIMIT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_ssh_destinations() {
        let t = Target::parse("127.0.0.1:2222", 22).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 2222));
        assert_eq!(t.known_hosts_name(), "[127.0.0.1]:2222");
        let t = Target::parse("fd00::1", 22).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fd00::1", 22));
        assert_eq!(t.known_hosts_name(), "fd00::1");
        assert_eq!(t.to_string(), "[fd00::1]:22");
        let t = Target::parse("[fd00::1]:2200", 22).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fd00::1", 2200));
        assert!(Target::parse("host:notaport", 22).is_none());
        assert!(Target::parse("a b", 22).is_none());
        let (node, t) = parse_address_override("node-1=localhost", 2022).unwrap();
        assert_eq!((node.as_str(), t.port), ("node-1", 2022));
        assert!(parse_address_override("node-1", 22).is_err());
    }

    #[test]
    fn addresses_come_from_ips_vm_or_overrides() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/lab.json"
        ))
        .unwrap();
        let mut doc = hardway::doc::from_str(&text, "lab.json").unwrap();
        let mut selection = Selection {
            dir: ".".into(),
            port: 2200,
            address_from: AddressFrom::Ip,
            addresses: BTreeMap::new(),
            only: vec![],
            roles: vec![],
        };
        let plans = plan(&doc, &selection).unwrap();
        assert_eq!(plans[0].target.to_string(), "10.240.0.11:2200");
        selection.address_from = AddressFrom::Vm;
        let err = plan(&doc, &selection).unwrap_err().to_string();
        assert!(err.contains("nodes[0].vm.address"), "{err}");
        for node in &mut doc.nodes {
            node.vm = Some(hardway::doc::VmStatus {
                address: Some("192.168.122.7".parse().unwrap()),
                ..Default::default()
            });
        }
        selection.addresses.insert(
            "node-2".into(),
            Target::parse("127.0.0.1:2222", 22).unwrap(),
        );
        selection.only = vec!["node-1".into(), "node-2".into()];
        let plans = plan(&doc, &selection).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].target.to_string(), "192.168.122.7:2200");
        assert_eq!(plans[1].target.to_string(), "127.0.0.1:2222");
        selection.roles = vec![Role::Lb];
        assert!(plan(&doc, &selection).unwrap().is_empty());
    }

    #[test]
    fn modes_owners_and_destinations_are_checked() {
        use hardway::validate::{absolute_path, file_mode, owner, relative_path};
        assert_eq!(file_mode("0644"), Ok(0o644));
        assert_eq!(file_mode("600"), Ok(0o600));
        assert!(file_mode("0999").is_err());
        assert!(file_mode("17777").is_err());
        assert!(owner("root:root").is_ok());
        assert!(owner("etcd").is_ok());
        assert!(owner("root:$(reboot)").is_err());
        assert!(absolute_path("/etc/etcd/ca.pem").is_ok());
        assert!(absolute_path("etc/ca.pem").is_err());
        assert!(absolute_path("/etc/../ca.pem").is_err());
        assert!(absolute_path("/etc/ca\n.pem").is_err());
        assert!(relative_path("../x").is_err());
    }

    #[test]
    fn restarts_follow_units_drop_ins_and_mentioned_paths() {
        let file =
            |dest: &str, text: Option<&str>| (dest.to_string(), text.map(String::from), vec![]);
        let files = vec![
            file(
                "/etc/systemd/system/kubelet.service",
                Some("ExecStart=/usr/local/bin/kubelet --config=/var/lib/kubelet/kubelet-config.yaml"),
            ),
            file(
                "/var/lib/kubelet/kubelet-config.yaml",
                Some("tlsCertFile: /var/lib/kubelet/kubelet.pem\n"),
            ),
            file("/var/lib/kubelet/kubelet.pem", Some("cert")),
            file("/var/lib/kubelet/kubelet.pem.old", None),
            file("/etc/systemd/system/containerd.service.d/10-x.conf", Some("")),
            file("/etc/hosts", Some("10.0.0.1 a")),
            (
                "/etc/containerd/config.toml".into(),
                None,
                vec!["containerd.service".into()],
            ),
        ];
        let services = [
            "containerd.service".to_string(),
            "kubelet.service".to_string(),
        ];
        let affected = services_affected(&files, &services);
        assert_eq!(affected[0], ["kubelet.service"]);
        assert_eq!(affected[1], ["kubelet.service"]);
        assert_eq!(affected[2], ["kubelet.service"]);
        assert!(affected[3].is_empty(), "a longer path is not a mention");
        assert_eq!(affected[4], ["containerd.service"]);
        assert!(affected[5].is_empty());
        assert_eq!(affected[6], ["containerd.service"]);
        assert!(is_unit("/etc/systemd/system/kubelet.service"));
        assert!(!is_unit("/etc/hosts"));
    }
}
