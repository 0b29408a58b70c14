//! What each day-two change costs, counted from the tools' own outputs.
//!
//! From the ebook's nine nodes (examples/ebook-9node.csv: 3 etcd, 2 controllers, 2 workers, 2 lb)
//! at v1.36.0, each change is applied on its own to a copy of the base OUT and the pipeline run
//! again (`mkcluster | cidr-alloc --previous | mkcerts | mkunits --previous`, or `mkcerts renew |
//! mkunits`). Counted:
//!
//! - files rewritten: per node, the `files[]` entries whose sha256 is new or differs from the base
//!   document's, which is exactly what node-push uploads (it skips a matching sha256);
//! - services restarted: node-push's own rule (`node_push::plan::services_affected`) over those
//!   files: the units, drop-ins, mentioned paths and `restart` entries that reach them;
//! - VMs touched: `mkvm up --dry-run` (on `test:///default`) before and after, compared by the
//!   spec mkvm itself compares in preflight: created, changed (`--recreate` replaces them), gone;
//! - routes changed: `route-sync --host --dry-run` in a network namespace holding the base
//!   document's routes (real netlink, real kernel);
//! - etcd membership and quorum: etcd-sync's planner (`etcd_sync::plan`) and recorder
//!   (`etcd_sync::record`), run step by step over the membership the base document implies, every
//!   member answering; a rolling restart (node-push `--between`) takes one member down at a time.
//!
//! Not run here: no VM boots, no Kubernetes component runs (not installable here), no etcd serves
//! the membership changes (the planner decides them from data; tests/e2e/mkunits_etcd.rs and
//! etcd-sync's own tests run real members). The README's table must equal the one this test
//! writes to `$CARGO_TARGET_TMPDIR/day-two-costs.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use etcd_sync::plan::{self, Change, Hold, Observed};
use hardway::Document;
use serde::Deserialize;
use serde_json::Value;
use testkit::netns::Netns;

const BASE_VERSION: &str = "v1.36.0";
const NEXT_VERSION: &str = "v1.37.2";

/// `mkvm up --dry-run`'s output, strictly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmDryRun {
    network: String,
    #[allow(dead_code)]
    pool: String,
    nodes: Vec<VmNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmNode {
    name: String,
    #[allow(dead_code)]
    uri: String,
    #[allow(dead_code)]
    volumes: Vec<Value>,
    domain: String,
}

/// `route-sync --dry-run`'s report, strictly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutePlan {
    added: Vec<Value>,
    replaced: Vec<Value>,
    removed: Vec<Value>,
    #[allow(dead_code)]
    unchanged: usize,
    conflicts: Vec<Value>,
    nexthops: NexthopPlan,
}

/// The nodes' nexthop objects in route-sync's report: a moved node changes its nexthop, and the
/// routes naming it follow without being rewritten.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NexthopPlan {
    added: Vec<Value>,
    replaced: Vec<Value>,
    removed: Vec<Value>,
    #[allow(dead_code)]
    unchanged: usize,
}

/// The `spec` attribute of mkvm's metadata mark: what mkvm's preflight compares.
fn mark_spec(xml: &str) -> String {
    let tree = roxmltree::Document::parse(xml).unwrap();
    tree.descendants()
        .find_map(|n| n.attribute("spec"))
        .expect("mkvm marks what it makes")
        .to_string()
}

struct Lab {
    tmp: tempfile::TempDir,
    csv_header: Vec<String>,
    csv_rows: Vec<String>,
    mkcluster_args: Vec<String>,
    image: PathBuf,
    key: PathBuf,
    /// The hypervisor's side: a namespace holding the node network and the base routes.
    host: Netns,
}

fn run(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    testkit::run_piped(&testkit::bin(program), args, stdin)
}

