//! etcd-sync against real etcd 3.4 members (Debian's etcd-server) with mkcerts' certificates, each
//! member on its own loopback address with etcd's standard ports, as the document assumes.
//! What runs: etcd, etcd-sync, mkcerts and etcd-check binaries. What does not: mkunits and
//! node-push — a joining member is started the way its unit would start it, with the
//! `--initial-cluster` and `--initial-cluster-state=existing` etcd-sync recorded in
//! `nodes[].etcd` (mkunits' unit tests check that its unit renders exactly these).

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardway::doc::{Document, EtcdMemberState, InitialClusterState};
use testkit::etcd::{Cluster, Tls};
use testkit::etcd_lab::{describe, pipe, Lab};

const UP: Duration = Duration::from_secs(60);

/// etcd-sync's calls on the lab.
trait EtcdSync {
    fn sync(&self, doc: &Document, args: &[&str]) -> Output;
    fn apply(&self, doc: &Document) -> Document;
    fn check(&self, doc: &Document) -> (i32, Report);
}

impl EtcdSync for Lab {
    /// etcd-sync with the document on stdin.
    fn sync(&self, doc: &Document, args: &[&str]) -> Output {
        pipe(
            Command::new(testkit::bin("etcd-sync"))
                .arg("--dir")
                .arg(self.dir.path())
                .args(["--timeout", "2s"])
                .args(args),
            &hardway::doc::to_string(doc),
        )
    }

    /// etcd-sync applied: exit 0 and the document it printed.
    fn apply(&self, doc: &Document) -> Document {
        let out = self.sync(doc, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "etcd-sync").unwrap()
    }

    fn check(&self, doc: &Document) -> (i32, Report) {
        let out = self.sync(doc, &["--check"]);
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not a report ({e}): {}", describe(&out)));
        (out.status.code().unwrap(), report)
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    in_sync: bool,
    members: Vec<ReportMember>,
    changes: Vec<Change>,
    next: Option<Change>,
    hold: Option<Hold>,
}

/// A membership change as the plan prints it.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Change {
    Add { name: String, peer_url: String },
    Promote { name: String, id: String },
    Remove { name: String, id: String },
}

/// Why the next change waits.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(
    tag = "kind",
    content = "message",
    rename_all = "snake_case",
    deny_unknown_fields
)]
#[allow(dead_code)]
enum Hold {
    Waiting(String),
    Refused(String),
}

/// `etcdctl member list -w json`: only the names are read.
#[derive(serde::Deserialize)]
struct MemberList {
    members: Vec<ListedName>,
}

