//! Every script in scripts/ parses (`bash -n`) and passes shellcheck at warning severity,
//! following the files they source (`-x`: scripts/lib.sh). scripts/smoke.sh needs a cluster
//! with the Kubernetes server binaries, which CI cannot have: this is the only check it gets
//! here; it was never run against a cluster on this machine.

use std::path::PathBuf;
use std::process::Command;

fn scripts() -> Vec<PathBuf> {
    let dir = testkit::workspace_root().join("scripts");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read scripts/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    found.sort();
    found
}

/// shellcheck's findings for `path`, one `file:line:col: level: message [SCnnnn]` per line.
fn shellcheck(path: &std::path::Path) -> (bool, String) {
    let out = Command::new("shellcheck")
        .args(["-x", "-S", "warning", "-f", "gcc"])
        .arg(path)
        .current_dir(testkit::workspace_root())
        .output()
        .expect("run shellcheck (Debian package shellcheck: scripts/deps.sh installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_script_parses_and_passes_shellcheck() {
    let scripts = scripts();
    for needed in ["cluster.sh", "lib.sh", "smoke.sh", "image.sh"] {
        assert!(
            scripts.iter().any(|p| p.ends_with(needed)),
            "scripts/{needed} is missing"
        );
    }
    let mut problems = Vec::new();
    for script in &scripts {
        let parsed = Command::new("bash")
            .arg("-n")
            .arg(script)
            .output()
            .expect("bash -n");
        if !parsed.status.success() {
            problems.push(format!(
                "{}: bash -n: {}",
                script.display(),
                String::from_utf8_lossy(&parsed.stderr).trim()
            ));
        }
        let (clean, findings) = shellcheck(script);
        if !clean {
            problems.push(findings.trim().to_string());
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check above can fail: at warning severity shellcheck reports a `local` that masks its
/// command substitution's exit status (which `set -e` then cannot see).
#[test]
fn shellcheck_reports_a_warning_in_a_bad_script() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sh");
    std::fs::write(
        &bad,
        "#!/usr/bin/env bash\nset -euo pipefail\nf() {\n  local out=$(false)\n  echo \"$out\"\n}\nf\n",
    )
    .unwrap();
    let (clean, findings) = shellcheck(&bad);
    assert!(
        !clean,
        "shellcheck passed a script with a masked exit status"
    );
    assert!(
        findings.lines().any(|l| l.contains("[SC2155]")),
        "no SC2155 finding: {findings}"
    );
}
