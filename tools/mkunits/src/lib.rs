//! mkunits: every node's systemd units and configuration files, rendered from the document.
//!
//! [`render::render`] turns the document and [`Options`] into each node's files and services
//! (pure, no I/O); [`apply`] writes them under `OUT/nodes/<node>/` all together or not at all,
//! copies the route-sync binary once to `OUT/bin/`, and records every file in the node's `files`
//! and the units in its `services`. `run` is the command line around both.

pub mod cli;
pub mod layout;
pub mod ports;
pub mod render;
pub mod unit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use hardway::doc::{Document, FileEntry, PodNetwork};
use hardway::fsutil::{sha256_hex, FileSet};
use hardway::paths::mode;
use hardway::table::Format;
use hardway::{Error, Exit, Failure};
use serde::Serialize;

pub use render::{EtcdTuning, NodeFile, NodePlan};

/// Prefix of the files mkunits owns in every node's `files`, relative to the output directory.
pub const NODES_PREFIX: &str = "nodes/";
/// Prefix of the binaries mkunits copies for nodes.
pub const BIN_PREFIX: &str = "bin/";

/// Where the binaries nodes need come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySources {
    /// hardway's own (route-sync): `--bin-dir`.
    pub hardway: PathBuf,
    /// Kubernetes' server binaries (`--kubernetes-bin-dir`); `None`: the nodes get them some
    /// other way (an image, a package) and mkunits lists none.
    pub kubernetes: Option<PathBuf>,
}

