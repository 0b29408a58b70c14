//! What mkcerts wrote for nodes that left the document: `pki/nodes/<old>/`. Only the files
//! mkcerts writes there are removed — by name, plain files of ours only (a symlink is left
//! alone, its target never touched), found and removed through [`OutDir`] (directory fds, never
//! through a link) — and the directory itself only when nothing else is left in it, so a user's
//! own files there survive.

use std::collections::{BTreeMap, BTreeSet};

use hardway::doc::Document;
use hardway::fsutil::OutDir;
use hardway::paths::cert;
use hardway::Error;

const NODES: &str = "pki/nodes";

/// The per-node leaves mkcerts issues (plan.rs `installs_for`), each as `NAME.pem` and
/// `NAME-key.pem`, and the kubelet's kubeconfig.
const NODE_LEAVES: [&str; 4] = [
    cert::ETCD_SERVER,
    cert::ETCD_PEER,
    cert::APISERVER,
    cert::KUBELET,
];
const NODE_OTHER: [&str; 1] = ["kubelet.kubeconfig"];

/// What [`prune`] removed, as paths under `--dir`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub files: Vec<String>,
    pub dirs: Vec<String>,
    /// Directories of departed nodes kept because they hold files mkcerts did not write.
    pub kept: Vec<String>,
}

fn file_names() -> BTreeSet<String> {
    NODE_LEAVES
        .iter()
        .flat_map(|n| [format!("{n}.pem"), format!("{n}-key.pem")])
        .chain(NODE_OTHER.iter().map(|s| s.to_string()))
        .collect()
}

/// Removes mkcerts' files of every node directory under `pki/nodes` whose node the document no
/// longer lists.
pub fn prune(out: &OutDir, doc: &Document) -> Result<Pruned, Error> {
    let mut pruned = Pruned::default();
    let Some(listed) = out.list(NODES)? else {
        return Ok(pruned);
    };
    // `pki/nodes/NODE/FILE` by node; a link in place of a node directory is listed as a file
    // (never entered) and has no FILE part.
    let mut by_node: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for rel in &listed {
        let rest = rel.strip_prefix(NODES).and_then(|r| r.strip_prefix('/'));
        if let Some((node, file)) = rest.and_then(|r| r.split_once('/')) {
            by_node.entry(node).or_default().push(file);
        }
    }
    let ours = file_names();
    for (node, files) in by_node {
        if doc.node(node).is_some() || hardway::validate::node_name(node).is_err() {
            continue;
        }
        let mut left = 0;
        for file in files {
            let rel = format!("{NODES}/{node}/{file}");
            // read refuses what is not a plain file of ours (a link, another user's file).
            if ours.contains(file) && out.read(&rel).is_ok() && out.remove(&rel)? {
                pruned.files.push(rel);
            } else {
                left += 1;
            }
        }
        let dir = format!("{NODES}/{node}");
        if left > 0 {
            pruned.kept.push(dir);
        } else {
            // rmdir(2) removes only an empty directory and never follows a link.
            std::fs::remove_dir(out.path().join(&dir))
                .map_err(|e| Error::io(out.shown(&dir), e))?;
            pruned.dirs.push(dir);
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn lab() -> Document {
        testkit::fixture_document("lab.json")
    }

    #[test]
    fn only_mkcerts_files_of_departed_nodes_go_and_links_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let nodes = dir.join("pki/nodes");
        let doc = lab();
        let current = &doc.nodes[0].name;
        let write = |rel: &str| {
            let path = nodes.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "x").unwrap();
            path
        };
        let kept_current = write(&format!("{current}/kubelet.pem"));
        write("gone/kubelet.pem");
        write("gone/kubelet-key.pem");
        write("gone/kubelet.kubeconfig");
        let user_file = write("partly/notes.txt");
        write("partly/etcd-peer.pem");
        // A link named like a leaf, pointing outside: the link stays, its target untouched.
        let outside = dir.join("outside.pem");
        fs::write(&outside, "precious").unwrap();
        std::os::unix::fs::symlink(&outside, nodes.join("partly/etcd-server.pem")).unwrap();
        // A node directory that is a link: never entered.
        let elsewhere = dir.join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join("kubelet.pem"), "precious").unwrap();
        std::os::unix::fs::symlink(&elsewhere, nodes.join("linked")).unwrap();

        let out = OutDir::open(
            dir,
            hardway::fsutil::Access::Write {
                mode: 0o700,
                lock_timeout: std::time::Duration::from_secs(5),
            },
        )
        .unwrap();
        let pruned = prune(&out, &doc).unwrap();
        assert_eq!(pruned.dirs, ["pki/nodes/gone"]);
        assert_eq!(pruned.kept, ["pki/nodes/partly"]);
        assert_eq!(pruned.files.len(), 4, "{pruned:?}");
        assert!(!nodes.join("gone").exists());
        assert!(kept_current.exists() && user_file.exists());
        assert!(!nodes.join("partly/etcd-peer.pem").exists());
        assert!(fs::symlink_metadata(nodes.join("partly/etcd-server.pem")).is_ok());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "precious");
        assert_eq!(
            fs::read_to_string(elsewhere.join("kubelet.pem")).unwrap(),
            "precious"
        );
        // Idempotent: nothing more to do.
        let again = prune(&out, &doc).unwrap();
        assert!(again.files.is_empty() && again.dirs.is_empty(), "{again:?}");
    }
}
