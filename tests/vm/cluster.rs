//! `make cluster` as a test: scripts/cluster.sh builds the default base image (Debian 13), boots
//! its default inventory (examples/lab-lb.csv: three nodes, node-3 the load balancer holding the
//! API VIP) as TCG VMs under a real libvirtd, pushes every node's files and starts its services
//! over SSH, and must end with:
//! - every started service `active` on every VM (`systemctl is-active`, one state per unit): the
//!   kernel settings, route-sync, etcd, Debian's containerd 1.7 from the generated CRI config
//!   (version 2, on the v1.35 document), haproxy and keepalived on node-3, and whatever else the
//!   document lists that needs no Kubernetes binary;
//! - the VIP answering from the host on the API port, haproxy listening there on node-3;
//! - etcd 3.5 (trixie's) running under systemd across the VMs as a healthy 3-member TLS cluster
//!   (etcd-check from the host);
//! - every node reaching every other node's pod gateway through the routes route-sync made.
//!
//! Then `make cluster-down` must remove the cluster's domains, network and volumes.
//! Not run here: the Kubernetes units (no server binaries on this machine: installed, not
//! started) and scripts/smoke.sh.
//!
//! libvirtd runs inside a network namespace this test makes (testkit::libvirt), so the VMs'
//! network and all their traffic, the test's own SSH and TCP checks included, stay inside it;
//! cluster.sh runs there too. Its own test binary, so cargo never runs it beside the etcd tests:
//! three TCG guests take both cores for minutes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use testkit::libvirt::Libvirtd;

/// What the checks between `up` and `down` found wrong; asserted after `down` ran, so a failed
/// check never leaves VMs behind.
type Problems = Vec<String>;

fn ssh(daemon: &Libvirtd, out: &Path, ip: &str, command: &[&str]) -> std::process::Output {
    daemon
        .exec("ssh")
        .arg("-i")
        .arg(out.join("ssh/id_ed25519"))
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            out.join("known_hosts").display()
        ))
        .args(["-o", "ConnectTimeout=10"])
        .arg(format!("root@{ip}"))
        .args(command)
        .output()
        .expect("run ssh")
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Every service node-push started is `active` on its node, and the guest is Debian 13.
fn check_services(daemon: &Libvirtd, out: &Path, pushed: &Value, problems: &mut Problems) {
    for node in pushed["nodes"].as_array().expect("nodes") {
        let name = node["name"].as_str().unwrap();
        let ip = node["ips"][0].as_str().unwrap();
        let services = strings(&node["services"]);
        for needed in ["etcd.service", "route-sync.service", "containerd.service"] {
            if !services.iter().any(|s| s == needed) {
                problems.push(format!(
                    "{name}: {needed} is not among the started services {services:?}"
                ));
            }
        }
        let mut command = vec!["systemctl", "is-active"];
        command.extend(services.iter().map(String::as_str));
        let answer = ssh(daemon, out, ip, &command);
        let states: Vec<String> = String::from_utf8_lossy(&answer.stdout)
            .lines()
            .map(String::from)
            .collect();
        if states.len() != services.len() {
            problems.push(format!(
                "{name}: is-active gave {states:?} for {services:?}"
            ));
        }
        for (unit, state) in services.iter().zip(&states) {
            if state != "active" {
                problems.push(format!("{name}: {unit} is {state}, not active"));
            }
        }
        let release = ssh(daemon, out, ip, &["cat", "/etc/os-release"]);
        let release = String::from_utf8_lossy(&release.stdout);
        if !release.lines().any(|l| l == "VERSION_ID=\"13\"") {
            problems.push(format!("{name}: not Debian 13: {release}"));
        }
    }
}

