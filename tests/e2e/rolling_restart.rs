//! A rolling restart through node-push, gated by etcd-check, against a real three-member etcd
//! cluster (issue 16 item 7): each "node" is a real sshd on loopback (testkit::sshd), and its
//! etcd member a real etcd 3.4 with mkcerts' TLS (testkit::etcd_lab) on an address of its own.
//!
//! What ran: sshd, node-push, etcd (started and restarted from the unit node-push installed),
//! mkcerts and etcd-check (the gate, through `sh -c` as a user would give it). What did not:
//! systemd. PID 1 here is not systemd, so each node's `systemctl` is a shell service manager this
//! test provides (see [`SYSTEMCTL`]): `restart` really stops the member's etcd process (SIGTERM,
//! waits until it is gone) and starts the `ExecStart=` line of the unit file node-push just put
//! in place, `is-active` answers from that process, and every stop and start is written with
//! its time to one event log that the gate appends to as well, so the order of restarts and
//! gate verdicts is read back from one file. Nor mkunits: its etcd unit names /etc/etcd and
//! /var/lib/etcd on this machine, so the unit here carries the same kind of flags with the
//! test's own paths. Needs root, and mkcerts and etcd-check built (make test builds them).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use node_push::report::{Report, Verdict};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use testkit::etcd_lab::Lab;
use testkit::sshd::{Sshd, SshdOptions};

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const UNIT: &str = "etc/systemd/system/etcd.service";

/// The node's systemctl: a service manager for units whose `ExecStart=` is one plain command.
/// @ROOT@ (the node's root), @NODE@ and @EVENTS@ are filled in per node.
const SYSTEMCTL: &str = r#"#!/bin/sh
# Stands in for systemd's systemctl on a test node (PID 1 is not systemd): really stops and
# starts the unit's process, and logs each stop and start with its time.
root='@ROOT@'; node='@NODE@'; events='@EVENTS@'
echo "$*" >> "$root/systemctl.log"
event() { echo "$(date +%s.%N) $node $*" >> "$events"; }
pid_of() { cat "$root/run/$1.pid" 2>/dev/null; }
# Alive and not a zombie (nothing here reaps an orphan, so a dead member can linger as one).
alive() { state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null); [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]; }
running() { p=$(pid_of "$1"); [ -n "$p" ] && alive "$p"; }
start() {
  cmd=$(sed -n 's/^ExecStart=//p' "$root/etc/systemd/system/$1")
  mkdir -p "$root/run"
  # Its own session, as a service has; stdin, stdout and stderr off the SSH channel.
  setsid $cmd < /dev/null >> "$root/run/$1.log" 2>&1 &
  echo $! > "$root/run/$1.pid"
  event started "$1" $!
}
stop() {
  running "$1" || return 0
  p=$(pid_of "$1")
  event stopping "$1" "$p"
  kill -TERM "$p"
  while alive "$p"; do sleep 0.05; done
}
case "$1" in
  is-active) shift; [ "$1" = -- ] && shift
    for u; do if running "$u"; then echo active; else echo inactive; fi; done ;;
  daemon-reload) ;;
  enable) if [ "$2" = --now ]; then running "$3" || start "$3"; fi ;;
  restart) stop "$2"; start "$2" ;;
  *) echo "test systemctl: unsupported: $*" >&2; exit 1 ;;
esac
"#;

/// The gate: etcd-check on the cluster document, its report kept for the test, its verdict
/// logged with its time.
const GATE: &str = r#"#!/bin/sh
out=$(mktemp -p '@DIR@' gate-XXXXXX.json)
'@CHECK@' -f '@DOC@' --dir '@PKI@' --timeout 3s > "$out"
status=$?
echo "$(date +%s.%N) gate $NODE_PUSH_WAVE $status $out" >> '@EVENTS@'
exit $status
"#;

/// What the test reads of etcd-check's report.
#[derive(Debug, Deserialize)]
struct CheckSaw {
    members_total: usize,
    members_healthy: usize,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Stopping { node: String, pid: u32 },
    Started { node: String, pid: u32 },
    Gate { status: i32, report: PathBuf },
}

struct World {
    tmp: tempfile::TempDir,
    lab: Lab,
    doc: Value,
    sshds: Vec<Sshd>,
}

