//! Read-time checks of every typed string in the document, run once by [`Document::validate`]
//! (so by `hardway::doc::read` and every tool) before any value reaches a unit, a config, a
//! hosts file, XML or a URI. A `cluster.name` or an `fqdn` with a newline once wrote extra lines,
//! `ExecStartPre=` among them, into every unit: each field is checked here for its format, and
//! every free-text field for control characters ([`validate::plain_text`]).
//!
//! `extra` maps (fields no tool knows: a user's annotations, a newer tool's sections) are not
//! checked: no tool writes them anywhere but back into the JSON document, where
//! [`crate::json`] escapes every hostile character (serde_json alone leaves DEL, C1 controls and
//! U+2028/U+2029 raw: the mkunits_render fuzzer found one in a node's copy), and the one extra field a tool reads (`cluster.controller_vip`) is parsed as
//! an IP address by that tool. Refusing a newline in a user's note would break annotations for
//! no gain; a newer tool that renders its own section checks it itself.

use crate::doc::{
    CertRecord, Cluster, Document, FileEntry, Hypervisor, HypervisorHost, Node, Pki, VmStatus,
};
use crate::error::{quote, Error};
use crate::validate;

/// A check's verdict turned into an error at a JSON path.
fn at(path: impl FnOnce() -> String, result: Result<(), String>) -> Result<(), Error> {
    result.map_err(|why| Error::invalid(path(), why))
}

/// Every string of the document, with its JSON path on the first that is wrong.
pub(crate) fn check(doc: &Document) -> Result<(), Error> {
    cluster(&doc.cluster)?;
    if let Some(hypervisor) = &doc.hypervisor {
        self::hypervisor(hypervisor)?;
    }
    for (i, node) in doc.nodes.iter().enumerate() {
        self::node(i, node, &doc.cluster)?;
    }
    hypervisors(doc)?;
    if let Some(pki) = &doc.pki {
        self::pki(pki)?;
    }
    Ok(())
}

fn cluster(c: &Cluster) -> Result<(), Error> {
    at(|| "cluster.name".into(), validate::cluster_name(&c.name))?;
    at(|| "cluster.domain".into(), validate::dns_name(&c.domain))?;
    at(
        || "cluster.cluster_domain".into(),
        validate::dns_name(&c.cluster_domain),
    )?;
    // The format only: whether this release is supported is the renderers' call (k8s::release).
    at(
        || "cluster.kubernetes_version".into(),
        validate::plain_text(&c.kubernetes_version).and_then(|()| {
            crate::k8s::Version::parse(&c.kubernetes_version)
                .map(|_| ())
                .map_err(|_| {
                    format!(
                        "{} is not a Kubernetes version like v1.37.2",
                        quote(&c.kubernetes_version)
                    )
                })
        }),
    )?;
    if let Some(endpoint) = &c.api.endpoint {
        at(
            || "cluster.api.endpoint".into(),
            crate::uri::https_endpoint(endpoint),
        )?;
    }
    Ok(())
}

fn hypervisor(h: &Hypervisor) -> Result<(), Error> {
    at(|| "hypervisor.uri".into(), crate::uri::libvirt(&h.uri))?;
    at(
        || "hypervisor.network".into(),
        validate::libvirt_name(&h.network),
    )?;
    at(|| "hypervisor.pool".into(), validate::libvirt_name(&h.pool))
}

/// The `hypervisors` list: each entry well-formed and unique by name, URI and address, each
/// slice inside the node network of its family, and every node on one of them. An empty list (a
/// document from before the field, or a cluster on one hypervisor) checks nothing.
fn hypervisors(doc: &Document) -> Result<(), Error> {
    for (i, host) in doc.hypervisors.iter().enumerate() {
        hypervisor_host(&format!("hypervisors[{i}]"), host, &doc.cluster)?;
        let earlier = &doc.hypervisors[..i];
        let same = |field: &str, what: String, other: &HypervisorHost| {
            Error::invalid(
                format!("hypervisors[{i}].{field}"),
                format!(
                    "{what} is also hypervisor {}'s: give each hypervisor its own",
                    quote(&other.name)
                ),
            )
        };
        if let Some(other) = earlier.iter().find(|o| o.name == host.name) {
            return Err(same("name", format!("name {}", quote(&host.name)), other));
        }
        if let Some(other) = earlier.iter().find(|o| o.uri == host.uri) {
            return Err(same("uri", format!("URI {}", quote(&host.uri)), other));
        }
        if let Some(other) = earlier.iter().find(|o| o.address == host.address) {
            return Err(same("address", format!("address {}", host.address), other));
        }
        for (j, slice) in host.node_slice.iter().enumerate() {
            let clash = earlier
                .iter()
                .find(|o| o.node_slice.iter().any(|s| validate::overlaps(s, slice)));
            if let Some(other) = clash {
                return Err(same(
                    &format!("node_slice[{j}]"),
                    format!("part of node slice {slice}"),
                    other,
                ));
            }
        }
    }
    if doc.hypervisors.is_empty() {
        return Ok(());
    }
    for (i, node) in doc.nodes.iter().enumerate() {
        if let Some(host) = doc.hypervisor_of(node) {
            node_in_its_slice(i, node, host)?;
            continue;
        }
        {
            let what = match &node.host {
                Some(host) => format!("{} is not the uri of a listed hypervisor", quote(host)),
                None => "is null but the document lists hypervisors".to_string(),
            };
            return Err(Error::invalid(
                format!("nodes[{i}].host"),
                format!(
                    "{what}: give the uri of the one node {} runs on ({})",
                    quote(&node.name),
                    known_hypervisors(&doc.hypervisors)
                ),
            ));
        }
    }
    Ok(())
}

