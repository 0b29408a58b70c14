//! mkvm on a real libvirtd and real TCG guests: the image from scripts/image.sh, `mkvm up` on
//! lab.json, every VM reachable by SSH at its static address with the generated key, hostname
//! and /etc/hosts right, a second `up` a no-op, and `mkvm down` leaving no domain, volume,
//! network or pool.
//!
//! The test starts virtlogd and libvirtd itself, inside a network namespace it makes, so the NAT
//! network, its bridge, dnsmasq and every packet to the guests stay in that namespace. libvirtd
//! runs with its own qemu.conf (bind-mounted in a private mount namespace; the system's file is
//! untouched) that turns off the per-domain /dev namespace, which fails in containers ("Unable
//! to move … mount to /dev/null"). /dev/kvm gets mode 0660 root:kvm first: with 0600 libvirtd's
//! capability probe takes ~56 s (docs/ARCHITECTURE.md).
//!
//! TCG guests are slow, and three of them on a busy 2-core machine take many minutes, so by
//! default the test boots the first node of lab.json only; HARDWAY_MKVM_NODES=3 runs all three
//! (the README gives the measured time). HARDWAY_MKVM_TIMEOUT (seconds, default 1800) bounds
//! the wait.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use mkvm::hypervisor::Host;

use testkit::run_ok as run;

/// libvirtd in a namespace of its own (testkit), plus the cluster to remove from libvirt's
/// persistent config if the test fails before its own `mkvm down`.
struct Libvirtd {
    daemon: testkit::libvirt::Libvirtd,
    cluster: Option<(hardway::doc::Document, String)>,
}

impl Libvirtd {
    fn start(netns: &str) -> Libvirtd {
        Libvirtd {
            daemon: testkit::libvirt::Libvirtd::start(netns),
            cluster: None,
        }
    }

    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.daemon.exec(program)
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // Runs before the daemon itself is stopped (fields drop after this).
        if let Some((doc, pool)) = self.cluster.take() {
            let _ = mkvm::down(doc, Some("qemu:///system"), false);
            if let Ok(host) = Host::open("qemu:///system") {
                let _ = host.remove_pool_if_empty(&pool);
            }
        }
    }
}

fn ssh(daemon: &Libvirtd, key: &Path, ip: &str, command: &str) -> String {
    let out = run(daemon.exec("ssh").args(["-i"]).arg(key).args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=30",
        "-o",
        "LogLevel=ERROR",
        &format!("root@{ip}"),
        command,
    ]));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn up_boots_reachable_vms_and_down_removes_everything() {
    let image = testkit::libvirt::base_image();
    let mut daemon = Libvirtd::start(&format!("mkvm-real-{}", std::process::id()));
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("id");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "mkvm-test", "-f"])
        .arg(&key));

    let nodes: usize = std::env::var("HARDWAY_MKVM_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let timeout = std::env::var("HARDWAY_MKVM_TIMEOUT").unwrap_or_else(|_| "1800".into());
    let text =
        std::fs::read_to_string(testkit::workspace_root().join("tests/fixtures/lab.json")).unwrap();
    let mut doc = hardway::doc::from_str(&text, "lab.json").unwrap();
    doc.nodes.truncate(nodes);
    let pool = format!("mkvm-real-{}", std::process::id());
    let input = work.path().join("cluster.json");
    std::fs::write(&input, hardway::doc::to_string(&doc)).unwrap();
    daemon.cluster = Some((doc.clone(), pool.clone()));

    let up = |extra: &[&str]| {
        let started = Instant::now();
        let out = run(daemon
            .exec(env!("CARGO_BIN_EXE_mkvm"))
            .args([
                "up",
                "--domain-type",
                "qemu",
                "--wait",
                "cloud-init",
                "--timeout",
                &timeout,
            ])
            .args(["--pool", &pool, "--image"])
            .arg(&image)
            .arg("--ssh-key")
            .arg(key.with_extension("pub"))
            .arg("-f")
            .arg(&input)
            .args(extra));
        eprintln!(
            "mkvm up: {:.1} s\n{}",
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = up(&[]);
    let result = hardway::doc::from_str(&first, "mkvm up").unwrap();

    let mut machine_ids = Vec::new();
    for node in &result.nodes {
        let vm = node.vm.as_ref().expect("mkvm fills the vm section");
        assert_eq!(vm.state.as_deref(), Some("running"));
        assert_eq!(vm.ssh.as_deref(), Some("ready"));
        assert_eq!(vm.extra["stage"], "cloud-init");
        assert_eq!(
            vm.address,
            node.primary_ip(),
            "the address the guest was seen at"
        );
        let ip = node.primary_ip().unwrap().to_string();
        let facts = ssh(&daemon, &key, &ip, "hostname; hostname -f; cat /etc/machine-id; ip -o -4 addr show eth0; echo ---; cat /etc/hosts");
        let (head, hosts) = facts.split_once("---\n").unwrap();
        let lines: Vec<&str> = head.lines().collect();
        assert_eq!(lines[0], node.name, "{facts}");
        assert_eq!(Some(lines[1]), node.fqdn.as_deref(), "{facts}");
        machine_ids.push(lines[2].to_string());
        assert!(lines[3].contains(&format!("{ip}/24")), "{facts}");
        for other in &result.nodes {
            let line = format!(
                "{} {} {}",
                other.primary_ip().unwrap(),
                other.fqdn.as_deref().unwrap(),
                other.name
            );
            assert!(
                hosts.lines().any(|l| l == line),
                "{line:?} missing from /etc/hosts:\n{hosts}"
            );
        }
    }
    machine_ids.sort();
    machine_ids.dedup();
    assert_eq!(machine_ids.len(), nodes, "every VM has its own machine-id");

    // A second up changes nothing: the same document, the same domains.
    assert_eq!(up(&[]), first);

    run(daemon
        .exec(env!("CARGO_BIN_EXE_mkvm"))
        .args(["down", "--pool", &pool, "-f"])
        .arg(&input));
    let host = Host::open("qemu:///system").unwrap();
    assert!(
        host.conn.list_all_domains(0).unwrap().is_empty(),
        "no domain left"
    );
    assert!(host.network("lab").unwrap().is_none(), "no network left");
    assert!(
        host.pool(&pool).unwrap().is_none(),
        "no pool left (it held no volume)"
    );
    assert!(
        !Path::new("/var/lib/libvirt/images").join(&pool).exists(),
        "the pool's directory is gone"
    );
}
