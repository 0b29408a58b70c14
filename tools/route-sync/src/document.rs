//! The part of the cluster document route-sync reads, deserialized on its own: the version, the
//! node and service networks, and each node's name, addresses and pod CIDRs, borrowed from the
//! text where serde can. Every other field is skipped unread (serde's `IgnoredAny`), which makes
//! reading a 10,000-node document several times cheaper than the whole `hardway::Document`
//! with its `extra` maps; the JSON is still checked to be well-formed to its end.
//!
//! What route-sync uses is validated as `hardway::doc::read` validates it, at the same JSON
//! paths: the version, each node name (a DNS label, once), each pod CIDR (a pod range:
//! `hardway::validate::pod_range`). Fields route-sync never reads (files, fqdn, pki…) are the
//! business of the tools that use them.
//!
//! A document that lists `hypervisors` (a cluster across several machines) is also read whole
//! through `hardway::doc::parse`, once per pass: its hypervisor checks (names, addresses apart
//! from the cluster's ranges, slices that do not overlap, every node inside its hypervisor's
//! slice) then live in one place, and the fast view stays the one-machine case's.

use foldhash::{HashSet, HashSetExt};
use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// The document as route-sync sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct Document<'a> {
    pub version: u32,
    pub cluster: Cluster,
    #[serde(default, borrow)]
    pub nodes: Vec<Node<'a>>,
    /// The machines the cluster spans; empty for a cluster on one hypervisor.
    #[serde(default, borrow)]
    pub hypervisors: Vec<Hypervisor<'a>>,
}

/// One hypervisor of several (`hardway::doc::HypervisorHost`): what routing between them needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Hypervisor<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Its libvirt URI: the `host` of every node on it.
    #[serde(borrow)]
    pub uri: Cow<'a, str>,
    /// Its address on the network that joins the hypervisors.
    pub address: IpAddr,
    /// Its part of the node network, one range per family.
    #[serde(default)]
    pub node_slice: Vec<IpNet>,
}

impl Hypervisor<'_> {
    /// The gateway its nodes route through: the first address of its slice of that family, as
    /// mkvm gives its libvirt network (`hardway::validate::first_host`).
    pub fn gateway(&self, v6: bool) -> Option<IpAddr> {
        let slice = self.node_slice.iter().find(|s| s.addr().is_ipv6() == v6)?;
        hardway::validate::first_host(slice)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    pub networks: Networks,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Networks {
    pub node: Vec<IpNet>,
    pub service: Vec<IpNet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Node<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    #[serde(default)]
    pub pod_cidrs: Vec<IpNet>,
    /// The libvirt URI of the hypervisor it runs on.
    #[serde(default, borrow)]
    pub host: Option<Cow<'a, str>>,
}

impl Node<'_> {
    /// The node's address of the given family, if it has one.
    pub fn ip_of_family(&self, v6: bool) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| ip.is_ipv6() == v6)
    }
}

impl<'a> Document<'a> {
    /// Parses and validates the document's text; `source` names it in errors.
    pub fn parse(text: &'a str, source: &str) -> Result<Document<'a>, hardway::Error> {
        Document::parse_knowing(text, source, &mut PodRanges::default())
    }

    /// [`Document::parse`], skipping the pod-range check of the pod CIDRs `known` holds (it is
    /// a pure function of the CIDR and the networks): a `--watch` pass checks only what changed.
    pub fn parse_knowing(
        text: &'a str,
        source: &str,
        known: &mut PodRanges,
    ) -> Result<Document<'a>, hardway::Error> {
        let document = parse_only(text, source)?;
        document.validate(known)?;
        if !document.hypervisors.is_empty() {
            hardway::doc::parse(text, source)?;
        }
        Ok(document)
    }

    pub fn node(&self, name: &str) -> Option<&Node<'a>> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The hypervisor `node` runs on; `None` when the document lists none (validation makes
    /// sure every node has one otherwise).
    pub fn hypervisor_of(&self, node: &Node) -> Option<&Hypervisor<'a>> {
        let host = node.host.as_deref()?;
        self.hypervisors.iter().find(|h| h.uri == host)
    }

    pub fn hypervisor(&self, name: &str) -> Option<&Hypervisor<'a>> {
        self.hypervisors.iter().find(|h| h.name == name)
    }

    fn validate(&self, known: &mut PodRanges) -> Result<(), hardway::Error> {
        let invalid = |at: &str, why: String| hardway::Error::invalid(at, why);
        if self.version != hardway::doc::VERSION {
            return Err(invalid(
                "version",
                format!(
                    "document version {} is not supported (expected {})",
                    self.version,
                    hardway::doc::VERSION
                ),
            ));
        }
        let mut seen = HashSet::with_capacity(self.nodes.len());
        let mut checked = known.start(&self.cluster.networks);
        for (i, node) in self.nodes.iter().enumerate() {
            let path = || format!("nodes[{i}].name");
            hardway::validate::node_name(&node.name).map_err(|why| invalid(&path(), why))?;
            if !seen.insert(node.name.as_ref()) {
                return Err(invalid(
                    &path(),
                    format!("duplicate node name {}", hardway::error::quote(&node.name)),
                ));
            }
            for (j, cidr) in node.pod_cidrs.iter().enumerate() {
                checked
                    .check(cidr)
                    .map_err(|why| invalid(&format!("nodes[{i}].pod_cidrs[{j}]"), why))?;
            }
        }
        *known = checked.finish();
        Ok(())
    }
}

