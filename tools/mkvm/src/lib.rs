//! mkvm: the cluster's VMs on libvirt — network, pool, overlay and seed volumes, domains, start,
//! staged waits — and their removal. Reads the document, writes it back with each node's `vm`.
//!
//! `up` works in three steps so a failure leaves nothing half-made: build the plan from the
//! document alone ([`plan`]); preflight it against every hypervisor, touching nothing (foreign
//! objects, changed nodes, free memory, overlapping networks); then apply it while logging each
//! object it creates, and on any libvirt error undo that log in reverse.

pub mod cli;
pub mod error;
pub mod hypervisor;
pub mod image;
pub mod plan;
pub mod seed;
pub mod wait;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::ArgMatches;
use hardway::doc::{Document, VmStatus};
use hardway::Exit;
use serde_json::{json, Value};

pub use error::MkvmError;
use hypervisor::{Created, Host};
use plan::{NodePlan, Plan, PlanOptions};
use wait::{Progress, Stage, Target};

const TOOL: &str = "mkvm";

fn log(message: impl std::fmt::Display) {
    hardway::tool::log(TOOL, message);
}

pub fn run(matches: &ArgMatches) -> Result<Exit, MkvmError> {
    let file = matches.get_one::<PathBuf>("file").map(PathBuf::as_path);
    let connect = matches.get_one::<String>("connect").cloned();
    let pool = matches.get_one::<String>("pool").cloned();
    match matches.subcommand() {
        Some(("up", sub)) => {
            let options = UpOptions {
                connect,
                pool,
                pool_dir: sub.get_one::<String>("pool-dir").cloned(),
                image: sub.get_one::<PathBuf>("image").expect("required").clone(),
                ssh_key: sub.get_one::<PathBuf>("ssh-key").expect("required").clone(),
                wait: Stage::parse(sub.get_one::<String>("wait").expect("default")),
                timeout: Duration::from_secs(*sub.get_one::<u64>("timeout").expect("default")),
                domain_type: sub
                    .get_one::<String>("domain-type")
                    .expect("default")
                    .clone(),
                recreate: sub.get_flag("recreate"),
                start: !sub.get_flag("no-start"),
                overcommit: sub.get_flag("overcommit"),
                fail_after_node: sub.get_one::<usize>("fail-after-node").copied(),
            };
            let doc = hardway::doc::read(file)?;
            if sub.get_flag("dry-run") {
                let plan = dry_run(&doc, &options)?;
                hardway::io::print_json(&plan)?;
                return Ok(Exit::Ok);
            }
            let doc = up(doc, &options)?;
            hardway::doc::write(&doc, std::io::stdout().lock())?;
            Ok(Exit::Ok)
        }
        Some(("down", sub)) => {
            let doc = hardway::doc::read(file)?;
            let dry_run = sub.get_flag("dry-run");
            let (doc, removed) = down(doc, connect.as_deref(), dry_run)?;
            if dry_run {
                hardway::io::print_json(&json!({"remove": removed}))?;
            } else {
                hardway::doc::write(&doc, std::io::stdout().lock())?;
            }
            Ok(Exit::Ok)
        }
        Some(("status", sub)) => {
            let doc = hardway::doc::read(file)?;
            let rows = status(&doc, connect.as_deref())?;
            if sub.get_one::<String>("output").map(String::as_str) == Some("table") {
                print_status_table(&rows)?;
            } else {
                hardway::io::print_json(&rows)?;
            }
            let healthy = rows.iter().all(|r| r.state == "running" && r.owned);
            Ok(if healthy { Exit::Ok } else { Exit::Problem })
        }
        _ => unreachable!("clap requires a subcommand"),
    }
}

/// The options of `mkvm up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub connect: Option<String>,
    pub pool: Option<String>,
    pub pool_dir: Option<String>,
    pub image: PathBuf,
    pub ssh_key: PathBuf,
    pub wait: Stage,
    pub timeout: Duration,
    pub domain_type: String,
    pub recreate: bool,
    /// false with --no-start: define only.
    pub start: bool,
    pub overcommit: bool,
    /// Tests only: fail after creating the K-th node (1-based), to prove the rollback.
    pub fail_after_node: Option<usize>,
}

