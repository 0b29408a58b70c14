//! Preflight: the plan checked against every hypervisor before anything is touched — only reads.
//! A foreign object under one of our names, a node range that overlaps another active network,
//! or more guest memory than the host has available refuses the run (exit 2); a node or network
//! that differs from the document refuses it unless `--recreate` (exit 1).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::MkvmError;
use crate::hypervisor::Host;
use crate::mark::{self, VmMark};
use crate::plan::{NodePlan, Plan};
use crate::UpOptions;

/// What preflight found for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    Missing,
    Matches,
    Changed(String),
}

/// What apply needs to know from preflight.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Per node of the plan, in its order.
    pub states: Vec<NodeState>,
    /// The hypervisors whose (owned) network differs from the plan: it is recreated.
    pub network_changed: BTreeSet<String>,
    /// The domain type (kvm or qemu) per hypervisor.
    pub types: BTreeMap<String, String>,
}

impl Checked {
    /// What preflight found for one hypervisor's part of the plan ([`Plan::on_host`]).
    pub fn on_host(&self, plan: &Plan, uri: &str) -> Checked {
        Checked {
            states: plan
                .nodes
                .iter()
                .zip(&self.states)
                .filter(|(node, _)| node.uri == uri)
                .map(|(_, state)| state.clone())
                .collect(),
            network_changed: self
                .network_changed
                .iter()
                .filter(|u| *u == uri)
                .cloned()
                .collect(),
            types: self.types.clone(),
        }
    }
}

/// Reads and checks the SSH public key: one `type base64 [comment]` line.
pub fn read_public_key(path: &Path) -> Result<String, MkvmError> {
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

/// `--domain-type`: `auto` asks the host (qemu without one), else what was asked for.
pub fn domain_type(host: Option<&Host>, requested: &str) -> String {
    match (requested, host) {
        ("auto", Some(host)) => host.best_domain_type(),
        ("auto", None) => "qemu".into(),
        (other, _) => other.to_string(),
    }
}

/// Checks the plan against the hypervisors; see the module doc for what refuses it.
pub fn check(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    options: &UpOptions,
) -> Result<Checked, MkvmError> {
    let mut changed = Vec::new();
    let mut network_changed = BTreeSet::new();
    for (uri, host) in hosts {
        if network_differs(plan, uri, host)? {
            changed.push(format!(
                "network {} on {uri} differs from the document",
                plan.network_of(uri).name
            ));
            network_changed.insert(uri.clone());
        }
        refuse_overlaps(plan, uri, host)?;
    }
    let mut states = Vec::new();
    for node in &plan.nodes {
        let state = node_state(plan, &hosts[&node.uri], node)?;
        if let NodeState::Changed(why) = &state {
            changed.push(format!("node {} changed ({why})", node.name));
        }
        states.push(state);
    }
    if !changed.is_empty() && !options.recreate {
        return Err(MkvmError::Changed(changed.join("; ")));
    }
    if !options.overcommit {
        refuse_memory_shortage(plan, hosts, &states)?;
    }
    let types = hosts
        .iter()
        .map(|(uri, host)| (uri.clone(), domain_type(Some(host), &options.domain_type)))
        .collect();
    Ok(Checked {
        states,
        network_changed,
        types,
    })
}

/// Whether this cluster's network on `host` differs from the plan; refuses a foreign one.
fn network_differs(plan: &Plan, uri: &str, host: &Host) -> Result<bool, MkvmError> {
    let wanted = plan.network_of(uri);
    let Some(network) = host.network(&wanted.name)? else {
        return Ok(false);
    };
    match mark::network_mark(&host.network_xml(&network)?) {
        Some(mark) if mark.cluster == plan.cluster => Ok(mark.spec != wanted.spec),
        _ => Err(MkvmError::preflight(
            "hypervisor.network",
            format!(
                "network {:?} on {uri} exists and is not mkvm's for cluster {:?}: choose another hypervisor.network or remove it",
                wanted.name, plan.cluster
            ),
        )),
    }
}

/// Refuses node ranges that overlap another active libvirt network on the host.
fn refuse_overlaps(plan: &Plan, uri: &str, host: &Host) -> Result<(), MkvmError> {
    let wanted = plan.network_of(uri);
    for (other, range) in host.other_network_ranges(&wanted.name)? {
        if let Some(ours) = wanted
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
    Ok(())
}

/// Whether the node's domain is missing, matches, or changed; refuses a foreign domain, and
/// volumes under the node's names that no owned domain accounts for.
fn node_state(plan: &Plan, host: &Host, node: &NodePlan) -> Result<NodeState, MkvmError> {
    let at = format!("nodes[{}].name", node.index);
    let Some(domain) = host.domain(&node.name)? else {
        refuse_stray_volumes(plan, host, node, &at)?;
        return Ok(NodeState::Missing);
    };
    match mark::vm_mark(&host.domain_xml(&domain)?) {
        Some(mark) if mark.cluster == plan.cluster && mark.node == node.name => {
            Ok(if mark.spec == node.spec {
                NodeState::Matches
            } else {
                NodeState::Changed(what_changed(&mark, node))
            })
        }
        _ => Err(MkvmError::preflight(
            at,
            format!("domain {:?} on {} exists and is not mkvm's for cluster {:?}: rename the node or remove the domain", node.name, node.uri, plan.cluster),
        )),
    }
}

fn refuse_stray_volumes(
    plan: &Plan,
    host: &Host,
    node: &NodePlan,
    at: &str,
) -> Result<(), MkvmError> {
    let Some(pool) = host.pool(&plan.pool.name)? else {
        return Ok(());
    };
    for volume in [&node.overlay, &node.seed_volume] {
        if host.volume(&pool, volume)?.is_some() {
            return Err(MkvmError::preflight(
                at,
                format!("volume {}/{volume} on {} exists but no domain of cluster {:?} owns it: remove it or use another --pool", plan.pool.name, node.uri, plan.cluster),
            ));
        }
    }
    Ok(())
}

/// The sizes that changed between an owned domain's mark and the plan, for the exit-1 line.
fn what_changed(mark: &VmMark, node: &NodePlan) -> String {
    let mut why = Vec::new();
    if mark.vcpus != node.vcpus {
        why.push(format!("vcpus {} -> {}", mark.vcpus, node.vcpus));
    }
    if mark.memory_mib != node.memory_mib {
        why.push(format!(
            "memory_mib {} -> {}",
            mark.memory_mib, node.memory_mib
        ));
    }
    if mark.disk_gib != node.disk_gib {
        why.push(format!("disk_gib {} -> {}", mark.disk_gib, node.disk_gib));
    }
    if why.is_empty() {
        why.push("seed, MAC or base image changed".into());
    }
    why.join(", ")
}

/// Refuses when the domains to (re)create need more memory than a host has available.
fn refuse_memory_shortage(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    states: &[NodeState],
) -> Result<(), MkvmError> {
    let mut needed: BTreeMap<&str, u64> = BTreeMap::new();
    for (node, state) in plan.nodes.iter().zip(states) {
        if *state != NodeState::Matches {
            *needed.entry(node.uri.as_str()).or_default() += node.memory_mib;
        }
    }
    for (uri, needed) in needed {
        let available = hosts[uri].available_memory_mib()?;
        if needed > available {
            return Err(MkvmError::preflight(
                "nodes[].memory_mib",
                format!("the new domains need {needed} MiB but {uri} has {available} MiB available: stop something, shrink the nodes, or pass --overcommit"),
            ));
        }
    }
    Ok(())
}
