//! `restore`: what every etcd node needs to rebuild its member from one snapshot — the snapshot,
//! a script that runs `etcdctl snapshot restore` with the document's membership, and a oneshot
//! unit that runs it once before etcd.service — as files and a service in the node's entries,
//! so node-push installs and starts them. etcd's own tool does the restore: it owns the format.

use hardway::doc::{Document, FileEntry};
use hardway::paths::etcd::{DATA_DIR, PEER_PORT};
use hardway::Role;

use crate::error::Error;

/// Where under `--dir` the restore files go (mkunits owns `nodes/`, mkcerts `pki/`).
pub const PREFIX: &str = "restore/";
pub const UNIT: &str = "hardway-etcd-restore.service";
pub const UNIT_DEST: &str = "/etc/systemd/system/hardway-etcd-restore.service";
pub const SCRIPT_DEST: &str = "/usr/local/sbin/hardway-etcd-restore";
pub const SNAPSHOT_DEST: &str = "/var/lib/hardway-etcd-restore/snapshot.db";

/// One file for one node: where under `--dir`, its entry, its contents and mode.
pub struct NodeFile {
    pub src: String,
    pub dest: &'static str,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// The membership the restored cluster starts with: every etcd node of the document.
pub struct Membership {
    pub initial_cluster: String,
    pub token: String,
}

fn peer_url(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("https://{v4}:{PEER_PORT}"),
        std::net::IpAddr::V6(v6) => format!("https://[{v6}]:{PEER_PORT}"),
    }
}

pub fn membership(doc: &Document) -> Result<Membership, Error> {
    let mut entries = Vec::new();
    for (i, node) in doc.nodes.iter().enumerate() {
        if !node.has_role(Role::Etcd) {
            continue;
        }
        let ip = node.primary_ip().ok_or_else(|| {
            Error::from(hardway::Error::invalid(
                format!("nodes[{i}].ips"),
                format!("etcd node {:?} has no address", node.name),
            ))
        })?;
        entries.push(format!("{}={}", node.name, peer_url(ip)));
    }
    if entries.is_empty() {
        return Err(Error::from(hardway::Error::invalid(
            "nodes",
            "no node has the role etcd: nothing to restore",
        )));
    }
    Ok(Membership {
        initial_cluster: entries.join(","),
        // mkunits' --initial-cluster-token, so a restored member looks like a bootstrapped one.
        token: format!("{}-etcd", doc.cluster.name),
    })
}

/// The script a node runs (hardway-etcd-restore.service). Paths may be overridden through the
/// environment so a test can run this very script on a host. The names in it are validated
/// node names and addresses, so nothing needs shell quoting beyond the single quotes.
pub fn script(name: &str, peer: &str, membership: &Membership, sha: &str) -> String {
    let short = &sha[..12];
    format!(
        r#"#!/bin/sh
# hardway-etcd-restore: rebuild this etcd member's data directory from a snapshot, once.
# Written by etcd-snapshot restore; run by {UNIT} before etcd.service.
# etcd 3.4's etcdctl does the restore (etcd 3.5+: `etcdutl snapshot restore`, same flags).
set -eu
SNAPSHOT="${{SNAPSHOT:-{SNAPSHOT_DEST}}}"
DATA_DIR="${{ETCD_DATA_DIR:-{DATA_DIR}}}"
ETCDCTL="${{ETCDCTL:-etcdctl}}"
DONE="$DATA_DIR.restored-{short}"
[ -e "$DONE" ] && exit 0
WORK="$DATA_DIR.restoring"
rm -rf "$WORK"
ETCDCTL_API=3 "$ETCDCTL" snapshot restore "$SNAPSHOT" \
  --name '{name}' \
  --initial-cluster '{cluster}' \
  --initial-cluster-token '{token}' \
  --initial-advertise-peer-urls '{peer}' \
  --data-dir "$WORK"
mkdir -p "$DATA_DIR"
chmod 0700 "$DATA_DIR"
if [ -e "$DATA_DIR/member" ]; then
  mkdir -p "$DATA_DIR.before-restore-{short}"
  mv "$DATA_DIR/member" "$DATA_DIR.before-restore-{short}/member"
fi
mv "$WORK/member" "$DATA_DIR/member"
rmdir "$WORK"
touch "$DONE"
"#,
        cluster = membership.initial_cluster,
        token = membership.token,
    )
}

