//! The command as a user runs it: files and document, idempotence, errors, options, `ports`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use assert_cmd::Command;
use common::*;
use hardway::doc::{ContainerRuntime, FileEntry, PodNetwork};
use hardway::Document;
use mkunits::Report;
use serde::Deserialize;

fn mtimes(dir: &Path) -> BTreeMap<String, SystemTime> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                all.insert(e.path().display().to_string(), meta.modified().unwrap());
            }
        }
    }
    all
}

#[test]
fn every_file_is_recorded_with_its_checksum_and_exists() {
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    for node in &doc.nodes {
        let name = &node.name;
        for f in &node.files {
            let src = &f.src;
            let bytes = std::fs::read(out.join(src)).unwrap();
            assert_eq!(f.sha256, hardway::fsutil::sha256_hex(&bytes), "{src}");
            assert_eq!(f.owner, "root:root");
            if src.starts_with("nodes/") {
                // The path under OUT mirrors the node's filesystem.
                assert_eq!(*src, format!("nodes/{name}{}", f.dest));
            } else {
                assert_eq!(src, "bin/route-sync");
                assert_eq!(f.dest, "/usr/local/bin/route-sync");
                assert_eq!(f.mode, "0755");
            }
        }
        let dests: Vec<_> = files(node).into_iter().map(|(d, _)| d).collect();
        for unit in services(node) {
            if unit == "haproxy.service" || unit == "keepalived.service" {
                continue; // Debian's units; mkunits writes their configs
            }
            assert!(
                dests.contains(&format!("/etc/systemd/system/{unit}")),
                "{name}: {unit} is enabled but not written"
            );
        }
    }
}

#[test]
fn services_start_in_dependency_order() {
    let (_tmp, _out, doc) = render("lab.json", &[]);
    let order = services(node(&doc, "node-1"));
    let at = |u: &str| order.iter().position(|s| s == u).unwrap();
    // The cgroup v2 check first: node-push stops a node at its first failing unit.
    assert_eq!(order[0], "hardway-preflight.service");
    assert_eq!(order[1], "hardway-kernel.service");
    assert!(at("etcd.service") < at("kube-apiserver.service"));
    assert!(at("kube-apiserver.service") < at("kube-controller-manager.service"));
    assert!(at("containerd.service") < at("kubelet.service"));
    assert!(at("route-sync.service") < at("kubelet.service"));
    assert!(at("hardway-masquerade.service") < at("containerd.service"));
    // lab.json has no lb node and a VIP that no node has: the controllers hold it themselves.
    assert!(order.contains(&"keepalived.service".to_string()));
    assert!(!order.contains(&"haproxy.service".to_string()));
}

#[test]
fn second_run_writes_nothing_and_prints_the_same_document() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let first = mkunits(&fixture("ebook-dualstack.json"), &out, bin.path(), &[]);
    let before = mtimes(&out);
    std::thread::sleep(std::time::Duration::from_millis(30));
    let second = mkunits(&fixture("ebook-dualstack.json"), &out, bin.path(), &[]);
    assert_eq!(first.out.stdout, second.out.stdout);
    assert_eq!(before, mtimes(&out), "a second run rewrote files");
    let log = String::from_utf8_lossy(&second.out.stderr);
    assert!(log.contains("0 files created, 0 updated"), "{log}");
    // Its own output as input changes nothing either.
    let doc_file = tmp.path().join("doc.json");
    std::fs::write(&doc_file, &first.out.stdout).unwrap();
    let third = mkunits(&doc_file, &out, bin.path(), &[]);
    assert_eq!(first.out.stdout, third.out.stdout);
    assert_eq!(before, mtimes(&out));
}

#[test]
fn other_tools_files_and_fields_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let mut doc = testkit::fixture_document("lab.json");
    let pki_file = FileEntry {
        src: "pki/node-1/ca.pem".into(),
        dest: "/etc/etcd/ca.pem".into(),
        mode: "0644".into(),
        owner: "root:root".into(),
        sha256: "00".into(),
        extra: Default::default(),
    };
    doc.nodes[0].files = vec![pki_file.clone()];
    doc.nodes[0].extra.insert("rack".into(), 7.into());
    doc.extra.insert("mine".into(), "kept".into());
    let input = write_document(tmp.path(), "in.json", &doc);
    let bin = bin_dir();
    let run = mkunits(&input, &tmp.path().join("out"), bin.path(), &[]);
    assert_eq!(run.doc.nodes[0].files[0], pki_file);
    assert_eq!(run.doc.nodes[0].extra["rack"], 7);
    assert_eq!(run.doc.extra["mine"], "kept");
}

