//! Read-time checks of every typed string in the document, run once by [`Document::validate`]
//! (so by `hardway::doc::read` and every tool) before any value reaches a unit, a config, a
//! hosts file, XML or a URI. A `cluster.name` or an `fqdn` with a newline once wrote extra lines,
//! `ExecStartPre=` among them, into every unit: each field is checked here for its format, and
//! every free-text field for control characters ([`validate::plain_text`]).
//!
//! `extra` maps (fields no tool knows: a user's annotations, a newer tool's sections) are not
//! checked: no tool writes them anywhere but back into the JSON document, where serde escapes
//! every character, and the one extra field a tool reads (`cluster.controller_vip`) is parsed as
//! an IP address by that tool. Refusing a newline in a user's note would break annotations for
//! no gain; a newer tool that renders its own section checks it itself.

use crate::doc::{CertRecord, Cluster, Document, FileEntry, Hypervisor, Node, Pki, VmStatus};
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
    use crate::doc::{from_str, Document};

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

    #[test]
    fn a_huge_value_is_quoted_cut() {
        let mut doc = lab();
        doc.cluster.domain = "a".repeat(10 << 20);
        let message = refused(&doc);
        assert!(message.len() < 300, "{} bytes", message.len());
        assert!(message.contains('…'));
    }
}