/// The pod CIDRs found to be pod ranges (`hardway::validate::pod_range`) against these node
/// and service networks, by the last document that passed. With 10,000 nodes the checks are a
/// third of a parse.
#[derive(Debug, Default)]
pub struct PodRanges {
    node: Vec<IpNet>,
    service: Vec<IpNet>,
    good: HashSet<IpNet>,
}

/// One document's pod-range checks in progress: what was known before, what this document has.
struct Checking<'k> {
    known: Option<&'k HashSet<IpNet>>,
    networks: &'k Networks,
    good: HashSet<IpNet>,
}

impl PodRanges {
    /// Begins checking a document with these networks; what is known holds only if they are
    /// the same networks.
    fn start<'k>(&'k self, networks: &'k Networks) -> Checking<'k> {
        let same = self.node == networks.node && self.service == networks.service;
        Checking {
            known: same.then_some(&self.good),
            networks,
            good: HashSet::new(),
        }
    }
}

impl Checking<'_> {
    fn check(&mut self, cidr: &IpNet) -> Result<(), String> {
        if !self.known.is_some_and(|k| k.contains(cidr)) {
            let n = self.networks;
            hardway::validate::pod_range(cidr, &n.node, &n.service)?;
        }
        self.good.insert(*cidr);
        Ok(())
    }

    /// What is known once every pod CIDR of this document passed.
    fn finish(self) -> PodRanges {
        PodRanges {
            node: self.networks.node.clone(),
            service: self.networks.service.clone(),
            good: self.good,
        }
    }
}

/// The parse. A text this view refuses, the whole `hardway::Document` refuses too (the view's
/// fields are some of its, typed alike), so only then is it parsed as one, for hardway's error:
/// the JSON path, line and column (of its first error, which may be in a field the view skips).
fn parse_only<'a>(text: &'a str, source: &str) -> Result<Document<'a>, hardway::Error> {
    serde_json::from_str::<Document>(text).map_err(|e| match hardway::doc::from_str(text, source) {
        Err(named) => named,
        Ok(_) => hardway::Error::invalid(source, e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> String {
        serde_json::to_string(&testkit::fixture_document("lab.json")).unwrap()
    }

    #[test]
    fn reads_what_the_whole_document_reads() {
        let text = lab();
        let full = hardway::doc::from_str(&text, "lab").unwrap();
        let ours = Document::parse(&text, "lab").unwrap();
        assert_eq!(ours.nodes.len(), full.nodes.len());
        for (a, b) in ours.nodes.iter().zip(&full.nodes) {
            assert_eq!(
                (a.name.as_ref(), &a.ips, &a.pod_cidrs),
                (b.name.as_str(), &b.ips, &b.pod_cidrs)
            );
        }
    }

    #[test]
    fn errors_name_the_json_path_and_position() {
        let text = lab().replacen("\"pod_cidrs\":[", "\"pod_cidrs\":[\"10.1.2.3\",", 1);
        let e = Document::parse(&text, "doc.json").unwrap_err();
        let hardway::Error::Parse {
            json_path, line, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((json_path.as_str(), *line), ("nodes[0].pod_cidrs[0]", 1));
        let text = lab().replacen("\"version\":1", "\"version\":2", 1);
        let e = Document::parse(&text, "doc.json").unwrap_err();
        assert!(e.to_string().starts_with("version: "), "{e}");
        let e = Document::parse(&format!("{} x", lab()), "doc.json").unwrap_err();
        assert!(matches!(e, hardway::Error::Parse { .. }), "{e}");
    }

    #[test]
    fn known_pod_ranges_never_hide_a_bad_one() {
        let text = lab();
        let mut known = PodRanges::default();
        Document::parse_knowing(&text, "lab", &mut known).unwrap();
        let cidr = testkit::fixture_document("lab.json").nodes[0].pod_cidrs[0];
        assert!(known.good.contains(&cidr));
        // A new CIDR is checked.
        let loopback = text.replacen(&format!("\"{cidr}\""), "\"127.0.0.0/8\"", 1);
        let e = Document::parse_knowing(&loopback, "lab", &mut known).unwrap_err();
        assert!(e.to_string().starts_with("nodes[0].pod_cidrs[0]: "), "{e}");
        // A known CIDR is checked again when the networks change: now it is a node network's.
        let moved = text.replacen("\"node\":[", &format!("\"node\":[\"{cidr}\","), 1);
        let e = Document::parse_knowing(&moved, "lab", &mut known).unwrap_err();
        assert!(e.to_string().contains("overlaps the node network"), "{e}");
    }

    #[test]
    fn names_are_dns_labels_once_and_pod_cidrs_pod_ranges() {
        let text = lab();
        let first = Document::parse(&text, "lab").unwrap().nodes[0]
            .name
            .to_string();
        let second = Document::parse(&text, "lab").unwrap().nodes[1]
            .name
            .to_string();
        let twice = text.replace(&format!("\"{second}\""), &format!("\"{first}\""));
        let e = Document::parse(&twice, "lab").unwrap_err();
        assert!(e.to_string().starts_with("nodes[1].name: duplicate"), "{e}");
        let bad = text.replace(&format!("\"{first}\""), "\"Node_1\"");
        let e = Document::parse(&bad, "lab").unwrap_err();
        assert!(e.to_string().starts_with("nodes[0].name: "), "{e}");
        let mut doc = Document::parse(&text, "lab").unwrap();
        doc.nodes[0].pod_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        let e = doc.validate(&mut PodRanges::default()).unwrap_err();
        assert!(e.to_string().starts_with("nodes[0].pod_cidrs[0]: "), "{e}");
    }
}
