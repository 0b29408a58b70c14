//! mkcerts' etcd certificates in a real 3-member etcd 3.4 cluster (Debian's `etcd-server`) on
//! loopback, started by testkit with `--client-cert-auth` and `--peer-client-cert-auth`: the
//! members trust each other's peer certificates, etcdctl with the healthcheck client certificate
//! reads and writes, and a client certificate from a second, independent mkcerts run is refused.
//! The members listen on 127.0.0.1 with their own ports, covered by the `127.0.0.1` SAN that
//! mkcerts puts in every etcd-server and etcd-peer certificate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hardway::Document;
use testkit::etcd::{Cluster, MemberCerts, MemberSpec, Tls, ETCDCTL};

/// Runs mkcerts on the lab fixture (3 nodes, each an etcd member) into `dir`; returns the document.
fn mkcerts(dir: &Path) -> Document {
    let input = std::fs::read(testkit::workspace_root().join("tests/fixtures/lab.json")).unwrap();
    let out = testkit::run_piped(
        &testkit::bin("mkcerts"),
        &["--dir", dir.to_str().unwrap()],
        &input,
    );
    hardway::doc::parse(std::str::from_utf8(&out).unwrap(), "mkcerts' stdout").unwrap()
}

/// The certificate and key paths of a `pki.certs` record, made absolute.
fn record(doc: &Document, dir: &Path, name: &str, node: Option<&str>) -> (PathBuf, PathBuf) {
    let record = doc
        .pki
        .as_ref()
        .and_then(|pki| pki.cert(name, node))
        .unwrap_or_else(|| panic!("no {name} {node:?} in pki.certs"));
    (
        dir.join(&record.path),
        dir.join(record.key.as_deref().expect("a key path")),
    )
}

fn etcdctl(endpoints: &str, ca: &Path, cert: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .args(["--dial-timeout=3s", "--command-timeout=5s"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run etcdctl (apt-get install etcd-client)")
}

#[test]
fn mkcerts_certificates_run_a_mutual_tls_etcd_cluster_and_keep_strangers_out() {
    testkit::require_root();
    let pki = tempfile::tempdir().unwrap();
    let doc = mkcerts(pki.path());
    let (ca, _) = record(&doc, pki.path(), "etcd-ca", None);
    let (client_cert, client_key) = record(&doc, pki.path(), "etcd-healthcheck-client", None);
    let members = ["node-1", "node-2", "node-3"]
        .iter()
        .map(|name| {
            let (server_cert, server_key) = record(&doc, pki.path(), "etcd-server", Some(name));
            let (peer_cert, peer_key) = record(&doc, pki.path(), "etcd-peer", Some(name));
            MemberSpec::loopback(
                name,
                MemberCerts {
                    server_cert,
                    server_key,
                    peer_cert,
                    peer_key,
                },
            )
        })
        .collect();
    let tls = Tls {
        ca: ca.clone(),
        client_cert: client_cert.clone(),
        client_key: client_key.clone(),
    };
    let cluster = Cluster::start_healthy(tls, members, Duration::from_secs(60));
    let endpoints = cluster.endpoints_arg();

    // The health-check client: every member healthy, and a write and a quorum read go through.
    let health = etcdctl(
        &endpoints,
        &ca,
        &client_cert,
        &client_key,
        &["endpoint", "health"],
    );
    let said = String::from_utf8_lossy(&health.stdout).to_string()
        + &String::from_utf8_lossy(&health.stderr);
    assert!(health.status.success(), "{said}");
    assert_eq!(said.matches("is healthy").count(), 3, "{said}");
    let put = etcdctl(
        &endpoints,
        &ca,
        &client_cert,
        &client_key,
        &["put", "/hardway/mkcerts", "ok"],
    );
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    // The API server's etcd client certificate works too.
    let (api_cert, api_key) = record(&doc, pki.path(), "apiserver-etcd-client", None);
    let get = etcdctl(
        &endpoints,
        &ca,
        &api_cert,
        &api_key,
        &["get", "/hardway/mkcerts", "--print-value-only"],
    );
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    // All three joined one cluster over mutually authenticated peer TLS.
    let list = etcdctl(
        &endpoints,
        &ca,
        &client_cert,
        &client_key,
        &["member", "list"],
    );
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 3);

    // A client certificate from an independent mkcerts run: same names, different etcd CA.
    let stranger = tempfile::tempdir().unwrap();
    let other = mkcerts(stranger.path());
    let (other_cert, other_key) = record(&other, stranger.path(), "etcd-healthcheck-client", None);
    let first = cluster.endpoints()[0].clone();
    let rejection = "failed to verify client certificate";
    let rejections_before = cluster.log(0).matches(rejection).count();
    let refused = etcdctl(
        &first,
        &ca,
        &other_cert,
        &other_key,
        &["get", "/hardway/mkcerts"],
    );
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(
        !refused.status.success(),
        "a foreign client certificate was accepted"
    );
    assert!(
        refused.stdout.is_empty(),
        "a foreign client read {:?}",
        String::from_utf8_lossy(&refused.stdout)
    );
    // etcdctl 3.4 only says "context deadline exceeded"; the member says why (same CA name,
    // another key: "certificate signed by unknown authority").
    assert!(said.contains("deadline exceeded"), "{said}");
    assert!(
        cluster.log(0).matches(rejection).count() > rejections_before,
        "member 0 did not log the refused client certificate: {}",
        cluster.log_tail(0, 20)
    );
}
