//! What to change, from plain data: the members the document wants, the members etcd lists (with
//! whether each answered its status), and the one next change that is safe to make.
//!
//! One change at a time, because each moves the quorum: a learner first (it does not vote, so
//! adding it cannot cost quorum), promoted once it has started and caught up, and removals last,
//! each only when the voting members left would still have a healthy majority. etcd 3.4 allows
//! one learner at a time (`ErrTooManyLearners`), and a learner that has not started yet was
//! told the membership of its MemberAdd: removing anyone before it starts would make it refuse
//! to join ("member count is unequal"), so a joining learner blocks every other change.

use serde::Serialize;

/// An etcd node of the document: the member it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wanted {
    pub name: String,
    pub peer_url: String,
}

/// A member as etcd lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    #[serde(serialize_with = "hex_id")]
    pub id: u64,
    /// Empty until the member has started (etcd learns the name from the member itself).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
    /// It answered a status call and knows a leader.
    pub healthy: bool,
}

impl Observed {
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }
}

/// etcd's member IDs as etcdctl prints them: 16 hex digits.
pub fn id_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn hex_id<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id_hex(*id))
}

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// MemberAdd as a learner.
    Add { name: String, peer_url: String },
    /// MemberPromote of a started learner.
    Promote {
        name: String,
        #[serde(serialize_with = "hex_id")]
        id: u64,
    },
    /// MemberRemove of a member the document no longer lists.
    Remove {
        name: String,
        #[serde(serialize_with = "hex_id")]
        id: u64,
    },
}

/// Why the next change cannot be made now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Hold {
    /// A learner was added and has not started: the user starts its unit, then runs again.
    Waiting(String),
    /// The change would lose quorum or remove the last member.
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Every change still needed, in the order they will be made.
    pub changes: Vec<Change>,
    /// The change to make now, when one is safe.
    pub next: Option<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
}

impl Plan {
    pub fn in_sync(&self) -> bool {
        self.changes.is_empty()
    }
}

fn wanted_url(wanted: &[Wanted], member: &Observed) -> Option<usize> {
    wanted
        .iter()
        .position(|w| member.peer_urls.iter().any(|u| u == &w.peer_url))
}

fn label(member: &Observed) -> String {
    if member.started() {
        member.name.clone()
    } else {
        format!("(unstarted {})", member.peer_urls.join(","))
    }
}

/// The changes that make `observed` match `wanted`, and the one to make next.
pub fn plan(wanted: &[Wanted], observed: &[Observed]) -> Plan {
    let unwanted: Vec<&Observed> = observed
        .iter()
        .filter(|m| wanted_url(wanted, m).is_none())
        .collect();
    let remove = |m: &&Observed| Change::Remove {
        name: label(m),
        id: m.id,
    };
    // Learners the document dropped go first: they do not vote, so removing one is always safe.
    let mut changes: Vec<Change> = unwanted
        .iter()
        .filter(|m| m.is_learner)
        .map(remove)
        .collect();
    for member in observed.iter().filter(|m| m.is_learner) {
        if let Some(i) = wanted_url(wanted, member) {
            changes.push(Change::Promote {
                name: wanted[i].name.clone(),
                id: member.id,
            });
        }
    }
    for w in wanted {
        if !observed
            .iter()
            .any(|m| m.peer_urls.iter().any(|u| u == &w.peer_url))
        {
            changes.push(Change::Add {
                name: w.name.clone(),
                peer_url: w.peer_url.clone(),
            });
        }
    }
    changes.extend(unwanted.iter().filter(|m| !m.is_learner).map(remove));
    let (next, hold) = match changes.first() {
        None => (None, None),
        Some(first) => match safe(first, observed) {
            Ok(()) => (Some(first.clone()), None),
            Err(hold) => (None, Some(hold)),
        },
    };
    Plan {
        changes,
        next,
        hold,
    }
}

