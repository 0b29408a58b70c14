//! A lab of etcd nodes for tests of the etcd tools: a cluster document whose etcd nodes sit on
//! loopback addresses of their own (so each member uses etcd's standard ports, as the document
//! assumes), mkcerts' PKI for them, and testkit's [`Cluster`] started from it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use hardway::doc::Document;

use crate::etcd::{Cluster, MemberCerts, MemberSpec, Tls};
/// Kept here too: the etcd tools' tests import it with the lab.
pub use crate::pipe;

const UP: Duration = Duration::from_secs(60);

/// A lab of `count` etcd nodes on 127.N.SUBNET.11.. (N from the process, SUBNET one per test, so
/// tests running at once never share an address) with mkcerts' PKI in a temporary directory.
pub struct Lab {
    pub dir: tempfile::TempDir,
    /// The whole document mkcerts wrote (every node, every certificate).
    pub doc: Document,
}

impl Lab {
    pub fn new(count: usize, subnet: u8) -> Lab {
        crate::require_root();
        let fixture = crate::workspace_root().join("tests/fixtures/lab.json");
        let mut doc: Document =
            hardway::doc::from_str(&std::fs::read_to_string(fixture).unwrap(), "lab.json").unwrap();
        let net = 1 + (std::process::id() % 200) as u8;
        let template = doc.nodes[0].clone();
        doc.nodes = (1..=count)
            .map(|i| {
                let mut node = template.clone();
                node.name = format!("node-{i}");
                node.fqdn = None;
                node.roles = vec![hardway::Role::Etcd];
                node.ips = vec![format!("127.{net}.{subnet}.{}", 10 + i).parse().unwrap()];
                node
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let out = pipe(
            Command::new(crate::bin("mkcerts"))
                .arg("--dir")
                .arg(dir.path()),
            &hardway::doc::to_string(&doc),
        );
        assert!(out.status.success(), "mkcerts: {}", describe(&out));
        let doc = hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "mkcerts").unwrap();
        Lab { dir, doc }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cert(&self, name: &str, node: Option<&str>) -> (PathBuf, PathBuf) {
        let c = self.doc.pki.as_ref().unwrap().cert(name, node).unwrap();
        (self.path(&c.path), self.path(c.key.as_ref().unwrap()))
    }

    pub fn tls(&self) -> Tls {
        let (ca, _) = self.cert("etcd-ca", None);
        let (client_cert, client_key) = self.cert("etcd-healthcheck-client", None);
        Tls {
            ca,
            client_cert,
            client_key,
        }
    }

    pub fn member(&self, i: usize) -> MemberSpec {
        let node = &self.doc.nodes[i];
        let (server_cert, server_key) = self.cert("etcd-server", Some(&node.name));
        let (peer_cert, peer_key) = self.cert("etcd-peer", Some(&node.name));
        let ip = node.ips[0];
        MemberSpec::at(
            &node.name,
            &format!("https://{ip}:2379"),
            &format!("https://{ip}:2380"),
            MemberCerts {
                server_cert,
                server_key,
                peer_cert,
                peer_key,
            },
        )
    }

    /// The document with only the first `nodes` of the lab's nodes.
    pub fn doc_with(&self, nodes: &[usize]) -> Document {
        let mut doc = self.doc.clone();
        doc.nodes = nodes.iter().map(|&i| self.doc.nodes[i].clone()).collect();
        doc
    }

    pub fn start(&self, members: &[usize]) -> Cluster {
        let specs = members.iter().map(|&i| self.member(i)).collect();
        Cluster::start_healthy(self.tls(), specs, UP)
    }
}

pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
