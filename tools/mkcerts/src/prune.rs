//! What mkcerts wrote for nodes that left the document: `pki/nodes/<old>/`. Only the files
//! mkcerts writes there are removed — by name, regular files only (a symlink is left alone, its
//! target never touched), in directories that are not links — and the directory itself only
//! when nothing else is left in it, so a user's own files there survive.
//!
//! Paths are checked with `symlink_metadata` and removed with unlink(2), which never follows a
//! final symlink; until `--dir` is opened through a directory handle, a directory swapped for a
//! link between the check and the unlink is the one race left.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use hardway::doc::Document;
use hardway::paths::cert;
use hardway::Error;

/// The per-node leaves mkcerts issues (plan.rs `installs_for`), each as `NAME.pem` and
/// `NAME-key.pem`, and the kubelet's kubeconfig.
const NODE_LEAVES: [&str; 4] = [
    cert::ETCD_SERVER,
    cert::ETCD_PEER,
    cert::APISERVER,
    cert::KUBELET,
];
const NODE_OTHER: [&str; 1] = ["kubelet.kubeconfig"];

/// What [`prune`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    /// Directories of departed nodes kept because they hold files mkcerts did not write.
    pub kept: Vec<PathBuf>,
}

fn file_names() -> Vec<String> {
    NODE_LEAVES
        .iter()
        .flat_map(|n| [format!("{n}.pem"), format!("{n}-key.pem")])
        .chain(NODE_OTHER.iter().map(|s| s.to_string()))
        .collect()
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

/// Whether `path` is a real directory (not a link to one).
fn is_real_dir(path: &Path) -> Result<bool, Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.file_type().is_dir()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(path, e)),
    }
}

/// Removes mkcerts' files of every node directory under `dir/pki/nodes` whose node the document
/// no longer lists.
pub fn prune(dir: &Path, doc: &Document) -> Result<Pruned, Error> {
    let nodes = dir.join("pki").join("nodes");
    let mut pruned = Pruned::default();
    if !is_real_dir(&dir.join("pki"))? || !is_real_dir(&nodes)? {
        return Ok(pruned);
    }
    for entry in fs::read_dir(&nodes).map_err(|e| io(&nodes, e))? {
        let entry = entry.map_err(|e| io(&nodes, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // DirEntry::file_type does not follow links.
        let is_dir = entry
            .file_type()
            .map_err(|e| io(&entry.path(), e))?
            .is_dir();
        if !is_dir || doc.node(&name).is_some() || hardway::validate::node_name(&name).is_err() {
            continue;
        }
        prune_node(&entry.path(), &mut pruned)?;
    }
    pruned.files.sort();
    pruned.dirs.sort();
    pruned.kept.sort();
    Ok(pruned)
}

fn prune_node(node_dir: &Path, pruned: &mut Pruned) -> Result<(), Error> {
    for name in file_names() {
        let path = node_dir.join(&name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => {
                fs::remove_file(&path).map_err(|e| io(&path, e))?;
                pruned.files.push(path);
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path, e)),
        }
    }
    match fs::remove_dir(node_dir) {
        Ok(()) => pruned.dirs.push(node_dir.to_path_buf()),
        Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {
            pruned.kept.push(node_dir.to_path_buf())
        }
        Err(e) => return Err(io(node_dir, e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Document {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lab.json"),
        )
        .unwrap();
        hardway::doc::from_str(&text, "lab.json").unwrap()
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

        let pruned = prune(dir, &doc).unwrap();
        assert_eq!(pruned.dirs, [nodes.join("gone")]);
        assert_eq!(pruned.kept, [nodes.join("partly")]);
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
        let again = prune(dir, &doc).unwrap();
        assert!(again.files.is_empty() && again.dirs.is_empty(), "{again:?}");
    }
}