/// Whether `change` may be made now, given who answers.
pub fn safe(change: &Change, observed: &[Observed]) -> Result<(), Hold> {
    let voters: Vec<&Observed> = observed.iter().filter(|m| !m.is_learner).collect();
    let healthy = |set: &[&Observed]| set.iter().filter(|m| m.healthy).count();
    let majority = |n: usize| n / 2 + 1;
    if let Some(joining) = observed.iter().find(|m| m.is_learner && !m.started()) {
        let removing_it = matches!(change, Change::Remove { id, .. } if *id == joining.id);
        if !removing_it {
            return Err(Hold::Waiting(format!(
                "learner {} was added and has not started: start its etcd unit (node-push), then run etcd-sync again",
                joining.peer_urls.join(",")
            )));
        }
        return Ok(());
    }
    let have = healthy(&voters);
    if have < majority(voters.len()) {
        return Err(Hold::Refused(format!(
            "only {have} of {} voting members answer: the cluster has no healthy majority, so no change is made",
            voters.len()
        )));
    }
    match change {
        Change::Add { .. } => Ok(()),
        Change::Promote { id, name } => {
            let learner_up = observed.iter().any(|m| m.id == *id && m.healthy);
            let after = voters.len() + 1;
            let up = have + usize::from(learner_up);
            if up < majority(after) {
                return Err(Hold::Refused(format!(
                    "promoting {name} makes {after} voters needing {} healthy, and only {up} would be",
                    majority(after)
                )));
            }
            Ok(())
        }
        Change::Remove { id, name } => {
            let Some(member) = observed.iter().find(|m| m.id == *id) else {
                return Ok(());
            };
            if member.is_learner {
                return Ok(());
            }
            let rest: Vec<&Observed> = voters.iter().copied().filter(|m| m.id != *id).collect();
            if rest.is_empty() {
                return Err(Hold::Refused(format!(
                    "{name} is the last member: etcd-sync never removes it"
                )));
            }
            let up = healthy(&rest);
            if up < majority(rest.len()) {
                return Err(Hold::Refused(format!(
                    "removing {name} would leave {} voting members of which only {up} answer (a majority needs {}): start the stopped members first",
                    rest.len(),
                    majority(rest.len())
                )));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(names: &[&str]) -> Vec<Wanted> {
        names
            .iter()
            .map(|n| Wanted {
                name: n.to_string(),
                peer_url: format!("https://{n}:2380"),
            })
            .collect()
    }

    fn member(id: u64, name: &str, learner: bool, healthy: bool) -> Observed {
        Observed {
            id,
            name: name.to_string(),
            peer_urls: vec![format!("https://{name}:2380")],
            client_urls: vec![format!("https://{name}:2379")],
            is_learner: learner,
            healthy,
        }
    }

    fn three() -> Vec<Observed> {
        vec![
            member(1, "a", false, true),
            member(2, "b", false, true),
            member(3, "c", false, true),
        ]
    }

    #[test]
    fn matching_members_need_nothing() {
        let p = plan(&want(&["a", "b", "c"]), &three());
        assert!(p.in_sync());
        assert_eq!((p.next, p.hold), (None, None));
    }

    #[test]
    fn a_new_node_is_added_then_promoted() {
        let p = plan(&want(&["a", "b", "c", "d"]), &three());
        assert_eq!(
            p.next,
            Some(Change::Add {
                name: "d".into(),
                peer_url: "https://d:2380".into()
            })
        );
        // Added, not started: etcd lists it without a name; nothing else happens meanwhile.
        let mut joined = three();
        let mut d = member(4, "d", true, false);
        d.name.clear();
        joined.push(d);
        let p = plan(&want(&["a", "b", "c", "d"]), &joined);
        assert_eq!(p.next, None);
        assert!(matches!(p.hold, Some(Hold::Waiting(_))), "{p:?}");
        // Started: promote it.
        joined[3] = member(4, "d", true, true);
        let p = plan(&want(&["a", "b", "c", "d"]), &joined);
        assert_eq!(
            p.next,
            Some(Change::Promote {
                name: "d".into(),
                id: 4
            })
        );
    }

    #[test]
    fn adds_come_before_removals() {
        let p = plan(&want(&["a", "b", "d"]), &three());
        assert_eq!(p.changes.len(), 2);
        assert!(matches!(p.next, Some(Change::Add { .. })), "{p:?}");
        assert!(matches!(p.changes[1], Change::Remove { id: 3, .. }));
    }

    #[test]
    fn removal_keeps_a_healthy_majority() {
        let ok = plan(&want(&["a", "b", "c"]), &{
            let mut m = three();
            m.push(member(4, "d", false, true));
            m
        });
        assert_eq!(
            ok.next,
            Some(Change::Remove {
                name: "d".into(),
                id: 4
            })
        );
        // 4 members, two of the remaining three stopped: removing d would leave 1 of 3.
        let mut m = three();
        m[1].healthy = false;
        m[2].healthy = false;
        m.push(member(4, "d", false, true));
        let p = plan(&want(&["a", "b", "c"]), &m);
        assert_eq!(p.next, None);
        assert!(matches!(p.hold, Some(Hold::Refused(_))), "{p:?}");
    }

    #[test]
    fn never_the_last_member() {
        let p = plan(&want(&["b"]), &[member(1, "a", false, true)]);
        // b must be added first; with b added and a the only voter, removing a is refused
        // until b votes.
        assert!(matches!(p.next, Some(Change::Add { .. })));
        let p = plan(&[], &[member(1, "a", false, true)]);
        assert!(
            matches!(&p.hold, Some(Hold::Refused(m)) if m.contains("last")),
            "{p:?}"
        );
    }

    #[test]
    fn a_dropped_learner_goes_first_even_unstarted() {
        let mut m = three();
        let mut d = member(4, "d", true, false);
        d.name.clear();
        m.push(d);
        let p = plan(&want(&["a", "b", "c"]), &m);
        assert!(
            matches!(p.next, Some(Change::Remove { id: 4, .. })),
            "{p:?}"
        );
    }

    #[test]
    fn no_change_without_quorum() {
        let mut m = three();
        m[0].healthy = false;
        m[1].healthy = false;
        let p = plan(&want(&["a", "b", "c", "d"]), &m);
        assert!(matches!(p.hold, Some(Hold::Refused(_))), "{p:?}");
    }
}