fn parse(bytes: &[u8]) -> Document {
    hardway::doc::from_str(std::str::from_utf8(bytes).unwrap(), "stdout").unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let csv = testkit::workspace_root().join("examples/ebook-9node.csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        let (csv_header, csv_rows): (Vec<String>, Vec<String>) = text
            .lines()
            .map(str::to_string)
            .partition(|l| l.starts_with('#') || l.starts_with("name,"));
        let image = tmp.path().join("base.qcow2");
        testkit::run_ok(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(&image)
                .arg("1G"),
        );
        let key = tmp.path().join("id_ed25519");
        testkit::run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key),
        );
        let host = Netns::new("cost");
        host.add_bridge("br0", &["10.240.0.1/24"]);
        Lab {
            mkcluster_args: testkit::example_args(&csv),
            tmp,
            csv_header,
            csv_rows,
            image,
            key: key.with_extension("pub"),
            host,
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The inventory with `rows`, and mkcluster's arguments for it at `version`.
    fn mkcluster(&self, name: &str, rows: &[String], version: &str) -> Vec<u8> {
        let csv = self.dir(&format!("{name}.csv"));
        let text: Vec<&str> = self
            .csv_header
            .iter()
            .chain(rows)
            .map(String::as_str)
            .collect();
        std::fs::write(&csv, text.join("\n") + "\n").unwrap();
        let mut args: Vec<&str> = vec![path_str(&csv)];
        let flags = self.mkcluster_args.iter().filter(|a| !a.ends_with(".csv"));
        args.extend(flags.map(String::as_str));
        args.extend(["--kubernetes-version", version]);
        run("mkcluster", &args, b"")
    }

    fn mkunits(&self, doc: &Document, out: &Path, previous: Option<&Path>) -> Document {
        let bin_dir = testkit::target_dir();
        let kubernetes =
            testkit::kubernetes_stand_ins(self.tmp.path(), &doc.cluster.kubernetes_version);
        let mut args = vec!["--dir", path_str(out), "--bin-dir", path_str(&bin_dir)];
        args.extend(["--kubernetes-bin-dir", path_str(&kubernetes)]);
        if let Some(previous) = previous {
            args.extend(["--previous", path_str(previous)]);
        }
        parse(&run(
            "mkunits",
            &args,
            hardway::doc::to_string(doc).as_bytes(),
        ))
    }

    /// The whole pipeline from an inventory into `out`; with `previous`, as a re-run on a running
    /// cluster: addresses kept, etcd records carried and a new member joined as etcd-sync does.
    fn pipeline(
        &self,
        name: &str,
        rows: &[String],
        version: &str,
        out: &Path,
        previous: Option<&State>,
    ) -> Document {
        let inventory = self.mkcluster(name, rows, version);
        let previous_file = previous.map(|p| p.file.as_path());
        let mut args = vec![];
        if let Some(file) = previous_file {
            args.extend(["--previous", path_str(file)]);
        }
        let addressed = run("cidr-alloc", &args, &inventory);
        let certified = run("mkcerts", &["--dir", path_str(out)], &addressed);
        let mut doc = parse(&certified);
        if let Some(previous) = previous {
            etcd_sync::record::carry(&mut doc, &previous.doc);
            join_new_members(&mut doc, &previous.doc);
        }
        self.mkunits(&doc, out, previous_file)
    }

    fn vm_plan(&self, doc: &Document) -> VmDryRun {
        let args = [
            "up",
            "--dry-run",
            "--connect",
            "test:///default",
            "--image",
            path_str(&self.image),
            "--ssh-key",
            path_str(&self.key),
        ];
        serde_json::from_slice(&run("mkvm", &args, hardway::doc::to_string(doc).as_bytes()))
            .unwrap()
    }

    fn route_sync(&self, file: &Path, dry_run: bool) -> RoutePlan {
        let mut cmd = self.host.command(testkit::bin("route-sync"));
        cmd.args(["--host", "-f", path_str(file)]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = testkit::run_ok(&mut cmd);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "route-sync report: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn state(&self, name: &str, doc: Document, out: PathBuf) -> State {
        let file = self.dir(&format!("{name}.json"));
        std::fs::write(&file, hardway::doc::to_string(&doc)).unwrap();
        let vms = self.vm_plan(&doc);
        State {
            doc,
            out,
            file,
            vms,
        }
    }
}

/// One cluster as the tools left it: the document, OUT, the document's file, mkvm's plan.
struct State {
    doc: Document,
    out: PathBuf,
    file: PathBuf,
    vms: VmDryRun,
}

/// etcd's members as the document records them, every one answering.
fn observed(doc: &Document) -> Vec<Observed> {
    doc.nodes
        .iter()
        .filter_map(|n| {
            let record = n.etcd.as_ref()?;
            let id = u64::from_str_radix(record.member_id.as_deref()?, 16).unwrap();
            Some(Observed {
                id,
                name: n.name.clone(),
                peer_urls: vec![etcd_sync::record::peer_url(n.primary_ip()?)],
                client_urls: Vec::new(),
                is_learner: false,
                healthy: true,
            })
        })
        .collect()
}

/// The first etcd-sync of the README's sequence: a new etcd node is added as a learner and
/// recorded with the membership MemberAdd answers (the members plus itself), so mkunits renders
/// it joining. The member ID is what etcd would pick: any unused number.
fn join_new_members(doc: &mut Document, previous: &Document) {
    let members = observed(previous);
    let wanted = etcd_sync::record::wanted(doc).unwrap();
    if let Some(Change::Add { name, peer_url }) = plan::plan(&wanted, &members).next {
        let id = members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
        let mut after: Vec<(u64, String, Vec<String>)> = members
            .iter()
            .map(|m| (m.id, m.name.clone(), m.peer_urls.clone()))
            .collect();
        after.push((id, String::new(), vec![peer_url]));
        etcd_sync::record::joined(doc, &name, id, &after);
    }
}

/// etcd-sync's plan made step by step until in sync, from `before`'s members (all answering) to
/// `after`'s etcd nodes; a learner starts when node-push starts its unit. Returns the steps, and
/// whether every one kept a healthy majority (a refused step ends the walk: quorum not kept).
fn membership_steps(before: &Document, after: &Document) -> (Vec<String>, bool) {
    let wanted = etcd_sync::record::wanted(after).unwrap();
    let mut members = observed(before);
    let mut steps = Vec::new();
    let mut next_id = members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
    loop {
        let p = plan::plan(&wanted, &members);
        let change = match (p.next, p.hold) {
            (Some(change), _) => change,
            (None, Some(Hold::Waiting(_))) => {
                let learner = members.iter_mut().find(|m| !m.started()).unwrap();
                learner.name = "started".into();
                learner.healthy = true;
                continue;
            }
            (None, Some(Hold::Refused(_))) => return (steps, false),
            (None, None) => return (steps, true),
        };
        match &change {
            Change::Add { name, peer_url } => {
                steps.push(format!("add {name} as learner"));
                members.push(Observed {
                    id: next_id,
                    name: String::new(),
                    peer_urls: vec![peer_url.clone()],
                    client_urls: Vec::new(),
                    is_learner: true,
                    healthy: false,
                });
                next_id += 1;
            }
            Change::Promote { name, id } => {
                steps.push(format!("promote {name}"));
                members.iter_mut().find(|m| m.id == *id).unwrap().is_learner = false;
            }
            Change::Remove { name, id } => {
                steps.push(format!("remove {name}"));
                members.retain(|m| m.id != *id);
            }
        }
        let voters = members.iter().filter(|m| !m.is_learner).count();
        let up = members
            .iter()
            .filter(|m| !m.is_learner && m.healthy)
            .count();
        if up < voters / 2 + 1 {
            return (steps, false);
        }
    }
}

/// A node's files by destination: (sha256, src, restart list).
fn files_of(node: &hardway::Node) -> BTreeMap<&str, &hardway::doc::FileEntry> {
    node.files.iter().map(|f| (f.dest.as_str(), f)).collect()
}

/// The text node-push matches paths in (None for binaries), as its plan reads a local file.
fn text_of(out: &Path, src: &str) -> Option<String> {
    let bytes = std::fs::read(out.join(src)).unwrap();
    (bytes.len() <= 1 << 20)
        .then(|| String::from_utf8(bytes).ok())
        .flatten()
}

/// What one change cost.
#[derive(Debug, Default)]
struct Cost {
    /// Existing nodes: how many of their files node-push would upload.
    files: BTreeMap<String, usize>,
    /// Existing nodes: which of their running services node-push would restart.
    restarted: BTreeMap<String, Vec<String>>,
    new_nodes: Vec<String>,
    gone_nodes: Vec<String>,
    /// Per new node: files and services it gets.
    new_node_files: usize,
    vms_created: usize,
    vms_changed: Vec<String>,
    vms_gone: usize,
    network_changed: bool,
    routes_added: usize,
    routes_replaced: usize,
    routes_removed: usize,
    /// Nexthop objects added, replaced or removed.
    nexthops_changed: usize,
    membership: Vec<String>,
    membership_kept_quorum: bool,
    /// etcd members whose etcd.service restarts.
    etcd_restarts: usize,
    etcd_members: usize,
}

impl Cost {
    fn quorum_kept(&self) -> bool {
        // A rolling restart takes one member down at a time; the cluster keeps its majority
        // while one is down as long as it has three members or more.
        let rolling_ok = self.etcd_restarts == 0 || self.etcd_members - 1 > self.etcd_members / 2;
        self.membership_kept_quorum && rolling_ok
    }

    fn files_rewritten(&self) -> usize {
        self.files.values().sum()
    }

    fn nodes_restarting(&self, service: &str) -> usize {
        self.restarted
            .values()
            .filter(|s| s.iter().any(|x| x == service))
            .count()
    }
}

fn cost(lab: &Lab, before: &State, after: &State) -> Cost {
    let mut cost = Cost::default();
    let old_names: BTreeSet<&str> = before.doc.nodes.iter().map(|n| n.name.as_str()).collect();
    for node in &after.doc.nodes {
        let Some(old) = before.doc.node(&node.name) else {
            cost.new_nodes.push(node.name.clone());
            cost.new_node_files = node.files.len();
            continue;
        };
        let old_files = files_of(old);
        let rewritten: BTreeSet<&str> = node
            .files
            .iter()
            .filter(|f| {
                old_files
                    .get(f.dest.as_str())
                    .is_none_or(|o| o.sha256 != f.sha256)
            })
            .map(|f| f.dest.as_str())
            .collect();
        let texts: Vec<(String, Option<String>, Vec<String>)> = node
            .files
            .iter()
            .map(|f| {
                let restart = f
                    .extra
                    .get("restart")
                    .map(|v| serde_json::from_value(v.clone()).unwrap())
                    .unwrap_or_default();
                (f.dest.clone(), text_of(&after.out, &f.src), restart)
            })
            .collect();
        let affected = node_push::plan::services_affected(&texts, &node.services);
        let restarted: BTreeSet<String> = node
            .files
            .iter()
            .zip(affected)
            .filter(|(f, _)| rewritten.contains(f.dest.as_str()))
            .flat_map(|(_, services)| services)
            .filter(|s| old.services.contains(s))
            .collect();
        cost.files.insert(node.name.clone(), rewritten.len());
        if !restarted.is_empty() {
            cost.restarted
                .insert(node.name.clone(), restarted.into_iter().collect());
        }
    }
    let new_names: BTreeSet<&str> = after.doc.nodes.iter().map(|n| n.name.as_str()).collect();
    cost.gone_nodes = old_names
        .difference(&new_names)
        .map(|s| s.to_string())
        .collect();
    vm_cost(&mut cost, before, after);
    let routes = lab.route_sync(&after.file, true);
    assert!(routes.conflicts.is_empty(), "{routes:?}");
    cost.routes_added = routes.added.len();
    cost.routes_replaced = routes.replaced.len();
    cost.routes_removed = routes.removed.len();
    let hops = &routes.nexthops;
    cost.nexthops_changed = hops.added.len() + hops.replaced.len() + hops.removed.len();
    let (steps, kept) = membership_steps(&before.doc, &after.doc);
    cost.membership = steps;
    cost.membership_kept_quorum = kept;
    cost.etcd_members = before.doc.nodes_with(hardway::Role::Etcd).count();
    cost.etcd_restarts = cost.nodes_restarting("etcd.service");
    cost
}

fn vm_cost(cost: &mut Cost, before: &State, after: &State) {
    let old: BTreeMap<&str, String> = before
        .vms
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), mark_spec(&n.domain)))
        .collect();
    for node in &after.vms.nodes {
        match old.get(node.name.as_str()) {
            None => cost.vms_created += 1,
            Some(spec) if *spec != mark_spec(&node.domain) => {
                cost.vms_changed.push(node.name.clone())
            }
            Some(_) => {}
        }
    }
    let new: BTreeSet<&str> = after.vms.nodes.iter().map(|n| n.name.as_str()).collect();
    cost.vms_gone = old.keys().filter(|n| !new.contains(*n)).count();
    cost.network_changed = mark_spec(&before.vms.network) != mark_spec(&after.vms.network);
}

