//! Between the document and etcd: the members the document wants (its etcd nodes' peer URLs,
//! as mkunits makes them advertise) and what etcd-sync writes back into `nodes[].etcd`.

use std::net::IpAddr;

use hardway::doc::{Document, EtcdMember, EtcdMemberState, InitialClusterState};
use hardway::paths::etcd::PEER_PORT;
use hardway::Role;

use crate::error::Error;
use crate::plan::{id_hex, Observed, Wanted};

/// The peer URL a member on `ip` advertises (mkunits' `--initial-advertise-peer-urls`).
pub fn peer_url(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}:{PEER_PORT}"),
        IpAddr::V6(v6) => format!("https://[{v6}]:{PEER_PORT}"),
    }
}

/// The document's etcd nodes as members, in document order.
pub fn wanted(document: &Document) -> Result<Vec<Wanted>, Error> {
    let mut wanted = Vec::new();
    for (i, node) in document.nodes.iter().enumerate() {
        if !node.has_role(Role::Etcd) {
            continue;
        }
        let ip = node.primary_ip().ok_or_else(|| {
            Error::from(hardway::Error::invalid(
                format!("nodes[{i}].ips"),
                format!(
                    "etcd node {:?} has no address (run cidr-alloc first)",
                    node.name
                ),
            ))
        })?;
        wanted.push(Wanted {
            name: node.name.clone(),
            peer_url: peer_url(ip),
        });
    }
    Ok(wanted)
}

fn node_peer_url(node: &hardway::Node) -> Option<String> {
    node.primary_ip().map(peer_url)
}

/// `name=peer_url,…` of `members` (id, name, peer URLs), ordered as the document's nodes and
/// named by them (an unstarted member has no name in etcd's list yet).
fn initial_cluster(document: &Document, members: &[(u64, String, Vec<String>)]) -> String {
    let mut entries: Vec<(usize, String)> = members
        .iter()
        .filter_map(|(_, name, urls)| {
            let url = urls.first()?;
            let position = document
                .nodes
                .iter()
                .position(|n| node_peer_url(n).as_deref() == Some(url.as_str()));
            let name = match position {
                Some(i) => document.nodes[i].name.clone(),
                None => name.clone(),
            };
            Some((position.unwrap_or(usize::MAX), format!("{name}={url}")))
        })
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|(_, e)| e)
        .collect::<Vec<_>>()
        .join(",")
}

/// Keeps an earlier run's record for each node that has none now and is the same member: same
/// name, same address (a node whose address changed is another member to etcd).
pub fn carry(document: &mut Document, previous: &Document) {
    for node in document.nodes.iter_mut().filter(|n| n.etcd.is_none()) {
        if let Some(old) = previous.node(&node.name) {
            if old.primary_ip() == node.primary_ip() && node.has_role(Role::Etcd) {
                node.etcd = old.etcd.clone();
            }
        }
    }
}

/// Records a member just added: it will first boot with the membership MemberAdd returned
/// (etcd insists on exactly that set) and `--initial-cluster-state=existing`.
pub fn joined(document: &mut Document, name: &str, id: u64, after: &[(u64, String, Vec<String>)]) {
    let cluster = initial_cluster(document, after);
    if let Some(node) = document.nodes.iter_mut().find(|n| n.name == name) {
        node.etcd = Some(EtcdMember {
            member_id: Some(id_hex(id)),
            state: EtcdMemberState::Joining,
            initial_cluster: cluster,
            initial_cluster_state: InitialClusterState::Existing,
            extra: Default::default(),
        });
    }
}