/// The VIP answers on the API port from the host (inside the namespace), and the node running
/// haproxy has its listener on VIP:port.
fn check_vip(daemon: &Libvirtd, out: &Path, pushed: &Value, problems: &mut Problems) {
    let vip = pushed["cluster"]["api"]["vip"]
        .as_str()
        .expect("cluster.api.vip");
    let port = pushed["cluster"]["api"]["port"]
        .as_u64()
        .expect("cluster.api.port");
    let connect = daemon
        .exec("timeout")
        .args([
            "10",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{vip}/{port}"),
        ])
        .status()
        .expect("run bash");
    if !connect.success() {
        problems.push(format!(
            "no TCP connection to the API VIP {vip}:{port} from the host"
        ));
    }
    let balancers: Vec<&Value> = pushed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            strings(&n["services"])
                .iter()
                .any(|s| s == "haproxy.service")
        })
        .collect();
    if balancers.is_empty() {
        problems.push("no node runs haproxy.service".into());
    }
    for node in balancers {
        let name = node["name"].as_str().unwrap();
        let listening = ssh(
            daemon,
            out,
            node["ips"][0].as_str().unwrap(),
            &["ss", "-Hltnp"],
        );
        let listening = String::from_utf8_lossy(&listening.stdout);
        // State Recv-Q Send-Q Local:Port Peer:Port Process
        let haproxy_on_api = listening.lines().any(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            columns.get(3) == Some(&format!("{vip}:{port}").as_str())
                && columns.get(5).is_some_and(|p| p.contains("\"haproxy\""))
        });
        if !haproxy_on_api {
            problems.push(format!(
                "{name}: haproxy does not listen on {vip}:{port}:\n{listening}"
            ));
        }
    }
}

/// etcd-check's report from the host: healthy, all three members on trixie's etcd 3.5.
fn check_etcd(out: &Path, problems: &mut Problems) {
    let report = read_json(&out.join("etcd-check.json"));
    if report["verdict"] != "healthy" || report["members_healthy"] != 3 {
        problems.push(format!("etcd is not a healthy 3-member cluster: {report}"));
    }
    for member in report["members"].as_array().into_iter().flatten() {
        if !member["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.5."))
        {
            problems.push(format!(
                "etcd member {} is not etcd 3.5: {}",
                member["name"], member["version"]
            ));
        }
    }
}

fn virsh_names(args: &[&str]) -> Vec<String> {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn make_cluster_starts_every_service_and_the_vip_across_vms_and_cluster_down_removes_it() {
    let root = testkit::workspace_root();
    let image = testkit::libvirt::base_image();
    let daemon = Libvirtd::start(&format!("hwcluster-{}", std::process::id()));
    let out = tempfile::tempdir().unwrap();
    let bin = testkit::target_dir();
    let cluster = |verb: &str| {
        daemon
            .exec("bash")
            .arg(root.join("scripts/cluster.sh"))
            .arg(verb)
            .env("CLUSTER_NO_BUILD", "1")
            .env("HARDWAY_BIN", &bin)
            .env("OUT", out.path())
            .env("IMAGE", image.as_os_str())
            // /dev/kvm exists on CI's machines but cannot run guests (docs/ARCHITECTURE.md): TCG.
            .env("DOMAIN_TYPE", "qemu")
            .env("WAIT_TIMEOUT", "1800")
            .env_remove("K8S_BIN")
            .current_dir(&root)
            .status()
            .expect("run scripts/cluster.sh")
    };
    let networks_before = virsh_names(&["net-list", "--all", "--name"]);
    let up = cluster("up");
    let mut problems = Problems::new();
    if up.success() {
        let pushed = read_json(&out.path().join("cluster.push.json"));
        check_services(&daemon, out.path(), &pushed, &mut problems);
        check_vip(&daemon, out.path(), &pushed, &mut problems);
        check_etcd(out.path(), &mut problems);
    }
    let down = cluster("down");
    assert!(
        up.success(),
        "make cluster failed ({up}): see its output above"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(down.success(), "make cluster-down failed ({down})");
    // Gone: the cluster's domains and network. Untouched: whatever else libvirt had, such as
    // the `default` network Debian's package defines — mkvm down removes only what it made.
    let domains = virsh_names(&["list", "--all", "--name"]);
    for node in ["node-1", "node-2", "node-3"] {
        assert!(
            !domains.iter().any(|d| d == node),
            "cluster-down left domain {node}: {domains:?}"
        );
    }
    let networks = virsh_names(&["net-list", "--all", "--name"]);
    assert!(
        !networks.iter().any(|n| n == "lab"),
        "cluster-down left network lab: {networks:?}"
    );
    for network in &networks_before {
        assert!(
            networks.contains(network),
            "cluster-down removed network {network}, which it did not make"
        );
    }
    let volumes = Command::new("virsh")
        .args(["-c", "qemu:///system", "vol-list", "hardway"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&volumes.stdout);
    assert!(
        !listed.contains("lab-node-"),
        "cluster-down left volumes: {listed}"
    );
}