/// Reads and checks the SSH public key: one `type base64 [comment]` line.
fn read_public_key(path: &Path) -> Result<String, MkvmError> {
    let at = format!("--ssh-key {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| {
        MkvmError::preflight(
            &at,
            format!("cannot read the public key: {e}; make one with ssh-keygen -t ed25519"),
        )
    })?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let mut fields = line.split_whitespace();
    let kind = fields.next().unwrap_or("");
    let body = fields.next().unwrap_or("");
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-"))
        || body.len() < 16
    {
        return Err(MkvmError::preflight(
            &at,
            "is not an OpenSSH public key (expected `ssh-ed25519 AAAA… comment`); give the .pub file",
        ));
    }
    Ok(line.to_string())
}

fn build_plan(doc: &Document, options: &UpOptions) -> Result<Plan, MkvmError> {
    let base = image::inspect(&options.image)?;
    let ssh_public_key = read_public_key(&options.ssh_key)?;
    plan::build(
        doc,
        &PlanOptions {
            connect: options.connect.clone(),
            pool: options.pool.clone(),
            pool_dir: options.pool_dir.clone(),
            image: options.image.clone(),
            base,
            ssh_public_key,
        },
    )
}

/// The distinct hypervisors of a plan, in the nodes' order.
fn uris(plan: &Plan) -> Vec<String> {
    let mut uris: Vec<String> = Vec::new();
    for node in &plan.nodes {
        if !uris.contains(&node.uri) {
            uris.push(node.uri.clone());
        }
    }
    uris
}

fn domain_type(host: Option<&Host>, requested: &str) -> String {
    match (requested, host) {
        ("auto", Some(host)) => host.best_domain_type(),
        ("auto", None) => "qemu".into(),
        (other, _) => other.to_string(),
    }
}

/// `--dry-run`: the XML of every object, as JSON. Connects (if it can) only to pick the type.
pub fn dry_run(doc: &Document, options: &UpOptions) -> Result<Value, MkvmError> {
    let plan = build_plan(doc, options)?;
    let mut types = BTreeMap::new();
    for uri in uris(&plan) {
        let host = if options.domain_type == "auto" {
            Host::open(&uri).ok()
        } else {
            None
        };
        types.insert(uri, domain_type(host.as_ref(), &options.domain_type));
    }
    let nodes: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "uri": n.uri,
                "volumes": [
                    {"pool": plan.pool.name, "xml": n.overlay_xml},
                    {"pool": plan.pool.name, "xml": n.seed_volume_xml(0), "content": {
                        "user-data": n.seed.user_data,
                        "meta-data": n.seed.meta_data,
                        "network-config": n.seed.network_config,
                    }},
                ],
                "domain": n.domain_xml(&plan.cluster, &plan.network.name, &plan.pool.name, &types[&n.uri]),
            })
        })
        .collect();
    Ok(json!({
        "network": plan.network.xml(&plan.cluster, None),
        "pool": plan.pool.xml,
        "nodes": nodes,
    }))
}

/// What preflight found for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeState {
    Missing,
    Matches,
    Changed(String),
}

