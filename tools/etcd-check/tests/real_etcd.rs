//! etcd-check against real etcd 3.4 clusters with TLS and client-certificate authentication,
//! under the faults its users meet: a black-holed (SIGSTOPped) member, a killed one, lost quorum,
//! a client certificate from another CA, an expiring server certificate, a full backend.
//! Each test starts its own cluster (testkit::etcd), which Drop kills and removes.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::etcd::{Cluster, MemberSpec, TestPki, TestPkiOptions};

const UP: Duration = Duration::from_secs(60);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_etcd-check"))
}

fn cluster_with(options: &TestPkiOptions) -> (TestPki, Cluster) {
    testkit::require_root();
    let pki = TestPki::generate_with(&["etcd-1", "etcd-2", "etcd-3"], options);
    let cluster = Cluster::start_healthy(pki.tls(), pki.loopback_members(), UP);
    (pki, cluster)
}

fn cluster() -> (TestPki, Cluster) {
    cluster_with(&TestPkiOptions::default())
}

/// etcd-check with etcdctl-style flags against the cluster, timed.
fn check(pki: &TestPki, cluster: &Cluster, extra: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = bin()
        .arg("--endpoints")
        .arg(cluster.endpoints_arg())
        .arg("--cacert")
        .arg(pki.ca())
        .arg("--cert")
        .arg(pki.client_cert())
        .arg("--key")
        .arg(pki.client_key())
        .args(extra)
        .output()
        .expect("run etcd-check");
    (out, start.elapsed())
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}):\n{}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The index of a member that is not the leader, from a healthy report.
fn follower(report: &Value) -> usize {
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["is_leader"] == false)
        .expect("a follower")
}

fn leader(report: &Value) -> usize {
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["is_leader"] == true)
        .expect("a leader")
}

