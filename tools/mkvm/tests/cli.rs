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
