//! The seed ISO read back by the tools a guest and a user have: blkid (the label NoCloud finds
//! it by) and isoinfo (the Joliet names cloud-init reads).

use std::process::Command;

use mkvm::seed::{self, SeedInput};

fn input() -> SeedInput {
    SeedInput {
        cluster: "lab".into(),
        hostname: "node-1".into(),
        fqdn: "node-1.example.com".into(),
        mac: "52:54:00:3a:71:0c".into(),
        addresses: vec!["10.240.0.11/24".parse().unwrap()],
        gateways: vec!["10.240.0.1".parse().unwrap()],
        dns: vec!["10.240.0.1".parse().unwrap()],
        search: Some("example.com".into()),
        ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE test".into(),
        hosts: vec![(
            "10.240.0.11".parse().unwrap(),
            "node-1.example.com".into(),
            "node-1".into(),
        )],
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn blkid_and_isoinfo_read_the_seed() {
    let seed = seed::render(&input());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.iso");
    std::fs::write(&path, seed::iso(&seed).unwrap()).unwrap();
    let label = run(Command::new("blkid")
        .args(["-o", "value", "-s", "LABEL"])
        .arg(&path));
    assert_eq!(label.trim(), "cidata");
    let fstype = run(Command::new("blkid")
        .args(["-o", "value", "-s", "TYPE"])
        .arg(&path));
    assert_eq!(fstype.trim(), "iso9660");
    for (name, text) in [
        ("user-data", &seed.user_data),
        ("meta-data", &seed.meta_data),
        ("network-config", &seed.network_config),
    ] {
        for mode in ["-J", "-R"] {
            let got = run(Command::new("isoinfo").args(["-i"]).arg(&path).args([
                mode,
                "-x",
                &format!("/{name}"),
            ]));
            assert_eq!(&got, text, "{name} read with isoinfo {mode}");
        }
    }
}