#[test]
fn node_copy_of_the_document_is_trimmed_and_readable() {
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    let w = node(&doc, "worker1");
    let text = read_dest(&out, w, "/etc/hardway/cluster.json");
    let copy = hardway::doc::from_str(&text, "copy").unwrap();
    copy.validate().unwrap();
    assert_eq!(copy.nodes.len(), 9);
    assert!(copy.pki.is_none());
    assert!(copy
        .nodes
        .iter()
        .all(|n| n.files.is_empty() && n.services.is_empty()));
    assert_eq!(copy.node("worker2").unwrap().pod_cidrs.len(), 2);
    let unit = read_dest(&out, w, "/etc/systemd/system/route-sync.service");
    assert_eq!(
        exec_start(&unit),
        [
            "/usr/local/bin/route-sync",
            "--node",
            "worker1",
            "-f",
            "/etc/hardway/cluster.json"
        ]
    );
    assert!(unit.contains("Type=oneshot") && unit.contains("RemainAfterExit=yes"));
    assert!(unit.contains("After=network-online.target"));
}

#[test]
fn etcd_profile_slow_and_overrides() {
    let (_tmp, out, doc) = render("lab.json", &["--etcd-profile", "slow"]);
    let unit = read_dest(
        &out,
        node(&doc, "node-2"),
        "/etc/systemd/system/etcd.service",
    );
    let args = exec_start(&unit);
    for flag in [
        "--heartbeat-interval=1000",
        "--election-timeout=5000",
        "--snapshot-count=5000",
        "--name=node-2",
        "--client-cert-auth=true",
        "--peer-client-cert-auth=true",
        "--listen-client-urls=https://10.240.0.12:2379,https://127.0.0.1:2379",
        "--advertise-client-urls=https://10.240.0.12:2379",
        "--initial-cluster=node-1=https://10.240.0.11:2380,node-2=https://10.240.0.12:2380,node-3=https://10.240.0.13:2380",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing: {args:?}");
    }
    assert!(unit.contains("Type=notify"));
    let (_tmp, out, doc) = render(
        "lab.json",
        &["--etcd-profile", "slow", "--etcd-snapshot-count", "777"],
    );
    let unit = read_dest(
        &out,
        node(&doc, "node-1"),
        "/etc/systemd/system/etcd.service",
    );
    assert!(unit.contains("--snapshot-count=777") && unit.contains("--heartbeat-interval=1000"));
}

#[test]
fn cri_o_replaces_containerd() {
    let (_tmp, out, doc) = render_variant(
        "lab.json",
        |c| c.container_runtime = Some(ContainerRuntime::CriO),
        &[],
    );
    let n = node(&doc, "node-1");
    let order = services(n);
    assert!(
        order.contains(&"crio.service".into()) && !order.contains(&"containerd.service".into())
    );
    let conf = read_toml(&out, n, "/etc/crio/crio.conf.d/10-hardway.conf");
    let crio = conf["crio"].as_table().unwrap();
    assert_eq!(crio["runtime"]["cgroup_manager"].as_str(), Some("systemd"));
    // conmon_cgroup is deprecated in CRI-O: never written.
    assert!(crio["runtime"].get("conmon_cgroup").is_none(), "{conf}");
    assert_eq!(
        crio["image"]["pause_image"].as_str(),
        Some(hardway::k8s::release("v1.37.2").unwrap().pause_image)
    );
    assert_eq!(
        crio["network"]["plugin_dirs"].as_array().unwrap()[0].as_str(),
        Some("/usr/lib/cni")
    );
    let kubelet = read_dest(&out, n, "/var/lib/kubelet/kubelet-config.yaml");
    assert!(kubelet.contains("unix:///run/crio/crio.sock"));
    let unit = read_dest(&out, n, "/etc/systemd/system/kubelet.service");
    assert!(unit.contains("Requires=crio.service hardway-preflight.service"));
    // CRI-O is the user's to install: no containerd binaries are listed.
    assert!(!files(n)
        .iter()
        .any(|(dest, _)| dest.ends_with("/containerd")));
}