impl BinarySources {
    /// The file a binary comes from, with what to do when it is missing; `None` when it is not
    /// mkunits' to ship.
    fn source(&self, name: &str) -> Option<(PathBuf, &'static str)> {
        if name == render::ROUTE_SYNC {
            return Some((
                self.hardway.join(name),
                "every node needs for its pod routes: build it (cargo build -p route-sync) or \
                 give its directory with --bin-dir",
            ));
        }
        self.kubernetes.as_ref().map(|dir| {
            (
                dir.join(name),
                "the nodes' roles run: fetch the release (scripts/fetch-kubernetes.sh VERSION \
                 DIR) or fix --kubernetes-bin-dir",
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MkunitsError {
    #[error(transparent)]
    Shared(#[from] Error),
    #[error("{path}: no such binary, which {why}")]
    MissingBinary { path: String, why: &'static str },
}

impl Failure for MkunitsError {
    fn is_closed_stdout(&self) -> bool {
        matches!(self, MkunitsError::Shared(e) if e.is_closed_stdout())
    }

    fn exit(&self) -> Exit {
        match self {
            MkunitsError::Shared(e) => e.exit(),
            MkunitsError::MissingBinary { .. } => Exit::Usage,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Containerd,
    CriO,
}

/// The choices users make; everything else comes from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub runtime: Runtime,
    /// `None`: the document's `cluster.pod_network`.
    pub pod_network: Option<PodNetwork>,
    pub etcd: EtcdTuning,
    /// Where the CNI plugins are on the nodes.
    pub cni_bin_dir: String,
    /// The interface keepalived puts the VIP on.
    pub vrrp_interface: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runtime: Runtime::Containerd,
            pod_network: None,
            etcd: EtcdTuning::DEFAULT,
            cni_bin_dir: "/usr/lib/cni".into(),
            vrrp_interface: "eth0".into(),
        }
    }
}

impl Options {
    pub fn from_matches(m: &ArgMatches) -> Options {
        let text = |id: &str| m.get_one::<String>(id).cloned();
        let profile = text(cli::ETCD_PROFILE).unwrap_or_else(|| "default".into());
        let mut etcd = EtcdTuning::profile(&profile).expect("clap checked the profile");
        if let Some(&ms) = m.get_one::<u32>(cli::ETCD_HEARTBEAT) {
            etcd.heartbeat_ms = ms;
        }
        if let Some(&ms) = m.get_one::<u32>(cli::ETCD_ELECTION_TIMEOUT) {
            etcd.election_timeout_ms = ms;
        }
        if let Some(&n) = m.get_one::<u64>(cli::ETCD_SNAPSHOT_COUNT) {
            etcd.snapshot_count = n;
        }
        Options {
            runtime: match text(cli::CONTAINER_RUNTIME).as_deref() {
                Some("cri-o") => Runtime::CriO,
                _ => Runtime::Containerd,
            },
            pod_network: text(cli::POD_NETWORK).map(|p| match p.as_str() {
                "flannel" => PodNetwork::Flannel,
                _ => PodNetwork::Routes,
            }),
            etcd,
            cni_bin_dir: text(cli::CNI_BIN_DIR).unwrap_or_else(|| "/usr/lib/cni".into()),
            vrrp_interface: text(cli::VRRP_INTERFACE).unwrap_or_else(|| "eth0".into()),
        }
    }
}

/// What a run did (or, with `--dry-run`, would do) to the files under the output directory.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// Files an earlier run wrote that no node lists any more (a role or the pod network
    /// changed): removed, so OUT holds what the document says.
    pub removed: Vec<String>,
}

pub fn run(matches: &ArgMatches) -> Result<Exit, MkunitsError> {
    if let Some(m) = matches.subcommand_matches(cli::PORTS) {
        let doc = hardway::doc::read(m.get_one::<PathBuf>(cli::FILE).map(PathBuf::as_path))?;
        let rows = ports::ports(&doc, &Options::from_matches(m))?;
        let format = m
            .get_one::<String>(cli::OUTPUT)
            .and_then(|f| Format::parse(f))
            .unwrap_or_default();
        match format {
            Format::Json => hardway::io::print_json(&rows)?,
            Format::Table => hardway::io::print(&ports::table(&rows))?,
        }
        return Ok(Exit::Ok);
    }
    let mut doc = hardway::doc::read(matches.get_one::<PathBuf>(cli::FILE).map(PathBuf::as_path))?;
    let opts = Options::from_matches(matches);
    let out = matches
        .get_one::<PathBuf>(cli::DIR)
        .expect("clap requires --dir");
    let sources = BinarySources {
        hardway: match matches.get_one::<PathBuf>(cli::BIN_DIR) {
            Some(dir) => dir.clone(),
            None => own_dir()?,
        },
        kubernetes: matches.get_one::<PathBuf>(cli::KUBERNETES_BIN_DIR).cloned(),
    };
    let dry_run = matches.get_flag(cli::DRY_RUN);
    if let Some(warning) = pki_warning(&doc, &opts) {
        hardway::tool::log("mkunits", warning);
    }
    let report = apply(&mut doc, &opts, out, &sources, dry_run)?;
    if dry_run {
        hardway::io::print_json(&report)?;
    } else {
        hardway::tool::log(
            "mkunits",
            format!(
                "{} files created, {} updated, {} unchanged, {} removed in {}",
                report.created.len(),
                report.updated.len(),
                report.unchanged.len(),
                report.removed.len(),
                out.display()
            ),
        );
        hardway::doc::write(&doc, std::io::stdout().lock())?;
    }
    Ok(Exit::Ok)
}

/// flanneld needs its etcd client certificate, which mkcerts makes only when the document says
/// flannel: choosing flannel here, after mkcerts ran for routes, would leave workers without it.
pub fn pki_warning(doc: &Document, opts: &Options) -> Option<String> {
    let network = opts.pod_network.unwrap_or(doc.cluster.pod_network);
    let pki = doc.pki.as_ref()?;
    let has_flannel_cert = pki
        .certs
        .iter()
        .any(|c| c.name == hardway::paths::cert::FLANNEL_ETCD_CLIENT);
    (network == PodNetwork::Flannel && !has_flannel_cert).then(|| {
        "warning: flannel is chosen but the PKI has no flannel-etcd-client certificate: set \
         cluster.pod_network to \"flannel\" in the document before mkcerts and \
         run mkcerts again"
            .to_string()
    })
}

/// The directory of the running executable: where `cargo build` and `make install` put the
/// other hardway binaries.
fn own_dir() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::input("the mkunits executable", e))?;
    Ok(exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".")))
}

/// Renders every node, writes the files under `out` (unless `dry_run`) and records them and the
/// services in `doc`. On any error neither the directory nor the document has changed.
pub fn apply(
    doc: &mut Document,
    opts: &Options,
    out: &Path,
    sources: &BinarySources,
    dry_run: bool,
) -> Result<Report, MkunitsError> {
    let plans = render::render(doc, opts)?;
    // Each binary is read once, however many nodes need it.
    let mut binaries: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for name in plans.iter().flat_map(|p| p.binaries.iter().copied()) {
        if binaries.contains_key(name) {
            continue;
        }
        if let Some((path, why)) = sources.source(name) {
            let bytes = std::fs::read(&path).map_err(|_| MkunitsError::MissingBinary {
                path: path.display().to_string(),
                why,
            })?;
            binaries.insert(name, bytes);
        }
    }

    let mut set = FileSet::new();
    let mut staged: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
    let mut entries = Vec::with_capacity(plans.len());
    for plan in &plans {
        let mut files = Vec::with_capacity(plan.files.len());
        for file in &plan.files {
            let src = format!("{NODES_PREFIX}{}{}", plan.name, file.dest);
            files.push(entry(&src, &file.dest, file.mode, &file.contents));
            staged.push((out.join(&src), file.contents.clone(), octal(file.mode)));
        }
        let bins = plan
            .binaries
            .iter()
            .filter_map(|name| {
                let bytes = binaries.get(name)?;
                Some(entry(
                    &format!("{BIN_PREFIX}{name}"),
                    &format!("{}/{name}", hardway::paths::hardway::BIN_DIR),
                    mode::EXECUTABLE,
                    bytes,
                ))
            })
            .collect();
        entries.push((files, bins, plan.services.clone()));
    }
    for (name, bytes) in binaries {
        staged.push((out.join(format!("{BIN_PREFIX}{name}")), bytes, 0o755));
    }

    let report = if dry_run {
        preview(&staged, out)?
    } else {
        for (path, contents, file_mode) in staged {
            set.add(path, contents, file_mode, 0o755);
        }
        let done = set.commit()?;
        let names = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.strip_prefix(out).unwrap_or(p).display().to_string())
                .collect()
        };
        Report {
            created: names(done.created),
            updated: names(done.updated),
            unchanged: names(done.unchanged),
            removed: Vec::new(),
        }
    };
    let mut report = report;
    let listed: BTreeSet<&str> = entries
        .iter()
        .flat_map(|(files, bins, _)| files.iter().chain(bins))
        .map(|f| f.src.as_str())
        .collect();
    let stale: BTreeSet<String> = doc
        .nodes
        .iter()
        .flat_map(|n| &n.files)
        .map(|f| f.src.clone())
        .filter(|src| is_ours(src) && !listed.contains(src.as_str()))
        .collect();
    for src in stale {
        let path = out.join(&src);
        if !dry_run {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(path.display().to_string(), e).into()),
            }
        } else if !path.exists() {
            continue;
        }
        report.removed.push(src);
    }

    if let Some(network) = opts.pod_network {
        doc.cluster.pod_network = network;
    }
    for (node, (files, bins, services)) in doc.nodes.iter_mut().zip(entries) {
        node.replace_files(NODES_PREFIX, files);
        node.replace_files(BIN_PREFIX, bins);
        node.services = services;
    }
    Ok(report)
}