/// Kills the members the test's systemctl started (they are nobody's children here).
impl Drop for World {
    fn drop(&mut self) {
        for node in NODES {
            if let Some(pid) = self.pid(node) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl World {
    fn new() -> World {
        testkit::require_root();
        let tmp = tempfile::Builder::new()
            .prefix("node-push-rolling-")
            .tempdir()
            .unwrap();
        let lab = Lab::new(3, 117);
        testkit::sshd::keygen(&tmp.path().join("id_ed25519"), "node-push-rolling");
        // The document node-push reads: the lab's three etcd nodes, each with one file (its
        // etcd unit, under the node's root in this test's directory) and one service. The gate
        // reads the lab's own document (mkcerts' PKI); they meet only through the shell.
        let mut doc: Value = serde_json::to_value(&lab.doc).unwrap();
        for node in doc["nodes"].as_array_mut().unwrap() {
            node["files"] = json!([]);
            node["services"] = json!(["etcd.service"]);
        }
        let mut world = World {
            tmp,
            lab,
            doc,
            sshds: Vec::new(),
        };
        fs::write(world.path("events.log"), "").unwrap();
        let cluster_doc = world.path("cluster.json");
        fs::write(&cluster_doc, hardway::doc::to_string(&world.lab.doc)).unwrap();
        let gate = GATE
            .replace("@DIR@", &world.path("").display().to_string())
            .replace("@CHECK@", &testkit::bin("etcd-check").display().to_string())
            .replace("@DOC@", &cluster_doc.display().to_string())
            .replace("@PKI@", &world.lab.dir.path().display().to_string())
            .replace("@EVENTS@", &world.path("events.log").display().to_string());
        write_script(&world.path("gate.sh"), &gate);
        for node in NODES {
            let sshd = Sshd::start_with(SshdOptions {
                authorized_key: Some(world.path("id_ed25519.pub")),
                ..Default::default()
            });
            let systemctl = SYSTEMCTL
                .replace("@ROOT@", &world.root(node).display().to_string())
                .replace("@NODE@", node)
                .replace("@EVENTS@", &world.path("events.log").display().to_string());
            fs::create_dir_all(world.root(node)).unwrap();
            write_script(&sshd.dir().join("bin/systemctl"), &systemctl);
            world.sshds.push(sshd);
        }
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn root(&self, node: &str) -> PathBuf {
        self.path(&format!("nodes/{node}"))
    }

    /// Writes node `i`'s etcd unit into `out/` and lists it in the document; `extra` flags vary
    /// it from run to run (a changed unit is what restarts the member).
    fn unit(&mut self, i: usize, extra: &str) {
        let node = NODES[i];
        let spec = self.lab.member(i);
        let tls = self.lab.tls();
        let peers: Vec<String> = (0..NODES.len())
            .map(|j| {
                let m = self.lab.member(j);
                format!("{}={}", m.name, m.peer_url)
            })
            .collect();
        let data = self.root(node).join("var/lib/etcd");
        let flags = [
            format!("--name={node}"),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={}", spec.client_url),
            format!("--advertise-client-urls={}", spec.client_url),
            format!("--listen-peer-urls={}", spec.peer_url),
            format!("--initial-advertise-peer-urls={}", spec.peer_url),
            format!("--initial-cluster={}", peers.join(",")),
            "--initial-cluster-state=new".into(),
            "--initial-cluster-token=node-push-rolling".into(),
            format!("--cert-file={}", spec.certs.server_cert.display()),
            format!("--key-file={}", spec.certs.server_key.display()),
            "--client-cert-auth".into(),
            format!("--trusted-ca-file={}", tls.ca.display()),
            format!("--peer-cert-file={}", spec.certs.peer_cert.display()),
            format!("--peer-key-file={}", spec.certs.peer_key.display()),
            "--peer-client-cert-auth".into(),
            format!("--peer-trusted-ca-file={}", tls.ca.display()),
            "--logger=zap".into(),
            extra.to_string(),
        ];
        let text = format!(
            "[Unit]\nDescription=etcd\n\n[Service]\nType=notify\nExecStart={} {}\n",
            testkit::etcd::ETCD,
            flags.join(" ")
        );
        let src = format!("units/{node}/etcd.service");
        let local = self.path(&format!("out/{src}"));
        fs::create_dir_all(local.parent().unwrap()).unwrap();
        fs::write(&local, &text).unwrap();
        let dest = self.root(node).join(UNIT).display().to_string();
        let sha = hex::encode(Sha256::digest(text.as_bytes()));
        self.doc["nodes"][i]["files"] = json!([{
            "src": src, "dest": dest, "mode": "0644", "owner": "root:root", "sha256": sha
        }]);
    }

    /// Runs node-push with the gate; returns its output and its parsed report.
    fn push(&self, gate_timeout: u64) -> (Output, Report) {
        let report = self.path("report.json");
        let _ = fs::remove_file(&report);
        let mut command = Command::new(testkit::bin("node-push"));
        command
            .arg("--dir")
            .arg(self.path("out"))
            .arg("--identity")
            .arg(self.path("id_ed25519"))
            .arg("--known-hosts")
            .arg(self.path("known_hosts"))
            .args(["--accept-new", "--timeout", "60"])
            .arg("--between")
            .arg(self.path("gate.sh"))
            .args(["--gate-timeout", &gate_timeout.to_string()])
            .arg("--report")
            .arg(&report);
        for (node, sshd) in NODES.iter().zip(&self.sshds) {
            command
                .arg("--address")
                .arg(format!("{node}={}", sshd.address()));
        }
        let out = testkit::pipe(&mut command, &serde_json::to_string(&self.doc).unwrap());
        let text = fs::read_to_string(&report)
            .unwrap_or_else(|_| panic!("no report: {}", String::from_utf8_lossy(&out.stderr)));
        (out, serde_json::from_str(&text).unwrap())
    }

    /// The pid of the node's etcd, as its systemctl recorded it.
    fn pid(&self, node: &str) -> Option<u32> {
        fs::read_to_string(self.root(node).join("run/etcd.service.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// The event log from line `from` on.
    fn events(&self, from: usize) -> Vec<Event> {
        let text = fs::read_to_string(self.path("events.log")).unwrap();
        text.lines().skip(from).map(parse_event).collect()
    }

    fn event_count(&self) -> usize {
        fs::read_to_string(self.path("events.log"))
            .unwrap()
            .lines()
            .count()
    }

    fn calls(&self, node: &str) -> Vec<String> {
        fs::read_to_string(self.root(node).join("systemctl.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn parse_event(line: &str) -> Event {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[1..] {
        ["gate", _wave, status, report] => Event::Gate {
            status: status.parse().unwrap(),
            report: report.into(),
        },
        [node, "stopping", _unit, pid] => Event::Stopping {
            node: node.into(),
            pid: pid.parse().unwrap(),
        },
        [node, "started", _unit, pid] => Event::Started {
            node: node.into(),
            pid: pid.parse().unwrap(),
        },
        _ => panic!("unknown event line {line:?}"),
    }
}

fn saw(report: &Path) -> CheckSaw {
    serde_json::from_str(&fs::read_to_string(report).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", report.display()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// First push: nothing runs yet, so every member starts at once in wave 1 (a new cluster needs
/// a quorum to start) and no gate is needed. Second push, every unit changed: the members
/// restart one at a time, each after etcd-check saw all three healthy, and quorum is never lost.
/// Third push, node-1's unit broken: its member does not come back, the gate fails, node-push
/// exits 3 naming it, and node-2 and node-3 are untouched.
#[test]
fn a_rolling_restart_restarts_members_one_by_one_and_a_failing_gate_stops_it() {
    let mut w = World::new();
    for i in 0..NODES.len() {
        w.unit(i, "--snapshot-count=10000");
    }
    let (out, report) = w.push(60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for n in &report.nodes {
        assert_eq!((n.wave, n.gate.verdict), (1, Verdict::NotNeeded), "{n:?}");
        assert!(n.restarted_running.is_empty(), "{n:?}");
    }
    let first: Vec<u32> = NODES.iter().map(|n| w.pid(n).expect("started")).collect();

    // Second push: every unit changed.
    for i in 0..NODES.len() {
        w.unit(i, "--snapshot-count=20000");
    }
    let mark = w.event_count();
    let (out, report) = w.push(60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (k, n) in report.nodes.iter().enumerate() {
        assert_eq!(n.node, NODES[k]);
        assert_eq!(n.wave, k + 1, "each member alone, in document order: {n:?}");
        assert_eq!(n.restarted_running, ["etcd.service"]);
        assert_eq!(n.gate.verdict, Verdict::Passed, "{n:?}");
        assert!(!n.skipped);
    }
    let events = w.events(mark);
    assert_one_at_a_time(&events, &first);

    // Third push: node-1's etcd refuses its new unit; the gate never passes.
    let second: Vec<u32> = NODES.iter().map(|n| w.pid(n).unwrap()).collect();
    let units_before: Vec<String> = NODES
        .iter()
        .map(|n| fs::read_to_string(w.root(n).join(UNIT)).unwrap())
        .collect();
    let calls_before: Vec<usize> = NODES.iter().map(|n| w.calls(n).len()).collect();
    w.unit(0, "--no-such-flag");
    w.unit(1, "--snapshot-count=30000");
    w.unit(2, "--snapshot-count=30000");
    let mark = w.event_count();
    let (out, report) = w.push(12);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "no document after a failure");
    let one = &report.nodes[0];
    assert!(!one.ok && !one.skipped, "{one:?}");
    assert_eq!(one.wave, 1);
    assert_eq!(one.gate.verdict, Verdict::Failed);
    // Two of three members answer: etcd-check's "degraded" (1), never "unavailable" (3).
    assert_eq!(one.gate.last_status, Some(1), "{one:?}");
    assert!(
        stderr(&out).contains("node-1 (wave 1) did not come back healthy"),
        "{}",
        stderr(&out)
    );
    for (k, n) in report.nodes.iter().enumerate().skip(1) {
        assert!(n.skipped && !n.ok, "{n:?}");
        assert_eq!((n.wave, n.gate.verdict), (k + 1, Verdict::NotRun));
        assert!(n.files_changed.is_empty() && n.services_restarted.is_empty());
        let node = NODES[k];
        assert_eq!(
            fs::read_to_string(w.root(node).join(UNIT)).unwrap(),
            units_before[k],
            "{node}: no file pushed"
        );
        assert_eq!(w.pid(node), Some(second[k]), "{node}: not restarted");
        // Only the compare's query reached it: no enable, no restart.
        let calls = w.calls(node);
        assert!(
            calls[calls_before[k]..]
                .iter()
                .all(|c| c.starts_with("is-active")),
            "{node}: {:?}",
            &calls[calls_before[k]..]
        );
    }
    let events = w.events(mark);
    assert!(
        events.iter().all(|e| match e {
            Event::Stopping { node, .. } | Event::Started { node, .. } => node == "node-1",
            Event::Gate { .. } => true,
        }),
        "only node-1 was touched: {events:?}"
    );
}

/// Reads the second push's events: a passing gate first (the cluster healthy before any member
/// goes down), then for each member in order: it stops (the process of the run before), starts
/// again as a new process, and a gate that saw every member healthy passes before the next
/// member stops. (Gates that failed in between are retries: a member on its way back.)
fn assert_one_at_a_time(events: &[Event], before: &[u32]) {
    let mut at = 0;
    let mut next = |want: &dyn Fn(&Event) -> bool, what: &str| -> Event {
        while at < events.len() {
            let event = events[at].clone();
            at += 1;
            if want(&event) {
                return event;
            }
            if let Event::Stopping { .. } | Event::Started { .. } = event {
                panic!("{event:?} before {what}: {events:?}");
            }
        }
        panic!("no {what} in {events:?}");
    };
    let passed = |e: &Event| {
        matches!(e, Event::Gate { status: 0, report }
            if { let c = saw(report); c.members_healthy == 3 && c.members_total == 3 })
    };
    next(&passed, "gate before the first restart");
    for (k, node) in NODES.iter().enumerate() {
        let stopped = next(
            &|e| matches!(e, Event::Stopping { node: n, .. } if n == node),
            &format!("{node} stopping"),
        );
        assert_eq!(
            stopped,
            Event::Stopping {
                node: node.to_string(),
                pid: before[k]
            }
        );
        let started = next(
            &|e| matches!(e, Event::Started { node: n, .. } if n == node),
            &format!("{node} started"),
        );
        assert!(matches!(started, Event::Started { pid, .. } if pid != before[k]));
        next(&passed, &format!("a passing gate after {node}"));
    }
}
