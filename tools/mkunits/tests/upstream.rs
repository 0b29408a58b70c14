//! Every flag and config field hardway renders, checked against upstream's own list for each
//! supported Kubernetes release (data/k8s/v1.MINOR/, taken from kubernetes/kubernetes and
//! kubernetes/website; see the README's "Checked against upstream").
//!
//! What these tests run: mkcluster | cidr-alloc | mkcerts --dir | mkunits --dir, the real
//! binaries, on every example inventory and the dual-stack, flannel, cri-o, nftables and RSA
//! variants, and then read the units and YAML files they wrote. What they do not run: any
//! Kubernetes binary (none can be had on these machines), so a flag is "right" when upstream's
//! list for that release has it and does not mark it deprecated or removed, not because a
//! kubelet accepted it.

mod common;
mod upstream_check;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use upstream_check::{check_tree, Finding, Problem, Release, COMPONENTS, KINDS};

/// One rendering: an inventory, the arguments its comment gives mkcluster, and any extra
/// arguments for mkcluster and mkcerts.
struct Case {
    name: String,
    mkcluster: Vec<String>,
    mkcerts: Vec<&'static str>,
}

use testkit::example_args;

fn cases() -> Vec<Case> {
    let root = testkit::workspace_root();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    examples.sort();
    let plain = |name: &str, mkcluster: Vec<String>| Case {
        name: name.to_string(),
        mkcluster,
        mkcerts: vec![],
    };
    let mut cases: Vec<Case> = examples
        .iter()
        .map(|csv| {
            plain(
                &csv.file_stem().unwrap().to_string_lossy(),
                example_args(csv),
            )
        })
        .collect();
    let lab = example_args(&root.join("examples/lab.csv"));
    let with = |base: &[String], extra: &[&str]| -> Vec<String> {
        base.iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    // The IPv6 networks single-node.csv's comment suggests for the seed's dual-stack wish.
    cases.push(plain(
        "dual-stack",
        with(
            &example_args(&root.join("examples/single-node.csv")),
            &[
                "--node-network",
                "fd00:0:54::/64",
                "--pod-network",
                "fd00:42::/56",
                "--service-network",
                "fd00:96::/112",
            ],
        ),
    ));
    cases.push(plain("flannel", with(&lab, &["--pod-routing", "flannel"])));
    // The runtime is the document's, chosen with mkcluster (mkunits only asserts it).
    cases.push(plain(
        "cri-o",
        with(&lab, &["--container-runtime", "cri-o"]),
    ));
    cases.push(plain(
        "nftables",
        with(&lab, &["--kube-proxy-mode", "nftables"]),
    ));
    cases.push(Case {
        mkcerts: vec!["--key-algorithm", "rsa-2048"],
        ..plain("rsa", lab.clone())
    });
    cases
}

/// Runs one tool on `input`; panics with its stderr unless it succeeds.
fn run(mut command: Command, input: Vec<u8>, what: &str) -> Vec<u8> {
    let out = command.write_stdin(input).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The whole pipeline for one case and version, into `out`.
fn render(case: &Case, version: &str, out: &Path, bin: &Path) {
    let what = |tool: &str| format!("{tool} ({} at {version})", case.name);
    let mut mkcluster = Command::new(testkit::bin("mkcluster"));
    mkcluster
        .current_dir(testkit::workspace_root())
        .args(&case.mkcluster)
        .args(["--kubernetes-version", version]);
    let doc = run(mkcluster, Vec::new(), &what("mkcluster"));
    let doc = run(
        Command::new(testkit::bin("cidr-alloc")),
        doc,
        &what("cidr-alloc"),
    );
    let mut mkcerts = Command::new(testkit::bin("mkcerts"));
    mkcerts.arg("--dir").arg(out).args(&case.mkcerts);
    let doc = run(mkcerts, doc, &what("mkcerts"));
    let mut mkunits = Command::cargo_bin("mkunits").unwrap();
    mkunits.arg("--dir").arg(out).arg("--bin-dir").arg(bin);
    run(mkunits, doc, &what("mkunits"));
}

/// Every supported version (the newest patch of each minor in hardway's version table) with
/// its upstream data.
fn supported() -> Vec<(String, Release)> {
    hardway::k8s::RELEASES
        .iter()
        .map(|r| {
            (
                format!("v1.{}.{}", r.minor, r.latest_patch),
                Release::load(r.minor),
            )
        })
        .collect()
}

fn list(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("\n  {f}")).collect()
}

/// Ran: the four hardway tools for every example inventory and variant at every supported
/// version. Not run: the Kubernetes binaries themselves (see the module comment).
#[test]
fn every_rendered_flag_and_field_exists_upstream_in_its_release() {
    let bin = common::bin_dir();
    let releases = supported();
    let mut checked = std::collections::BTreeMap::new();
    let mut findings = Vec::new();
    for case in cases() {
        // One output directory per case: mkcerts keeps the PKI it made for the first version
        // (RSA keys are slow to make), mkunits rewrites every file for the next.
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        for (version, release) in &releases {
            render(&case, version, &out, bin.path());
            let report = check_tree(release, &out);
            for (what, n) in report.checked {
                *checked.entry((version.clone(), what)).or_insert(0) += n;
            }
            findings.extend(report.findings.into_iter().map(|f| Finding {
                file: format!("{} {version} {}", case.name, f.file),
                ..f
            }));
        }
    }
    // The check must have looked at every component and kind, or it proves nothing.
    for (version, _) in &releases {
        for what in COMPONENTS.iter().chain(KINDS.iter()) {
            let n = checked.get(&(version.clone(), *what)).copied().unwrap_or(0);
            assert!(n > 0, "{version}: no {what} rendered");
        }
    }
    assert!(findings.is_empty(), "not upstream's:{}", list(&findings));
}

/// Ran: the four hardway tools on the lab inventory at each supported version, then edited the
/// output by hand. Not run: any Kubernetes binary. Proves the check above can fail: a removed
/// kubelet flag, an unknown one, a case-mismatched field and a wrong apiVersion are each reported.
#[test]
fn a_removed_flag_or_misspelt_field_added_by_hand_is_reported() {
    let bin = common::bin_dir();
    let lab = cases().into_iter().find(|c| c.name == "lab").unwrap();
    for (version, release) in supported() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        render(&lab, &version, &out, bin.path());
        assert!(
            check_tree(&release, &out).findings.is_empty(),
            "{version}: lab is not clean"
        );

        let node = out.join("nodes/node-1");
        let unit = node.join("etc/systemd/system/kubelet.service");
        let text = std::fs::read_to_string(&unit).unwrap();
        // Removed in 1.35 (CHANGELOG-1.35 urgent upgrade notes, #133779); --no-such-flag is in
        // no release.
        let added = concat!(
            "  --pod-infra-container-image=registry.k8s.io/pause:3.10.1 \\\n",
            "  --no-such-flag=1 \\\n",
        );
        let edited = text.replacen("/kubelet \\\n", &format!("/kubelet \\\n{added}"), 1);
        assert_ne!(
            edited, text,
            "the kubelet unit has no ExecStart continuation to edit"
        );
        std::fs::write(&unit, edited).unwrap();

        let config = node.join("var/lib/kubelet/kubelet-config.yaml");
        let text = std::fs::read_to_string(&config).unwrap();
        let edited = text.replacen("clusterDNS:", "clusterDns:", 1).replacen(
            "kubelet.config.k8s.io/v1beta1",
            "kubelet.config.k8s.io/v1",
            1,
        );
        assert_ne!(edited, text);
        std::fs::write(&config, edited).unwrap();

        let found: Vec<(String, Problem)> = check_tree(&release, &out)
            .findings
            .into_iter()
            .map(|f| (f.what, f.problem))
            .collect();
        let expected = [
            (
                "kubelet --pod-infra-container-image".to_string(),
                Problem::Removed,
            ),
            ("kubelet --no-such-flag".to_string(), Problem::Unknown),
            (
                "KubeletConfiguration clusterDns".to_string(),
                Problem::Case {
                    upstream: "clusterDNS".to_string(),
                },
            ),
            (
                "KubeletConfiguration apiVersion".to_string(),
                Problem::WrongApiVersion {
                    upstream: "kubelet.config.k8s.io/v1beta1".to_string(),
                    found: "kubelet.config.k8s.io/v1".to_string(),
                },
            ),
        ];
        for e in &expected {
            assert!(
                found.contains(e),
                "{version}: {e:?} not reported; found {found:?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{version}: {found:?}");
    }
}

/// Ran: scripts/k8s-flags.sh on stand-ins for the five binaries that print
/// tests/fixtures/k8s-help-sample.txt (a hand-written sample in pflag's --help layout, not a
/// capture: no Kubernetes binary can be had here) and claim to be v1.37.2. Not run: a real
/// Kubernetes binary's --help.
#[test]
fn k8s_flags_script_turns_help_output_into_a_flags_file() {
    let root = testkit::workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let sample = root.join("tests/fixtures/k8s-help-sample.txt");
    for c in COMPONENTS {
        let stub = bin.join(c);
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in --version) echo 'Kubernetes v1.37.2';; *) cat '{}';; esac\n",
            sample.display()
        );
        std::fs::write(&stub, script).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&stub)
            .status()
            .unwrap();
    }
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("v1.37")).unwrap();
    std::fs::copy(
        upstream_check::data_dir().join("v1.37/kubelet.flags"),
        data.join("v1.37/kubelet.flags"),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(root.join("scripts/k8s-flags.sh"))
        .arg(&bin)
        .arg("v1.37.2")
        .env("K8S_FLAGS_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = data.join("v1.37/kubelet.flags");
    let kubelet = upstream_check::Catalog::parse(
        &std::fs::read_to_string(&path).unwrap(),
        &path.display().to_string(),
    );
    use upstream_check::Status::*;
    let status = |name: &str| kubelet.entries.get(name).copied();
    // From the help text: DEPRECATED in the (wrapped) usage, or not.
    assert_eq!(status("address"), Some(Deprecated));
    assert_eq!(status("node-ip"), Some(Ok));
    assert_eq!(status("v"), Some(Ok));
    assert_eq!(status("version"), Some(Ok));
    assert_eq!(status("pod-infra-container-image"), Some(Deprecated));
    // Kept from the previous file although --help does not show it: deprecated.
    assert_eq!(status("cgroup-driver"), Some(Deprecated));
    // Dropped: `ok` before, and the binary no longer lists it.
    assert_eq!(status("bootstrap-kubeconfig"), None);
    // The other components got files too (each stand-in prints the same sample).
    assert!(data.join("v1.37/kube-apiserver.flags").is_file());
}