/// Writes each etcd node's member ID and state as etcd lists them. A voting member seen for the
/// first time without a record was bootstrapped: it is recorded with the voting members of the
/// document (what mkunits rendered before any record existed) and state `new`, so its unit
/// stays as it was.
pub fn members(document: &mut Document, observed: &[Observed]) {
    let voters: Vec<(u64, String, Vec<String>)> = observed
        .iter()
        .filter(|m| !m.is_learner)
        .map(|m| (m.id, m.name.clone(), m.peer_urls.clone()))
        .collect();
    let bootstrap = initial_cluster(document, &voters);
    let everyone: Vec<(u64, String, Vec<String>)> = observed
        .iter()
        .map(|m| (m.id, m.name.clone(), m.peer_urls.clone()))
        .collect();
    let joining = initial_cluster(document, &everyone);
    for node in document.nodes.iter_mut().filter(|n| n.has_role(Role::Etcd)) {
        let url = node_peer_url(node);
        let Some(member) = observed
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| Some(u) == url.as_ref()))
        else {
            continue;
        };
        let state = match (member.is_learner, member.started()) {
            (false, _) => EtcdMemberState::Member,
            (true, true) => EtcdMemberState::Learner,
            (true, false) => EtcdMemberState::Joining,
        };
        // A learner without a record was added by a run that could not print its document:
        // it joins with the membership as it stands (what MemberAdd answered, if nothing
        // changed since, and nothing does while a learner is joining).
        let (first_cluster, first_state) = if member.is_learner {
            (joining.clone(), InitialClusterState::Existing)
        } else {
            (bootstrap.clone(), InitialClusterState::New)
        };
        let record = node.etcd.get_or_insert_with(|| EtcdMember {
            member_id: None,
            state,
            initial_cluster: first_cluster,
            initial_cluster_state: first_state,
            extra: Default::default(),
        });
        record.member_id = Some(id_hex(member.id));
        record.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lab.json"),
        )
        .unwrap();
        hardway::doc::from_str(&text, "lab.json").unwrap()
    }

    fn observed(doc: &Document) -> Vec<Observed> {
        wanted(doc)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, w)| Observed {
                id: 0x10 + i as u64,
                name: w.name,
                peer_urls: vec![w.peer_url],
                client_urls: vec![],
                is_learner: false,
                healthy: true,
            })
            .collect()
    }

    #[test]
    fn first_sight_records_the_bootstrap_and_a_second_run_changes_nothing() {
        let mut d = doc();
        let seen = observed(&d);
        members(&mut d, &seen);
        let first = d.clone();
        let rec = d.nodes[0].etcd.as_ref().unwrap();
        assert_eq!(rec.state, EtcdMemberState::Member);
        assert_eq!(rec.initial_cluster_state, InitialClusterState::New);
        assert_eq!(
            rec.initial_cluster,
            "node-1=https://10.240.0.11:2380,node-2=https://10.240.0.12:2380,node-3=https://10.240.0.13:2380"
        );
        members(&mut d, &seen);
        assert_eq!(d, first);
    }

    #[test]
    fn a_joiner_gets_the_add_answer_as_its_initial_cluster() {
        let mut d = doc();
        let mut after: Vec<_> = observed(&d)
            .into_iter()
            .map(|m| (m.id, m.name, m.peer_urls))
            .collect();
        // etcd lists the new member without a name, and in ID order.
        after.insert(
            0,
            (1, String::new(), vec!["https://10.240.0.12:2380".into()]),
        );
        after.remove(2);
        joined(&mut d, "node-2", 1, &after);
        let rec = d.nodes[1].etcd.as_ref().unwrap();
        assert_eq!(rec.initial_cluster_state, InitialClusterState::Existing);
        assert_eq!(rec.state, EtcdMemberState::Joining);
        assert_eq!(
            rec.initial_cluster,
            "node-1=https://10.240.0.11:2380,node-2=https://10.240.0.12:2380,node-3=https://10.240.0.13:2380"
        );
    }

    #[test]
    fn a_learner_without_a_record_joins_with_the_membership_as_it_stands() {
        let mut d = doc();
        let mut seen = observed(&d);
        seen[2].is_learner = true;
        seen[2].name.clear();
        members(&mut d, &seen);
        let rec = d.nodes[2].etcd.as_ref().unwrap();
        assert_eq!(rec.state, EtcdMemberState::Joining);
        assert_eq!(rec.initial_cluster_state, InitialClusterState::Existing);
        assert_eq!(rec.initial_cluster.split(',').count(), 3);
        let voter = d.nodes[0].etcd.as_ref().unwrap();
        assert_eq!(
            voter.initial_cluster.split(',').count(),
            2,
            "bootstrap: the voters"
        );
    }

    #[test]
    fn records_are_carried_for_the_same_member_only() {
        let mut previous = doc();
        let seen = observed(&previous);
        members(&mut previous, &seen);
        let mut rebuilt = doc();
        rebuilt.nodes[1].ips = vec!["10.240.0.99".parse().unwrap()];
        carry(&mut rebuilt, &previous);
        assert_eq!(rebuilt.nodes[0].etcd, previous.nodes[0].etcd);
        assert_eq!(rebuilt.nodes[1].etcd, None, "a new address is a new member");
    }
}