/// Cluster-wide choices are mkcluster's: mkunits renders the document's, refuses a document
/// that lacks one or that names a version or runtime the version table refuses, and its flags
/// only assert (a contradiction is exit 2 and one line, nothing written).
#[test]
fn cluster_wide_choices_come_from_the_document() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let base = [
        "--dir",
        out.to_str().unwrap(),
        "--bin-dir",
        bin.path().to_str().unwrap(),
    ];
    let lab = testkit::fixture_document("lab.json");
    let refused = |doc: &Document, extra: &[&str], expect: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let out_run = Command::cargo_bin("mkunits")
            .unwrap()
            .args(&args)
            .write_stdin(serde_json::to_string(doc).unwrap())
            .output()
            .unwrap();
        let stderr = testkit::assert_one_line_error(&out_run, "mkunits", 2);
        assert!(stderr.contains(expect), "expected {expect:?} in {stderr}");
        assert!(!out.exists(), "a refused run wrote files");
    };
    let mut doc = lab.clone();
    doc.cluster.container_runtime = None;
    refused(
        &doc,
        &[],
        "mkunits: error: cluster.container_runtime: not set: choose the nodes' runtime with \
         mkcluster --container-runtime",
    );
    let mut doc = lab.clone();
    doc.cluster.kubernetes_version = "v1.33.0".into();
    refused(
        &doc,
        &[],
        "cluster.kubernetes_version: Kubernetes v1.33.0 is not supported (end of life or \
         unknown): use one of v1.35, v1.36, v1.37",
    );
    let mut doc = lab.clone();
    doc.cluster.kubernetes_version = "v1.36.0".into();
    doc.cluster.container_runtime = Some(ContainerRuntime::Containerd1);
    refused(
        &doc,
        &[],
        "cluster.container_runtime: containerd 1.x does not run Kubernetes v1.36",
    );
    refused(
        &lab,
        &["--pod-network", "flannel"],
        "cluster.pod_network: the document says \"routes\" but --pod-network says \"flannel\"",
    );
    refused(
        &lab,
        &["--container-runtime", "cri-o"],
        "cluster.container_runtime: the document says \"containerd-2\" but --container-runtime \
         says \"cri-o\"",
    );
    // Assertions that hold change nothing, and the document's pod network is never rewritten.
    let input = write_document(tmp.path(), "lab.json", &lab);
    let asserted = mkunits(
        &input,
        &out,
        bin.path(),
        &[
            "--pod-network",
            "routes",
            "--container-runtime",
            "containerd-2",
        ],
    );
    let plain = mkunits(&input, &out, bin.path(), &[]);
    assert_eq!(asserted.out.stdout, plain.out.stdout);
    assert_eq!(plain.doc.cluster, lab.cluster);
    // The recorded opt-out renders an unsupported version with the nearest table, and says so.
    let mut doc = lab.clone();
    doc.cluster.kubernetes_version = "v1.34.1".into();
    // mkcluster --allow-unsupported-version records it; the typed cluster keeps it in `extra`.
    doc.cluster
        .extra
        .insert("allow_unsupported_version".into(), true.into());
    let input = write_document(tmp.path(), "lab.json", &doc);
    let run = mkunits(&input, &tmp.path().join("out2"), bin.path(), &[]);
    let log = String::from_utf8_lossy(&run.out.stderr);
    assert!(
        log.contains("warning: Kubernetes v1.34.1 is not supported") && log.contains("v1.35 table"),
        "{log}"
    );
}

