//! Apply: makes the plan real after preflight passed, logging each object it creates (and each
//! network host entry it edits) in `created`, so that [`rollback`] can undo exactly what this run
//! made, in reverse, and nothing that existed before it.

use std::collections::BTreeMap;

use crate::error::MkvmError;
use crate::hypervisor::{Created, Host};
use crate::plan::{self, NodePlan, Plan};
use crate::preflight::{Checked, NodeState};
use crate::{down, log, mark, seed, UpOptions};

/// What one hypervisor's thread did: what it created (for the rollback), and its error if any.
pub struct HostRun {
    pub created: Vec<Created>,
    pub applied: Result<(), MkvmError>,
}

/// Applies each hypervisor's part of the plan in a thread of its own, all to the end (a failure
/// on one host does not cut another short, so every host's log is complete for the rollback);
/// in the order of `hosts`.
pub fn on_every_host(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    checked: &Checked,
    options: &UpOptions,
) -> Vec<HostRun> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = hosts
            .keys()
            .map(|uri| {
                scope.spawn(move || {
                    let part = plan.on_host(uri);
                    let checked = checked.on_host(plan, uri);
                    let mut created = Vec::new();
                    let applied = apply(&part, hosts, &checked, options, &mut created);
                    HostRun { created, applied }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a hypervisor's thread panicked"))
            .collect()
    })
}

/// Creates what the plan needs and preflight found missing; replaces what changed.
pub fn apply(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    checked: &Checked,
    options: &UpOptions,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    // Nodes to replace go first, so the network and pool are free to change.
    for (node, state) in plan.nodes.iter().zip(&checked.states) {
        if let NodeState::Changed(why) = state {
            log(format!("{}: recreating ({why})", node.name));
            down::remove_owned_node(&hosts[&node.uri], &plan.cluster, &node.name)?;
        }
    }
    for uri in plan.uris() {
        let host = &hosts[&uri];
        let replace_network = checked.network_changed.contains(&uri);
        let pool_created = ensure_pool(plan, host, created)?;
        ensure_network(plan, host, pool_created, replace_network, created)?;
    }
    for (count, (node, state)) in plan.nodes.iter().zip(&checked.states).enumerate() {
        let host = &hosts[&node.uri];
        if *state == NodeState::Matches {
            start_existing(host, node, options.start)?;
        } else {
            let domain_type = &checked.types[&node.uri];
            create_node(plan, host, node, domain_type, options.start, created)?;
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

/// Makes (or starts) the pool; returns the name of the pool mkvm made, now or in an earlier
/// run (the owned network's mark records it), for the network's mark.
fn ensure_pool(
    plan: &Plan,
    host: &Host,
    created: &mut Vec<Created>,
) -> Result<Option<String>, MkvmError> {
    let name = &plan.pool.name;
    if let Some(pool) = host.pool(name)? {
        if !pool.is_active().unwrap_or(false) {
            pool.create(0)
                .map_err(|e| host.err(format!("starting pool {name}"), &e))?;
        }
        let Some(network) = host.network(&plan.network_of(&host.uri).name)? else {
            return Ok(None);
        };
        let mark = mark::network_mark(&host.network_xml(&network)?).unwrap_or_default();
        return Ok(mark.pool_created);
    }
    let pool = host
        .conn
        .define_storage_pool_xml(&plan.pool.xml, 0)
        .map_err(|e| host.err(format!("defining pool {name}"), &e))?;
    created.push(Created::Pool {
        uri: host.uri.clone(),
        name: name.clone(),
    });
    pool.build(0)
        .map_err(|e| host.err(format!("building pool {name} ({})", plan.pool.dir), &e))?;
    pool.create(0)
        .map_err(|e| host.err(format!("starting pool {name}"), &e))?;
    let _ = pool.set_autostart(true);
    log(format!("pool {name} created at {}", plan.pool.dir));
    Ok(Some(name.clone()))
}

/// Keeps the owned network (started, host entries synced) unless it is to be replaced; makes it
/// when missing or replaced.
fn ensure_network(
    plan: &Plan,
    host: &Host,
    pool_created: Option<String>,
    replace: bool,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    let wanted = plan.network_of(&host.uri);
    let name = &wanted.name;
    if let Some(network) = host.network(name)? {
        if !replace {
            if !network.is_active().unwrap_or(false) {
                network
                    .create()
                    .map_err(|e| host.err(format!("starting network {name}"), &e))?;
            }
            return sync_network_hosts(plan, host, &network, created);
        }
        log(format!(
            "network {name}: recreating (it differs from the document)"
        ));
        host.remove_network(&network)?;
    }
    let xml = wanted.xml(&plan.cluster, pool_created.as_deref());
    let network = host
        .conn
        .define_network_xml(&xml)
        .map_err(|e| host.err(format!("defining network {name}"), &e))?;
    created.push(Created::Network {
        uri: host.uri.clone(),
        name: name.clone(),
    });
    network
        .create()
        .map_err(|e| host.err(format!("starting network {name}"), &e))?;
    let _ = network.set_autostart(true);
    log(format!("network {name} created"));
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
    use virt::sys::{
        VIR_NETWORK_SECTION_DNS_HOST as DNS, VIR_NETWORK_SECTION_IP_DHCP_HOST as DHCP,
    };
    let (dhcp, dns) = plan::network_hosts(&host.network_xml(network)?);
    let wanted = plan.network_of(&host.uri);
    let mut edits = Vec::new();
    for entry in dhcp.iter().filter(|e| !wanted.dhcp_hosts.contains(e)) {
        edits.push((DHCP, entry.xml(), false));
    }
    for entry in dns.iter().filter(|e| !wanted.dns_hosts.contains(e)) {
        edits.push((DNS, entry.xml(), false));
    }
    for entry in wanted.dhcp_hosts.iter().filter(|e| !dhcp.contains(e)) {
        edits.push((DHCP, entry.xml(), true));
    }
    for entry in wanted.dns_hosts.iter().filter(|e| !dns.contains(e)) {
        edits.push((DNS, entry.xml(), true));
    }
    for (section, xml, add) in edits {
        host.update_network_host(network, section, &xml, add)?;
        let verb = if add { "added" } else { "deleted" };
        log(format!("network {}: {verb} {xml}", wanted.name));
        created.push(Created::NetworkHost {
            uri: host.uri.clone(),
            network: wanted.name.clone(),
            section,
            xml,
            added: add,
        });
    }
    Ok(())
}

/// Starts a domain an earlier run made, if it is not running (and `start` is asked for).
fn start_existing(host: &Host, node: &NodePlan, start: bool) -> Result<(), MkvmError> {
    let domain = host
        .domain(&node.name)?
        .ok_or_else(|| MkvmError::vanished(&node.uri, &node.name, "after the preflight saw it"))?;
    if start && !domain.is_active().unwrap_or(false) {
        domain
            .create()
            .map_err(|e| host.err(format!("starting domain {}", node.name), &e))?;
        log(format!("{}: started", node.name));
    }
    Ok(())
}

/// The node's overlay and seed volumes, then its domain, started when `start`.
fn create_node(
    plan: &Plan,
    host: &Host,
    node: &NodePlan,
    domain_type: &str,
    start: bool,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    create_volumes(plan, host, node, created)?;
    let xml = node.domain_xml(
        &plan.cluster,
        &plan.network_of(&host.uri).name,
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

fn create_volumes(
    plan: &Plan,
    host: &Host,
    node: &NodePlan,
    created: &mut Vec<Created>,
) -> Result<(), MkvmError> {
    use virt::storage_vol::StorageVol;
    let pool = host
        .pool(&plan.pool.name)?
        .ok_or_else(|| MkvmError::Libvirt {
            uri: host.uri.clone(),
            what: format!("pool {}", plan.pool.name),
            message: "disappeared".into(),
            rollback: String::new(),
        })?;
    StorageVol::create_xml(&pool, &node.overlay_xml, 0).map_err(|e| {
        host.err(
            format!("creating volume {} backed by the base image", node.overlay),
            &e,
        )
    })?;
    created.push(Created::Volume {
        uri: host.uri.clone(),
        pool: plan.pool.name.clone(),
        name: node.overlay.clone(),
    });
    let iso = seed::iso(&node.seed)?;
    let seed_volume = StorageVol::create_xml(&pool, &node.seed_volume_xml(iso.len() as u64), 0)
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
    Ok(())
}

/// Undoes `created` in reverse; returns a note for the error message.
pub fn rollback(hosts: &BTreeMap<String, Host>, created: &[Created]) -> String {
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
