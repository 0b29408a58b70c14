//! A failed wait on a real libvirtd rolls back what that `mkvm up` made, and only that.
//!
//! The base image is blank (testkit::libvirt::blank_image): the TCG guests start and never get
//! an address, so `--wait ssh` with a short `--timeout` fails (exit 3) soon after the domains
//! run. On an empty hypervisor the failing `up` of nodes 1 and 2 must leave nothing at all.
//! Then a first `up --no-start` makes node 1 (and the network and pool), and the same failing
//! `up` must remove node 2's domain, volumes and network entries only, leaving node 1, the
//! network and the pool as the first run made them.
//!
//! No run passes `--overcommit`: the memory check counts MemAvailable (hypervisor.rs), so the
//! 1.5 GiB the two nodes need pass however little the page cache leaves free (MemFree was
//! 610 MiB of 22.5 GiB available on this machine at one point today, which a check of
//! libvirt's free memory would have refused).
//!
//! libvirtd runs in a network namespace of its own (testkit::libvirt::Libvirtd); this test has
//! its own file, as only one libvirtd can run at a time and cargo runs test files one after
//! another.

use std::path::Path;
use std::process::{Command, Output};

use hardway::doc::Document;
use mkvm::hypervisor::Host;

const URI: &str = "qemu:///system";

/// Removes the cluster from libvirt's persistent config if the test fails before its own
/// cleanup; declared after the daemon, so it drops first.
struct Cleanup {
    doc: Document,
    pool: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = mkvm::down(self.doc.clone(), Some(URI), false);
        if let Ok(host) = Host::open(URI) {
            let _ = host.remove_pool_if_empty(&self.pool);
        }
    }
}

fn mkvm_up(daemon: &testkit::libvirt::Libvirtd, args: &[&str], doc: &Path) -> Output {
    daemon
        .exec(env!("CARGO_BIN_EXE_mkvm"))
        .args(["up", "--domain-type", "qemu", "-f"])
        .arg(doc)
        .args(args)
        .output()
        .unwrap()
}

/// The error line of a failed `mkvm up` (exit 3, nothing on stdout); the lines before it are
/// its progress.
fn failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mkvm: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

/// Domains and volumes of the pool, sorted; whether the network and pool exist.
fn inventory(host: &Host, pool: &str) -> (Vec<String>, Vec<String>, bool, bool) {
    let mut domains: Vec<String> = host
        .conn
        .list_all_domains(0)
        .unwrap()
        .iter()
        .map(|d| d.name().unwrap())
        .collect();
    domains.sort();
    let pool = host.pool(pool).unwrap();
    let mut volumes = pool
        .as_ref()
        .map(|p| {
            p.refresh(0).unwrap();
            p.list_volumes().unwrap()
        })
        .unwrap_or_default();
    volumes.sort();
    let network = host.network("lab").unwrap().is_some();
    (domains, volumes, network, pool.is_some())
}

#[test]
fn a_failed_wait_rolls_back_what_that_run_made_and_only_that() {
    let daemon = testkit::libvirt::Libvirtd::start(&format!("mkvm-rb-{}", std::process::id()));
    let work = tempfile::tempdir().unwrap();
    let image = testkit::libvirt::blank_image(work.path(), 8);
    let key = work.path().join("id");
    testkit::run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "mkvm-test", "-f"])
            .arg(&key),
    );
    let pool = format!("mkvm-rb-{}", std::process::id());
    let mut doc = testkit::fixture_document("lab.json");
    doc.nodes.truncate(2);
    let _cleanup = Cleanup {
        doc: doc.clone(),
        pool: pool.clone(),
    };
    let write = |doc: &Document, name: &str| {
        let path = work.path().join(name);
        std::fs::write(&path, hardway::doc::to_string(doc)).unwrap();
        path
    };
    let both = write(&doc, "two.json");
    let mut first = doc.clone();
    first.nodes.truncate(1);
    let one = write(&first, "one.json");
    let common = [
        "--pool",
        &pool,
        "--image",
        image.to_str().unwrap(),
        "--ssh-key",
        &format!("{}.pub", key.display()),
    ];
    let failing: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--wait", "ssh", "--timeout", "5"])
        .collect();
    let host = Host::open(URI).unwrap();

    // Nothing before: the failing run leaves nothing.
    let out = mkvm_up(&daemon, &failing, &both);
    let stderr = failure(&out);
    assert!(stderr.contains("timed out"), "{stderr}");
    // Pool, network, and per node two volumes and a domain.
    assert!(stderr.contains("rolled back 8 object(s)"), "{stderr}");
    assert_eq!(inventory(&host, &pool), (vec![], vec![], false, false));

    // Node 1 from an earlier run: the failing run removes only node 2 and its network entries.
    let defined: Vec<&str> = common.iter().copied().chain(["--no-start"]).collect();
    let out = mkvm_up(&daemon, &defined, &one);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = inventory(&host, &pool);
    assert_eq!(before.0, ["node-1"]);
    assert_eq!(before.1.len(), 2, "{before:?}");
    let out = mkvm_up(&daemon, &failing, &both);
    let stderr = failure(&out);
    // Node 2's two volumes and domain, its DHCP and DNS entries in the existing network.
    assert!(stderr.contains("rolled back 5 object(s)"), "{stderr}");
    assert_eq!(inventory(&host, &pool), before);
    let network = host.network("lab").unwrap().unwrap();
    let (dhcp, dns) = mkvm::plan::network_hosts(&host.network_xml(&network).unwrap());
    assert_eq!(
        (dhcp.len(), dns.len()),
        (1, 1),
        "the network lists node 1 only again"
    );

    let (_, removed) = mkvm::down(doc, Some(URI), false).unwrap();
    assert!(!removed.is_empty());
    assert_eq!(inventory(&host, &pool), (vec![], vec![], false, false));
}