/// flannel's network config as mkunits writes it, field names as flannel-io/flannel
/// Documentation/configuration.md spells them (the same source render/flannel.rs cites): a field
/// mkunits starts or stops writing fails the parse or the comparison.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlannelNetwork {
    #[serde(rename = "Network")]
    network: Option<String>,
    #[serde(rename = "SubnetLen")]
    subnet_len: Option<u8>,
    #[serde(rename = "EnableIPv4")]
    enable_ipv4: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPv6Network")]
    ipv6_network: Option<String>,
    #[serde(rename = "IPv6SubnetLen")]
    ipv6_subnet_len: Option<u8>,
    #[serde(rename = "Backend")]
    backend: FlannelBackend,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlannelBackend {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "VNI")]
    vni: u32,
}

#[test]
fn flannel_stores_its_config_and_replaces_routes() {
    let (_tmp, out, doc) = render_variant(
        "ebook-dualstack.json",
        |c| c.pod_network = PodNetwork::Flannel,
        &[],
    );
    assert_eq!(doc.cluster.pod_network, PodNetwork::Flannel);
    let e1 = node(&doc, "etcd1");
    assert!(services(e1).contains(&"flannel-config.service".into()));
    assert!(!services(node(&doc, "etcd2")).contains(&"flannel-config.service".into()));
    let config: FlannelNetwork =
        serde_json::from_str(&read_dest(&out, e1, "/etc/flannel/network.json")).unwrap();
    assert_eq!(
        config,
        FlannelNetwork {
            network: Some("10.200.0.0/16".into()),
            subnet_len: Some(24),
            enable_ipv4: None,
            enable_ipv6: Some(true),
            ipv6_network: Some("fd00:10:200::/56".into()),
            ipv6_subnet_len: Some(64),
            backend: FlannelBackend {
                kind: "vxlan".into(),
                vni: 1
            },
        }
    );
    let w = node(&doc, "worker1");
    let order = services(w);
    assert!(order.contains(&"flanneld.service".into()));
    assert!(!order.contains(&"route-sync.service".into()));
    let dests: Vec<_> = files(w).into_iter().map(|(d, _)| d).collect();
    assert!(dests.contains(&"/etc/cni/net.d/10-flannel.conflist".into()));
    assert!(!dests.contains(&"/etc/cni/net.d/10-bridge.conflist".into()));
    assert!(!dests.contains(&"/usr/local/bin/route-sync".into()));
    let unit = read_dest(&out, w, "/etc/systemd/system/flanneld.service");
    assert!(unit.contains("--etcd-certfile=/etc/flannel/etcd-client.pem"));
    assert!(unit.contains("--etcd-endpoints=https://10.240.0.11:2379,https://10.240.0.12:2379,https://10.240.0.13:2379"));
}

#[test]
fn switching_back_to_routes_drops_flannel_files() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let (_variant, flannel_doc) = variant("lab.json", |c| c.pod_network = PodNetwork::Flannel);
    let flannel = mkunits(&flannel_doc, &out, bin.path(), &[]);
    // The user changes the document's pod network (mkcluster --pod-routing) and reruns.
    let mut doc = flannel.doc.clone();
    doc.cluster.pod_network = PodNetwork::Routes;
    let input = write_document(tmp.path(), "routes.json", &doc);
    let routes = mkunits(&input, &out, bin.path(), &[]);
    let n = node(&routes.doc, "node-1");
    let dests: Vec<_> = files(n).into_iter().map(|(d, _)| d).collect();
    assert!(!dests.iter().any(|d| d.contains("flannel")), "{dests:?}");
    // The files only flannel needed are gone from OUT too, and reported.
    assert!(!out
        .join("nodes/node-1/etc/cni/net.d/10-flannel.conflist")
        .exists());
    assert!(!out.join("nodes/node-1/etc/flannel/network.json").exists());
    assert!(out
        .join("nodes/node-1/etc/cni/net.d/10-bridge.conflist")
        .exists());
    let log = String::from_utf8_lossy(&routes.out.stderr);
    assert!(log.contains(" removed in "), "{log}");
    assert!(!log.contains(" 0 removed in "), "{log}");
    assert_eq!(
        dests
            .iter()
            .filter(|d| *d == "/usr/local/bin/route-sync")
            .count(),
        1
    );
}