pub fn unit(sha: &str) -> String {
    let short = &sha[..12];
    format!(
        "[Unit]\n\
         Description=Restore etcd from snapshot {short} (etcd-snapshot restore), once\n\
         # Stops etcd while it runs; node-push starts etcd.service after it.\n\
         Conflicts=etcd.service\n\
         Before=etcd.service\n\
         ConditionPathExists=!{DATA_DIR}.restored-{short}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={SCRIPT_DEST}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// Every etcd node's files (the snapshot, the script, the unit).
pub fn files(
    doc: &Document,
    snapshot: &[u8],
    sha: &str,
) -> Result<Vec<(String, Vec<NodeFile>)>, Error> {
    let membership = membership(doc)?;
    let mut out = Vec::new();
    for node in doc.nodes.iter().filter(|n| n.has_role(Role::Etcd)) {
        let ip = node.primary_ip().expect("membership checked the addresses");
        let src = |file: &str| format!("{PREFIX}{}/{file}", node.name);
        let script = script(&node.name, &peer_url(ip), &membership, sha);
        out.push((
            node.name.clone(),
            vec![
                NodeFile {
                    src: src("snapshot.db"),
                    dest: SNAPSHOT_DEST,
                    mode: 0o600,
                    contents: snapshot.to_vec(),
                },
                NodeFile {
                    src: src("hardway-etcd-restore"),
                    dest: SCRIPT_DEST,
                    mode: 0o755,
                    contents: script.into_bytes(),
                },
                NodeFile {
                    src: src(UNIT),
                    dest: UNIT_DEST,
                    mode: 0o644,
                    contents: unit(sha).into_bytes(),
                },
            ],
        ));
    }
    Ok(out)
}

/// Records the files in the nodes' entries and the unit in their services, before etcd.service.
pub fn record(doc: &mut Document, files: &[(String, Vec<NodeFile>)]) {
    for (name, node_files) in files {
        let Some(node) = doc.nodes.iter_mut().find(|n| &n.name == name) else {
            continue;
        };
        let entries = node_files
            .iter()
            .map(|f| FileEntry {
                src: f.src.clone(),
                dest: f.dest.to_string(),
                mode: format!("{:04o}", f.mode),
                owner: "root:root".into(),
                sha256: hardway::fsutil::sha256_hex(&f.contents),
                extra: Default::default(),
            })
            .collect();
        node.replace_files(PREFIX, entries);
        if !node.services.iter().any(|s| s == UNIT) {
            let at = node
                .services
                .iter()
                .position(|s| s == "etcd.service")
                .unwrap_or(node.services.len());
            node.services.insert(at, UNIT.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Document {
        testkit::fixture_document("lab.json")
    }

    #[test]
    fn every_etcd_node_gets_the_snapshot_script_and_unit_before_etcd() {
        let mut doc = lab();
        for n in &mut doc.nodes {
            n.services = vec!["etcd.service".into()];
        }
        let sha = "ab".repeat(32);
        let files = files(&doc, b"db", &sha).unwrap();
        assert_eq!(files.len(), doc.nodes_with(Role::Etcd).count());
        record(&mut doc, &files);
        let again = doc.clone();
        record(&mut doc, &files);
        assert_eq!(doc, again, "recording twice changes nothing");
        let node = doc.nodes_with(Role::Etcd).next().unwrap();
        assert_eq!(node.services, [UNIT, "etcd.service"]);
        let dests: Vec<&str> = node
            .files
            .iter()
            .filter(|f| f.src.starts_with(PREFIX))
            .map(|f| f.dest.as_str())
            .collect();
        assert_eq!(dests, [SNAPSHOT_DEST, SCRIPT_DEST, UNIT_DEST]);
        let script = String::from_utf8(files[0].1[1].contents.clone()).unwrap();
        assert!(
            script.contains(&format!("--name '{}'", node.name)),
            "{script}"
        );
    }
}
