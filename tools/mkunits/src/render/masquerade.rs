//! Pods talk without NAT: the bridge plugin does not masquerade (no `ipMasq`), and this nftables
//! table masquerades only what leaves the cluster, so a pod on another node, a node and
//! NetworkPolicy see the sending pod's own address (the Kubernetes network model).
//!
//! Masqueraded: a packet from the cluster's pod network to anything that is neither in the pod
//! network nor one of the nodes' own addresses. Not masqueraded: pod to pod (any node), and pod
//! to a node's address — kubelet, the apiserver and other host-network services see the pod,
//! and every node routes back to every pod CIDR (route-sync runs on all nodes with routed pod
//! networks). The gateway and the rest of the node network are outside: libvirt's NAT, for one,
//! masquerades only its own subnet and has no route to pod CIDRs, so pods reach it and the
//! internet as their node. Service traffic is already DNATed to a pod or node address by
//! kube-proxy when it reaches postrouting, so the same rule holds for it.
//!
//! With flannel, flanneld's own `--ip-masq` does this job and this table is not written.
//!
//! The file replaces the table atomically each time it is loaded (`nft -f` is one transaction:
//! create the table if missing, delete it, define it), so loading it again is a no-op and a
//! changed document replaces the rules without leaving old ones.

use hardway::doc::Node;
use hardway::Error;
use ipnet::IpNet;

use super::{Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};

pub const TABLE: &str = "hardway";

pub fn render(ctx: &Ctx, _node: &Node, b: &mut Builder) -> Result<(), Error> {
    b.file(layout::masquerade::RULES, rules(ctx).into_bytes());
    let unit = Unit::oneshot(
        "hardway-masquerade.service",
        "Masquerade pod traffic that leaves the cluster (nftables table inet hardway)",
        "man:nft(8)",
        vec![ExecLine::new(layout::masquerade::NFT)
            .arg("-f")
            .arg(layout::masquerade::RULES)],
    )
    // Pods exist only once the runtime and kubelet run.
    .before(&["containerd.service", "crio.service", "kubelet.service"])
    .set(
        "ExecStop",
        format!("{} delete table inet {TABLE}", layout::masquerade::NFT),
    );
    b.service(&unit);
    Ok(())
}

/// The nftables file: one set per family of pod ranges and node addresses, one rule per family.
pub fn rules(ctx: &Ctx) -> String {
    let doc = ctx.doc;
    let mut text = format!(
        "# Written by mkunits from the cluster document: pod traffic leaving the cluster leaves\n\
         # as the node; pod to pod and pod to node keep the pod's address.\n\
         table inet {TABLE} {{}}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n"
    );
    let mut rules = String::new();
    for (family, v6) in [("ip", false), ("ip6", true)] {
        let pods: Vec<String> = doc
            .cluster
            .networks
            .pod
            .iter()
            .filter(|n| n.addr().is_ipv6() == v6)
            .map(IpNet::to_string)
            .collect();
        if pods.is_empty() {
            continue;
        }
        let nodes: Vec<String> = doc
            .nodes
            .iter()
            .flat_map(|n| &n.ips)
            .filter(|ip| ip.is_ipv6() == v6)
            .map(ToString::to_string)
            .collect();
        let kind = if v6 { "ipv6_addr" } else { "ipv4_addr" };
        let suffix = if v6 { "v6" } else { "v4" };
        text.push_str(&set(&format!("pods_{suffix}"), kind, &pods));
        text.push_str(&set(&format!("nodes_{suffix}"), kind, &nodes));
        rules.push_str(&format!(
            "    {family} saddr @pods_{suffix} {family} daddr != @pods_{suffix} \
             {family} daddr != @nodes_{suffix} masquerade\n"
        ));
    }
    text.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    text.push_str(&rules);
    text.push_str("  }\n}\n");
    text
}

pub(crate) fn set(name: &str, kind: &str, elements: &[String]) -> String {
    let elements = if elements.is_empty() {
        String::new()
    } else {
        format!("\n    elements = {{ {} }}", elements.join(", "))
    };
    format!("  set {name} {{\n    type {kind}\n    flags interval{elements}\n  }}\n")
}
