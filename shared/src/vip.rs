//! Who holds the API VIP (`cluster.api.vip`): decided once, here, because mkunits configures
//! keepalived on those nodes and mkcerts names the VIP in the apiserver certificate only when
//! some node answers on it.
//!
//! The lb nodes hold it when there are any (docs/sources.md#seed-003: haproxy in front of the controllers);
//! otherwise the controllers do, their own apiserver answering on it. A VIP that is a node's own
//! address needs no keepalived: that node holds it already. Nothing holds
//! `cluster.controller_vip` (docs/sources.md#seed-003's second VIP): haproxy sends to each controller's own
//! address, so no unit mkunits writes puts that address on a node.

use crate::doc::{Document, Node};
use crate::Role;

/// The nodes keepalived runs on for the API VIP, in document order; empty without a VIP or when
/// the VIP is a node's own address.
pub fn api_vip_holders(doc: &Document) -> Vec<&Node> {
    match doc.cluster.api.vip {
        Some(vip) if !doc.nodes.iter().any(|n| n.ips.contains(&vip)) => {
            let lbs: Vec<&Node> = doc.nodes_with(Role::Lb).collect();
            if lbs.is_empty() {
                doc.nodes_with(Role::Controller).collect()
            } else {
                lbs
            }
        }
        _ => Vec::new(),
    }
}

/// Some node answers on the API VIP: keepalived holds it, or it is a node's own address.
pub fn api_vip_is_held(doc: &Document) -> bool {
    match doc.cluster.api.vip {
        Some(vip) => {
            doc.nodes.iter().any(|n| n.ips.contains(&vip)) || !api_vip_holders(doc).is_empty()
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ebook() -> Document {
        serde_json::from_str(include_str!("../../tests/fixtures/ebook-dualstack.json")).unwrap()
    }

    fn names(nodes: Vec<&Node>) -> Vec<&str> {
        nodes.into_iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn lbs_hold_the_vip_else_controllers_and_a_node_address_needs_no_keepalived() {
        let mut doc = ebook();
        assert_eq!(names(api_vip_holders(&doc)), ["lb1", "lb2"]);
        assert!(api_vip_is_held(&doc));
        doc.nodes.retain(|n| !n.has_role(Role::Lb));
        assert_eq!(names(api_vip_holders(&doc)), ["controller1", "controller2"]);
        doc.cluster.api.vip = Some(doc.nodes[3].ips[0]);
        assert!(api_vip_holders(&doc).is_empty());
        assert!(api_vip_is_held(&doc));
        doc.nodes.retain(|n| n.has_role(Role::Etcd));
        doc.cluster.api.vip = "10.240.0.40".parse().ok();
        assert!(!api_vip_is_held(&doc), "nobody answers on it");
        doc.cluster.api.vip = None;
        assert!(!api_vip_is_held(&doc));
    }
}