/// A node's addresses are in its hypervisor's slice of their family, once it has one: mkvm and
/// route-sync may then take a hypervisor's slice as the range of all its nodes.
fn node_in_its_slice(i: usize, node: &Node, host: &HypervisorHost) -> Result<(), Error> {
    for (j, ip) in node.ips.iter().enumerate() {
        let slice = host
            .node_slice
            .iter()
            .find(|s| s.addr().is_ipv6() == ip.is_ipv6());
        if let Some(slice) = slice.filter(|s| !s.contains(ip)) {
            return Err(Error::invalid(
                format!("nodes[{i}].ips[{j}]"),
                format!(
                    "{ip} of node {} is outside node slice {slice} of its hypervisor {}: give an address in that slice, or leave it empty for cidr-alloc",
                    quote(&node.name),
                    quote(&host.name)
                ),
            ));
        }
    }
    Ok(())
}

/// `hv-a = qemu+ssh://hv-a/system, …` for messages, the first few only.
fn known_hypervisors(hosts: &[HypervisorHost]) -> String {
    let mut text: Vec<String> = hosts
        .iter()
        .take(4)
        .map(|h| format!("{} = {}", h.name, crate::uri::redact_userinfo(&h.uri)))
        .collect();
    if hosts.len() > 4 {
        text.push(format!("and {} more", hosts.len() - 4));
    }
    text.join(", ")
}

