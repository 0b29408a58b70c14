//! Each hypervisor's egress masquerade file (render/egress.rs) on a cluster across several:
//! written under OUT/hypervisors/NAME/, none for a cluster on one machine, removed with
//! `--previous` once the cluster is back on one. tests/e2e `hypervisor_egress` loads the files
//! with nft in network namespaces and checks what they masquerade; here, what is written.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{bin_dir, fixture, mkunits, render};

/// The elements of set `name` in an nft file, as written.
fn elements(text: &str, name: &str) -> Vec<String> {
    let set = text
        .split(&format!("set {name} {{"))
        .nth(1)
        .unwrap_or_else(|| panic!("no set {name} in {text}"));
    let line = set
        .lines()
        .find(|l| l.trim().starts_with("elements"))
        .unwrap();
    let inside = line.split('{').nth(1).unwrap().trim_end_matches([' ', '}']);
    inside.split(", ").map(|e| e.trim().to_string()).collect()
}

#[test]
fn each_hypervisor_masquerades_its_own_nodes_and_pods_to_outside_the_cluster() {
    let (_tmp, out, _doc) = render("hypervisors/two.json", &[]);
    for (name, sources) in [
        ("hv-a", ["10.240.0.0/25", "10.200.0.0/24", "10.200.1.0/24"]),
        (
            "hv-b",
            ["10.240.0.128/25", "10.200.2.0/24", "10.200.3.0/24"],
        ),
    ] {
        let path = out.join(format!("hypervisors/{name}/hardway-egress.nft"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(elements(&text, "sources_v4"), sources, "{name}");
        assert_eq!(
            elements(&text, "cluster_v4"),
            ["10.240.0.0/24", "10.200.0.0/16"]
        );
        assert!(!text.contains("sources_v6"), "an IPv4 cluster: {text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{name}");
    }
}

#[test]
fn a_cluster_on_one_machine_gets_none_and_going_back_to_one_removes_them() {
    let (_tmp, out, _doc) = render("lab.json", &[]);
    assert!(!out.join("hypervisors").exists());

    let tmp = tempfile::tempdir().unwrap();
    let (out, bin) = (tmp.path().join("out"), bin_dir());
    let running = tmp.path().join("cluster.json");
    let built = mkunits(&fixture("hypervisors/two.json"), &out, bin.path(), &[]);
    std::fs::write(&running, hardway::doc::to_string(&built.doc)).unwrap();
    let files = [
        "hypervisors/hv-a/hardway-egress.nft",
        "hypervisors/hv-b/hardway-egress.nft",
    ];
    assert!(files.iter().all(|f| out.join(f).exists()));

    // The same nodes on one machine: no hypervisors, no host.
    let mut one = testkit::fixture_document("hypervisors/two.json");
    one.hypervisors.clear();
    for node in &mut one.nodes {
        node.host = None;
    }
    let input = tmp.path().join("one.json");
    std::fs::write(&input, hardway::doc::to_string(&one)).unwrap();
    let previous = ["--previous", running.to_str().unwrap()];
    mkunits(&input, &out, bin.path(), &previous);
    assert!(files.iter().all(|f| !out.join(f).exists()), "left behind");
}