#[test]
fn all_members_up_is_healthy() {
    let (pki, cluster) = cluster();
    let (out, took) = check(&pki, &cluster, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let r = report(&out);
    assert_eq!(r["verdict"], "healthy");
    assert_eq!(
        (r["members_total"].as_u64(), r["quorum"].as_u64()),
        (Some(3), Some(2))
    );
    let members = r["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    let leader_id = r["leader"].as_str().expect("a leader").to_string();
    assert_eq!(
        leader_id.len(),
        16,
        "member IDs are 16 hex digits: {leader_id}"
    );
    let mut leaders = 0;
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m["state"], "healthy", "{m}");
        assert_eq!(m["endpoint"], cluster.endpoints()[i]);
        assert_eq!(
            m["name"],
            format!("etcd-{}", i + 1),
            "named from the member list"
        );
        assert_eq!(m["tls"], true);
        assert_eq!(m["linearizable_read"], true);
        assert_eq!(m["serializable_read"], true);
        assert!(m["version"].as_str().unwrap().starts_with("3.4."), "{m}");
        let id = m["member_id"].as_str().unwrap();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(m["leader"], leader_id.as_str());
        leaders += (m["is_leader"] == true) as usize;
        assert!(m["raft_term"].as_u64().unwrap() >= 2, "{m}");
        assert!(m["raft_index"].as_u64().unwrap() > 0);
        assert!(m["raft_applied_index"].as_u64().unwrap() > 0);
        assert!(m["db_size"].as_i64().unwrap() > 0);
        assert!(m["db_size_in_use"].as_i64().unwrap() > 0);
        assert_eq!(m["alarms"], serde_json::json!([]));
        let days = m["cert"]["days_left"].as_i64().unwrap();
        assert!(
            (363..=365).contains(&days),
            "cert expiry read from the handshake: {m}"
        );
        assert!(m["rtt_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(leaders, 1);
    assert!(
        took < Duration::from_secs(5),
        "a healthy check took {took:?}"
    );

    // The same cluster as a table for people.
    let (out, _) = check(&pki, &cluster, &["-o", "table"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains(": healthy, 3/3 members healthy (quorum 2)"),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(1).take(3).collect();
    assert!(rows.iter().all(|r| r.contains(" healthy ")), "{text}");
}

#[test]
fn one_member_stopped_is_degraded_within_the_timeout() {
    let (pki, cluster) = cluster();
    let (out, _) = check(&pki, &cluster, &[]);
    let stopped = follower(&report(&out));
    cluster.stop(stopped);
    let (out, took) = check(&pki, &cluster, &["--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(took <= Duration::from_secs(6), "took {took:?}");
    let r = report(&out);
    assert_eq!(r["verdict"], "degraded");
    assert_eq!(r["members_healthy"], 2);
    let m = &r["members"][stopped];
    assert_eq!(m["state"], "no_answer", "{m}");
    assert_eq!(
        m["reachable"], true,
        "a stopped process still accepts TCP: {m}"
    );
    // What was tried: the TCP connect worked, the TLS handshake got no answer.
    let steps = m["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "tcp connect");
    assert_eq!(steps[0]["ok"], true);
    assert_eq!(steps[1]["step"], "tls handshake");
    assert_eq!(steps[1]["ok"], false);
    assert!(
        steps[1]["error"].as_str().unwrap().starts_with("no answer"),
        "{m}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("etcd-check: degraded: "), "{stderr}");

    // A shorter --timeout bounds the whole command, connect timeout included.
    let (out, took) = check(&pki, &cluster, &["--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(took <= Duration::from_secs(2), "took {took:?}");
}

#[test]
fn the_leader_stopped_is_degraded_once_a_new_one_is_elected() {
    let (pki, cluster) = cluster();
    let (out, _) = check(&pki, &cluster, &[]);
    let stopped = leader(&report(&out));
    cluster.stop(stopped);
    let (out, took) = check(&pki, &cluster, &["--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(took <= Duration::from_secs(6), "took {took:?}");
    let r = report(&out);
    assert_eq!(r["members_healthy"], 2, "{r}");
    assert_ne!(r["leader"], r["members"][stopped]["member_id"]);
}

#[test]
fn one_member_killed_is_degraded_quickly() {
    let (pki, mut cluster) = cluster();
    let (out, _) = check(&pki, &cluster, &[]);
    let killed = follower(&report(&out));
    cluster.kill(killed);
    let (out, took) = check(&pki, &cluster, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        took < Duration::from_secs(3),
        "a refused connection should not wait: {took:?}"
    );
    let r = report(&out);
    let m = &r["members"][killed];
    assert_eq!(m["state"], "unreachable", "{m}");
    assert_eq!(m["reachable"], false);
    assert!(
        m["problems"][0].as_str().unwrap().contains("refused"),
        "{m}"
    );
}

#[test]
fn two_members_stopped_is_unavailable_within_the_timeout() {
    let (pki, cluster) = cluster();
    cluster.stop(0);
    cluster.stop(1);
    let (out, took) = check(&pki, &cluster, &["--timeout", "4s"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(took <= Duration::from_millis(4300), "took {took:?}");
    let r = report(&out);
    assert_eq!(r["verdict"], "unavailable");
    assert_eq!(r["members_healthy"], 0);
    assert!(
        r["problems"][0].as_str().unwrap().starts_with("no quorum"),
        "{r}"
    );
    let alive = &r["members"][2];
    assert_eq!(
        alive["state"], "unhealthy",
        "answers status, not a quorum read: {alive}"
    );
    assert!(alive["raft_index"].as_u64().is_some());
}

#[test]
fn a_client_certificate_from_another_ca_is_a_tls_error_per_member() {
    let (pki, cluster) = cluster();
    let other = TestPki::generate_with(
        &[],
        &TestPkiOptions {
            ca_name: "some-other-ca".into(),
            ..Default::default()
        },
    );
    let out = bin()
        .arg("--endpoints")
        .arg(cluster.endpoints_arg())
        .arg("--cacert")
        .arg(pki.ca())
        .arg("--cert")
        .arg(other.client_cert())
        .arg("--key")
        .arg(other.client_key())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let r = report(&out);
    assert_eq!(r["verdict"], "unavailable");
    for m in r["members"].as_array().unwrap() {
        assert_eq!(m["state"], "tls_error", "{m}");
        assert_eq!(m["tls"], false);
        let problem = m["problems"][0].as_str().unwrap();
        assert!(problem.contains("client certificate"), "{problem}");
    }
    // And a CA that did not sign the servers' certificates.
    let out = bin()
        .arg("--endpoints")
        .arg(cluster.endpoints_arg())
        .arg("--cacert")
        .arg(other.ca())
        .arg("--cert")
        .arg(pki.client_cert())
        .arg("--key")
        .arg(pki.client_key())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let r = report(&out);
    for m in r["members"].as_array().unwrap() {
        let problem = m["problems"][0].as_str().unwrap();
        assert!(
            problem.contains("UnknownIssuer") && problem.contains("--cacert"),
            "{problem}"
        );
    }
}

#[test]
fn a_typo_in_an_endpoint_is_a_usage_error() {
    let pki = TestPki::generate(&["etcd-1"]);
    let out = bin()
        .args([
            "--endpoints",
            "https://127.0.0.1:2379,htps://127.0.0.1:2380",
            "--cacert",
        ])
        .arg(pki.ca())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("etcd-check: error: --endpoints: \"htps://127.0.0.1:2380\""),
        "{stderr}"
    );
    // A missing file is bad input too.
    let out = bin()
        .args([
            "--endpoints",
            "https://127.0.0.1:2379",
            "--cacert",
            "/nonexistent/ca.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn a_server_certificate_expiring_within_warn_days_is_degraded() {
    let (pki, cluster) = cluster_with(&TestPkiOptions {
        server_days: 10,
        ..Default::default()
    });
    let (out, _) = check(&pki, &cluster, &["--warn-days", "30"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report(&out);
    assert_eq!(r["members_healthy"], 3);
    assert!(
        r["problems"][0]
            .as_str()
            .unwrap()
            .contains("server certificate expires in"),
        "{r}"
    );
    let (out, _) = check(&pki, &cluster, &["--warn-days", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn a_full_backend_raises_nospace_and_is_degraded() {
    testkit::require_root();
    let pki = TestPki::generate(&["etcd-1", "etcd-2", "etcd-3"]);
    let members: Vec<MemberSpec> = pki
        .loopback_members()
        .into_iter()
        .map(|m| m.with_args(&["--quota-backend-bytes=1048576"]))
        .collect();
    let cluster = Cluster::start_healthy(pki.tls(), members, UP);
    // Fill the 1 MiB quota until etcd refuses writes and raises the NOSPACE alarm.
    let value = "x".repeat(100_000);
    let mut full = false;
    for i in 0..40 {
        let out = cluster
            .etcdctl(0)
            .args(["put", &format!("fill-{i}"), &value])
            .output()
            .unwrap();
        if !out.status.success() {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("space exceeded"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            full = true;
            break;
        }
    }
    assert!(full, "the backend never filled up");
    let (out, _) = check(&pki, &cluster, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report(&out);
    assert_eq!(r["verdict"], "degraded");
    assert!(
        r["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("NOSPACE")),
        "{r}"
    );
}

#[test]
fn the_document_names_endpoints_and_credentials() {
    testkit::require_root();
    // Three loopback addresses of their own, so each member can use etcd's port 2379 as the
    // document assumes, without meeting another test's members.
    let net = 1 + (std::process::id() % 200) as u8;
    let ips: Vec<String> = (11..=13).map(|h| format!("127.{net}.77.{h}")).collect();
    let pki = TestPki::generate_with(
        &["node-1", "node-2", "node-3"],
        &TestPkiOptions {
            extra_sans: ips.clone(),
            ..Default::default()
        },
    );
    let members: Vec<MemberSpec> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let name = format!("node-{}", i + 1);
            MemberSpec::at(
                &name,
                &format!("https://{ip}:2379"),
                &format!("https://{ip}:2380"),
                pki.member_certs(&name),
            )
        })
        .collect();
    let cluster = Cluster::start_healthy(pki.tls(), members, UP);

    let fixture = testkit::workspace_root().join("tests/fixtures/lab.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    for (i, node) in doc["nodes"].as_array_mut().unwrap().iter_mut().enumerate() {
        node["ips"] = serde_json::json!([ips[i]]);
    }
    let record = |name: &str, path: &str, key: Option<&str>| {
        serde_json::json!({"name": name, "path": path, "key": key, "subject": "CN=x",
            "issuer": "CN=etcd-ca", "not_after": "2030-01-01T00:00:00Z", "sha256": "00"})
    };
    doc["pki"] = serde_json::json!({"dir": ".", "algorithm": "ecdsa-p256", "certs": [
        record("etcd-ca", "ca.pem", None),
        record("etcd-healthcheck-client", "client.pem", Some("client-key.pem")),
    ]});
    let doc_path = pki.dir().join("cluster.json");
    std::fs::write(&doc_path, serde_json::to_string(&doc).unwrap()).unwrap();

    let out = bin()
        .arg("-f")
        .arg(&doc_path)
        .arg("--dir")
        .arg(pki.dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report(&out);
    let names: Vec<&str> = r["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-1", "node-2", "node-3"]);
    assert_eq!(
        r["members"][0]["endpoint"],
        format!("https://{}:2379", ips[0])
    );

    // The document on stdin works the same; a document without a PKI says what to run.
    let out = bin()
        .arg("--dir")
        .arg(pki.dir())
        .stdin(std::fs::File::open(&doc_path).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // --cacert overrides the document's CA: another CA's is refused by every member.
    let other = TestPki::generate(&[]);
    let out = bin()
        .arg("-f")
        .arg(&doc_path)
        .arg("--dir")
        .arg(pki.dir())
        .arg("--cacert")
        .arg(other.ca())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    doc.as_object_mut().unwrap().remove("pki");
    std::fs::write(&doc_path, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = bin().arg("-f").arg(&doc_path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mkcerts"));
    drop(cluster);
}

#[test]
fn watch_prints_what_changed() {
    let (pki, cluster) = cluster();
    let (out, _) = check(&pki, &cluster, &[]);
    let stopped = follower(&report(&out));
    let mut child = bin()
        .arg("--endpoints")
        .arg(cluster.endpoints_arg())
        .arg("--cacert")
        .arg(pki.ca())
        .arg("--cert")
        .arg(pki.client_cert())
        .arg("--key")
        .arg(pki.client_key())
        .args(["--watch", "1", "--timeout", "2s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the watcher (our own child, by its handle) however the test ends.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _reap = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(first["verdict"], "healthy");
    cluster.stop(stopped);
    let change: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(15)).unwrap()).unwrap();
    assert_eq!(change["verdict"], "degraded", "{change}");
    let changes = change["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c == "verdict: healthy → degraded"),
        "{change}"
    );
    cluster.cont(stopped);
    let back: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(15)).unwrap()).unwrap();
    assert_eq!(back["verdict"], "healthy", "{back}");
}

/// Members on their own "nodes" (network namespaces on a bridge), checked from the host's
/// namespace; one node black-holed by an nftables drop rule (SYNs vanish: no refusal, no answer).
#[test]
fn a_member_black_holed_by_nftables_is_degraded_within_the_timeout() {
    use testkit::netns::Lab;
    testkit::require_root();
    let ips = ["10.240.0.11", "10.240.0.12", "10.240.0.13"];
    let lab = Lab::builder("ec")
        .host_bridge(&["10.240.0.1/24"])
        .node("n1", &["10.240.0.11/24"])
        .node("n2", &["10.240.0.12/24"])
        .node("n3", &["10.240.0.13/24"])
        .build();
    let pki = TestPki::generate_with(
        &["n1", "n2", "n3"],
        &TestPkiOptions {
            extra_sans: ips.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    );
    let members: Vec<MemberSpec> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let node = &lab.nodes[i];
            MemberSpec::at(
                &node.name,
                &format!("https://{ip}:2379"),
                &format!("https://{ip}:2380"),
                pki.member_certs(&node.name),
            )
            .with_prefix(&["ip", "netns", "exec", node.name()])
        })
        .collect();
    let cluster = Cluster::start_healthy(pki.tls(), members, UP);
    let check_from_host = || {
        let start = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", lab.host.name()])
            .arg(env!("CARGO_BIN_EXE_etcd-check"))
            .arg("--endpoints")
            .arg(cluster.endpoints_arg())
            .arg("--cacert")
            .arg(pki.ca())
            .arg("--cert")
            .arg(pki.client_cert())
            .arg("--key")
            .arg(pki.client_key())
            .output()
            .unwrap();
        (out, start.elapsed())
    };
    let (out, _) = check_from_host();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    lab.nodes[2].run_ok(
        "nft",
        &[
            "add table inet blackhole; add chain inet blackhole input { type filter hook input priority 0; policy accept; }; add rule inet blackhole input iifname eth0 drop",
        ],
    );
    let (out, took) = check_from_host();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(took <= Duration::from_secs(6), "took {took:?}");
    let r = report(&out);
    let m = &r["members"][2];
    assert_eq!(m["name"], "n3", "named from the member list: {m}");
    assert_eq!(m["state"], "no_answer", "{m}");
    assert_eq!(m["reachable"], false, "{m}");
    assert_eq!(m["steps"][0]["step"], "tcp connect");
    assert!(
        m["steps"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("no answer"),
        "{m}"
    );
    drop(cluster);
}

/// IPv6 endpoints (docs/sources.md#seed-004 wants dual-stack): bracketed URLs, the certificate's IPv6 SAN.
#[test]
fn ipv6_endpoints_are_checked() {
    testkit::require_root();
    let pki = TestPki::generate(&["etcd-1", "etcd-2", "etcd-3"]);
    let ports = testkit::etcd::free_ports(6);
    let members: Vec<MemberSpec> = pki
        .member_names()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            MemberSpec::at(
                name,
                &format!("https://[::1]:{}", ports[2 * i]),
                &format!("https://[::1]:{}", ports[2 * i + 1]),
                pki.member_certs(name),
            )
        })
        .collect();
    let cluster = Cluster::start_healthy(pki.tls(), members, UP);
    let (out, _) = check(&pki, &cluster, &["-o", "table"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("https://[::1]:"), "{text}");
}
