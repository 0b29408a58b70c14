//! One TCG VM on each of two hypervisors, each reaching the other by node address and by name
//! (issue 19 item 4's first part): mkvm up over the two-hypervisor document with the base image
//! (testkit::libvirt::base_image), routes between the two slices via the hypervisors' network,
//! then from each guest a TCP connection to the other's sshd by address and by name, seen there
//! from the node's own address; mkvm down leaves nothing on either.
//!
//! What it runs: two real libvirtd with their open-mode networks, two Debian guests under
//! qemu/TCG booted by mkvm, ssh into each guest from its hypervisor's namespace, TCP between
//! the guests across the veth pair (the image has no ping). What it does not: the two routes between the slices are
//! added here with `ip route` in each namespace, standing for `route-sync --host` (another
//! part of issue 19); no pod CIDR is routed and no etcd runs; the masquerade rule for traffic
//! leaving the cluster is not installed (nothing outside answers here).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hardway::Document;
use testkit::hypervisors::{Hypervisor, TwoHypervisors};

/// How long both guests may take to boot and answer SSH under TCG on a busy machine.
const BOOT_WITHIN: Duration = Duration::from_secs(1500);

#[test]
fn a_vm_on_each_hypervisor_reaches_the_other_by_node_address() {
    let _one_pair = crate::ONE_PAIR_AT_A_TIME.lock();
    let hv = TwoHypervisors::start();
    let mut doc = crate::two_host_document(&hv);
    for node in &mut doc.nodes {
        node.vcpus = 1;
        node.memory_mib = 768;
    }
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("id");
    testkit::sshd::keygen(&key, "two-hypervisors-boot");
    let path = work.path().join("two.json");
    std::fs::write(&path, hardway::doc::to_string(&doc)).unwrap();
    route_each_slice_via_the_other_hypervisor(&hv, &doc);

    let image = testkit::libvirt::base_image();
    let up = Command::new(testkit::bin("mkvm"))
        .args([
            "up",
            "--domain-type",
            "qemu",
            "--wait",
            "running",
            "--overcommit",
        ])
        .arg("--image")
        .arg(&image)
        .arg("--ssh-key")
        .arg(key.with_extension("pub"))
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let a1 = node_ip(&doc, "node-a1");
    let b1 = node_ip(&doc, "node-b1");
    wait_for_ssh(&hv.a, &key, &a1);
    wait_for_ssh(&hv.b, &key, &b1);
    // Each reaches the other's sshd by node address, and by name (/etc/hosts lists every
    // node); the image has no ping, bash's /dev/tcp opens the connection.
    assert_eq!(banner(&hv.a, &key, &a1, &b1), "SSH-");
    assert_eq!(banner(&hv.b, &key, &b1, &a1), "SSH-");
    assert_eq!(banner(&hv.a, &key, &a1, "node-b1"), "SSH-");
    let resolved = ssh(&hv.b, &key, &b1, "getent hosts node-a1");
    assert_eq!(resolved.split_whitespace().next(), Some(a1.as_str()));
    source_address_is_kept(&hv, &key, &a1, &b1);
    // Nothing on either hypervisor rewrites a node's source address: open mode adds no rule.
    for one in [&hv.a, &hv.b] {
        let nat = one.netns().run_ok("iptables-save", &["-t", "nat"]);
        assert!(
            !nat.lines().any(|l| l.contains("MASQUERADE")),
            "{}: {nat}",
            one.name()
        );
    }

    let down = Command::new(testkit::bin("mkvm"))
        .args(["down", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    for one in [&hv.a, &hv.b] {
        for list in [
            ["list", "--all", "--name"],
            ["net-list", "--all", "--name"],
            ["pool-list", "--all", "--name"],
        ] {
            assert_eq!(one.virsh_ok(&list).trim(), "", "{}: {list:?}", one.name());
        }
    }
}

/// The first four bytes the guest at `from` reads from port 22 of `to`.
fn banner(one: &Hypervisor, key: &Path, from: &str, to: &str) -> String {
    ssh(
        one,
        key,
        from,
        &format!("timeout 20 bash -c 'exec 3<>/dev/tcp/{to}/22 && head -c 4 <&3'"),
    )
}

/// node-b1 sees a connection from node-a1 as coming from node-a1's own address, not from
/// hv-a's or hv-b's (a masquerade on either would show one of theirs).
fn source_address_is_kept(hv: &TwoHypervisors, key: &Path, a1: &str, b1: &str) {
    let held = format!("exec 3<>/dev/tcp/{b1}/22; sleep 30");
    let mut holder = ssh_command(&hv.a, key, a1, &held).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    let query = "ss -tnH state established '( sport = :22 )'";
    let peers = loop {
        let table = ssh(&hv.b, key, b1, query);
        let peers: Vec<String> = table
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter_map(|peer| peer.rsplit_once(':').map(|(ip, _)| ip.to_string()))
            .collect();
        if peers.iter().any(|p| p == a1) || Instant::now() > deadline {
            break peers;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(peers.iter().any(|p| p == a1), "peers on {b1}:22: {peers:?}");
}

fn node_ip(doc: &Document, name: &str) -> String {
    let node = doc.nodes.iter().find(|n| n.name == name).unwrap();
    node.primary_ip().unwrap().to_string()
}

/// What `route-sync --host` gives each hypervisor for the other's node slice, by hand here,
/// and IP forwarding on (the hypervisors' own configuration, README "## Two hypervisors").
fn route_each_slice_via_the_other_hypervisor(hv: &TwoHypervisors, doc: &Document) {
    let slice = |one: &Hypervisor| {
        let host = doc
            .hypervisors
            .iter()
            .find(|h| h.name == one.name())
            .unwrap();
        host.node_slice[0].to_string()
    };
    for (here, there) in [(&hv.a, &hv.b), (&hv.b, &hv.a)] {
        here.netns()
            .run_ok("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"]);
        here.netns().run_ok(
            "ip",
            &["route", "add", &slice(there), "via", there.address()],
        );
    }
}

fn ssh_command(one: &Hypervisor, key: &Path, ip: &str, command: &str) -> Command {
    let mut cmd = one.netns().command("ssh");
    cmd.arg("-i").arg(key).args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        &format!("root@{ip}"),
        command,
    ]);
    cmd
}

/// Runs `command` on the guest at `ip` from its hypervisor's namespace; panics unless it
/// succeeds.
fn ssh(one: &Hypervisor, key: &Path, ip: &str, command: &str) -> String {
    let out = ssh_command(one, key, ip, command).output().unwrap();
    assert!(
        out.status.success(),
        "{command} on {ip}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for_ssh(one: &Hypervisor, key: &Path, ip: &str) {
    let deadline = Instant::now() + BOOT_WITHIN;
    loop {
        let out = ssh_command(one, key, ip, "true").output().unwrap();
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ip} on {} did not answer SSH within {BOOT_WITHIN:?}: {}",
            one.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(5));
    }
}