/// Copies the base OUT for one change, as the running cluster's directory.
fn copy_out(base: &Path, to: &Path) {
    testkit::run_ok(Command::new("cp").arg("-a").arg(base).arg(to));
}

/// `count: node node …` groups, largest first.
fn grouped(per_node: &BTreeMap<String, usize>) -> String {
    let mut groups: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (node, n) in per_node.iter().filter(|(_, n)| **n > 0) {
        groups.entry(*n).or_default().push(node);
    }
    if groups.is_empty() {
        return "0".into();
    }
    groups
        .iter()
        .rev()
        .map(|(n, nodes)| format!("{n} on {}", nodes.join(" ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn table_row(change: &str, c: &Cost) -> String {
    let mut files = grouped(&c.files);
    for node in &c.new_nodes {
        files.push_str(&format!("; {node} (new): {}", c.new_node_files));
    }
    let mut services: BTreeMap<&str, usize> = BTreeMap::new();
    for s in c.restarted.values().flatten() {
        *services.entry(s.as_str()).or_default() += 1;
    }
    let restarted = if services.is_empty() {
        "none".to_string()
    } else {
        services
            .iter()
            .map(|(s, n)| format!("{} ×{n}", s.trim_end_matches(".service")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut vms = Vec::new();
    if c.vms_created > 0 {
        vms.push(format!("{} created", c.vms_created));
    }
    if !c.vms_changed.is_empty() {
        vms.push(format!(
            "{} changed ({}; `--recreate`)",
            c.vms_changed.len(),
            c.vms_changed.join(" ")
        ));
    }
    if c.vms_gone > 0 {
        vms.push(format!("{} no longer listed", c.vms_gone));
    }
    if c.network_changed {
        vms.push("network changed".into());
    }
    let vms = if vms.is_empty() {
        "0".into()
    } else {
        vms.join(", ")
    };
    let routes = format!(
        "+{} ~{} -{}, nexthops {}",
        c.routes_added, c.routes_replaced, c.routes_removed, c.nexthops_changed
    );
    let membership = if c.membership.is_empty() {
        "none".into()
    } else {
        c.membership.join(", then ")
    };
    let quorum = match (c.quorum_kept(), c.etcd_restarts) {
        (false, _) => "**no**".to_string(),
        (true, 0) => "yes".to_string(),
        (true, n) => format!("yes, if {n} etcd restarts roll one by one (`--between`)"),
    };
    format!(
        "| {change} | {} | {files} | {restarted} | {vms} | {routes} | {membership} | {quorum} |",
        c.files_rewritten()
    )
}

fn table(rows: &[(&str, &Cost)]) -> String {
    let mut text = String::from(
        "| change | files rewritten on existing nodes | per node | services restarted (×nodes) | VMs (mkvm plan) | routes on the host (+add ~replace -remove) | etcd membership (etcd-sync plan) | quorum kept |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (change, cost) in rows {
        text.push_str(&table_row(change, cost));
        text.push('\n');
    }
    text
}

/// The table in the README's `### What each change costs` section.
fn readme_table() -> String {
    let readme = std::fs::read_to_string(testkit::workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("### What each change costs")
        .nth(1)
        .expect("README has a `### What each change costs` section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn without(rows: &[String], name: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| !r.starts_with(&format!("{name},")))
        .cloned()
        .collect()
}

fn with(rows: &[String], row: &str) -> Vec<String> {
    rows.iter().cloned().chain([row.to_string()]).collect()
}

/// Asserts that on every node of `before` the files `after` rewrote are among `allowed`.
fn assert_only(cost: &Cost, allowed: &[&str], after: &State, before: &State) {
    for node in &after.doc.nodes {
        let Some(old) = before.doc.node(&node.name) else {
            continue;
        };
        let old_files = files_of(old);
        for f in &node.files {
            if old_files
                .get(f.dest.as_str())
                .is_none_or(|o| o.sha256 != f.sha256)
            {
                assert!(
                    allowed.contains(&f.dest.as_str()),
                    "{}: {} rewritten ({cost:?})",
                    node.name,
                    f.dest
                );
            }
        }
    }
}

/// Whether the node's unit for `service` is a oneshot (it re-applies state and exits).
fn is_oneshot(state: &State, node: &str, service: &str) -> bool {
    let node = state.doc.node(node).unwrap();
    let unit = &files_of(node)[format!("/etc/systemd/system/{service}").as_str()];
    let text = std::fs::read_to_string(state.out.join(&unit.src)).unwrap();
    text.lines().any(|l| l.trim() == "Type=oneshot")
}

impl Lab {
    /// The base: built once, then etcd-sync's record of the bootstrap membership (as after the
    /// first node-push), mkunits again, and its routes installed on the host side.
    fn base(&self) -> State {
        let out = self.dir("base-out");
        let mut doc = self.pipeline("base", &self.csv_rows, BASE_VERSION, &out, None);
        let bootstrap: Vec<Observed> = doc
            .nodes
            .iter()
            .filter(|n| n.has_role(hardway::Role::Etcd))
            .enumerate()
            .map(|(i, n)| Observed {
                id: 0x1000 + i as u64,
                name: n.name.clone(),
                peer_urls: vec![etcd_sync::record::peer_url(n.primary_ip().unwrap())],
                client_urls: Vec::new(),
                is_learner: false,
                healthy: true,
            })
            .collect();
        etcd_sync::record::members(&mut doc, &bootstrap);
        let recorded = self.mkunits(&doc, &out, None);
        let base = self.state("base", recorded, out);
        let routes = self.route_sync(&base.file, false);
        assert_eq!(routes.added.len(), 2, "the two workers' pod CIDRs");
        base
    }

    /// One change on a copy of the base's OUT, and what it cost.
    fn change(&self, base: &State, name: &str, build: &dyn Fn(&Path) -> Document) -> (State, Cost) {
        let out = self.dir(&format!("{name}-out"));
        copy_out(&base.out, &out);
        let state = self.state(name, build(&out), out);
        let c = cost(self, base, &state);
        (state, c)
    }

    /// The pipeline re-run on the running base with the inventory `rows`.
    fn edit(&self, base: &State, name: &str, rows: Vec<String>) -> (State, Cost) {
        self.change(base, name, &|out: &Path| {
            self.pipeline(name, &rows, BASE_VERSION, out, Some(base))
        })
    }
}

/// The control: the same inventory again changes nothing anywhere.
fn again(lab: &Lab, base: &State) -> Cost {
    let (_, none) = lab.edit(base, "again", lab.csv_rows.clone());
    assert_eq!(none.files_rewritten(), 0, "{none:?}");
    assert!(none.restarted.is_empty() && none.membership.is_empty());
    assert_eq!(
        (none.vms_created, none.vms_changed.len(), none.routes_added),
        (0, 0, 0)
    );
    none
}

fn add_worker(lab: &Lab, base: &State) -> Cost {
    let (w, worker) = lab.edit(
        base,
        "add-worker",
        with(&lab.csv_rows, "worker3,worker,,1,1.5G,20G"),
    );
    // Another node gets the new name and address (/etc/hosts, the masquerade table's node
    // addresses), route-sync's copy of the document (its routes to the new pods), and the add-on
    // controller the new pod CIDR (pod-cidrs.sh, run by its timer). What runs again is oneshots
    // re-applying that state: no daemon restarts on any other node.
    let allowed = [
        "/etc/hosts",
        "/etc/hardway/cluster.json",
        "/etc/hardway/masquerade.nft",
        "/etc/hardway/addons/pod-cidrs.sh",
    ];
    assert_only(&worker, &allowed, &w, base);
    for (node, services) in &worker.restarted {
        for service in services {
            assert!(
                is_oneshot(&w, node, service),
                "{node}: {service} is a daemon and restarts"
            );
        }
    }
    assert_eq!(
        (
            worker.vms_created,
            worker.vms_changed.len(),
            worker.network_changed
        ),
        (1, 0, false)
    );
    assert_eq!(
        (
            worker.routes_added,
            worker.routes_replaced,
            worker.routes_removed
        ),
        (1, 0, 0)
    );
    assert!(worker.membership.is_empty() && worker.quorum_kept());
    worker
}

fn add_etcd_member(lab: &Lab, base: &State) -> Cost {
    let (e, etcd_add) = lab.edit(
        base,
        "add-etcd",
        with(&lab.csv_rows, "etcd4,etcd,,1,512M,4G"),
    );
    // The members' units are rendered from etcd-sync's records: no etcd restarts. The
    // apiservers learn the new client URL (--etcd-servers), one controller at a time.
    assert_eq!(etcd_add.etcd_restarts, 0, "{etcd_add:?}");
    let etcd_unit = |s: &State, node: &str| {
        files_of(s.doc.node(node).unwrap())["/etc/systemd/system/etcd.service"].clone()
    };
    for node in ["etcd1", "etcd2", "etcd3"] {
        assert_eq!(
            etcd_unit(&e, node).sha256,
            etcd_unit(base, node).sha256,
            "{node}'s etcd unit changed"
        );
    }
    // The new member joins the running cluster instead of bootstrapping a second one.
    let unit = std::fs::read_to_string(e.out.join(etcd_unit(&e, "etcd4").src)).unwrap();
    assert!(unit.contains("--initial-cluster-state=existing"), "{unit}");
    assert_eq!(
        etcd_add.membership,
        ["add etcd4 as learner", "promote etcd4"]
    );
    assert!(etcd_add.quorum_kept());
    assert_eq!((etcd_add.vms_created, etcd_add.routes_added), (1, 0));
    etcd_add
}

fn remove_etcd_member(lab: &Lab, base: &State) -> Cost {
    let (_, etcd_remove) = lab.edit(base, "remove-etcd", without(&lab.csv_rows, "etcd3"));
    assert_eq!(etcd_remove.etcd_restarts, 0, "{etcd_remove:?}");
    assert_eq!(etcd_remove.membership, ["remove etcd3"]);
    assert!(etcd_remove.quorum_kept());
    assert_eq!(etcd_remove.gone_nodes, ["etcd3"]);
    assert_eq!((etcd_remove.vms_gone, etcd_remove.vms_created), (1, 0));
    etcd_remove
}

fn change_ip(lab: &Lab, base: &State) -> Cost {
    let moved: Vec<String> = lab
        .csv_rows
        .iter()
        .map(|r| r.replace("worker2,worker,10.240.0.32,", "worker2,worker,10.240.0.33,"))
        .collect();
    let (_, ip) = lab.edit(base, "change-ip", moved);
    // worker2's seed (its static address) changes: mkvm replaces that VM only with --recreate.
    assert_eq!(ip.vms_changed, ["worker2"]);
    // The route to worker2's pods names worker2's nexthop: the nexthop moves, the route stays.
    assert_eq!(
        (
            ip.routes_added,
            ip.routes_replaced,
            ip.routes_removed,
            ip.nexthops_changed
        ),
        (0, 0, 0, 1)
    );
    assert!(ip.membership.is_empty() && ip.etcd_restarts == 0);
    ip
}

fn renew_certificates(lab: &Lab, base: &State) -> Cost {
    let (_, renew) = lab.change(base, "renew", &|out: &Path| {
        let args = ["renew", "--dir", path_str(out)];
        let renewed = run(
            "mkcerts",
            &args,
            hardway::doc::to_string(&base.doc).as_bytes(),
        );
        lab.mkunits(&parse(&renewed), out, Some(&base.file))
    });
    // Every certificate is new: every member restarts etcd, so only a rolling restart keeps
    // quorum (node-push --between); no VM, route or membership changes.
    assert_eq!(renew.etcd_restarts, 3, "{renew:?}");
    assert!(renew.quorum_kept());
    assert_eq!((renew.vms_changed.len(), renew.routes_replaced), (0, 0));
    // Exactly the nodes holding certificates get files (the lb nodes pass TLS through and hold
    // none).
    for node in &base.doc.nodes {
        let holds_pki = node.files.iter().any(|f| f.src.starts_with("pki/"));
        assert_eq!(
            renew.files[&node.name] > 0,
            holds_pki,
            "{}: {renew:?}",
            node.name
        );
    }
    renew
}

fn upgrade_one_minor(lab: &Lab, base: &State) -> Cost {
    let (_, upgrade) = lab.change(base, "upgrade", &|out: &Path| {
        lab.pipeline("upgrade", &lab.csv_rows, NEXT_VERSION, out, Some(base))
    });
    // What the version table implies (tools/mkunits/tests/upgrade.rs checks the same on its
    // own): the CoreDNS manifest on the add-on controller, the Kubernetes binaries each role
    // runs, and every node's copy of the document (it carries the version). No etcd file, VM,
    // route or membership change; the daemons that restart are the Kubernetes ones.
    assert_eq!(upgrade.etcd_restarts, 0, "{upgrade:?}");
    for node in &base.doc.nodes {
        let mut expected = 1;
        if node.has_role(hardway::Role::Controller) {
            expected += 4; // kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
        }
        if node.has_role(hardway::Role::Worker) {
            expected += 2; // kubelet, kube-proxy
        }
        if node.name == "controller1" {
            expected += 1; // coredns.yaml
        }
        assert_eq!(
            upgrade.files[&node.name], expected,
            "{}: {upgrade:?}",
            node.name
        );
    }
    assert_eq!(upgrade.nodes_restarting("kube-apiserver.service"), 2);
    assert_eq!(upgrade.nodes_restarting("kubelet.service"), 2);
    assert_eq!(upgrade.nodes_restarting("containerd.service"), 0);
    assert_eq!(
        (upgrade.vms_changed.len(), upgrade.nexthops_changed),
        (0, 0)
    );
    assert!(upgrade.membership.is_empty() && upgrade.quorum_kept());
    upgrade
}

#[test]
fn what_each_day_two_change_costs() {
    let lab = Lab::new();
    let base = lab.base();
    let costs = [
        ("nothing (the same inventory again)", again(&lab, &base)),
        ("add a worker (worker3)", add_worker(&lab, &base)),
        ("add an etcd member (etcd4)", add_etcd_member(&lab, &base)),
        (
            "remove an etcd member (etcd3)",
            remove_etcd_member(&lab, &base),
        ),
        (
            "change a node's IP (worker2 .32 → .33)",
            change_ip(&lab, &base),
        ),
        (
            "renew certificates (`mkcerts renew`)",
            renew_certificates(&lab, &base),
        ),
        (
            "upgrade one minor (v1.36.0 → v1.37.2)",
            upgrade_one_minor(&lab, &base),
        ),
    ];
    let rows: Vec<(&str, &Cost)> = costs.iter().map(|(change, c)| (*change, c)).collect();
    let text = table(&rows);
    let written = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("day-two-costs.md");
    std::fs::write(&written, &text).unwrap();
    println!("{text}");
    assert_eq!(
        readme_table(),
        text,
        "README's `### What each change costs` table differs from the counts (new table in {})",
        written.display()
    );
}
