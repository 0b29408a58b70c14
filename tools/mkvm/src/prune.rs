//! Orphans: domains mkvm made for this cluster on a hypervisor of the plan whose node the
//! document no longer lists there (removed from the inventory, or moved to another `host`).
//! `mkvm up` reports them on stderr and keeps them; with `--prune` it removes each one with the
//! two volumes its mark names.
//!
//! Ownership is the mark alone (plan.rs): a domain counts only when its `<metadata>` carries
//! mkvm's namespace with this cluster's name, and the volumes removed are only the ones that
//! mark lists — a same-named domain without the mark, another cluster's domain, or a volume
//! named like ours that no owned domain lists is never touched. Runs after the waits succeeded,
//! so a failed `up` (rolled back) removes nothing it did not make.

use std::collections::BTreeMap;

use crate::error::MkvmError;
use crate::hypervisor::Host;
use crate::plan::Plan;
use crate::{down, log};

/// An owned domain whose node the document no longer lists on its hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Orphan {
    pub uri: String,
    pub domain: String,
    /// `POOL/NAME` of the volumes the domain's mark lists.
    pub volumes: Vec<String>,
    /// true when `--prune` removed it (with its volumes); false when it was kept.
    pub removed: bool,
}

/// Finds the orphans on every hypervisor of the plan; removes them when `prune`.
pub fn orphans(
    plan: &Plan,
    hosts: &BTreeMap<String, Host>,
    prune: bool,
) -> Result<Vec<Orphan>, MkvmError> {
    let mut found = Vec::new();
    for (uri, host) in hosts {
        for (domain, mark) in host.owned_domains(&plan.cluster)? {
            let name = domain.name().unwrap_or_default();
            if plan.nodes.iter().any(|n| n.uri == *uri && n.name == name) {
                continue;
            }
            let volumes = [&mark.overlay, &mark.seed]
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{}/{v}", mark.pool))
                .collect();
            let orphan = Orphan {
                uri: uri.clone(),
                domain: name,
                volumes,
                removed: prune,
            };
            if prune {
                let removed = down::remove_owned_node(host, &plan.cluster, &orphan.domain)?;
                log(format!(
                    "pruned node {} on {uri} (no longer in the document): removed {}",
                    orphan.domain,
                    removed.join(", ")
                ));
            } else {
                log(format!(
                    "kept domain {} and volumes {} on {uri}: node {} is no longer in the document; mkvm up --prune removes them",
                    orphan.domain,
                    orphan.volumes.join(", "),
                    orphan.domain
                ));
            }
            found.push(orphan);
        }
    }
    Ok(found)
}
