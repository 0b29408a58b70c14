//! The pipeline as the README runs it, `mkcluster examples/lab.csv | cidr-alloc | mkcerts --dir
//! out | mkunits --dir out`, for each supported Kubernetes release and runtime: the defaults give
//! a v1.37 cluster on containerd 2 (config `version = 3`); v1.35 on Debian's containerd 1.x
//! gives `version = 2`; an end-of-life version stops at mkcluster with one line. No Kubernetes
//! or containerd 2 binary runs here: the configuration is checked as data (mkunits' own tests
//! run Debian's containerd 1.x and systemd-analyze on it).

use std::path::Path;
use std::process::Command;

use hardway::doc::ContainerRuntime;
use hardway::Document;

/// Runs the pipeline into `out` with mkcluster's extra flags; returns the final document.
fn pipeline(out: &Path, mkcluster_flags: &[&str]) -> Document {
    let lab = testkit::workspace_root().join("examples/lab.csv");
    let step = |program: &str, args: &[&str], input: Option<&Path>, output: &Path| {
        let mut cmd = Command::new(testkit::bin(program));
        cmd.args(args);
        if let Some(input) = input {
            cmd.arg("-f").arg(input);
        }
        let o = testkit::run_ok(&mut cmd);
        std::fs::write(output, &o.stdout).unwrap();
    };
    let dir = out.to_str().unwrap();
    let tmp = out.parent().unwrap();
    let (doc0, doc1, doc2, doc3) = (
        tmp.join("mkcluster.json"),
        tmp.join("cidr-alloc.json"),
        tmp.join("mkcerts.json"),
        tmp.join("mkunits.json"),
    );
    let mut args = vec![lab.to_str().unwrap()];
    args.extend_from_slice(mkcluster_flags);
    step("mkcluster", &args, None, &doc0);
    step("cidr-alloc", &[], Some(&doc0), &doc1);
    step("mkcerts", &["--dir", dir], Some(&doc1), &doc2);
    step(
        "mkunits",
        &[
            "--dir",
            dir,
            "--bin-dir",
            testkit::target_dir().to_str().unwrap(),
        ],
        Some(&doc2),
        &doc3,
    );
    hardway::doc::read(Some(&doc3)).unwrap()
}

fn containerd_config(out: &Path, doc: &Document, node: usize) -> toml::Table {
    let path = testkit::node_file(out, &doc.nodes[node], "/etc/containerd/config.toml");
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

#[test]
fn default_pipeline_writes_a_v1_37_cluster_on_containerd_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let doc = pipeline(&out, &[]);
    assert_eq!(
        doc.cluster.kubernetes_version,
        hardway::k8s::DEFAULT_VERSION
    );
    assert!(hardway::k8s::DEFAULT_VERSION.starts_with("v1.37."));
    assert_eq!(
        doc.cluster.container_runtime,
        Some(ContainerRuntime::Containerd2)
    );
    for (i, node) in doc.nodes.iter().enumerate() {
        assert_eq!(
            node.services.first().map(String::as_str),
            Some("hardway-preflight.service"),
            "{}",
            node.name
        );
        let config = containerd_config(&out, &doc, i);
        assert_eq!(config["version"].as_integer(), Some(3));
        let plugins = config["plugins"].as_table().unwrap();
        assert_eq!(
            plugins["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]["options"]
                ["SystemdCgroup"]
                .as_bool(),
            Some(true)
        );
        assert_eq!(
            plugins["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"].as_str(),
            Some(hardway::k8s::release("v1.37.2").unwrap().pause_image)
        );
    }
}

#[test]
fn v1_35_on_debian_containerd_writes_config_version_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let doc = pipeline(
        &out,
        &[
            "--kubernetes-version",
            "v1.35.0",
            "--container-runtime",
            "containerd-1",
        ],
    );
    let config = containerd_config(&out, &doc, 0);
    assert_eq!(config["version"].as_integer(), Some(2));
    assert!(config["plugins"]
        .as_table()
        .unwrap()
        .contains_key("io.containerd.grpc.v1.cri"));
}

#[test]
fn end_of_life_version_stops_the_pipeline_at_mkcluster() {
    let lab = testkit::workspace_root().join("examples/lab.csv");
    let out = Command::new(testkit::bin("mkcluster"))
        .arg(&lab)
        .args(["--kubernetes-version", "v1.33.0"])
        .output()
        .unwrap();
    let line = testkit::assert_one_line_error(&out, "mkcluster", 2);
    assert!(line.contains("v1.35, v1.36, v1.37"), "{line}");
}
