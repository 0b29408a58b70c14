//! The binary as a user runs it: exit codes, one error line on stderr, nothing on stdout.

use assert_cmd::Command;

fn lab() -> std::path::PathBuf {
    testkit::workspace_root().join("tests/fixtures/lab.json")
}

fn fake_image(dir: &std::path::Path) -> std::path::PathBuf {
    let mut header = vec![0u8; 512];
    header[..4].copy_from_slice(b"QFI\xfb");
    header[7] = 3;
    header[24..32].copy_from_slice(&(2u64 << 30).to_be_bytes());
    let image = dir.join("base.qcow2");
    std::fs::write(&image, header).unwrap();
    let key = dir.join("id.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtlc3Q test@mkvm\n",
    )
    .unwrap();
    image
}

#[test]
fn a_missing_image_exits_2_with_one_line_and_no_stdout() {
    let dir = tempfile::tempdir().unwrap();
    fake_image(dir.path());
    let out = Command::cargo_bin("mkvm")
        .unwrap()
        .args([
            "up",
            "-c",
            "test:///default",
            "--image",
            "/nonexistent/base.qcow2",
            "--ssh-key",
        ])
        .arg(dir.path().join("id.pub"))
        .arg("-f")
        .arg(lab())
        .output()
        .unwrap();
    let stderr = testkit::assert_one_line_error(&out, "mkvm", 2);
    assert!(
        stderr.starts_with("mkvm: error: --image /nonexistent/base.qcow2: cannot open"),
        "{stderr}"
    );
}

#[test]
fn dry_run_prints_every_object_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let image = fake_image(dir.path());
    let out = Command::cargo_bin("mkvm")
        .unwrap()
        .args(["up", "--dry-run", "-c", "test:///default", "--image"])
        .arg(&image)
        .arg("--ssh-key")
        .arg(dir.path().join("id.pub"))
        .arg("-f")
        .arg(lab())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["nodes"].as_array().unwrap().len(), 3);
    assert!(plan["nodes"][0]["domain"]
        .as_str()
        .unwrap()
        .contains("<domain type='qemu'>"));
}

#[test]
fn help_has_an_example_and_down_on_nothing_is_a_no_op() {
    let out = Command::cargo_bin("mkvm")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("mkvm up --image"));
    // A fresh test:// driver holds none of the cluster's objects: down removes nothing.
    let out = Command::cargo_bin("mkvm")
        .unwrap()
        .args(["down", "-c", "test:///default", "-f"])
        .arg(lab())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["cluster"]["name"], "lab");
}

/// lab.json on two hypervisors (node-3 moved to hv-b's slice), as cidr-alloc would give it.
fn two_hypervisor_lab(dir: &std::path::Path) -> std::path::PathBuf {
    let mut doc = testkit::fixture_document("lab.json");
    let host =
        |name: &str, socket: &str, address: &str, slice: &str| hardway::doc::HypervisorHost {
            name: name.into(),
            uri: format!("qemu+unix:///system?socket=/nonexistent/{socket}"),
            address: address.parse().unwrap(),
            node_slice: vec![slice.parse().unwrap()],
            extra: Default::default(),
        };
    doc.hypervisors = vec![
        host("hv-a", "a", "192.168.250.1", "10.240.0.0/25"),
        host("hv-b", "b", "192.168.250.2", "10.240.0.128/25"),
    ];
    let (a, b) = (
        doc.hypervisors[0].uri.clone(),
        doc.hypervisors[1].uri.clone(),
    );
    for node in &mut doc.nodes[..2] {
        node.host = Some(a.clone());
    }
    doc.nodes[2].host = Some(b);
    doc.nodes[2].ips = vec!["10.240.0.130".parse().unwrap()];
    doc.validate().unwrap();
    let path = dir.join("two.json");
    std::fs::write(&path, hardway::doc::to_string(&doc)).unwrap();
    path
}

#[test]
fn dry_run_with_two_hypervisors_prints_each_ones_network_and_connects_to_neither() {
    let dir = tempfile::tempdir().unwrap();
    let image = fake_image(dir.path());
    let out = Command::cargo_bin("mkvm")
        .unwrap()
        .args(["up", "--dry-run", "--domain-type", "qemu", "--image"])
        .arg(&image)
        .arg("--ssh-key")
        .arg(dir.path().join("id.pub"))
        .arg("-f")
        .arg(two_hypervisor_lab(dir.path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan.get("network").is_none());
    let networks = plan["networks"].as_array().unwrap();
    let mut seen = Vec::new();
    for network in networks {
        let xml = network["xml"].as_str().unwrap();
        let parsed = roxmltree::Document::parse(xml).unwrap();
        let find = |tag: &str| parsed.descendants().find(|n| n.has_tag_name(tag)).unwrap();
        let leases = parsed
            .descendants()
            .filter(|n| n.has_tag_name("host") && n.parent().unwrap().has_tag_name("dhcp"))
            .count();
        seen.push((
            network["uri"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string(),
            find("forward").attribute("mode").unwrap().to_string(),
            find("ip").attribute("address").unwrap().to_string(),
            leases,
        ));
    }
    assert_eq!(
        seen,
        [
            (
                "a".to_string(),
                "open".to_string(),
                "10.240.0.1".to_string(),
                2
            ),
            (
                "b".to_string(),
                "open".to_string(),
                "10.240.0.129".to_string(),
                1
            ),
        ]
    );
    let uris: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris[2], networks[1]["uri"].as_str().unwrap());
}