/// `mkvm up`: preflight, apply (rolled back on failure), wait; returns the updated document.
pub fn up(mut doc: Document, options: &UpOptions) -> Result<Document, MkvmError> {
    let plan = build_plan(&doc, options)?;
    let mut hosts = BTreeMap::new();
    for uri in uris(&plan) {
        hosts.insert(uri.clone(), Host::open(&uri)?);
    }

    // Preflight: read only.
    let mut changed = Vec::new();
    let mut network_changed = BTreeMap::new();
    let mut states = Vec::new();
    for (uri, host) in &hosts {
        if let Some(network) = host.network(&plan.network.name)? {
            let xml = host.network_xml(&network)?;
            match plan::network_mark(&xml) {
                Some(mark) if mark.cluster == plan.cluster => {
                    if mark.spec != plan.network.spec {
                        changed.push(format!("network {} differs from the document", plan.network.name));
                        network_changed.insert(uri.clone(), true);
                    }
                }
                _ => {
                    return Err(MkvmError::preflight(
                        "hypervisor.network",
                        format!(
                            "network {:?} on {uri} exists and is not mkvm's for cluster {:?}: choose another hypervisor.network or remove it",
                            plan.network.name, plan.cluster
                        ),
                    ))
                }
            }
        }
        for (other, range) in host.other_network_ranges(&plan.network.name)? {
            if let Some(ours) = plan
                .network
                .ranges
                .iter()
                .find(|r| r.contains(&range.network()) || range.contains(&r.network()))
            {
                return Err(MkvmError::preflight(
                    "cluster.networks.node",
                    format!("{ours} overlaps {range} of the active libvirt network {} on {uri}: pick another node range (cidr-alloc --avoid {range})", hardway::error::quote(&other)),
                ));
            }
        }
    }
    let mut memory_needed: BTreeMap<&str, u64> = BTreeMap::new();
    for node in &plan.nodes {
        let host = &hosts[&node.uri];
        let state = match host.domain(&node.name)? {
            Some(domain) => {
                let xml = host.domain_xml(&domain)?;
                match plan::vm_mark(&xml) {
                    Some(mark) if mark.cluster == plan.cluster && mark.node == node.name => {
                        if mark.spec == node.spec {
                            NodeState::Matches
                        } else {
                            let mut why = Vec::new();
                            if mark.vcpus != node.vcpus {
                                why.push(format!("vcpus {} -> {}", mark.vcpus, node.vcpus));
                            }
                            if mark.memory_mib != node.memory_mib {
                                why.push(format!("memory_mib {} -> {}", mark.memory_mib, node.memory_mib));
                            }
                            if mark.disk_gib != node.disk_gib {
                                why.push(format!("disk_gib {} -> {}", mark.disk_gib, node.disk_gib));
                            }
                            if why.is_empty() {
                                why.push("seed, MAC or base image changed".into());
                            }
                            NodeState::Changed(why.join(", "))
                        }
                    }
                    _ => {
                        return Err(MkvmError::preflight(
                            format!("nodes[{}].name", node.index),
                            format!("domain {:?} on {} exists and is not mkvm's for cluster {:?}: rename the node or remove the domain", node.name, node.uri, plan.cluster),
                        ))
                    }
                }
            }
            None => {
                if let Some(pool) = host.pool(&plan.pool.name)? {
                    for volume in [&node.overlay, &node.seed_volume] {
                        if host.volume(&pool, volume)?.is_some() {
                            return Err(MkvmError::preflight(
                                format!("nodes[{}].name", node.index),
                                format!("volume {}/{volume} on {} exists but no domain of cluster {:?} owns it: remove it or use another --pool", plan.pool.name, node.uri, plan.cluster),
                            ));
                        }
                    }
                }
                NodeState::Missing
            }
        };
        if let NodeState::Changed(why) = &state {
            changed.push(format!("node {} changed ({why})", node.name));
        }
        if state != NodeState::Matches {
            *memory_needed.entry(node.uri.as_str()).or_default() += node.memory_mib;
        }
        states.push(state);
    }
    if !changed.is_empty() && !options.recreate {
        return Err(MkvmError::Changed(changed.join("; ")));
    }
    if !options.overcommit {
        for (uri, needed) in &memory_needed {
            let free = hosts[*uri].free_memory_mib()?;
            if *needed > free {
                return Err(MkvmError::preflight(
                    "nodes[].memory_mib",
                    format!("the new domains need {needed} MiB but {uri} has {free} MiB free: stop something, shrink the nodes, or pass --overcommit"),
                ));
            }
        }
    }
    let mut types = BTreeMap::new();
    for (uri, host) in &hosts {
        types.insert(uri.clone(), domain_type(Some(host), &options.domain_type));
    }

    // Apply, logging what this run creates; undo it all on the first error.
    let mut created = Vec::new();
    let applied = apply(
        &plan,
        &hosts,
        &states,
        &types,
        &network_changed,
        options,
        &mut created,
    );
    if let Err(error) = applied {
        let note = rollback(&hosts, &created);
        return Err(error.with_rollback(note));
    }

    // Waits, every node in parallel.
    let progress = Progress::new();
    let identity = wait::identity_for(&options.ssh_key);
    let deadline = Instant::now() + options.timeout;
    let until = if options.start {
        options.wait
    } else {
        Stage::Defined
    };
    let results: Vec<Result<wait::Reached, MkvmError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .nodes
            .iter()
            .map(|node| {
                let host = &hosts[&node.uri];
                let progress = progress.node(&node.name, until as u64);
                let identity = identity.as_deref();
                scope.spawn(move || {
                    let domain = host.domain(&node.name)?.ok_or_else(|| MkvmError::Wait {
                        node: node.name.clone(),
                        message: "the domain disappeared".into(),
                    })?;
                    let target = Target {
                        name: &node.name,
                        ip: node.ip,
                        mac: &node.mac,
                        identity,
                    };
                    wait::wait_node(host, &domain, &target, until, deadline, &progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a wait thread panicked"))
            .collect()
    });

    for (node, result) in plan.nodes.iter().zip(results) {
        let reached = result?;
        let host = &hosts[&node.uri];
        let domain = host
            .domain(&node.name)?
            .ok_or_else(|| MkvmError::vanished(&node.uri, &node.name, "while mkvm waited on it"))?;
        let vm = vm_status(host, &domain, node, &reached)?;
        doc.nodes[node.index].vm = Some(vm);
    }
    Ok(doc)
}

/// The document's `vm` section for a node.
fn vm_status(
    host: &Host,
    domain: &virt::domain::Domain,
    node: &NodePlan,
    reached: &wait::Reached,
) -> Result<VmStatus, MkvmError> {
    let mut vm = VmStatus {
        uuid: Some(
            domain
                .uuid_string()
                .map_err(|e| host.err(format!("reading the UUID of {}", node.name), &e))?,
        ),
        state: Some(state_name(domain)),
        ssh: Some(
            match reached.stage {
                Stage::CloudInit | Stage::Ssh => "ready",
                _ => "not-checked",
            }
            .to_string(),
        ),
        // The address the guest was seen at (lease or neighbour table), for node-push.
        address: reached.seen,
        ..VmStatus::default()
    };
    vm.extra
        .insert("stage".into(), json!(reached.stage.as_str()));
    vm.extra.insert("domain".into(), json!(node.name));
    vm.extra.insert("uri".into(), json!(host.uri));
    vm.extra.insert(
        "console".into(),
        json!(format!("virsh -c {} console {}", host.uri, node.name)),
    );
    Ok(vm)
}

fn state_name(domain: &virt::domain::Domain) -> String {
    use virt::domain::DomainState::*;
    use virt::enumutil::Enum;
    match domain.state() {
        Ok((Enum::Known(state), _)) => match state {
            Running => "running",
            Blocked => "blocked",
            Paused => "paused",
            Shutdown => "shutting-down",
            Shutoff => "shut-off",
            Crashed => "crashed",
            PMSuspended => "suspended",
            NoState => "unknown",
        }
        .to_string(),
        _ => "unknown".to_string(),
    }
}

fn apply(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    states: &[NodeState],
    types: &BTreeMap<String, String>,
    network_changed: &BTreeMap<String, bool>,
    options: &UpOptions,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    // Nodes to replace go first, so the network and pool are free to change.
    for (node, state) in plan.nodes.iter().zip(states) {
        if let NodeState::Changed(why) = state {
            let host = &hosts[&node.uri];
            log(format!("{}: recreating ({why})", node.name));
            remove_owned_node(host, &plan.cluster, &node.name)?;
        }
    }
    for (uri, host) in hosts {
        // The pool first: the network's mark records whether mkvm made it.
        let pool_missing = host.pool(&plan.pool.name)?.is_none();
        let existing = host.network(&plan.network.name)?;
        let replace_network = network_changed.get(uri).copied().unwrap_or(false);
        let mut pool_created = None;
        if let Some(network) = &existing {
            let mark = plan::network_mark(&host.network_xml(network)?).unwrap_or_default();
            pool_created = mark.pool_created;
        }
        if pool_missing {
            let pool = host
                .conn
                .define_storage_pool_xml(&plan.pool.xml, 0)
                .map_err(|e| host.err(format!("defining pool {}", plan.pool.name), &e))?;
            created.push(Created::Pool {
                uri: uri.clone(),
                name: plan.pool.name.clone(),
            });
            pool.build(0).map_err(|e| {
                host.err(
                    format!("building pool {} ({})", plan.pool.name, plan.pool.dir),
                    &e,
                )
            })?;
            pool.create(0)
                .map_err(|e| host.err(format!("starting pool {}", plan.pool.name), &e))?;
            let _ = pool.set_autostart(true);
            log(format!(
                "pool {} created at {}",
                plan.pool.name, plan.pool.dir
            ));
            pool_created = Some(plan.pool.name.clone());
        } else if let Some(pool) = host.pool(&plan.pool.name)? {
            if !pool.is_active().unwrap_or(false) {
                pool.create(0)
                    .map_err(|e| host.err(format!("starting pool {}", plan.pool.name), &e))?;
            }
        }
        match existing {
            Some(network) if !replace_network => {
                if !network.is_active().unwrap_or(false) {
                    network.create().map_err(|e| {
                        host.err(format!("starting network {}", plan.network.name), &e)
                    })?;
                }
                sync_network_hosts(plan, host, &network, created)?;
            }
            other => {
                if let Some(network) = other {
                    log(format!(
                        "network {}: recreating (it differs from the document)",
                        plan.network.name
                    ));
                    host.remove_network(&network)?;
                }
                let xml = plan.network.xml(&plan.cluster, pool_created.as_deref());
                let network = host
                    .conn
                    .define_network_xml(&xml)
                    .map_err(|e| host.err(format!("defining network {}", plan.network.name), &e))?;
                created.push(Created::Network {
                    uri: uri.clone(),
                    name: plan.network.name.clone(),
                });
                network
                    .create()
                    .map_err(|e| host.err(format!("starting network {}", plan.network.name), &e))?;
                let _ = network.set_autostart(true);
                log(format!("network {} created", plan.network.name));
            }
        }
    }

    for (count, (node, state)) in plan.nodes.iter().zip(states).enumerate() {
        let host = &hosts[&node.uri];
        if *state == NodeState::Matches {
            let domain = host.domain(&node.name)?.ok_or_else(|| {
                MkvmError::vanished(&node.uri, &node.name, "after the preflight saw it")
            })?;
            if options.start && !domain.is_active().unwrap_or(false) {
                domain
                    .create()
                    .map_err(|e| host.err(format!("starting domain {}", node.name), &e))?;
                log(format!("{}: started", node.name));
            }
        } else {
            create_node(plan, host, node, &types[&node.uri], options.start, created)?;
        }
        if options.fail_after_node == Some(count + 1) {
            return Err(MkvmError::Libvirt {
                uri: node.uri.clone(),
                what: format!("after node {} (--fail-after-node {})", node.name, count + 1),
                message: "injected failure".into(),
                rollback: String::new(),
            });
        }
    }
    Ok(())
}

/// Brings an existing network's DHCP and DNS host entries in line with the nodes: adds the new
/// ones, deletes the stale ones, in place (a node added to the cluster needs no network restart).
fn sync_network_hosts(
    plan: &Plan,
    host: &Host,
    network: &virt::network::Network,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    let (dhcp, dns) = plan::network_hosts(&host.network_xml(network)?);
    let mut edits = Vec::new();
    for entry in dhcp.iter().filter(|e| !plan.network.dhcp_hosts.contains(e)) {
        edits.push((
            virt::sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
            entry.xml(),
            false,
        ));
    }
    for entry in dns.iter().filter(|e| !plan.network.dns_hosts.contains(e)) {
        edits.push((virt::sys::VIR_NETWORK_SECTION_DNS_HOST, entry.xml(), false));
    }
    for entry in plan.network.dhcp_hosts.iter().filter(|e| !dhcp.contains(e)) {
        edits.push((
            virt::sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
            entry.xml(),
            true,
        ));
    }
    for entry in plan.network.dns_hosts.iter().filter(|e| !dns.contains(e)) {
        edits.push((virt::sys::VIR_NETWORK_SECTION_DNS_HOST, entry.xml(), true));
    }
    for (section, xml, add) in edits {
        host.update_network_host(network, section, &xml, add)?;
        log(format!(
            "network {}: {} {xml}",
            plan.network.name,
            if add { "added" } else { "deleted" }
        ));
        created.push(Created::NetworkHost {
            uri: host.uri.clone(),
            network: plan.network.name.clone(),
            section,
            xml,
            added: add,
        });
    }
    Ok(())
}

fn create_node(
    plan: &Plan,
    host: &Host,
    node: &NodePlan,
    domain_type: &str,
    start: bool,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    let pool = host
        .pool(&plan.pool.name)?
        .ok_or_else(|| MkvmError::Libvirt {
            uri: host.uri.clone(),
            what: format!("pool {}", plan.pool.name),
            message: "disappeared".into(),
            rollback: String::new(),
        })?;
    let overlay =
        virt::storage_vol::StorageVol::create_xml(&pool, &node.overlay_xml, 0).map_err(|e| {
            host.err(
                format!("creating volume {} backed by the base image", node.overlay),
                &e,
            )
        })?;
    drop(overlay);
    created.push(Created::Volume {
        uri: host.uri.clone(),
        pool: plan.pool.name.clone(),
        name: node.overlay.clone(),
    });
    let iso = seed::iso(&node.seed)?;
    let seed_volume = virt::storage_vol::StorageVol::create_xml(
        &pool,
        &node.seed_volume_xml(iso.len() as u64),
        0,
    )
    .map_err(|e| host.err(format!("creating seed volume {}", node.seed_volume), &e))?;
    created.push(Created::Volume {
        uri: host.uri.clone(),
        pool: plan.pool.name.clone(),
        name: node.seed_volume.clone(),
    });
    // libvirt's test driver keeps no volume contents; every real driver takes the upload.
    if !host.is_test_driver() {
        host.upload(&seed_volume, &iso)?;
    }
    let xml = node.domain_xml(
        &plan.cluster,
        &plan.network.name,
        &plan.pool.name,
        domain_type,
    );
    let domain = host
        .conn
        .define_domain_xml(&xml)
        .map_err(|e| host.err(format!("defining domain {}", node.name), &e))?;
    created.push(Created::Domain {
        uri: host.uri.clone(),
        name: node.name.clone(),
    });
    if !start {
        log(format!("{}: defined ({domain_type})", node.name));
        return Ok(());
    }
    domain
        .create()
        .map_err(|e| host.err(format!("starting domain {}", node.name), &e))?;
    log(format!(
        "{}: created and started ({domain_type}, {} vCPU, {} MiB, {} GiB)",
        node.name, node.vcpus, node.memory_mib, node.disk_gib
    ));
    Ok(())
}

/// Undoes `created` in reverse; returns a note for the error message.
fn rollback(hosts: &BTreeMap<String, Host>, created: &[Created]) -> String {
    if created.is_empty() {
        return "; nothing had been created".into();
    }
    let mut undone = Vec::new();
    let mut failed = Vec::new();
    for item in created.iter().rev() {
        match hosts[item.uri()].undo(item) {
            Ok(()) => undone.push(item.describe()),
            Err(e) => failed.push(format!("{}: {e}", item.describe())),
        }
    }
    log(format!("rolled back: {}", undone.join(", ")));
    if failed.is_empty() {
        format!("; rolled back {} object(s) this run created", undone.len())
    } else {
        format!(
            "; rollback left: {} (remove them with mkvm down)",
            failed.join("; ")
        )
    }
}

/// Removes an owned domain with the volumes its mark lists.
fn remove_owned_node(host: &Host, cluster: &str, name: &str) -> Result<Vec<String>, MkvmError> {
    let mut removed = Vec::new();
    let Some(domain) = host.domain(name)? else {
        return Ok(removed);
    };
    let Some(mark) = plan::vm_mark(&host.domain_xml(&domain)?) else {
        return Ok(removed);
    };
    if mark.cluster != cluster {
        return Ok(removed);
    }
    host.remove_domain(&domain)?;
    removed.push(format!("domain {name}"));
    for volume in [&mark.overlay, &mark.seed] {
        if !volume.is_empty() && host.remove_volume(&mark.pool, volume)? {
            removed.push(format!("volume {}/{volume}", mark.pool));
        }
    }
    Ok(removed)
}

/// `mkvm down`: removes this cluster's domains (with their volumes), then its network, then the
/// pool if mkvm made it and it is empty. Same-named objects without the mark are left alone.
pub fn down(
    mut doc: Document,
    connect: Option<&str>,
    dry_run: bool,
) -> Result<(Document, Vec<String>), MkvmError> {
    let cluster = doc.cluster.name.clone();
    let network_name = plan::network_name(&doc);
    let mut uris: Vec<String> = Vec::new();
    for node in &doc.nodes {
        let uri = plan::node_uri(&doc, connect, node);
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    if uris.is_empty() {
        uris.push(connect.map(str::to_string).unwrap_or_else(|| {
            doc.hypervisor
                .as_ref()
                .map(|h| h.uri.clone())
                .unwrap_or_else(|| plan::DEFAULT_URI.into())
        }));
    }
    let mut removed = Vec::new();
    for uri in &uris {
        let host = Host::open(uri)?;
        for (domain, mark) in host.owned_domains(&cluster)? {
            let name = domain.name().unwrap_or_default();
            if dry_run {
                removed.push(format!("{uri}: domain {name}"));
                for volume in [&mark.overlay, &mark.seed] {
                    removed.push(format!("{uri}: volume {}/{volume}", mark.pool));
                }
                continue;
            }
            for item in remove_owned_node(&host, &cluster, &name)? {
                log(format!("removed {item}"));
                removed.push(format!("{uri}: {item}"));
            }
        }
        for node in &doc.nodes {
            if let Some(domain) = host.domain(&node.name)? {
                if plan::vm_mark(&host.domain_xml(&domain)?).is_none_or(|m| m.cluster != cluster) {
                    log(format!(
                        "left domain {} alone: it is not mkvm's for cluster {cluster}",
                        node.name
                    ));
                }
            }
        }
        if let Some(network) = host.network(&network_name)? {
            match plan::network_mark(&host.network_xml(&network)?) {
                Some(mark) if mark.cluster == cluster => {
                    // The pool before the network: the network's mark is the only record that
                    // mkvm made the pool, so it must outlive a failed pool removal.
                    if let Some(pool) = mark.pool_created {
                        if dry_run {
                            removed.push(format!("{uri}: pool {pool} (if empty)"));
                        } else if host.remove_pool_if_empty(&pool)? {
                            log(format!("removed pool {pool}"));
                            removed.push(format!("{uri}: pool {pool}"));
                        }
                    }
                    removed.push(format!("{uri}: network {network_name}"));
                    if !dry_run {
                        host.remove_network(&network)?;
                        log(format!("removed network {network_name}"));
                    }
                }
                _ => log(format!(
                    "left network {network_name} alone: it is not mkvm's for cluster {cluster}"
                )),
            }
        }
    }
    if !dry_run {
        for node in &mut doc.nodes {
            node.vm = None;
        }
    }
    Ok((doc, removed))
}

/// One row of `mkvm status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    pub node: String,
    pub uri: String,
    pub owned: bool,
    pub state: String,
    pub uuid: Option<String>,
    pub ip: Option<String>,
    pub ssh: bool,
}

/// `mkvm status`: each node's domain as libvirt and the network see it.
pub fn status(doc: &Document, connect: Option<&str>) -> Result<Vec<StatusRow>, MkvmError> {
    let mut hosts: BTreeMap<String, Host> = BTreeMap::new();
    let mut rows = Vec::new();
    for node in &doc.nodes {
        let uri = plan::node_uri(doc, connect, node);
        if !hosts.contains_key(&uri) {
            hosts.insert(uri.clone(), Host::open(&uri)?);
        }
        let host = &hosts[&uri];
        let ip = node.primary_ip();
        let mut row = StatusRow {
            node: node.name.clone(),
            uri: uri.clone(),
            owned: false,
            state: "missing".into(),
            uuid: None,
            ip: ip.map(|i| i.to_string()),
            ssh: false,
        };
        if let Some(domain) = host.domain(&node.name)? {
            let mark = plan::vm_mark(&host.domain_xml(&domain)?);
            row.owned = mark.is_some_and(|m| m.cluster == doc.cluster.name);
            row.state = state_name(&domain);
            row.uuid = domain.uuid_string().ok();
            // A test:// domain is no machine: never send packets to its address.
            row.ssh = row.state == "running"
                && !host.is_test_driver()
                && ip.and_then(wait::ssh_banner).is_some();
        }
        rows.push(row);
    }
    Ok(rows)
}

fn print_status_table(rows: &[StatusRow]) -> Result<(), MkvmError> {
    let table = hardway::table::render(
        &["node", "state", "owned", "ip", "ssh", "uri"],
        rows.iter()
            .map(|r| {
                vec![
                    r.node.clone(),
                    r.state.clone(),
                    if r.owned { "yes" } else { "NO" }.into(),
                    r.ip.clone().unwrap_or_default(),
                    if r.ssh { "ready" } else { "-" }.into(),
                    r.uri.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    hardway::io::print(&table)?;
    Ok(())
}
