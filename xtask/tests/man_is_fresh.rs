//! man/ is generated but committed (so `man ./man/mkcerts.1` works from a clone); this fails when
//! a flag changed and `make man` was not run.

use std::path::Path;

#[test]
fn committed_man_pages_match_the_clap_commands() {
    let fresh = tempfile::tempdir().unwrap();
    xtask::generate(fresh.path()).unwrap();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man");
    let mut stale = Vec::new();
    for entry in walk(fresh.path()) {
        let relative = entry.strip_prefix(fresh.path()).unwrap();
        let theirs = std::fs::read(committed.join(relative)).unwrap_or_default();
        if std::fs::read(&entry).unwrap() != theirs {
            stale.push(relative.display().to_string());
        }
    }
    for entry in walk(&committed) {
        let relative = entry.strip_prefix(&committed).unwrap();
        if !fresh.path().join(relative).exists() {
            stale.push(format!("{} (no such command any more)", relative.display()));
        }
    }
    assert!(stale.is_empty(), "man/ is stale, run `make man`: {stale:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
