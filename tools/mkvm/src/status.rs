//! What the nodes' domains are: `mkvm status`'s rows, and the `vm` section `mkvm up` writes
//! into the document for each node it brought up.

use std::collections::BTreeMap;

use hardway::doc::{Document, VmStatus};
use hardway::table::Format;
use serde_json::json;

use crate::error::MkvmError;
use crate::hypervisor::Host;
use crate::mark;
use crate::plan::{self, NodePlan, Plan};
use crate::wait::{self, Reached, Stage};

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
    // Every hypervisor at once: one that does not answer is exit 3 naming it.
    let hosts = crate::open_hosts(&plan::node_uris(doc, connect))?;
    let mut rows = Vec::new();
    for node in &doc.nodes {
        let uri = plan::node_uri(doc, connect, node);
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
            let mark = mark::vm_mark(&host.domain_xml(&domain)?);
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

/// Prints the rows as JSON or as a table.
pub fn print(rows: &[StatusRow], format: Format) -> Result<(), MkvmError> {
    if format == Format::Json {
        hardway::io::print_json(&rows)?;
        return Ok(());
    }
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

/// Writes each planned node's `vm` section into the document, from where its wait got to.
pub fn record(
    mut doc: Document,
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    reached: &[Reached],
) -> Result<Document, MkvmError> {
    for (node, reached) in plan.nodes.iter().zip(reached) {
        let host = &hosts[&node.uri];
        let domain = host
            .domain(&node.name)?
            .ok_or_else(|| MkvmError::vanished(&node.uri, &node.name, "while mkvm waited on it"))?;
        doc.nodes[node.index].vm = Some(vm_status(host, &domain, node, reached)?);
    }
    Ok(doc)
}

/// The document's `vm` section for a node.
fn vm_status(
    host: &Host,
    domain: &virt::domain::Domain,
    node: &NodePlan,
    reached: &Reached,
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

pub fn state_name(domain: &virt::domain::Domain) -> String {
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