/// A `src` mkunits wrote: under `nodes/` or `bin/`, with no `..` or absolute part, so a
/// hand-edited document can never make it delete anything outside OUT.
fn is_ours(src: &str) -> bool {
    (src.starts_with(NODES_PREFIX) || src.starts_with(BIN_PREFIX))
        && Path::new(src)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn entry(src: &str, dest: &str, file_mode: &str, contents: &[u8]) -> FileEntry {
    FileEntry {
        src: src.to_string(),
        dest: dest.to_string(),
        mode: file_mode.to_string(),
        owner: mode::ROOT.to_string(),
        sha256: sha256_hex(contents),
        extra: Default::default(),
    }
}

fn octal(text: &str) -> u32 {
    u32::from_str_radix(text, 8).expect("modes are octal constants")
}

/// What committing these files would do, without writing.
fn preview(staged: &[(PathBuf, Vec<u8>, u32)], out: &Path) -> Result<Report, Error> {
    use std::os::unix::fs::PermissionsExt;
    let mut report = Report::default();
    for (path, contents, file_mode) in staged {
        let name = path.strip_prefix(out).unwrap_or(path).display().to_string();
        match std::fs::read(path) {
            Ok(bytes) if &bytes == contents => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| Error::io(path.display().to_string(), e))?;
                if meta.permissions().mode() & 0o7777 == *file_mode {
                    report.unchanged.push(name);
                } else {
                    report.updated.push(name);
                }
            }
            Ok(_) => report.updated.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.created.push(name),
            Err(e) => return Err(Error::io(path.display().to_string(), e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_under_our_prefixes_are_ours() {
        assert!(is_ours("nodes/node-1/etc/hosts"));
        assert!(is_ours("bin/route-sync"));
        assert!(!is_ours("pki/ca/ca.pem"));
        assert!(!is_ours("nodes/../pki/ca/ca-key.pem"));
        assert!(!is_ours("bin/../../etc/passwd"));
        assert!(!is_ours("/nodes/x"));
    }
}