fn fails(args: &[&str], stdin: Option<String>) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("mkunits").unwrap();
    cmd.args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_is_one_line_exit_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    let bin_arg = bin.path().to_str().unwrap();
    let mut doc = testkit::fixture_document("lab.json");
    doc.nodes[2].pod_cidrs.clear();
    let (code, stdout, stderr) = fails(
        &["--dir", out_arg, "--bin-dir", bin_arg],
        Some(serde_json::to_string(&doc).unwrap()),
    );
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("mkunits: error: nodes[2].pod_cidrs: worker \"node-3\""),
        "{stderr}"
    );
    assert!(!out.exists(), "a failed run left files");

    let lab = std::fs::read_to_string(fixture("lab.json")).unwrap();
    let (code, _, stderr) = fails(
        &["--dir", out_arg, "--bin-dir", tmp.path().to_str().unwrap()],
        Some(lab.clone()),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("route-sync: no such binary"), "{stderr}");
    let (code, _, stderr) = fails(
        &[
            "--dir",
            out_arg,
            "--bin-dir",
            bin_arg,
            "--etcd-heartbeat",
            "500",
            "--etcd-election-timeout",
            "1000",
        ],
        Some(lab),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("--etcd-election-timeout"), "{stderr}");
    let (code, _, stderr) = fails(&["--dir", out_arg], Some("{\"version\": 1,".into()));
    assert_eq!(code, 2);
    assert!(stderr.starts_with("mkunits: error: <stdin>:1:"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn dry_run_reports_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--dir",
            out.to_str().unwrap(),
            "--bin-dir",
            bin.path().to_str().unwrap(),
            "-f",
        ];
        let f = fixture("lab.json");
        let f = f.to_str().unwrap().to_string();
        args.push(&f);
        args.extend_from_slice(extra);
        let o = Command::cargo_bin("mkunits")
            .unwrap()
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success());
        o.stdout
    };
    // With --dry-run, stdout is the plan instead of the document.
    let plan_of = |stdout: Vec<u8>| serde_json::from_slice::<Report>(&stdout).unwrap();
    let plan = plan_of(run(&["--dry-run"]));
    assert!(!out.exists());
    let created = &plan.created;
    assert!(created
        .iter()
        .any(|p| p == "nodes/node-1/etc/systemd/system/etcd.service"));
    assert!(created.iter().any(|p| p == "bin/route-sync"));
    run(&[]);
    let second = plan_of(run(&["--dry-run"]));
    assert!(second.created.is_empty());
    assert!(second.updated.is_empty());
    assert!(second.removed.is_empty());
    assert_eq!(second.unchanged.len(), created.len());
}

/// One row of `mkunits ports` JSON: the shape is the contract (`mkunits::ports::Port` holds
/// `&'static str`, so it serializes but cannot be read back).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is read by serde's shape check; not every one by an assert
struct PortRow {
    node: String,
    component: String,
    protocol: String,
    port: String,
    address: String,
    from: String,
}

#[test]
fn ports_json_and_table() {
    let f = fixture("ebook-dualstack.json");
    let out = Command::cargo_bin("mkunits")
        .unwrap()
        .args(["ports", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: Vec<PortRow> = serde_json::from_slice(&out.stdout).unwrap();
    let has = |node: &str, component: &str, port: &str| {
        rows.iter()
            .any(|r| r.node == node && r.component == component && r.port == port)
    };
    assert!(has("etcd1", "etcd", "2379"));
    assert!(has("etcd1", "etcd", "2380"));
    assert!(has("controller1", "kube-apiserver", "6443"));
    assert!(has("worker2", "kubelet", "10250"));
    assert!(has("worker2", "kube-proxy", "30000-32767"));
    assert!(has("lb1", "haproxy", "6443"));
    assert!(rows.iter().any(|r| r.node == "lb2" && r.protocol == "vrrp"));
    assert!(!rows
        .iter()
        .any(|r| r.node == "etcd1" && r.component == "kubelet"));
    assert!(rows
        .iter()
        .all(|r| !r.from.is_empty() && !r.address.is_empty()));

    let (_variant, flannel) = variant("ebook-dualstack.json", |c| {
        c.pod_network = PodNetwork::Flannel
    });
    let out = Command::cargo_bin("mkunits")
        .unwrap()
        .args(["ports", "-o", "table", "-f"])
        .arg(&flannel)
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NODE") && header.contains("FROM"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("worker1") && l.contains("flanneld") && l.contains("8472")),
        "{table}"
    );
}

#[test]
fn help_has_an_example_and_version_works() {
    let out = Command::cargo_bin("mkunits")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Examples:") && help.contains("mkunits --dir out"));
    let out = Command::cargo_bin("mkunits")
        .unwrap()
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("mkunits "));
}

