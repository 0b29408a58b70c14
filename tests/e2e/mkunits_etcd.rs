//! `mkcerts | mkunits`, then a real 3-member etcd 3.4 cluster started from the generated
//! etcd.service files: each member runs its unit's ExecStart (node paths mapped to the files
//! under OUT) in its own network namespace holding the node's IP, all namespaces on one bridge.
//! `etcdctl endpoint health --cluster` with the healthcheck client certificate must pass on all
//! three, and over 127.0.0.1 inside a node as the unit promises.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hardway::doc::PodNetwork;
use hardway::{Node, Role};
use serde_json::Value;
use testkit::netns::Lab;

/// Members started by this test; killed (even when the test panics) before the lab goes.
struct Members(Vec<Child>);

impl Drop for Members {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `(dest, src)` of each file of a node.
fn node_files(node: &Node) -> Vec<(String, String)> {
    node.files
        .iter()
        .map(|f| (f.dest.clone(), f.src.clone()))
        .collect()
}

fn local(out: &Path, node: &Node, dest: &str) -> PathBuf {
    testkit::node_file(out, node, dest)
}

/// The unit's ExecStart as words, each node path replaced by its file under OUT and the data
/// dir by `data_dir`.
fn exec_start(out: &Path, node: &Node, data_dir: &Path) -> Vec<String> {
    let unit =
        std::fs::read_to_string(local(out, node, "/etc/systemd/system/etcd.service")).unwrap();
    assert!(unit.contains("Type=notify"), "{unit}");
    let folded = unit.replace("\\\n", " ");
    let line = folded
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("etcd.service has an ExecStart");
    let files = node_files(node);
    line.split_whitespace()
        .map(|word| {
            let mut word = word.to_string();
            for (dest, src) in &files {
                word = word.replace(dest.as_str(), &out.join(src).display().to_string());
            }
            word.replace("/var/lib/etcd", &data_dir.display().to_string())
        })
        .collect()
}

#[test]
fn etcd_cluster_from_the_generated_units_is_healthy() {
    testkit::require_root();
    let etcdctl = Path::new("/usr/bin/etcdctl");
    assert!(
        Path::new("/usr/bin/etcd").exists() && etcdctl.exists(),
        "install Debian's etcd-server and etcd-client (scripts/deps.sh)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    // flannel, so the first member also gets flannel-config.service to run against the cluster.
    let mut source = testkit::fixture_document("lab.json");
    source.cluster.pod_network = PodNetwork::Flannel;
    let source = hardway::doc::to_string(&source).into_bytes();
    let with_pki = testkit::run_piped(&testkit::bin("mkcerts"), &["--dir", out_arg], &source);
    let bin_dir = testkit::target_dir();
    let doc_bytes = testkit::run_piped(
        &testkit::bin("mkunits"),
        &[
            "--dir",
            out_arg,
            "--bin-dir",
            bin_dir.to_str().unwrap(),
            "--etcd-profile",
            "slow",
        ],
        &with_pki,
    );
    let doc =
        hardway::doc::parse(std::str::from_utf8(&doc_bytes).unwrap(), "mkunits' stdout").unwrap();
    let prefix = doc.cluster.networks.node[0].prefix_len();
    let gateway = doc
        .hypervisor
        .as_ref()
        .and_then(|h| h.gateway)
        .expect("a gateway");
    let etcd_nodes: Vec<&Node> = doc.nodes_with(Role::Etcd).collect();
    assert_eq!(etcd_nodes.len(), 3);

    let mut builder = Lab::builder("mkue").host_bridge(&[&format!("{gateway}/{prefix}")]);
    for node in &etcd_nodes {
        let ip = node.primary_ip().unwrap();
        builder = builder.node(&node.name, &[&format!("{ip}/{prefix}")]);
    }
    let lab = builder.build();

    let mut members = Members(Vec::new());
    for node in &etcd_nodes {
        let name = node.name.as_str();
        let data_dir = tmp.path().join("data").join(name);
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        let args = exec_start(&out, node, &data_dir);
        assert_eq!(args[0], "/usr/bin/etcd");
        assert!(
            args.contains(&"--heartbeat-interval=1000".to_string()),
            "{args:?}"
        );
        let log = std::fs::File::create(tmp.path().join(format!("{name}.log"))).unwrap();
        // setsid: a member must not share the test's process group (docs/ARCHITECTURE.md).
        let child = Command::new("setsid")
            .args(["ip", "netns", "exec", lab.node(name).name()])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        members.0.push(child);
    }

    let first = etcd_nodes[0];
    let tls = |flag: &str, dest: &str| format!("--{flag}={}", local(&out, first, dest).display());
    let health = |endpoint: &str| {
        lab.node(&first.name)
            .command(etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg(tls("cacert", hardway::paths::etcd::CA))
            .arg(tls("cert", hardway::paths::etcd::HEALTHCHECK_CERT))
            .arg(tls("key", hardway::paths::etcd::HEALTHCHECK_KEY))
            .args(["--command-timeout=3s", "endpoint", "health", "--cluster"])
            .output()
            .unwrap()
    };
    let first_ip = first.primary_ip().unwrap();
    let endpoint = format!("https://{first_ip}:2379");
    let deadline = Instant::now() + Duration::from_secs(90);
    let report = loop {
        let o = health(&endpoint);
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            break text;
        }
        if Instant::now() > deadline {
            let logs: String = etcd_nodes
                .iter()
                .map(|n| {
                    let name = &n.name;
                    let log = std::fs::read_to_string(tmp.path().join(format!("{name}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(8).collect();
                    format!(
                        "--- {name}\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!("etcd never became healthy: {text}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for node in &etcd_nodes {
        let ip = node.primary_ip().unwrap();
        assert!(
            report.contains(&format!("https://{ip}:2379 is healthy")),
            "{ip} not healthy: {report}"
        );
    }
    // The unit also listens on 127.0.0.1 inside the node, as etcdctl on a node uses it.
    let o = health("https://127.0.0.1:2379");
    assert!(
        o.status.success(),
        "over 127.0.0.1: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // flannel-config.service stores flannel's network config through etcd's TLS client port.
    let unit = std::fs::read_to_string(local(
        &out,
        first,
        "/etc/systemd/system/flannel-config.service",
    ))
    .unwrap()
    .replace("\\\n", " ");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let (start, end) = (line.find('\'').unwrap(), line.rfind('\'').unwrap());
    let mut script = line[start + 1..end].to_string();
    for (dest, src) in node_files(first) {
        script = script.replace(dest.as_str(), &out.join(src).display().to_string());
    }
    let o = lab
        .node(&first.name)
        .command("/bin/sh")
        .env("ETCDCTL_API", "3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "flannel-config: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stored = lab
        .node(&first.name)
        .command(etcdctl)
        .env("ETCDCTL_API", "3")
        .arg("--endpoints=https://127.0.0.1:2379")
        .arg(tls("cacert", hardway::paths::etcd::CA))
        .arg(tls("cert", hardway::paths::etcd::HEALTHCHECK_CERT))
        .arg(tls("key", hardway::paths::etcd::HEALTHCHECK_KEY))
        .args(["get", "/coreos.com/network/config", "--print-value-only"])
        .output()
        .unwrap();
    let stored: Value = serde_json::from_slice(&stored.stdout).expect("flannel's config is JSON");
    let file: Value = serde_json::from_slice(
        &std::fs::read(local(&out, first, "/etc/flannel/network.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored, file);
    /// flannel's net-conf.json, the field this test checks (flannel reads it as `Network`).
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct NetConf {
        network: ipnet::IpNet,
    }
    let conf: NetConf = serde_json::from_value(stored).unwrap();
    assert_eq!(conf.network, doc.cluster.networks.pod[0]);
    drop(members);
}