fn hypervisor_host(path: &str, host: &HypervisorHost, cluster: &Cluster) -> Result<(), Error> {
    let field = |name: &str| format!("{path}.{name}");
    at(|| field("name"), validate::hypervisor_name(&host.name))?;
    at(|| field("uri"), crate::uri::libvirt(&host.uri))?;
    let networks = &cluster.networks;
    let address = host.address;
    let unroutable = address.is_unspecified() || address.is_loopback() || address.is_multicast();
    if unroutable {
        return Err(Error::invalid(
            field("address"),
            format!("{address} is not an address another hypervisor can route to"),
        ));
    }
    let cluster_ranges = [
        ("node", &networks.node),
        ("pod", &networks.pod),
        ("service", &networks.service),
    ];
    for (kind, nets) in cluster_ranges {
        if let Some(net) = nets.iter().find(|n| n.contains(&address)) {
            return Err(Error::invalid(
                field("address"),
                format!(
                    "{address} is inside the cluster's {kind} network {net}: the hypervisors' own network must be apart from the cluster's ranges"
                ),
            ));
        }
    }
    for (j, slice) in host.node_slice.iter().enumerate() {
        let inside = networks.node.iter().any(|n| n.contains(slice));
        if slice.trunc() != *slice || !inside {
            return Err(Error::invalid(
                field(&format!("node_slice[{j}]")),
                format!(
                    "{slice} is not a range inside a node network ({}): leave node_slice empty for cidr-alloc to decide",
                    networks.node.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        validate::one_per_family(&host.node_slice[..=j])
            .map_err(|why| Error::invalid(field(&format!("node_slice[{j}]")), why))?;
    }
    Ok(())
}

fn node(i: usize, node: &Node, cluster: &Cluster) -> Result<(), Error> {
    let path = |field: &str| format!("nodes[{i}].{field}");
    if let Some(fqdn) = &node.fqdn {
        at(|| path("fqdn"), validate::dns_name(fqdn))?;
    }
    if let Some(mac) = &node.mac {
        at(|| path("mac"), validate::mac(mac))?;
    }
    if let Some(host) = &node.host {
        at(|| path("host"), crate::uri::libvirt(host))?;
    }
    let networks = &cluster.networks;
    for (j, cidr) in node.pod_cidrs.iter().enumerate() {
        at(
            || path(&format!("pod_cidrs[{j}]")),
            validate::pod_range(cidr, &networks.node, &networks.service),
        )?;
    }
    for (j, entry) in node.files.iter().enumerate() {
        file(&path(&format!("files[{j}]")), entry)?;
    }
    for (j, service) in node.services.iter().enumerate() {
        at(
            || path(&format!("services[{j}]")),
            validate::unit_name(service),
        )?;
    }
    if let Some(vm) = &node.vm {
        self::vm(&path("vm"), vm)?;
    }
    Ok(())
}

fn file(path: &str, entry: &FileEntry) -> Result<(), Error> {
    let field = |name: &str| format!("{path}.{name}");
    at(|| field("src"), validate::relative_path(&entry.src))?;
    at(|| field("dest"), validate::absolute_path(&entry.dest))?;
    at(
        || field("mode"),
        validate::file_mode(&entry.mode).map(|_| ()),
    )?;
    at(|| field("owner"), validate::owner(&entry.owner))?;
    at(|| field("sha256"), validate::hex_text(&entry.sha256, 64))
}

fn vm(path: &str, vm: &VmStatus) -> Result<(), Error> {
    let field = |name: &str| format!("{path}.{name}");
    for (name, value) in [("uuid", &vm.uuid), ("state", &vm.state), ("ssh", &vm.ssh)] {
        if let Some(value) = value {
            at(|| field(name), validate::word(value))?;
        }
    }
    Ok(())
}

fn pki(pki: &Pki) -> Result<(), Error> {
    at(|| "pki.dir".into(), validate::relative_dir(&pki.dir))?;
    at(|| "pki.algorithm".into(), validate::word(&pki.algorithm))?;
    for (i, cert) in pki.certs.iter().enumerate() {
        self::cert(&format!("pki.certs[{i}]"), cert)?;
    }
    Ok(())
}

fn cert(path: &str, cert: &CertRecord) -> Result<(), Error> {
    let field = |name: &str| format!("{path}.{name}");
    at(|| field("name"), validate::word(&cert.name))?;
    if let Some(node) = &cert.node {
        at(|| field("node"), validate::node_name(node))?;
    }
    at(|| field("path"), validate::relative_path(&cert.path))?;
    if let Some(key) = &cert.key {
        at(|| field("key"), validate::relative_path(key))?;
    }
    at(|| field("subject"), validate::plain_text(&cert.subject))?;
    at(|| field("issuer"), validate::plain_text(&cert.issuer))?;
    for (j, san) in cert.sans.iter().enumerate() {
        at(|| field(&format!("sans[{j}]")), validate::plain_text(san))?;
    }
    at(|| field("not_after"), validate::plain_text(&cert.not_after))?;
    at(|| field("sha256"), validate::hex_text(&cert.sha256, 64))
}

#[cfg(test)]
mod tests {
    use crate::doc::{from_str, Document, HypervisorHost};

    fn lab() -> Document {
        from_str(include_str!("../../tests/fixtures/lab.json"), "lab.json").unwrap()
    }

    fn refused(doc: &Document) -> String {
        doc.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_fixture_passes() {
        lab().validate().unwrap();
    }

    #[test]
    fn a_newline_anywhere_typed_is_refused_at_its_json_path() {
        let mut doc = lab();
        doc.cluster.name = "lab\nExecStartPre=/tmp/x".into();
        assert!(
            refused(&doc).starts_with("cluster.name: "),
            "{}",
            refused(&doc)
        );
        let mut doc = lab();
        doc.nodes[1].fqdn = Some("node-2.example.com\n10.0.0.1 evil".into());
        assert!(refused(&doc).starts_with("nodes[1].fqdn: "));
        let mut doc = lab();
        doc.cluster.kubernetes_version = "v1.37.2\r".into();
        assert!(refused(&doc).starts_with("cluster.kubernetes_version: "));
        let mut doc = lab();
        doc.hypervisor.as_mut().unwrap().uri = "qemu+ext:///system?command=/tmp/x".into();
        assert!(refused(&doc).starts_with("hypervisor.uri: "));
        let mut doc = lab();
        doc.nodes[0].services = vec!["etcd.service\u{2028}x".into()];
        assert!(refused(&doc).starts_with("nodes[0].services[0]: "));
        let mut doc = lab();
        doc.nodes[2].pod_cidrs = vec!["0.0.0.0/0".parse().unwrap()];
        assert!(refused(&doc).starts_with("nodes[2].pod_cidrs[0]: "));
    }

    /// Every fixture (documents from before `hypervisors` existed) reads, validates and prints
    /// back as it did: no `hypervisors` key appears, and a second trip is byte-identical.
    #[test]
    fn every_fixture_round_trips_without_a_hypervisors_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            seen += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = from_str(&text, "fixture").unwrap();
            doc.validate().unwrap();
            assert!(doc.hypervisors.is_empty(), "{}", path.display());
            let printed = crate::doc::to_string(&doc);
            let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
            assert!(value.get("hypervisors").is_none(), "{}", path.display());
            let original: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value, original, "{}", path.display());
            assert_eq!(
                crate::doc::to_string(&from_str(&printed, "again").unwrap()),
                printed
            );
        }
        assert!(seen >= 2, "found {seen} fixtures in {}", dir.display());
    }

    /// lab.json with node-1 on hv-a and the others on hv-b, addressed in its slice.
    fn two_hosts() -> Document {
        let mut doc = lab();
        let host = |name: &str, uri: &str, address: &str, slice: &str| HypervisorHost {
            name: name.into(),
            uri: uri.into(),
            address: address.parse().unwrap(),
            node_slice: vec![slice.parse().unwrap()],
            extra: Default::default(),
        };
        doc.hypervisors = vec![
            host(
                "hv-a",
                "qemu+ssh://root@hv-a/system",
                "192.168.50.1",
                "10.240.0.0/25",
            ),
            host(
                "hv-b",
                "qemu+tls://hv-b/system",
                "192.168.50.2",
                "10.240.0.128/25",
            ),
        ];
        for (i, node) in doc.nodes.iter_mut().enumerate() {
            let on = if i == 0 { 0 } else { 1 };
            node.host = Some(doc.hypervisors[on].uri.clone());
            if on == 1 {
                node.ips = vec![format!("10.240.0.{}", 128 + i).parse().unwrap()];
            }
        }
        doc
    }

    #[test]
    fn two_hypervisors_read_and_round_trip() {
        let doc = two_hosts();
        doc.validate().unwrap();
        let printed = crate::doc::to_string(&doc);
        let back = from_str(&printed, "printed").unwrap();
        back.validate().unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.hypervisor_of(&back.nodes[2]).unwrap().name, "hv-b");
        assert_eq!(back.hypervisor_of(&back.nodes[0]).unwrap().name, "hv-a");
        // An entry without a slice yet (before cidr-alloc) reads and prints no `node_slice`.
        let mut doc = two_hosts();
        doc.hypervisors[1].node_slice.clear();
        doc.validate().unwrap();
        let value: serde_json::Value = serde_json::from_str(&crate::doc::to_string(&doc)).unwrap();
        assert!(value["hypervisors"][1].get("node_slice").is_none());
    }

    #[test]
    fn each_bad_hypervisor_field_is_refused_at_its_json_path() {
        type Spoil = fn(&mut Document);
        let cases: [(&str, Spoil); 13] = [
            ("hypervisors[1].name: ", |d| {
                d.hypervisors[1].name = "HV_B".into()
            }),
            ("hypervisors[1].name: ", |d| {
                d.hypervisors[1].name = "hv-a".into()
            }),
            ("hypervisors[1].uri: ", |d| {
                d.hypervisors[1].uri = "qemu+ext:///system?command=/tmp/x".into()
            }),
            ("hypervisors[1].uri: ", |d| {
                d.hypervisors[1].uri = d.hypervisors[0].uri.clone()
            }),
            ("hypervisors[1].address: ", |d| {
                d.hypervisors[1].address = d.hypervisors[0].address
            }),
            ("hypervisors[1].address: ", |d| {
                d.hypervisors[1].address = "10.240.0.200".parse().unwrap()
            }),
            ("hypervisors[0].address: ", |d| {
                d.hypervisors[0].address = "127.0.0.1".parse().unwrap()
            }),
            ("hypervisors[1].node_slice[0]: ", |d| {
                d.hypervisors[1].node_slice = vec!["10.240.0.0/26".parse().unwrap()]
            }),
            ("hypervisors[1].node_slice[0]: ", |d| {
                d.hypervisors[1].node_slice = vec!["10.241.0.0/25".parse().unwrap()]
            }),
            ("hypervisors[1].node_slice[1]: ", |d| {
                d.hypervisors[1]
                    .node_slice
                    .push("10.240.0.192/26".parse().unwrap())
            }),
            ("nodes[2].host: ", |d| {
                d.nodes[2].host = Some("qemu+ssh://hv-c/system".into())
            }),
            ("nodes[1].host: ", |d| d.nodes[1].host = None),
            ("nodes[1].ips[0]: ", |d| {
                d.nodes[1].ips = vec!["10.240.0.12".parse().unwrap()]
            }),
        ];
        for (path, spoil) in cases {
            let mut doc = two_hosts();
            spoil(&mut doc);
            let message = refused(&doc);
            assert!(message.starts_with(path), "want {path}, got {message}");
            assert_eq!(message.lines().count(), 1, "{message}");
        }
    }

    #[test]
    fn a_huge_value_is_quoted_cut() {
        let mut doc = lab();
        doc.cluster.domain = "a".repeat(10 << 20);
        let message = refused(&doc);
        assert!(message.len() < 300, "{} bytes", message.len());
        assert!(message.contains('…'));
    }
}
