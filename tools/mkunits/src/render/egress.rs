//! Each hypervisor's egress masquerade, on a cluster across several (`hypervisors`).
//!
//! There mkvm makes `open`-mode libvirt networks, which add no firewall rule (README "Two
//! hypervisors": libvirt's `nat` would masquerade node-to-node traffic between the hypervisors,
//! and `route` drops pod sources). What libvirt's NAT did for the nodes is then one table on
//! each hypervisor: traffic from its nodes' addresses and pod CIDRs to anywhere outside the
//! cluster's node and pod networks leaves as the hypervisor, so nodes reach package mirrors;
//! traffic to another node or pod, on any hypervisor, keeps its source address.
//!
//! Written to `OUT/hypervisors/NAME/hardway-egress.nft`, for the user to load there
//! (`nft -f`): like the nodes' masquerade file it replaces its table in one transaction (create
//! it if missing, delete it, define it), so loading it again is a no-op.

use hardway::doc::{Document, HypervisorHost};
use ipnet::IpNet;

use super::masquerade::set;

/// The nftables table the file defines.
pub const TABLE: &str = "hardway-egress";
/// The file's name under `hypervisors/NAME/`.
pub const FILE: &str = "hardway-egress.nft";

/// The file for `host`, one of the document's hypervisors.
pub fn rules(doc: &Document, host: &HypervisorHost) -> String {
    let mut text = format!(
        "# Written by mkunits from the cluster document, for hypervisor {name}: what its nodes\n\
         # and their pods send outside the cluster leaves as {name}; all else keeps its source.\n\
         # Load it on {name} with: nft -f {FILE}\n\
         table inet {TABLE} {{}}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n",
        name = host.name
    );
    let mut rules = String::new();
    for (family, v6) in [("ip", false), ("ip6", true)] {
        let of_family = |nets: &mut dyn Iterator<Item = &IpNet>| -> Vec<String> {
            nets.filter(|n| n.addr().is_ipv6() == v6)
                .map(IpNet::to_string)
                .collect()
        };
        let local_pods = doc
            .nodes
            .iter()
            .filter(|n| n.host.as_deref() == Some(host.uri.as_str()))
            .flat_map(|n| &n.pod_cidrs);
        let sources = of_family(&mut host.node_slice.iter().chain(local_pods));
        let networks = &doc.cluster.networks;
        let cluster = of_family(&mut networks.node.iter().chain(&networks.pod));
        if sources.is_empty() {
            continue;
        }
        let kind = if v6 { "ipv6_addr" } else { "ipv4_addr" };
        let suffix = if v6 { "v6" } else { "v4" };
        text.push_str(&set(&format!("sources_{suffix}"), kind, &sources));
        text.push_str(&set(&format!("cluster_{suffix}"), kind, &cluster));
        rules.push_str(&format!(
            "    {family} saddr @sources_{suffix} {family} daddr != @cluster_{suffix} masquerade\n"
        ));
    }
    text.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    text.push_str(&rules);
    text.push_str("  }\n}\n");
    text
}

/// The path of `name`'s file under OUT.
pub fn path(name: &str) -> String {
    format!("{}{name}/{FILE}", crate::HYPERVISORS_PREFIX)
}

/// The files for every hypervisor, by path under OUT: none for a cluster on one machine (one
/// hypervisor or none listed), whose libvirt NAT network masquerades as before.
pub fn files(doc: &Document) -> Vec<(String, String)> {
    if doc.hypervisors.len() < 2 {
        return Vec::new();
    }
    doc.hypervisors
        .iter()
        .map(|h| (path(&h.name), rules(doc, h)))
        .collect()
}
