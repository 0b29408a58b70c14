//! `make cluster` as a test: scripts/cluster.sh builds the base image, boots examples/lab.csv's
//! three nodes as TCG VMs under a real libvirtd, pushes every node's files and services over SSH,
//! and must end with etcd running under systemd across the VMs as a healthy 3-member TLS cluster
//! (etcd-check from the host) and every node reaching every other node's pod gateway through the
//! routes route-sync made. `make cluster-down` must then leave no domain, volume or network.
//!
//! libvirtd runs inside a network namespace this test makes (testkit::libvirt), so the VMs'
//! network and all their traffic stay inside it; cluster.sh runs there too. Its own test binary,
//! so cargo never runs it beside the etcd tests: three TCG guests take both cores for minutes.

use std::process::Command;

#[test]
fn make_cluster_boots_a_healthy_etcd_cluster_across_vms_and_cluster_down_removes_it() {
    let root = testkit::workspace_root();
    let image = testkit::libvirt::base_image();
    let daemon = testkit::libvirt::Libvirtd::start(&format!("hwcluster-{}", std::process::id()));
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
            // /dev/kvm exists on CI's machines but cannot run guests (DESIGN.md): TCG.
            .env("DOMAIN_TYPE", "qemu")
            .env("WAIT_TIMEOUT", "1800")
            .current_dir(&root)
            .status()
            .expect("run scripts/cluster.sh")
    };
    let listed = |args: &[&str]| {
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
            .collect::<Vec<_>>()
    };
    let networks_before = listed(&["net-list", "--all", "--name"]);
    let up = cluster("up");
    let down = cluster("down");
    assert!(
        up.success(),
        "make cluster failed ({up}): see its output above"
    );
    assert!(down.success(), "make cluster-down failed ({down})");
    // Gone: the cluster's domains and network. Untouched: whatever else libvirt had, such as
    // the `default` network Debian's package defines — mkvm down removes only what it made.
    let domains = listed(&["list", "--all", "--name"]);
    for node in ["node-1", "node-2", "node-3"] {
        assert!(
            !domains.iter().any(|d| d == node),
            "cluster-down left domain {node}: {domains:?}"
        );
    }
    let networks = listed(&["net-list", "--all", "--name"]);
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
