//! What mkvm owns, and how it knows: marks in the objects themselves, in mkvm's XML namespace
//! [`NS`], read back from libvirt's XML:
//! - the network: `<metadata><hardway:network cluster=… spec=… pool-created=…/>`;
//! - each domain: `<metadata><hardway:vm cluster=… node=… pool=… overlay=… seed=… …/>`, which
//!   also records the two volumes it owns (libvirt volumes carry no metadata of their own);
//! - volumes are named `CLUSTER-NODE.qcow2` and `CLUSTER-NODE-seed.iso` and are mkvm's only
//!   when an owned domain lists them (or this run created them); the pool is mkvm's only when
//!   the owned network says mkvm created it.
//!
//! The marks are written by the plan's XML ([`crate::plan::NetworkPlan::xml`],
//! [`crate::plan::NodePlan::domain_xml`]).

use std::collections::BTreeMap;

/// mkvm's XML namespace for the ownership marks.
pub const NS: &str = "https://example.invalid/hardway/mkvm/1";
pub const NS_PREFIX: &str = "hardway";

/// What mkvm recorded in an owned domain's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmMark {
    pub cluster: String,
    pub node: String,
    pub pool: String,
    pub overlay: String,
    pub seed: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub spec: String,
}

/// What mkvm recorded in an owned network's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkMark {
    pub cluster: String,
    pub spec: String,
    /// The pool mkvm created along with the network (removed by `down` once empty).
    pub pool_created: Option<String>,
}

/// The first element in mkvm's namespace with this local name, as attribute map.
fn mark_attributes(xml: &str, local: &str) -> Option<BTreeMap<String, String>> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let node = doc
        .descendants()
        .find(|n| n.tag_name().namespace() == Some(NS) && n.tag_name().name() == local)?;
    Some(
        node.attributes()
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect(),
    )
}

/// mkvm's mark in a domain's XML, if it has one.
pub fn vm_mark(xml: &str) -> Option<VmMark> {
    let a = mark_attributes(xml, "vm")?;
    let get = |k: &str| a.get(k).cloned().unwrap_or_default();
    Some(VmMark {
        cluster: get("cluster"),
        node: get("node"),
        pool: get("pool"),
        overlay: get("overlay"),
        seed: get("seed"),
        vcpus: get("vcpus").parse().unwrap_or(0),
        memory_mib: get("memory_mib").parse().unwrap_or(0),
        disk_gib: get("disk_gib").parse().unwrap_or(0),
        spec: get("spec"),
    })
}

/// mkvm's mark in a network's XML, if it has one.
pub fn network_mark(xml: &str) -> Option<NetworkMark> {
    let a = mark_attributes(xml, "network")?;
    Some(NetworkMark {
        cluster: a.get("cluster").cloned().unwrap_or_default(),
        spec: a.get("spec").cloned().unwrap_or_default(),
        pool_created: a.get("pool-created").cloned(),
    })
}