#[derive(serde::Deserialize)]
struct ListedName {
    #[serde(default)]
    name: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReportMember {
    id: String,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    is_learner: bool,
    healthy: bool,
}

/// Runs the real etcd-check against `endpoints` in a loop until stopped, keeping every exit code.
struct Poller {
    stop: Arc<AtomicBool>,
    verdicts: Arc<Mutex<Vec<(i32, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(endpoints: String, tls: &Tls) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let verdicts = Arc::new(Mutex::new(Vec::new()));
        let (s, v, tls) = (stop.clone(), verdicts.clone(), tls.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let out = Command::new(testkit::bin("etcd-check"))
                    .arg("--endpoints")
                    .arg(&endpoints)
                    .arg("--cacert")
                    .arg(&tls.ca)
                    .arg("--cert")
                    .arg(&tls.client_cert)
                    .arg("--key")
                    .arg(&tls.client_key)
                    .output()
                    .unwrap();
                let code = out.status.code().unwrap_or(-1);
                v.lock()
                    .unwrap()
                    .push((code, String::from_utf8_lossy(&out.stderr).into_owned()));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Poller {
            stop,
            verdicts,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<(i32, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.verdicts.lock().unwrap().clone()
    }
}

fn member_names(cluster: &Cluster) -> Vec<String> {
    member_names_from(cluster, 0)
}

/// The member list as member `index` gives it.
fn member_names_from(cluster: &Cluster, index: usize) -> Vec<String> {
    let out = cluster
        .etcdctl(index)
        .args(["member", "list", "-w", "json"])
        .output()
        .unwrap();
    let list: MemberList = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = list.members.into_iter().map(|m| m.name).collect();
    names.sort();
    names
}

fn record(doc: &Document, node: usize) -> &hardway::doc::EtcdMember {
    doc.nodes[node].etcd.as_ref().expect("a record")
}

#[test]
fn three_to_four_to_three_members_without_losing_quorum() {
    let lab = Lab::new(4, 78);
    let mut cluster = lab.start(&[0, 1, 2]);
    let poller = Poller::start(cluster.endpoints_arg(), &lab.tls());

    // In sync from the start; the first run records the bootstrap membership.
    let three = lab.doc_with(&[0, 1, 2]);
    let (code, report) = lab.check(&three);
    assert_eq!((code, report.in_sync), (0, true), "{report:?}");
    let three = lab.apply(&three);
    let bootstrap = record(&three, 0).initial_cluster.clone();
    for i in 0..3 {
        assert_eq!(record(&three, i).state, EtcdMemberState::Member);
        assert_eq!(
            record(&three, i).initial_cluster_state,
            InitialClusterState::New
        );
        assert_eq!(record(&three, i).initial_cluster, bootstrap);
    }
    assert_eq!(bootstrap.split(',').count(), 3);
    assert_eq!(lab.apply(&three), three, "a second run changes nothing");

    // A fourth etcd node: out of sync, then added as a learner that has not started.
    let mut four = three.clone();
    four.nodes.push(lab.doc.nodes[3].clone());
    let (code, report) = lab.check(&four);
    assert_eq!((code, report.in_sync), (1, false), "{report:?}");
    assert!(
        matches!(&report.next, Some(Change::Add { name, .. }) if name == "node-4"),
        "{report:?}"
    );
    // --dry-run prints the same plan and changes nothing; -o table is one row per member and
    // change.
    let out = lab.sync(&four, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let plan: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan.changes, report.changes);
    let out = lab.sync(&four, &["--dry-run", "-o", "table"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1 + 3 + 1
    );
    assert_eq!(member_names(&cluster), ["node-1", "node-2", "node-3"]);
    // Applied as the pipeline does it: the document rebuilt from the inventory (no records),
    // the previous output given with --previous.
    let previous = lab.path("previous.json");
    std::fs::write(&previous, hardway::doc::to_string(&three)).unwrap();
    let out = lab.sync(
        &lab.doc_with(&[0, 1, 2, 3]),
        &["--previous", previous.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let four = hardway::doc::from_str(&String::from_utf8_lossy(&out.stdout), "etcd-sync").unwrap();
    let joiner = record(&four, 3).clone();
    assert_eq!(joiner.state, EtcdMemberState::Joining);
    assert_eq!(joiner.initial_cluster_state, InitialClusterState::Existing);
    assert_eq!(joiner.initial_cluster.split(',').count(), 4, "{joiner:?}");
    for i in 0..3 {
        assert_eq!(
            record(&four, i),
            record(&three, i),
            "member {i}'s record moved"
        );
    }
    // Waiting for it to start: a run changes nothing and says so.
    let (code, report) = lab.check(&four);
    assert_eq!(code, 1);
    assert!(matches!(report.hold, Some(Hold::Waiting(_))), "{report:?}");

    // Its unit starts it; etcd-sync promotes it once it has caught up.
    let index = cluster.join(lab.member(3), &joiner.initial_cluster);
    // A learner serves no quorum read (etcdctl endpoint health fails on it by design): wait
    // for it to publish its name instead, which is when etcd-sync counts it as started.
    let deadline = std::time::Instant::now() + UP;
    while !member_names(&cluster).contains(&"node-4".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "node-4 never started: {}",
            cluster.log_tail(index, 10)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let four = lab.apply(&four);
    assert_eq!(record(&four, 3).state, EtcdMemberState::Member);
    assert_eq!(record(&four, 3).initial_cluster, joiner.initial_cluster);
    let (code, report) = lab.check(&four);
    assert_eq!((code, report.members.len()), (0, 4), "{report:?}");
    assert!(report.members.iter().all(|m| !m.is_learner && m.healthy));

    // And back to three: node-4 leaves.
    let back = lab.doc_with(&[0, 1, 2]);
    let mut back_doc = four.clone();
    back_doc.nodes.truncate(3);
    assert_eq!(back_doc.nodes.len(), back.nodes.len());
    let (code, _) = lab.check(&back_doc);
    assert_eq!(code, 1);
    let after = lab.apply(&back_doc);
    assert_eq!(after, back_doc, "the remaining records do not change");
    assert_eq!(member_names(&cluster), ["node-1", "node-2", "node-3"]);
    let (code, report) = lab.check(&after);
    assert_eq!((code, report.changes.len()), (0, 0), "{report:?}");
    // The removed member shuts itself down once it learns it is out of the cluster.
    cluster.wait_exited(index, UP).unwrap();

    let verdicts = poller.finish();
    assert!(
        verdicts.len() >= 5,
        "etcd-check ran only {} times",
        verdicts.len()
    );
    let unavailable: Vec<_> = verdicts.iter().filter(|(c, _)| *c == 3).collect();
    assert!(unavailable.is_empty(), "quorum lost: {unavailable:?}");
    assert!(
        verdicts.iter().all(|(c, _)| *c == 0 || *c == 1),
        "{verdicts:?}"
    );
}

#[test]
fn a_removal_that_would_lose_quorum_is_refused() {
    let lab = Lab::new(3, 79);
    let mut cluster = lab.start(&[0, 1, 2]);
    let three = lab.apply(&lab.doc_with(&[0, 1, 2]));
    // node-3 stopped: quorum holds (2 of 3), but dropping node-1 would leave node-2 and the
    // stopped node-3: 1 of 2 answering.
    cluster.stop(2);
    let mut two = three.clone();
    two.nodes.remove(0);
    let out = lab.sync(&two, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("etcd-sync: error: refused"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Two members stopped: no healthy majority at all; nothing is changed either.
    cluster.stop(1);
    let mut one = three.clone();
    one.nodes.truncate(1);
    let out = lab.sync(&one, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    cluster.cont(1);
    cluster.cont(2);
    cluster.wait_healthy(UP).unwrap();
    assert_eq!(member_names(&cluster), ["node-1", "node-2", "node-3"]);
    // Every member gone: unavailable, exit 3.
    for i in 0..3 {
        cluster.kill(i);
    }
    let out = lab.sync(&three, &["--check"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(out.stdout.is_empty());
}

/// The member whose status says it leads, by index.
fn leader(cluster: &Cluster) -> usize {
    let out = cluster
        .etcdctl(0)
        .arg(format!("--endpoints={}", cluster.endpoints_arg()))
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let status: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let leading = status
        .iter()
        .find(|s| s["Status"]["leader"] == s["Status"]["header"]["member_id"])
        .unwrap_or_else(|| panic!("no member leads: {status:?}"));
    cluster
        .endpoints()
        .iter()
        .position(|e| leading["Endpoint"] == e.as_str())
        .unwrap_or_else(|| panic!("{leading} is none of {:?}", cluster.endpoints()))
}

#[test]
fn removing_the_leader_moves_leadership_first() {
    let lab = Lab::new(3, 83);
    let cluster = lab.start(&[0, 1, 2]);
    let three = lab.apply(&lab.doc_with(&[0, 1, 2]));
    let poller = Poller::start(cluster.endpoints_arg(), &lab.tls());
    let leading = leader(&cluster);
    let mut two = three.clone();
    two.nodes.remove(leading);
    let after = lab.apply(&two);
    assert_eq!(after, two, "the remaining records do not change");
    let left: Vec<String> = (0..3)
        .filter(|i| *i != leading)
        .map(|i| format!("node-{}", i + 1))
        .collect();
    let asked = (leading + 1) % 3;
    assert_eq!(member_names_from(&cluster, asked), left);
    // etcd's own account, its JSON log (etcd v3.4.23 etcdserver/server.go MoveLeader logs
    // the transfer it made): the member handed over before it left, so the others never
    // waited out an election timeout without a leader.
    let log = cluster.log(leading);
    let handed_over = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|l| {
            l["msg"] == "leadership transfer finished"
                && l["old-leader-member-id"] == l["local-member-id"]
        });
    assert!(handed_over, "{}", cluster.log_tail(leading, 20));
    let verdicts = poller.finish();
    let unavailable: Vec<_> = verdicts.iter().filter(|(c, _)| *c == 3).collect();
    assert!(unavailable.is_empty(), "quorum lost: {unavailable:?}");
}
