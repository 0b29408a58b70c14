//! mkunits: every node's systemd units and configuration files, rendered from the document.
//!
//! [`render::render`] turns the document and [`Options`] into each node's files and services
//! (pure, no I/O); [`apply`] writes them under `OUT/nodes/<node>/` all together or not at all,
//! copies the route-sync binary once to `OUT/bin/`, and records every file in the node's `files`
//! and the units in its `services`. `run` is the command line around both.

pub mod cli;
pub mod error;
pub mod layout;
pub mod ports;
pub mod render;
pub mod unit;
pub mod upgrade;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use hardway::doc::{ContainerRuntime, Document, FileEntry, PodNetwork};
use hardway::fsutil::{lock_timeout, sha256_hex, Access, Action, FileSet, OutDir};
use hardway::paths::mode;
use hardway::table::Format;
use hardway::{Error, Exit};
use serde::{Deserialize, Serialize};

pub use error::MkunitsError;
pub use render::{EtcdTuning, NodeFile, NodePlan};

/// Prefix of the files mkunits owns in every node's `files`, relative to the output directory.
pub const NODES_PREFIX: &str = "nodes/";
/// Prefix of the binaries mkunits copies for nodes.
pub const BIN_PREFIX: &str = "bin/";
/// Prefix of each hypervisor's files (render/egress.rs), on a cluster across several: for the
/// user to load on that machine, not listed in the document (no node gets them).
pub const HYPERVISORS_PREFIX: &str = "hypervisors/";

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

/// The choices users make; everything else comes from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--container-runtime`: the runtime the document must name (an assertion; the document's
    /// `cluster.container_runtime` is what is rendered).
    pub expect_runtime: Option<ContainerRuntime>,
    /// `--pod-network`: the pod network the document must name (an assertion).
    pub expect_pod_network: Option<PodNetwork>,
    pub etcd: EtcdTuning,
    /// Where the CNI plugins are on the nodes.
    pub cni_bin_dir: String,
    /// The interface keepalived puts the VIP on.
    pub vrrp_interface: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            expect_runtime: None,
            expect_pod_network: None,
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
            expect_runtime: text(cli::CONTAINER_RUNTIME).and_then(|r| ContainerRuntime::parse(&r)),
            expect_pod_network: text(cli::POD_NETWORK).map(|p| match p.as_str() {
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
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
        return run_ports(m);
    }
    let mut doc = hardway::doc::read(matches.get_one::<PathBuf>(cli::FILE).map(PathBuf::as_path))?;
    let previous = checked_previous(matches, &doc)?;
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
    if let Ok((_, Some(warning))) = hardway::k8s::release_for(&doc.cluster) {
        hardway::tool::log("mkunits", warning);
    }
    let access = if dry_run {
        Access::Read
    } else {
        Access::Write {
            mode: DIR_MODE,
            lock_timeout: lock_timeout(matches),
        }
    };
    // Held, with its lock, until the document is printed (see hardway::fsutil::outdir).
    let out = OutDir::open(out, access)?;
    let report = apply(&mut doc, previous.as_ref(), &opts, &out, &sources, dry_run)?;
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
                out.path().display()
            ),
        );
        hardway::doc::write(&doc, std::io::stdout().lock())?;
    }
    Ok(Exit::Ok)
}

/// `mkunits ports`: the table of every node's listening ports.
fn run_ports(m: &ArgMatches) -> Result<Exit, MkunitsError> {
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
    Ok(Exit::Ok)
}

/// The `--previous` document, once the move from its Kubernetes version to `doc`'s is one
/// mkunits renders (see [`upgrade`]); `None` without the flag or before the first build.
fn checked_previous(matches: &ArgMatches, doc: &Document) -> Result<Option<Document>, Error> {
    let Some(path) = matches.get_one::<PathBuf>(cli::PREVIOUS) else {
        return Ok(None);
    };
    let previous = hardway::doc::read_previous(path)?;
    if let Some(previous) = &previous {
        upgrade::check(previous, path, doc)?;
    }
    Ok(previous)
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

/// Mode of the directories mkunits makes under OUT.
pub const DIR_MODE: u32 = 0o755;

/// Renders every node, writes the files under `out` (unless `dry_run`) and records them and the
/// services in `doc`. Files `doc` or `previous` (the running cluster's document) list that this
/// run no longer writes are removed. On any error neither the directory nor the document has
/// changed.
pub fn apply(
    doc: &mut Document,
    previous: Option<&Document>,
    opts: &Options,
    out: &OutDir,
    sources: &BinarySources,
    dry_run: bool,
) -> Result<Report, MkunitsError> {
    let plans = render::render(doc, opts)?;
    let binaries = read_binaries(&plans, sources)?;
    let (mut set, entries) = file_set(&plans, binaries);
    let egress = render::egress::files(doc);
    let listed: BTreeSet<&str> = entries
        .iter()
        .flat_map(|e| e.files.iter().chain(&e.binaries))
        .map(|f| f.src.as_str())
        .chain(egress.iter().map(|(path, _)| path.as_str()))
        .collect();
    let stale = stale_files(doc, previous, &listed, out)?;
    for (path, text) in egress {
        set.add(path, text.into_bytes(), 0o644, DIR_MODE);
    }
    let report = write_files(set, stale, out, dry_run)?;
    for (node, entry) in doc.nodes.iter_mut().zip(entries) {
        node.replace_files(NODES_PREFIX, entry.files);
        node.replace_files(BIN_PREFIX, entry.binaries);
        node.services = entry.services;
    }
    Ok(report)
}

/// What one node's entry in the document gets from a run.
struct NodeEntries {
    files: Vec<FileEntry>,
    binaries: Vec<FileEntry>,
    services: Vec<String>,
}

/// Every binary the plans name and mkunits ships, read once however many nodes need it.
fn read_binaries<'a>(
    plans: &'a [NodePlan],
    sources: &BinarySources,
) -> Result<BTreeMap<&'a str, Vec<u8>>, MkunitsError> {
    let mut binaries = BTreeMap::new();
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
    Ok(binaries)
}

