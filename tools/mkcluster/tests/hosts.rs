//! `--hypervisor NAME=URI,ADDRESS` and the `host` column naming one (issue 19): the document lists
//! the hypervisors and gives each node its hypervisor's URI; without the flag nothing changes,
//! for every example inventory.

use std::path::PathBuf;

use assert_cmd::Command;
use hardway::Document;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mkcluster(args: &[&str], stdin: &str) -> std::process::Output {
    Command::cargo_bin("mkcluster")
        .unwrap()
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap()
}

fn document(args: &[&str], stdin: &str) -> Document {
    let out = mkcluster(args, stdin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let doc = hardway::doc::from_str(&text, "stdout").unwrap();
    doc.validate().unwrap();
    doc
}

const A: &str = "hv-a=qemu+ssh://root@192.168.50.1/system,192.168.50.1";
const B: &str = "hv-b=qemu+unix:///system?socket=/run/hv-b/libvirt-sock,192.168.50.2";

#[test]
fn nodes_name_their_hypervisor_and_get_its_uri() {
    let csv = "name,roles,host\n\
               c1,controller+etcd,hv-a\n\
               w1,worker,hv-b\n\
               w2,worker,\n\
               w3,worker,qemu+unix:///system?socket=/run/hv-b/libvirt-sock\n";
    let doc = document(&["--hypervisor", A, "--hypervisor", B], csv);
    let names: Vec<&str> = doc.hypervisors.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["hv-a", "hv-b"]);
    assert_eq!(doc.hypervisors[1].address.to_string(), "192.168.50.2");
    assert!(doc.hypervisors.iter().all(|h| h.node_slice.is_empty()));
    let on: Vec<&str> = doc
        .nodes
        .iter()
        .map(|n| doc.hypervisor_of(n).unwrap().name.as_str())
        .collect();
    // An empty host goes on the first --hypervisor; a URI of a declared one is that one.
    assert_eq!(on, ["hv-a", "hv-b", "hv-a", "hv-b"]);
    assert_eq!(
        doc.nodes[1].host.as_deref(),
        Some("qemu+unix:///system?socket=/run/hv-b/libvirt-sock")
    );
    // The default hypervisor is the first declared one, not a local daemon.
    assert_eq!(
        doc.hypervisor.unwrap().uri,
        "qemu+ssh://root@192.168.50.1/system"
    );
}

#[test]
fn bad_hypervisors_are_one_line_errors() {
    let refuse = |args: &[&str], csv: &str, expect: &str| {
        let out = mkcluster(args, csv);
        let line = testkit::assert_one_line_error(&out, "mkcluster", 2);
        assert!(line.contains(expect), "expected {expect:?} in {line}");
    };
    let csv = "name,roles,host\nw1,worker,hv-a\nw2,worker,hv-c\n";
    refuse(
        &["--hypervisor", A, "--hypervisor", B],
        csv,
        "<stdin>:3:1: host \"hv-c\" of node w2 is not a --hypervisor: name one of hv-a, hv-b",
    );
    refuse(
        &["--hypervisor", A, "--hypervisor", A],
        "name,roles\nw1,worker\n",
        "--hypervisor: \"hv-a=qemu+ssh://…@192.168.50.1/system,192.168.50.1\" has the name of hypervisor hv-a",
    );
    refuse(
        &[
            "--hypervisor",
            A,
            "--hypervisor",
            "hv-c=qemu+tls://hv-c/system,192.168.50.1",
        ],
        "name,roles\nw1,worker\n",
        "has the address of hypervisor hv-a",
    );
    refuse(
        &["--hypervisor", "hv-a=qemu:///system"],
        "name,roles\nw1,worker\n",
        "is not NAME=URI,ADDRESS",
    );
    refuse(
        &[
            "--hypervisor",
            "hv-a=qemu+ext:///system?command=/bin/sh,10.0.0.1",
        ],
        "name,roles\nw1,worker\n",
        "--hypervisor: libvirt URI",
    );
    // The address is on the hypervisors' own network, apart from the cluster's ranges.
    refuse(
        &["--hypervisor", "hv-a=qemu:///system,10.240.0.9"],
        "name,roles\nw1,worker\n",
        "hypervisors[0].address: 10.240.0.9 is inside the cluster's node network",
    );
}

#[test]
fn without_the_flag_every_example_reads_and_prints_as_before() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        seen += 1;
        let args = testkit::example_args(&path);
        let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let file = path.to_str().unwrap();
        argv.retain(|a| !a.ends_with(".csv"));
        argv.push(file);
        let out = mkcluster(&argv, "");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(value.get("hypervisors").is_none(), "{}", path.display());
        let doc = hardway::doc::from_str(&text, "stdout").unwrap();
        doc.validate().unwrap();
        assert_eq!(hardway::doc::to_string(&doc), text, "{}", path.display());
    }
    assert!(seen >= 5, "{seen} examples");
}

#[test]
fn help_documents_the_flag_and_the_column() {
    let out = mkcluster(&["--help"], "");
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--hypervisor <NAME=URI,ADDRESS>"), "{help}");
    assert!(help.contains("a --hypervisor NAME"), "{help}");
}