#[test]
fn kubernetes_binaries_go_to_the_nodes_whose_roles_run_them() {
    let tmp = tempfile::tempdir().unwrap();
    let k8s = tmp.path().join("k8s");
    std::fs::create_dir(&k8s).unwrap();
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "kubelet",
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
    ] {
        std::fs::write(k8s.join(name), format!("#!/bin/sh\n# {name}\n")).unwrap();
    }
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let k8s_arg = k8s.to_str().unwrap();
    // kube-proxy is missing: the error names it, and nothing is written.
    let (code, stdout, stderr) = fails(
        &[
            "--dir",
            out.to_str().unwrap(),
            "--bin-dir",
            bin.path().to_str().unwrap(),
            "--kubernetes-bin-dir",
            k8s_arg,
            "-f",
            fixture("ebook-dualstack.json").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("kube-proxy: no such binary"), "{stderr}");
    assert!(!out.exists());

    std::fs::write(k8s.join("kube-proxy"), "#!/bin/sh\n").unwrap();
    let args = ["--kubernetes-bin-dir", k8s_arg];
    let first = mkunits(&fixture("ebook-dualstack.json"), &out, bin.path(), &args);
    let bins = |name: &str| -> Vec<String> {
        files(node(&first.doc, name))
            .into_iter()
            .filter(|(_, src)| src.starts_with("bin/"))
            .map(|(dest, _)| dest)
            .collect()
    };
    assert_eq!(bins("etcd1"), ["/usr/local/bin/route-sync"]);
    assert_eq!(
        bins("controller1"),
        [
            "/usr/local/bin/route-sync",
            "/usr/local/bin/kube-apiserver",
            "/usr/local/bin/kube-controller-manager",
            "/usr/local/bin/kube-scheduler",
            "/usr/local/bin/kubectl"
        ]
    );
    assert_eq!(
        bins("worker2"),
        [
            "/usr/local/bin/route-sync",
            "/usr/local/bin/kubelet",
            "/usr/local/bin/kube-proxy",
            // containerd-2 is not Debian's: shipped with Kubernetes' binaries.
            "/usr/local/bin/containerd",
            "/usr/local/bin/containerd-shim-runc-v2",
            "/usr/local/bin/runc"
        ]
    );
    let shipped = std::fs::read(out.join("bin/kubelet")).unwrap();
    assert_eq!(shipped, std::fs::read(k8s.join("kubelet")).unwrap());
    let second = mkunits(&fixture("ebook-dualstack.json"), &out, bin.path(), &args);
    assert_eq!(first.out.stdout, second.out.stdout);
    assert!(String::from_utf8_lossy(&second.out.stderr).contains("0 files created, 0 updated"));
    // Without the flag, the Kubernetes binaries leave the document again.
    let input = tmp.path().join("with-k8s.json");
    std::fs::write(&input, &second.out.stdout).unwrap();
    let third = mkunits(&input, &out, bin.path(), &[]);
    let left: Vec<_> = files(node(&third.doc, "worker2"))
        .into_iter()
        .filter(|(_, src)| src.starts_with("bin/"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!out.join("bin/kubelet").exists() && out.join("bin/route-sync").exists());
}

/// `scripts/fetch-kubernetes.sh --list` (no network: it only prints) names an arm64 file for
/// every binary mkunits ships to a node, plus kubectl, crictl and the CNI plugins the configs
/// name, each with the version it resolved and a checksum URL. Nothing is downloaded here.
#[test]
fn fetch_kubernetes_lists_every_binary_for_the_arch() {
    let script = testkit::workspace_root().join("scripts/fetch-kubernetes.sh");
    let out = testkit::run_ok(
        std::process::Command::new("bash")
            .arg(&script)
            .args(["--list", "v1.37.2", "--arch", "arm64"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut provided = std::collections::BTreeSet::new();
    for line in text.lines() {
        let columns: Vec<&str> = line.split('\t').collect();
        let [name, version, url, checksum, provides] = columns.as_slice() else {
            panic!("not 5 tab-separated columns: {line:?}");
        };
        assert!(
            url.starts_with("https://") && url.contains("arm64"),
            "{name}: {url}"
        );
        assert!(!url.contains("amd64"), "{name}: {url}");
        assert!(
            checksum.starts_with("https://") && checksum.contains("sha256"),
            "{name}: {checksum}"
        );
        assert!(version.starts_with('v'), "{name}: {version}");
        if name.starts_with("kube") {
            assert_eq!(*version, "v1.37.2");
            assert!(url.contains("/v1.37.2/"), "{url}");
        }
        provided.extend(provides.split(',').map(str::to_string));
    }
    let needed = mkunits::render::CONTROLLER_BINARIES
        .iter()
        .chain(&mkunits::render::WORKER_BINARIES)
        .chain(&mkunits::render::CONTAINERD2_BINARIES)
        .map(|b| b.to_string())
        .chain(["kubectl", "crictl"].map(String::from))
        .chain(["bridge", "host-local", "loopback", "portmap"].map(|p| format!("cni/bin/{p}")));
    for binary in needed {
        assert!(
            provided.contains(&binary),
            "{binary} is not fetched: {text}"
        );
    }
    let bad = std::process::Command::new("bash")
        .arg(&script)
        .args(["--list", "v1.37.2", "--arch", "s390x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}

/// A static file server on loopback for `fetch-kubernetes.sh`'s mirror variables: GET only, one
/// request per connection. Stops with the test process.
fn serve_dir(root: std::path::PathBuf) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let file = root.join(path.trim_start_matches('/'));
            let reply = match std::fs::read(&file) {
                Ok(body) if !path.contains("..") => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend(body);
                    r
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&reply);
        }
    });
    base
}

/// The download path of `fetch-kubernetes.sh`, against a loopback mirror laid out like the real
/// release sites (made here from its own `--list`): every file is fetched, checked against its
/// published checksum (bare hashes, `hash  name` lines, runc's one file for every arch) and the
/// binaries land in DIR as mkunits expects them; a second run downloads nothing; a file that
/// does not match its checksum is exit 3 with nothing installed. What the real sites serve is
/// not checked here (no internet).
#[test]
fn fetch_kubernetes_checks_every_download_against_its_checksum() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let base = serve_dir(mirror.clone());
    let script = testkit::workspace_root().join("scripts/fetch-kubernetes.sh");
    let fetch = |args: &[&str]| {
        std::process::Command::new("bash")
            .arg(&script)
            .args(args)
            .env("HARDWAY_K8S_RELEASE_URL", format!("{base}/k8s"))
            .env("HARDWAY_GITHUB_URL", format!("{base}/gh"))
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .output()
            .unwrap()
    };
    let list = fetch(&["--list", "v1.37.2", "--arch", "arm64"]);
    assert!(list.status.success());
    let put = |url: &str, bytes: &[u8]| {
        let path = mirror.join(url.strip_prefix(&format!("{base}/")).unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let sha = |bytes: &[u8]| hardway::fsutil::sha256_hex(bytes);
    for line in String::from_utf8(list.stdout).unwrap().lines() {
        let c: Vec<&str> = line.split('\t').collect();
        let (name, url, checksum, provides) = (c[0], c[2], c[3], c[4]);
        let file_name = url.rsplit('/').next().unwrap();
        let bytes = if url.ends_with(".tar.gz") || url.ends_with(".tgz") {
            // A tarball laid out as upstream's: containerd's under bin/, the others flat.
            let src = tmp.path().join(format!("src-{name}"));
            let mut members = Vec::new();
            for p in provides.split(',') {
                let member = match name {
                    "containerd" => format!("bin/{p}"),
                    _ => p.rsplit('/').next().unwrap().to_string(),
                };
                let at = src.join(&member);
                std::fs::create_dir_all(at.parent().unwrap()).unwrap();
                std::fs::write(&at, format!("#!/bin/sh\necho {p}\n")).unwrap();
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755)).unwrap();
                members.push(member);
            }
            let archive = tmp.path().join(file_name);
            testkit::run_ok(
                std::process::Command::new("tar")
                    .arg("-czf")
                    .arg(&archive)
                    .arg("-C")
                    .arg(&src)
                    .args(&members),
            );
            std::fs::read(archive).unwrap()
        } else {
            format!("#!/bin/sh\necho {provides}\n").into_bytes()
        };
        let sum = match name {
            // runc: one file for every architecture.
            "runc" => format!(
                "{}  runc.amd64\n{}  {file_name}\n",
                "0".repeat(64),
                sha(&bytes)
            ),
            "containerd" | "cni-plugins" => format!("{}  {file_name}\n", sha(&bytes)),
            _ => format!("{}\n", sha(&bytes)),
        };
        put(url, &bytes);
        put(checksum, sum.as_bytes());
    }

    let dir = tmp.path().join("k8s");
    let dir_arg = dir.to_str().unwrap();
    let first = fetch(&["v1.37.2", dir_arg, "--arch", "arm64"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for binary in mkunits::render::CONTROLLER_BINARIES
        .iter()
        .chain(&mkunits::render::WORKER_BINARIES)
        .chain(&mkunits::render::CONTAINERD2_BINARIES)
        .chain(&[
            "kubectl",
            "crictl",
            "ctr",
            "cni/bin/bridge",
            "cni/bin/portmap",
        ])
    {
        let path = dir.join(binary);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no {binary}"));
        assert!(text.contains(&format!("echo {binary}")), "{binary}: {text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{binary}");
    }
    let second = fetch(&["v1.37.2", dir_arg, "--arch", "arm64"]);
    assert!(second.status.success());
    let log = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        log.matches("already here and verified").count(),
        10,
        "{log}"
    );

    // The mirror now serves a kubelet that its checksum does not vouch for.
    put(
        &format!("{base}/k8s/v1.37.2/bin/linux/arm64/kubelet"),
        b"#!/bin/sh\necho tampered\n",
    );
    let fresh = tmp.path().join("fresh");
    let bad = fetch(&["v1.37.2", fresh.to_str().unwrap(), "--arch", "arm64"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("kubelet does not match its published sha256"),
        "{stderr}"
    );
    assert!(!fresh.join("kubelet").exists() && !fresh.join("kube-apiserver").exists());
}

/// With flannel, flanneld masquerades (`--ip-masq`) and leases the subnets: no nftables table,
/// no Node podCIDRs from the document; the add-ons are the same.
#[test]
fn flannel_gets_the_addons_but_neither_masquerade_table_nor_pod_cidrs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut doc = testkit::fixture_document("ebook-dualstack.json");
    doc.cluster.pod_network = PodNetwork::Flannel;
    let input = write_document(tmp.path(), "flannel.json", &doc);
    let bin = bin_dir();
    let run = mkunits(&input, &tmp.path().join("out"), bin.path(), &[]);
    let dests = |name: &str| -> Vec<String> {
        files(node(&run.doc, name))
            .into_iter()
            .map(|(d, _)| d)
            .collect()
    };
    assert!(!dests("worker1").contains(&"/etc/hardway/masquerade.nft".to_string()));
    assert!(!services(node(&run.doc, "worker1")).contains(&"hardway-masquerade.service".into()));
    let c1 = dests("controller1");
    assert!(c1.contains(&"/etc/hardway/addons/coredns.yaml".to_string()));
    assert!(!c1.contains(&"/etc/hardway/addons/pod-cidrs.sh".to_string()));
    assert!(!services(node(&run.doc, "controller1")).contains(&"hardway-pod-cidrs.timer".into()));

    // Routed: every worker has the table, loaded before its runtime.
    let (_tmp, _out, routed) = render("ebook-dualstack.json", &[]);
    for name in ["worker1", "worker2"] {
        let order = services(node(&routed, name));
        let at = |u: &str| order.iter().position(|s| s == u).unwrap();
        assert!(
            at("hardway-masquerade.service") < at("containerd.service"),
            "{order:?}"
        );
    }
}
