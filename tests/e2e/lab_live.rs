//! `make lab INVENTORY=FILE` on a running lab, and `make lab-restore SNAPSHOT=FILE` (issue 16
//! item 7), through the Makefile and scripts/lab.sh themselves: real etcd 3.4 members started
//! from their mkunits units, each in its own network namespace, joined and removed by
//! etcd-sync, with etcd-check polled in the background the whole time.
//!
//! The lab's "hypervisor" is a network namespace of the test's own (entered with `nsenter
//! --net`, not `ip netns exec`: lab.sh makes its node namespaces with `ip netns add`, and the
//! private mount namespace of `ip netns exec` would hide them from everyone else), so the lab's
//! bridge and the 10.240.0.0/24 node network never meet the machine's or another test's.
//! What runs: make, lab.sh, every tool of the pipeline, etcd, etcdctl (to write and read keys).
//! What does not: systemd and node-push (lab.sh runs each unit's ExecStart and the restore
//! script itself, as they would).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardway::doc::{Document, EtcdMemberState, InitialClusterState};

static LABS: AtomicU32 = AtomicU32::new(0);

/// etcd-check's report, the parts this test reads.
#[derive(Debug, Clone, serde::Deserialize)]
struct Report {
    verdict: String,
    members_total: usize,
    members_healthy: usize,
    members: Vec<Member>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Member {
    name: Option<String>,
    endpoint: String,
    member_id: Option<String>,
}

/// One etcd-check run: its exit code and its report (none when it printed none).
#[derive(Debug, Clone)]
struct Verdict {
    code: i32,
    report: Option<Report>,
    stderr: String,
}

/// A lab in a hypervisor namespace of its own; `lab-down` and the namespace go on drop.
struct LiveLab {
    dir: tempfile::TempDir,
    name: String,
    hypervisor: String,
}

fn describe(out: &Output) -> String {
    let text = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    };
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

impl LiveLab {
    fn new() -> LiveLab {
        testkit::require_root();
        // Short: the bridge is NAME0 and namespaces NAME-node-N (15-character interface names).
        let name = format!(
            "lv{}{}",
            std::process::id() % 10_000,
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let hypervisor = format!("{name}hv");
        for args in [
            vec!["netns", "add", &hypervisor],
            vec!["-n", &hypervisor, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
        }
        LiveLab {
            dir: tempfile::Builder::new()
                .prefix("hardway-live-lab.")
                .tempdir()
                .unwrap(),
            name,
            hypervisor,
        }
    }

    fn doc_path(&self) -> PathBuf {
        self.dir.path().join("cluster.json")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `program` run in the hypervisor namespace.
    fn inside(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.hypervisor))
            .arg(program);
        cmd
    }

    /// `make TARGET VARS…` in the workspace, as a user types it, in the hypervisor namespace.
    fn make(&self, target: &str, vars: &[String]) -> Output {
        self.inside("make")
            .arg("-s")
            .arg("--no-print-directory")
            .arg("-C")
            .arg(testkit::workspace_root())
            .arg(target)
            .args(vars)
            .env("LAB_NAME", &self.name)
            .env("LAB_DIR", self.dir.path())
            .env("LAB_NO_BUILD", "1")
            .env("HARDWAY_BIN", testkit::target_dir())
            .output()
            .unwrap()
    }

    /// `make lab INVENTORY=examples/NAME`, which must succeed (lab.sh's own checks included:
    /// etcd-check healthy, every pod gateway answers, mkcerts check clean).
    fn lab(&self, inventory: &str) -> Document {
        let out = self.make("lab", &[format!("INVENTORY=examples/{inventory}")]);
        assert!(
            out.status.success(),
            "make lab {inventory}: {}",
            describe(&out)
        );
        self.doc()
    }

    fn doc(&self) -> Document {
        hardway::doc::read(Some(&self.doc_path())).unwrap()
    }

    fn check(&self) -> Verdict {
        let out = self
            .inside(testkit::bin("etcd-check"))
            .arg("-f")
            .arg(self.doc_path())
            .arg("--dir")
            .arg(self.out())
            .args(["--timeout", "2s"])
            .output()
            .unwrap();
        Verdict {
            code: out.status.code().unwrap_or(-1),
            report: serde_json::from_slice(&out.stdout).ok(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The final word after a `make lab`: healthy, `members` of `members`.
    fn assert_healthy(&self, members: usize) -> Report {
        let verdict = self.check();
        let report = verdict.report.clone().expect("a report");
        assert_eq!(
            (
                verdict.code,
                report.verdict.as_str(),
                report.members_healthy,
                report.members_total
            ),
            (0, "healthy", members, members),
            "{verdict:?}"
        );
        report
    }

    /// The pid file lab.sh keeps for a member's etcd, and whether that process runs.
    fn member_pid(&self, node: &str) -> Option<u32> {
        let text =
            std::fs::read_to_string(self.dir.path().join(format!("run/etcd-{node}.pid"))).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// The gateway that node `from`'s kernel (the hypervisor's for None) picks for `address`
    /// (`ip route get`: route-sync's routes resolved through their nexthops).
    fn gateway(&self, from: Option<&str>, address: std::net::IpAddr) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Route {
            gateway: Option<String>,
        }
        let mut ip = match from {
            Some(node) => {
                let mut ip = Command::new("ip");
                ip.args(["-n", &format!("{}-{node}", self.name)]);
                ip
            }
            None => self.inside("ip"),
        };
        let out = ip
            .args(["-j", "route", "get"])
            .arg(address.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "ip route get: {}", describe(&out));
        let routes: Vec<Route> = serde_json::from_slice(&out.stdout).unwrap();
        routes.into_iter().next()?.gateway
    }

    fn namespaces(&self) -> Vec<String> {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.name)))
            .map(String::from)
            .collect()
    }

    /// etcdctl against node-1 with the API server's client certificate.
    fn etcdctl(&self, args: &[&str]) -> String {
        let pki = self.out().join("pki");
        let out = self
            .inside(testkit::etcd::ETCDCTL)
            .env("ETCDCTL_API", "3")
            .arg("--endpoints=https://10.240.0.11:2379")
            .arg(format!("--cacert={}", pki.join("ca/etcd-ca.pem").display()))
            .arg(format!(
                "--cert={}",
                pki.join("cluster/apiserver-etcd-client.pem").display()
            ))
            .arg(format!(
                "--key={}",
                pki.join("cluster/apiserver-etcd-client-key.pem").display()
            ))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self) -> Vec<String> {
        self.etcdctl(&["get", "/t/", "--prefix", "--keys-only"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

impl Drop for LiveLab {
    fn drop(&mut self) {
        let _ = self.make("lab-down", &[]);
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.hypervisor])
            .output();
    }
}

/// etcd-check on the lab's current document, again and again until stopped; every verdict kept.
struct Poller {
    stop: Arc<AtomicBool>,
    verdicts: Arc<Mutex<Vec<Verdict>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(lab: &LiveLab) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let verdicts = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), verdicts.clone());
        // The thread needs only what check() reads: a twin that owns no lab.
        let (doc, out, hypervisor) = (lab.doc_path(), lab.out(), lab.hypervisor.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let out = Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{hypervisor}"))
                    .arg(testkit::bin("etcd-check"))
                    .arg("-f")
                    .arg(&doc)
                    .arg("--dir")
                    .arg(&out)
                    .args(["--timeout", "2s"])
                    .output()
                    .unwrap();
                v.lock().unwrap().push(Verdict {
                    code: out.status.code().unwrap_or(-1),
                    report: serde_json::from_slice(&out.stdout).ok(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Poller {
            stop,
            verdicts,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Verdict> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.verdicts.lock().unwrap().clone()
    }
}

fn etcd_service_sha(doc: &Document, node: &str) -> String {
    doc.node(node)
        .unwrap()
        .files
        .iter()
        .find(|f| f.dest == "/etc/systemd/system/etcd.service")
        .map(|f| f.sha256.clone())
        .expect("an etcd.service")
}

fn record(doc: &Document, node: &str) -> hardway::doc::EtcdMember {
    doc.node(node)
        .unwrap()
        .etcd
        .clone()
        .unwrap_or_else(|| panic!("{node} has no etcd record"))
}

#[test]
fn the_lab_follows_edits_three_to_four_to_three_and_a_moved_member_without_losing_quorum() {
    let lab = LiveLab::new();
    let three = lab.lab("lab.csv");
    lab.assert_healthy(3);
    // The fresh lab recorded its bootstrap members, so a later run joins instead.
    for node in ["node-1", "node-2", "node-3"] {
        let r = record(&three, node);
        assert_eq!(
            (r.state, r.initial_cluster_state),
            (EtcdMemberState::Member, InitialClusterState::New)
        );
    }
    let pids =
        |names: &[&str]| -> Vec<Option<u32>> { names.iter().map(|n| lab.member_pid(n)).collect() };
    let first_pids = pids(&["node-1", "node-2", "node-3"]);
    assert!(first_pids.iter().all(Option::is_some), "{first_pids:?}");
    let poller = Poller::start(&lab);

    // A fourth etcd node joins: a learner started from its unit, then promoted; the three
    // others keep their process and their etcd.service.
    let four = lab.lab("lab-4.csv");
    lab.assert_healthy(4);
    let joiner = record(&four, "node-4");
    assert_eq!(
        (joiner.state, joiner.initial_cluster_state),
        (EtcdMemberState::Member, InitialClusterState::Existing)
    );
    assert_eq!(joiner.initial_cluster.split(',').count(), 4, "{joiner:?}");
    for node in ["node-1", "node-2", "node-3"] {
        assert_eq!(
            etcd_service_sha(&four, node),
            etcd_service_sha(&three, node)
        );
        assert_eq!(record(&four, node), record(&three, node));
    }
    assert_eq!(pids(&["node-1", "node-2", "node-3"]), first_pids);

    // And it leaves: removed from etcd, then its process and namespace go.
    let back = lab.lab("lab.csv");
    let report = lab.assert_healthy(3);
    assert!(back.node("node-4").is_none());
    assert!(lab.member_pid("node-4").is_none());
    assert!(
        !lab.namespaces().contains(&format!("{}-node-4", lab.name)),
        "{:?}",
        lab.namespaces()
    );
    assert!(report
        .members
        .iter()
        .all(|m| m.name.as_deref() != Some("node-4")));
    assert_eq!(pids(&["node-1", "node-2", "node-3"]), first_pids);

    // node-3 moves to 10.240.0.23: it leaves, then joins again as a new member at the new
    // address (remove + add); node-1 and node-2 keep running; routes follow (lab.sh's pings
    // to every pod gateway pass only if they did).
    let moved = lab.lab("lab-moved.csv");
    let report = lab.assert_healthy(3);
    let node3 = moved.node("node-3").unwrap();
    assert_eq!(
        node3.ips,
        vec!["10.240.0.23".parse::<std::net::IpAddr>().unwrap()]
    );
    let listed: Vec<(&str, &str)> = report
        .members
        .iter()
        .map(|m| (m.name.as_deref().unwrap_or(""), m.endpoint.as_str()))
        .collect();
    assert!(
        listed.contains(&("node-3", "https://10.240.0.23:2379")),
        "{listed:?}"
    );
    let pods = node3.pod_cidrs[0].hosts().next().unwrap();
    for from in [Some("node-1"), Some("node-2"), None] {
        assert_eq!(
            lab.gateway(from, pods).as_deref(),
            Some("10.240.0.23"),
            "{from:?} to node-3's pods"
        );
    }
    let rejoined = record(&moved, "node-3");
    assert_ne!(rejoined.member_id, record(&three, "node-3").member_id);
    assert_eq!(
        rejoined.initial_cluster_state,
        InitialClusterState::Existing
    );
    assert_eq!(pids(&["node-1", "node-2"]), first_pids[..2]);

    let verdicts = poller.finish();
    let count = |code: i32| verdicts.iter().filter(|v| v.code == code).count();
    eprintln!(
        "etcd-check polled {} times: {} healthy, {} degraded, {} unavailable",
        verdicts.len(),
        count(0),
        count(1),
        count(3)
    );
    assert!(
        verdicts.len() >= 10,
        "etcd-check ran {} times",
        verdicts.len()
    );
    let lost: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| {
            v.code == 3
                || v.report
                    .as_ref()
                    .is_some_and(|r| r.verdict == "unavailable")
        })
        .collect();
    assert!(lost.is_empty(), "quorum lost: {lost:?}");
    // Every verdict was healthy or degraded (a member joining or leaving), each with a report.
    for v in &verdicts {
        assert!(
            matches!(v.code, 0 | 1) && v.report.is_some(),
            "etcd-check exit {} ({}) among {} verdicts: {v:?}",
            v.code,
            v.stderr.trim(),
            verdicts.len()
        );
    }
    assert!(verdicts.iter().any(|v| v.code == 0));
}

#[test]
fn lab_restore_brings_back_the_snapshot_and_only_it() {
    let lab = LiveLab::new();
    // No lab yet: nothing to restore into (bad usage, exit 2).
    let out = lab.make("lab-restore", &["SNAPSHOT=/nonexistent".into()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    lab.lab("lab.csv");
    lab.etcdctl(&["put", "/t/before-1", "v"]);
    lab.etcdctl(&["put", "/t/before-2", "v"]);
    let saved = lab
        .inside(testkit::bin("etcd-snapshot"))
        .arg("save")
        .arg("-f")
        .arg(lab.doc_path())
        .arg("--dir")
        .arg(lab.out())
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", describe(&saved));
    #[derive(serde::Deserialize)]
    struct Saved {
        file: PathBuf,
    }
    let snapshot: Saved = serde_json::from_slice(&saved.stdout).unwrap();
    lab.etcdctl(&["put", "/t/after", "v"]);
    assert_eq!(lab.keys(), ["/t/after", "/t/before-1", "/t/before-2"]);

    // A snapshot that fails etcd-snapshot's check: refused, and the members run again as they
    // were, nothing lost.
    let corrupt = lab.dir.path().join("corrupt.db");
    let mut bytes = std::fs::read(&snapshot.file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = lab.make("lab-restore", &[format!("SNAPSHOT={}", corrupt.display())]);
    assert!(!out.status.success(), "{}", describe(&out));
    lab.assert_healthy(3);
    assert_eq!(lab.keys(), ["/t/after", "/t/before-1", "/t/before-2"]);

    let out = lab.make(
        "lab-restore",
        &[format!("SNAPSHOT={}", snapshot.file.display())],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let report = lab.assert_healthy(3);
    assert_eq!(lab.keys(), ["/t/before-1", "/t/before-2"]);
    // Recorded: each node got the restore unit, and its record names the member etcd lists.
    let doc = lab.doc();
    for member in &report.members {
        let name = member.name.as_deref().expect("a named member");
        let node = doc.node(name).unwrap();
        assert!(node
            .services
            .iter()
            .any(|s| s == "hardway-etcd-restore.service"));
        assert_eq!(record(&doc, name).member_id, member.member_id, "{name}");
    }
}