/// The files to write under OUT (each node's under `nodes/<node>/`, the binaries once under
/// `bin/`) and, per node in plan order, the entries that record them.
fn file_set(plans: &[NodePlan], binaries: BTreeMap<&str, Vec<u8>>) -> (FileSet, Vec<NodeEntries>) {
    let mut set = FileSet::new();
    let mut entries = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut files = Vec::with_capacity(plan.files.len());
        for file in &plan.files {
            let src = format!("{NODES_PREFIX}{}{}", plan.name, file.dest);
            let mut recorded = entry(&src, &file.dest, file.mode, &file.contents);
            record_restarts(&mut recorded, &file.restart);
            files.push(recorded);
            set.add(src, file.contents.clone(), octal(file.mode), DIR_MODE);
        }
        let node_binaries = plan
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
        entries.push(NodeEntries {
            files,
            binaries: node_binaries,
            services: plan.services.clone(),
        });
    }
    for (name, bytes) in binaries {
        set.add(format!("{BIN_PREFIX}{name}"), bytes, 0o755, DIR_MODE);
    }
    (set, entries)
}

/// Commits the files and removes the stale ones, or with `dry_run` only says what that would
/// do.
fn write_files(
    set: FileSet,
    stale: Vec<String>,
    out: &OutDir,
    dry_run: bool,
) -> Result<Report, Error> {
    let mut report = if dry_run {
        preview(&set, out)?
    } else {
        let done = set.commit(out)?;
        for src in &stale {
            out.remove(src)?;
        }
        Report {
            created: done.created,
            updated: done.updated,
            unchanged: done.unchanged,
            removed: Vec::new(),
        }
    };
    report.removed = stale;
    Ok(report)
}

/// The key of a file entry listing the services its change restarts, which node-push reads
/// (tools/node-push/src/plan.rs, `services_affected`): for files no unit names by path.
pub const RESTART_KEY: &str = "restart";

fn record_restarts(entry: &mut FileEntry, services: &[String]) {
    if !services.is_empty() {
        entry.extra.insert(RESTART_KEY.into(), services.into());
    }
}

/// Files an earlier run wrote that this run does not, and that are still there, sorted: those
/// the document's and the previous document's `files` list (in the pipeline mkunits' input is
/// rebuilt from the inventory and lists none of them, and a removed node is in no document but
/// the previous one), and the egress files of the hypervisors either lists (a hypervisor gone, or
/// the cluster back on one machine; their paths come from hypervisor names, DNS labels checked at
/// read time). Looked up relative to OUT's directory fds before anything is written: a
/// symlinked directory on the way is refused here, so a stale entry never deletes outside OUT
/// and a refusal leaves OUT as it was. A link at the name itself is removed, not what it names.
fn stale_files(
    doc: &Document,
    previous: Option<&Document>,
    listed: &BTreeSet<&str>,
    out: &OutDir,
) -> Result<Vec<String>, Error> {
    let docs = || std::iter::once(doc).chain(previous);
    let node_files = docs()
        .flat_map(|d| &d.nodes)
        .flat_map(|n| &n.files)
        .map(|f| f.src.clone())
        .filter(|src| is_ours(src));
    let egress = docs()
        .flat_map(|d| &d.hypervisors)
        .map(|h| render::egress::path(&h.name));
    let mut stale = Vec::new();
    for src in node_files.chain(egress) {
        if !listed.contains(src.as_str()) && !stale.contains(&src) && out.exists(&src)? {
            stale.push(src);
        }
    }
    stale.sort();
    Ok(stale)
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
fn preview(set: &FileSet, out: &OutDir) -> Result<Report, Error> {
    let mut report = Report::default();
    for (rel, action) in set.preview(out)? {
        match action {
            Action::Create => report.created.push(rel),
            Action::Update => report.updated.push(rel),
            Action::Unchanged => report.unchanged.push(rel),
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
