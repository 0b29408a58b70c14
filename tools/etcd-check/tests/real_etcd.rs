//! etcd-check against real etcd 3.4 clusters with TLS and client-certificate authentication,
//! under the faults its users meet: a black-holed (SIGSTOPped) member, a killed one, lost quorum,
//! a client certificate from another CA, an expiring server certificate, a full backend.
//! Each test starts its own cluster (testkit::etcd), which Drop kills and removes.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcd_check::report::{MemberState as State, Verdict};
use hardway::doc::{CertRecord, Pki};
use serde::Deserialize;
use serde_json::Value;
use testkit::etcd::{Cluster, MemberSpec, TestPki, TestPkiOptions};

const UP: Duration = Duration::from_secs(60);

// The report as etcd-check prints it: the shape is the contract scripts read, so a field added,
// renamed or dropped fails here (deny_unknown_fields) before it surprises a user.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is read by serde: the shape is what is checked
struct Report {
    verdict: Verdict,
    cluster_id: Option<String>,
    members_total: usize,
    quorum: usize,
    members_healthy: usize,
    leader: Option<String>,
    raft_index_lag: Option<u64>,
    alarms: Vec<String>,
    problems: Vec<String>,
    unchecked_members: Vec<Value>,
    took_ms: f64,
    members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Member {
    name: Option<String>,
    endpoint: String,
    state: State,
    reachable: bool,
    tls: Option<bool>,
    linearizable_read: bool,
    serializable_read: bool,
    member_id: Option<String>,
    version: Option<String>,
    is_leader: Option<bool>,
    leader: Option<String>,
    is_learner: Option<bool>,
    raft_term: Option<u64>,
    raft_index: Option<u64>,
    raft_applied_index: Option<u64>,
    db_size: Option<i64>,
    db_size_in_use: Option<i64>,
    alarms: Vec<String>,
    errors: Vec<String>,
    cert: Option<Cert>,
    rtt_ms: Option<f64>,
    took_ms: Option<f64>,
    problems: Vec<String>,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Cert {
    subject: String,
    not_after: String,
    days_left: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Step {
    step: String,
    ok: Option<bool>,
    ms: Option<f64>,
    error: Option<String>,
}

/// A `--watch` line after the first: what changed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct WatchChange {
    time: String,
    verdict: Verdict,
    changes: Vec<String>,
    problems: Vec<String>,
}

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

fn report(out: &Output) -> Report {
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
fn follower(report: &Report) -> usize {
    report
        .members
        .iter()
        .position(|m| m.is_leader == Some(false))
        .expect("a follower")
}

fn leader(report: &Report) -> usize {
    report
        .members
        .iter()
        .position(|m| m.is_leader == Some(true))
        .expect("a leader")
}

#[test]
fn all_members_up_is_healthy() {
    let (pki, cluster) = cluster();
    let (out, took) = check(&pki, &cluster, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let r = report(&out);
    assert_eq!(r.verdict, Verdict::Healthy);
    assert_eq!((r.members_total, r.quorum, r.members_healthy), (3, 2, 3));
    let members = &r.members;
    assert_eq!(members.len(), 3);
    let leader_id = r.leader.clone().expect("a leader");
    assert_eq!(
        leader_id.len(),
        16,
        "member IDs are 16 hex digits: {leader_id}"
    );
    let mut leaders = 0;
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m.state, State::Healthy, "{m:?}");
        assert_eq!(m.endpoint, cluster.endpoints()[i]);
        assert_eq!(
            m.name.as_deref(),
            Some(format!("etcd-{}", i + 1).as_str()),
            "named from the member list"
        );
        assert_eq!(m.tls, Some(true));
        assert!(m.linearizable_read && m.serializable_read, "{m:?}");
        assert!(m.version.as_deref().unwrap().starts_with("3.4."), "{m:?}");
        let id = m.member_id.as_deref().unwrap();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(m.leader.as_deref(), Some(leader_id.as_str()));
        leaders += usize::from(m.is_leader == Some(true));
        assert!(m.raft_term.unwrap() >= 2, "{m:?}");
        assert!(m.raft_index.unwrap() > 0);
        assert!(m.raft_applied_index.unwrap() > 0);
        assert!(m.db_size.unwrap() > 0);
        assert!(m.db_size_in_use.unwrap() > 0);
        assert!(m.alarms.is_empty(), "{m:?}");
        let days = m.cert.as_ref().unwrap().days_left;
        assert!(
            (363..=365).contains(&days),
            "cert expiry read from the handshake: {m:?}"
        );
        assert!(m.rtt_ms.unwrap() > 0.0);
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
    assert_eq!(r.verdict, Verdict::Degraded);
    assert_eq!(r.members_healthy, 2);
    let m = &r.members[stopped];
    assert_eq!(m.state, State::NoAnswer, "{m:?}");
    assert!(m.reachable, "a stopped process still accepts TCP: {m:?}");
    // What was tried: the TCP connect worked, the TLS handshake got no answer.
    let steps = &m.steps;
    assert_eq!(
        (steps[0].step.as_str(), steps[0].ok),
        ("tcp connect", Some(true))
    );
    assert_eq!(
        (steps[1].step.as_str(), steps[1].ok),
        ("tls handshake", Some(false))
    );
    assert!(
        steps[1].error.as_deref().unwrap().starts_with("no answer"),
        "{m:?}"
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
    assert_eq!(r.members_healthy, 2, "{r:?}");
    assert!(r.leader.is_some(), "{r:?}");
    assert_ne!(r.leader, r.members[stopped].member_id);
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
    let m = &r.members[killed];
    assert_eq!(m.state, State::Unreachable, "{m:?}");
    assert!(!m.reachable);
    assert!(m.problems[0].contains("refused"), "{m:?}");
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
    assert_eq!(r.verdict, Verdict::Unavailable);
    assert_eq!(r.members_healthy, 0);
    assert!(r.problems[0].starts_with("no quorum"), "{r:?}");
    let alive = &r.members[2];
    assert_eq!(
        alive.state,
        State::Unhealthy,
        "answers status, not a quorum read: {alive:?}"
    );
    assert!(alive.raft_index.is_some());
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
    assert_eq!(r.verdict, Verdict::Unavailable);
    for m in &r.members {
        assert_eq!(m.state, State::TlsError, "{m:?}");
        assert_eq!(m.tls, Some(false));
        let problem = &m.problems[0];
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
    for m in &r.members {
        let problem = &m.problems[0];
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
    // A bare number once meant seconds here: refused, with the spelling that keeps it.
    let out = bin()
        .args(["--endpoints", "https://127.0.0.1:2379", "--timeout", "5"])
        .output()
        .unwrap();
    let line = testkit::assert_one_line_error(&out, "etcd-check", 2);
    assert!(
        line.starts_with("etcd-check: error: --timeout: \"5\" has no unit: write 5s"),
        "{line}"
    );
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
    assert_eq!((r.verdict, r.members_healthy), (Verdict::Degraded, 3));
    assert!(
        r.problems[0].contains("server certificate expires in"),
        "{r:?}"
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
    assert_eq!(r.verdict, Verdict::Degraded);
    assert!(r.alarms.iter().any(|a| a.starts_with("NOSPACE")), "{r:?}");
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

    let mut doc = testkit::fixture_document("lab.json");
    for (node, ip) in doc.nodes.iter_mut().zip(&ips) {
        node.ips = vec![ip.parse().unwrap()];
    }
    let record = |name: &str, path: &str, key: Option<&str>| CertRecord {
        name: name.into(),
        node: None,
        path: path.into(),
        key: key.map(Into::into),
        subject: "CN=x".into(),
        sans: Vec::new(),
        issuer: "CN=etcd-ca".into(),
        not_after: "2030-01-01T00:00:00Z".into(),
        sha256: "00".into(),
        extra: Default::default(),
    };
    doc.pki = Some(Pki {
        dir: ".".into(),
        algorithm: "ecdsa-p256".into(),
        certs: vec![
            record("etcd-ca", "ca.pem", None),
            record(
                "etcd-healthcheck-client",
                "client.pem",
                Some("client-key.pem"),
            ),
        ],
        extra: Default::default(),
    });
    let doc_path = pki.dir().join("cluster.json");
    std::fs::write(&doc_path, hardway::doc::to_string(&doc)).unwrap();

    let out = bin()
        .arg("-f")
        .arg(&doc_path)
        .arg("--dir")
        .arg(pki.dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report(&out);
    let names: Vec<Option<&str>> = r.members.iter().map(|m| m.name.as_deref()).collect();
    assert_eq!(names, [Some("node-1"), Some("node-2"), Some("node-3")]);
    assert_eq!(r.members[0].endpoint, format!("https://{}:2379", ips[0]));

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
    doc.pki = None;
    std::fs::write(&doc_path, hardway::doc::to_string(&doc)).unwrap();
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
    let line = |within: u64| rx.recv_timeout(Duration::from_secs(within)).unwrap();
    // The first line is the whole report, the next ones what changed.
    let first: Report = serde_json::from_str(&line(10)).unwrap();
    assert_eq!(first.verdict, Verdict::Healthy);
    cluster.stop(stopped);
    let change: WatchChange = serde_json::from_str(&line(15)).unwrap();
    assert_eq!(change.verdict, Verdict::Degraded, "{change:?}");
    assert!(
        change
            .changes
            .iter()
            .any(|c| c == "verdict: healthy → degraded"),
        "{change:?}"
    );
    cluster.cont(stopped);
    let back: WatchChange = serde_json::from_str(&line(15)).unwrap();
    assert_eq!(back.verdict, Verdict::Healthy, "{back:?}");
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
    let m = &r.members[2];
    assert_eq!(
        m.name.as_deref(),
        Some("n3"),
        "named from the member list: {m:?}"
    );
    assert_eq!(m.state, State::NoAnswer, "{m:?}");
    assert!(!m.reachable, "{m:?}");
    assert_eq!(m.steps[0].step, "tcp connect");
    assert!(
        m.steps[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("no answer"),
        "{m:?}"
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
