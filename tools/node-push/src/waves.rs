//! The order of a rolling restart: which nodes are pushed together, in which wave.
//!
//! Restarting every etcd member at once loses quorum, and restarting every API server at once
//! drops the API, so a node whose running services restart goes alone when it is a control-plane
//! node (etcd first, then controllers, then load balancers: the order kubeadm and the upgrade
//! guides give), and workers go in batches. A node that restarts nothing (nothing changed, or its
//! services are not running yet) risks nothing: those all go first, together, which is also what a
//! new etcd cluster needs (its first members only become ready once a quorum has started).
//!
//! Plain data in, plain data out: [`waves`] decides, the caller pushes and runs the gate.

use hardway::doc::{Node, Role};

/// How much a node's restart risks, in the order the tiers are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Etcd,
    Controller,
    Lb,
    Worker,
}

impl Tier {
    /// A node's highest-risk role: a stacked controller with etcd counts as etcd.
    pub fn of(node: &Node) -> Tier {
        if node.has_role(Role::Etcd) {
            Tier::Etcd
        } else if node.has_role(Role::Controller) {
            Tier::Controller
        } else if node.has_role(Role::Lb) {
            Tier::Lb
        } else {
            Tier::Worker
        }
    }

    /// One node at a time: the tiers whose members together hold a quorum or a VIP.
    fn alone(self) -> bool {
        self != Tier::Worker
    }
}

/// What the order needs to know of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub tier: Tier,
    /// True when pushing it restarts a service that is running now.
    pub restarts: bool,
}

/// Nodes pushed together; a rolling wave is followed by the health gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// Indexes into the members given to [`waves`], in their order.
    pub nodes: Vec<usize>,
    /// True when its nodes restart running services (so the gate follows it).
    pub rolling: bool,
}

/// The waves for `members` (in document order): first every node that restarts nothing, together;
/// then each restarting etcd, controller and load-balancer node alone, tier by tier in document
/// order; then the restarting workers, `batch` at a time. Every member is in exactly one wave; no
/// wave is empty.
pub fn waves(members: &[Member], batch: usize) -> Vec<Wave> {
    let batch = batch.max(1);
    let mut waves = Vec::new();
    let quiet: Vec<usize> = (0..members.len())
        .filter(|&i| !members[i].restarts)
        .collect();
    if !quiet.is_empty() {
        waves.push(Wave {
            nodes: quiet,
            rolling: false,
        });
    }
    let mut restarting: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].restarts)
        .collect();
    // Stable: document order within a tier.
    restarting.sort_by_key(|&i| members[i].tier);
    let (alone, workers): (Vec<usize>, Vec<usize>) = restarting
        .into_iter()
        .partition(|&i| members[i].tier.alone());
    for node in alone {
        waves.push(Wave {
            nodes: vec![node],
            rolling: true,
        });
    }
    for chunk in workers.chunks(batch) {
        waves.push(Wave {
            nodes: chunk.to_vec(),
            rolling: true,
        });
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(tier: Tier, restarts: bool) -> Member {
        Member { tier, restarts }
    }

    fn nodes(waves: &[Wave]) -> Vec<(Vec<usize>, bool)> {
        waves.iter().map(|w| (w.nodes.clone(), w.rolling)).collect()
    }

    #[test]
    fn control_plane_nodes_restart_alone_etcd_first_then_workers_in_batches() {
        use Tier::*;
        let members = [
            m(Worker, true),     // 0
            m(Controller, true), // 1
            m(Etcd, true),       // 2
            m(Worker, true),     // 3
            m(Etcd, false),      // 4: restarts nothing
            m(Lb, true),         // 5
            m(Worker, true),     // 6
            m(Etcd, true),       // 7
            m(Worker, false),    // 8
        ];
        assert_eq!(
            nodes(&waves(&members, 2)),
            [
                (vec![4, 8], false),
                (vec![2], true),
                (vec![7], true),
                (vec![1], true),
                (vec![5], true),
                (vec![0, 3], true),
                (vec![6], true),
            ]
        );
    }

    #[test]
    fn a_first_install_goes_in_one_wave_and_nothing_is_empty() {
        use Tier::*;
        let first = [
            m(Etcd, false),
            m(Etcd, false),
            m(Etcd, false),
            m(Worker, false),
        ];
        assert_eq!(nodes(&waves(&first, 5)), [(vec![0, 1, 2, 3], false)]);
        assert!(waves(&[], 5).is_empty());
        // A batch of 0 counts as 1; every member is in exactly one wave.
        let members = [m(Worker, true), m(Worker, true), m(Etcd, true)];
        let all = waves(&members, 0);
        assert_eq!(
            nodes(&all),
            [(vec![2], true), (vec![0], true), (vec![1], true)]
        );
        let mut seen: Vec<usize> = all.iter().flat_map(|w| w.nodes.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    fn tiers_come_from_the_highest_risk_role() {
        let doc = testkit::fixture_document("lab.json");
        let mut node = doc.nodes[0].clone();
        node.roles = vec![Role::Controller, Role::Etcd];
        assert_eq!(Tier::of(&node), Tier::Etcd);
        node.roles = vec![Role::Worker, Role::Controller];
        assert_eq!(Tier::of(&node), Tier::Controller);
        node.roles = vec![Role::Lb];
        assert_eq!(Tier::of(&node), Tier::Lb);
        node.roles = vec![Role::Worker];
        assert_eq!(Tier::of(&node), Tier::Worker);
    }
}
