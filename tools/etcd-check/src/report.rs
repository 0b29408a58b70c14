//! The report: what each member answered (filled in by the probe as answers arrive, so a member
//! cut off by the deadline still shows what was tried), and the cluster verdict — a plain
//! function of the members' answers, so its rules are tested without a cluster.

use serde::{Deserialize, Serialize};

/// The cluster verdict; its exit code is the tool's.
/// Deserialize too, so tests and scripts in Rust read the report's verdict as this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Healthy,
    Degraded,
    Unavailable,
}

impl Verdict {
    pub fn exit(self) -> hardway::Exit {
        match self {
            Verdict::Healthy => hardway::Exit::Ok,
            Verdict::Degraded => hardway::Exit::Problem,
            Verdict::Unavailable => hardway::Exit::External,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// One member's state, from the first step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Answered a linearizable (quorum) read.
    Healthy,
    /// Answers, but a quorum read failed (no leader, no quorum).
    Unhealthy,
    /// The TCP connection failed (refused, no route).
    Unreachable,
    /// A step got no answer in time (stopped, overloaded or black-holed).
    NoAnswer,
    /// The TLS handshake failed or the member refused our client certificate.
    TlsError,
    /// Another failure (a gRPC error).
    Error,
}

/// One thing tried against a member: `ok` is null while it is under way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub ok: Option<bool>,
    pub ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub started: Option<std::time::Instant>,
}

pub mod steps {
    pub const TCP: &str = "tcp connect";
    pub const TLS: &str = "tls handshake";
    pub const CLIENT_CERT: &str = "client certificate";
    pub const GRPC: &str = "grpc connect";
    pub const STATUS: &str = "status";
    pub const SERIALIZABLE: &str = "serializable read";
    pub const LINEARIZABLE: &str = "linearizable read";
    pub const ALARMS: &str = "alarm list";
    pub const MEMBERS: &str = "member list";
}

/// The server certificate a member presented.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertInfo {
    pub subject: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub days_left: i64,
}

/// A member of the cluster as the member list names it (to map IDs to names, and to see
/// members no endpoint was given for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedMember {
    pub id: String,
    pub name: String,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberReport {
    pub name: Option<String>,
    pub endpoint: String,
    pub state: MemberState,
    pub reachable: bool,
    /// Null for a plain http endpoint.
    pub tls: Option<bool>,
    pub linearizable_read: bool,
    pub serializable_read: bool,
    /// 16 hex digits, as etcdctl prints member IDs.
    pub member_id: Option<String>,
    pub version: Option<String>,
    pub is_leader: Option<bool>,
    pub leader: Option<String>,
    pub is_learner: Option<bool>,
    pub raft_term: Option<u64>,
    pub raft_index: Option<u64>,
    pub raft_applied_index: Option<u64>,
    pub db_size: Option<i64>,
    pub db_size_in_use: Option<i64>,
    /// Alarms raised on this member (NOSPACE, CORRUPT).
    pub alarms: Vec<String>,
    /// Errors the member reports about itself in its status.
    pub errors: Vec<String>,
    pub cert: Option<CertInfo>,
    /// Round trip of a serializable read (answered locally, no raft).
    pub rtt_ms: Option<f64>,
    pub took_ms: Option<f64>,
    /// What went wrong with this member, one line each.
    pub problems: Vec<String>,
    /// What was tried, in order.
    pub steps: Vec<Step>,
    /// Filled by the probe, used by the verdict, not printed: alarms the alarm list returned
    /// (member ID, alarm), the member list, and the cluster ID.
    #[serde(skip)]
    pub seen_alarms: Option<Vec<(u64, String)>>,
    #[serde(skip)]
    pub status_alarms: Vec<(u64, String)>,
    #[serde(skip)]
    pub seen_members: Option<Vec<ListedMember>>,
    #[serde(skip)]
    pub cluster_id: Option<u64>,
}

impl MemberReport {
    pub fn new(name: Option<String>, endpoint: String) -> MemberReport {
        MemberReport {
            name,
            endpoint,
            state: MemberState::NoAnswer,
            reachable: false,
            tls: None,
            linearizable_read: false,
            serializable_read: false,
            member_id: None,
            version: None,
            is_leader: None,
            leader: None,
            is_learner: None,
            raft_term: None,
            raft_index: None,
            raft_applied_index: None,
            db_size: None,
            db_size_in_use: None,
            alarms: Vec::new(),
            errors: Vec::new(),
            cert: None,
            rtt_ms: None,
            took_ms: None,
            problems: Vec::new(),
            steps: Vec::new(),
            seen_alarms: None,
            status_alarms: Vec::new(),
            seen_members: None,
            cluster_id: None,
        }
    }

    /// Starts a step; returns its index for [`MemberReport::finish`].
    pub fn begin(&mut self, step: &'static str) -> usize {
        self.steps.push(Step {
            step,
            ok: None,
            ms: None,
            error: None,
            started: Some(std::time::Instant::now()),
        });
        self.steps.len() - 1
    }

    pub fn finish(&mut self, index: usize, result: Result<(), String>) {
        let step = &mut self.steps[index];
        step.ms = step.started.map(|s| millis(s.elapsed()));
        step.ok = Some(result.is_ok());
        step.error = result.err();
    }

    fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.step == name)
    }

    fn step_ok(&self, name: &str) -> bool {
        self.step(name).and_then(|s| s.ok) == Some(true)
    }

    /// Closes the report once the deadline passed: steps still under way become "no answer",
    /// and the member's state and problems are derived from the steps.
    pub fn finalize(&mut self) {
        for step in &mut self.steps {
            if step.ok.is_none() {
                let waited = step.started.map(|s| s.elapsed()).unwrap_or_default();
                step.ms = Some(millis(waited));
                step.ok = Some(false);
                step.error = Some(format!("no answer within {}", seconds(waited)));
            }
        }
        self.reachable = self.step_ok(steps::TCP);
        if self.step(steps::TLS).is_some() {
            self.tls = Some(self.step_ok(steps::TLS) && self.step_ok(steps::CLIENT_CERT));
        }
        self.linearizable_read = self.step_ok(steps::LINEARIZABLE);
        self.serializable_read = self.step_ok(steps::SERIALIZABLE);
        let first_failure = self
            .steps
            .iter()
            .find(|s| s.ok == Some(false))
            .map(|s| (s.step, s.error.clone().unwrap_or_default()));
        self.state = if self.linearizable_read {
            MemberState::Healthy
        } else {
            match &first_failure {
                Some((step, error)) if error.starts_with("no answer") => {
                    if *step == steps::LINEARIZABLE && self.step_ok(steps::STATUS) {
                        MemberState::Unhealthy
                    } else {
                        MemberState::NoAnswer
                    }
                }
                Some((steps::TCP, _)) => MemberState::Unreachable,
                Some((steps::TLS | steps::CLIENT_CERT, _)) => MemberState::TlsError,
                Some((steps::LINEARIZABLE, _)) => MemberState::Unhealthy,
                _ if self.step_ok(steps::STATUS) => MemberState::Unhealthy,
                _ => MemberState::Error,
            }
        };
        if !self.linearizable_read {
            // Report the failure that explains the state, and the quorum read's own failure.
            if let Some((step, error)) = &first_failure {
                self.problems.push(format!("{step}: {error}"));
            }
            if let Some(s) = self.step(steps::LINEARIZABLE) {
                if first_failure.as_ref().map(|f| f.0) != Some(steps::LINEARIZABLE) {
                    let error = s.error.clone().unwrap_or_default();
                    self.problems.push(format!("{}: {error}", s.step));
                }
            }
        }
    }

    /// The name to show: the node name, else the member's own name, else the endpoint.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.endpoint)
    }

    /// The member in a problem line: `name (endpoint)`, or the endpoint alone.
    pub fn who(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.endpoint),
            None => self.endpoint.clone(),
        }
    }

    /// True when the member list entry `listed` is this member: same ID, or for a member that
    /// did not answer, its client URL.
    fn is(&self, listed: &ListedMember) -> bool {
        self.member_id.as_deref() == Some(listed.id.as_str())
            || listed
                .client_urls
                .iter()
                .any(|u| u.trim_end_matches('/') == self.endpoint)
    }
}

/// Thresholds for the verdict.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_lag: u64,
    pub warn_days: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub cluster_id: Option<String>,
    /// Members in the cluster (the member list's count, or the endpoints checked).
    pub members_total: usize,
    pub quorum: usize,
    /// Members that answered a quorum read.
    pub members_healthy: usize,
    pub leader: Option<String>,
    /// Largest raft index gap between members, or between a member's committed and applied index.
    pub raft_index_lag: Option<u64>,
    pub alarms: Vec<String>,
    pub problems: Vec<String>,
    /// Members the member list names that no endpoint was checked for.
    pub unchecked_members: Vec<ListedMember>,
    pub took_ms: f64,
    pub members: Vec<MemberReport>,
}

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

fn seconds(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Judges the cluster from its finalized members' reports.
pub fn judge(mut members: Vec<MemberReport>, limits: Limits, took: std::time::Duration) -> Report {
    let listed = largest_member_list(&members);
    let members_total = members.len().max(listed.len());
    let cluster_id = members.iter().find_map(|m| m.cluster_id).map(hex);
    name_from_member_list(&mut members, &listed);
    let alarms = attribute_alarms(&mut members, &listed);

    let mut unavailable = unavailability(&members);
    let mut problems = Vec::new();
    let leader = match leaders(&members).as_slice() {
        [] => {
            if unavailable.is_empty() {
                unavailable.push("no leader".to_string());
            }
            None
        }
        [one] => Some(one.clone()),
        many => {
            problems.push(format!(
                "members disagree on the leader: {}",
                many.join(", ")
            ));
            None
        }
    };
    if let Some(leader) = &leader {
        problems.extend(leader_disagreements(&members, leader));
    }
    problems.extend(member_problems(&members, limits));
    problems.extend(alarms.iter().map(|a| format!("alarm {a}")));
    let (lag, lagging) = raft_lag(&members, limits);
    problems.extend(lagging);

    let unchecked_members: Vec<ListedMember> = listed
        .iter()
        .filter(|l| !members.iter().any(|m| m.is(l)))
        .cloned()
        .collect();
    let verdict = if !unavailable.is_empty() {
        Verdict::Unavailable
    } else if !problems.is_empty() {
        Verdict::Degraded
    } else {
        Verdict::Healthy
    };
    unavailable.extend(problems);
    Report {
        verdict,
        cluster_id,
        members_total,
        quorum: members_total / 2 + 1,
        members_healthy: members.iter().filter(|m| m.linearizable_read).count(),
        leader,
        raft_index_lag: lag,
        alarms,
        problems: unavailable,
        unchecked_members,
        took_ms: millis(took),
        members,
    }
}

/// The longest member list any member gave.
fn largest_member_list(members: &[MemberReport]) -> Vec<ListedMember> {
    members
        .iter()
        .filter_map(|m| m.seen_members.clone())
        .max_by_key(|l| l.len())
        .unwrap_or_default()
}

/// Names from the member list for endpoints given without one.
fn name_from_member_list(members: &mut [MemberReport], listed: &[ListedMember]) {
    for m in members.iter_mut().filter(|m| m.name.is_none()) {
        m.name = listed
            .iter()
            .find(|l| m.is(l))
            .map(|l| l.name.clone())
            .filter(|n| !n.is_empty());
    }
}

/// Alarms are cluster-wide answers: each goes to the member it names. Returns one line per
/// alarm, `NOSPACE on etcd-1`.
fn attribute_alarms(members: &mut [MemberReport], listed: &[ListedMember]) -> Vec<String> {
    let mut alarms: Vec<(u64, String)> = members
        .iter()
        .flat_map(|m| {
            let listed = m.seen_alarms.clone().unwrap_or_default();
            listed.into_iter().chain(m.status_alarms.clone())
        })
        .collect();
    alarms.sort();
    alarms.dedup();
    for m in members.iter_mut() {
        m.alarms = alarms
            .iter()
            .filter(|(id, _)| m.member_id.as_deref() == Some(hex(*id).as_str()))
            .map(|(_, a)| a.clone())
            .collect();
    }
    alarms
        .iter()
        .map(|(id, alarm)| {
            let who = members
                .iter()
                .find(|m| m.member_id.as_deref() == Some(hex(*id).as_str()))
                .map(|m| m.label().to_string())
                .or_else(|| {
                    listed
                        .iter()
                        .find(|l| l.id == hex(*id))
                        .map(|l| l.name.clone())
                })
                .unwrap_or_else(|| hex(*id));
            format!("{alarm} on {who}")
        })
        .collect()
}

/// Why the cluster is unavailable: no endpoint answers, or none could do a quorum read.
fn unavailability(members: &[MemberReport]) -> Vec<String> {
    let healthy = members.iter().filter(|m| m.linearizable_read).count();
    let answering = members.iter().filter(|m| m.raft_index.is_some()).count();
    if answering == 0 && healthy == 0 {
        vec!["no endpoint answers".to_string()]
    } else if healthy == 0 {
        vec!["no quorum: no member could do a quorum read".to_string()]
    } else {
        Vec::new()
    }
}

/// The leaders named by the members that can do a quorum read (the others may be stale).
fn leaders(members: &[MemberReport]) -> Vec<String> {
    let mut leaders: Vec<String> = members
        .iter()
        .filter(|m| m.linearizable_read)
        .filter_map(|m| m.leader.clone())
        .filter(|l| l != &hex(0))
        .collect();
    leaders.sort();
    leaders.dedup();
    leaders
}

/// Members whose own "I am the leader" disagrees with the agreed leader.
fn leader_disagreements(members: &[MemberReport], leader: &str) -> Vec<String> {
    members
        .iter()
        .filter(|m| {
            let says_leader = m.is_leader == Some(true);
            let is_leader = m.member_id.as_deref() == Some(leader);
            m.raft_index.is_some() && says_leader != is_leader
        })
        .map(|m| {
            format!(
                "{} disagrees on the leader ({} says {})",
                m.label(),
                m.label(),
                m.leader.as_deref().unwrap_or("none")
            )
        })
        .collect()
}

/// Each member's failed steps, the errors it reports and a server certificate near expiry.
fn member_problems(members: &[MemberReport], limits: Limits) -> Vec<String> {
    let mut problems = Vec::new();
    for m in members {
        for p in &m.problems {
            problems.push(format!("{}: {p}", m.who()));
        }
        for e in &m.errors {
            problems.push(format!("{} reports: {e}", m.label()));
        }
        if let Some(cert) = &m.cert {
            if cert.days_left < limits.warn_days as i64 {
                problems.push(format!(
                    "{}: server certificate expires in {} days ({}), within --warn-days {}",
                    m.label(),
                    cert.days_left,
                    cert.not_after,
                    limits.warn_days
                ));
            }
        }
    }
    problems
}

/// The largest lag — behind the most advanced member, or applied behind committed — and a
/// problem for each member beyond --max-lag.
fn raft_lag(members: &[MemberReport], limits: Limits) -> (Option<u64>, Vec<String>) {
    let max_index = members.iter().filter_map(|m| m.raft_index).max();
    let mut lag: Option<u64> = None;
    let mut problems = Vec::new();
    for m in members {
        let (Some(index), Some(max)) = (m.raft_index, max_index) else {
            continue;
        };
        let behind = max - index;
        let unapplied = m
            .raft_applied_index
            .map(|a| index.saturating_sub(a))
            .unwrap_or(0);
        let worst = behind.max(unapplied);
        lag = Some(lag.unwrap_or(0).max(worst));
        if worst > limits.max_lag {
            problems.push(format!(
                "{} lags: raft index {index} is {behind} behind the most advanced member, applied index {} is {unapplied} behind it (--max-lag {})",
                m.label(),
                m.raft_applied_index.unwrap_or(0),
                limits.max_lag
            ));
        }
    }
    (lag, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        max_lag: 100,
        warn_days: 30,
    };

    fn healthy(i: u64, leader: u64) -> MemberReport {
        let mut m = MemberReport::new(
            Some(format!("etcd-{i}")),
            format!("https://10.0.0.{i}:2379"),
        );
        for s in [
            steps::TCP,
            steps::TLS,
            steps::CLIENT_CERT,
            steps::GRPC,
            steps::STATUS,
            steps::SERIALIZABLE,
            steps::LINEARIZABLE,
        ] {
            let h = m.begin(s);
            m.finish(h, Ok(()));
        }
        m.member_id = Some(hex(i));
        m.leader = Some(hex(leader));
        m.is_leader = Some(i == leader);
        m.raft_index = Some(1000);
        m.raft_applied_index = Some(1000);
        m.cert = Some(CertInfo {
            subject: "CN=etcd".into(),
            not_after: "2030-01-01T00:00:00Z".into(),
            days_left: 365,
        });
        m.finalize();
        m
    }

    fn failed_at(i: u64, step: &'static str, error: Option<&str>) -> MemberReport {
        let mut m = MemberReport::new(None, format!("https://10.0.0.{i}:2379"));
        for s in [steps::TCP, steps::TLS, steps::CLIENT_CERT, steps::GRPC] {
            let h = m.begin(s);
            if s == step {
                if let Some(e) = error {
                    m.finish(h, Err(e.into()));
                }
                break;
            }
            m.finish(h, Ok(()));
        }
        m.finalize();
        m
    }

    fn verdict(members: Vec<MemberReport>) -> Report {
        judge(members, LIMITS, Duration::from_millis(5))
    }

    #[test]
    fn all_answering_with_one_leader_is_healthy() {
        let r = verdict(vec![healthy(1, 2), healthy(2, 2), healthy(3, 2)]);
        assert_eq!(r.verdict, Verdict::Healthy, "{:?}", r.problems);
        assert_eq!(r.leader.as_deref(), Some("0000000000000002"));
        assert_eq!((r.quorum, r.members_healthy), (2, 3));
    }

    #[test]
    fn a_member_down_is_degraded_with_what_was_tried() {
        let r = verdict(vec![
            healthy(1, 2),
            healthy(2, 2),
            failed_at(3, steps::TLS, None),
        ]);
        assert_eq!(r.verdict, Verdict::Degraded);
        assert_eq!(r.members[2].state, MemberState::NoAnswer);
        assert!(r.members[2].reachable);
        assert!(
            r.problems[0].contains("tls handshake: no answer within"),
            "{:?}",
            r.problems
        );
        let r = verdict(vec![
            healthy(1, 2),
            healthy(2, 2),
            failed_at(3, steps::TCP, Some("Connection refused")),
        ]);
        assert_eq!(r.members[2].state, MemberState::Unreachable);
        assert_eq!(r.verdict, Verdict::Degraded);
    }

    #[test]
    fn nobody_answering_is_unavailable() {
        let r = verdict(vec![
            failed_at(1, steps::TLS, Some("bad certificate")),
            failed_at(2, steps::TCP, Some("Connection refused")),
        ]);
        assert_eq!(r.verdict, Verdict::Unavailable);
        assert_eq!(r.problems[0], "no endpoint answers");
        assert_eq!(r.members[0].state, MemberState::TlsError);
    }

    #[test]
    fn answers_without_a_quorum_read_are_unavailable() {
        let mut lone = MemberReport::new(None, "https://10.0.0.1:2379".into());
        for s in [steps::TCP, steps::GRPC, steps::STATUS] {
            let h = lone.begin(s);
            lone.finish(h, Ok(()));
        }
        let h = lone.begin(steps::LINEARIZABLE);
        lone.finish(h, Err("etcdserver: no leader".into()));
        lone.raft_index = Some(9);
        lone.finalize();
        assert_eq!(lone.state, MemberState::Unhealthy);
        let r = verdict(vec![
            lone,
            failed_at(2, steps::TLS, None),
            failed_at(3, steps::TLS, None),
        ]);
        assert_eq!(r.verdict, Verdict::Unavailable);
        assert!(r.problems[0].starts_with("no quorum"), "{:?}", r.problems);
    }

    #[test]
    fn lag_alarms_leader_disagreement_and_expiry_degrade() {
        let mut lagging = healthy(3, 2);
        lagging.raft_index = Some(800);
        lagging.raft_applied_index = Some(800);
        let r = verdict(vec![healthy(1, 2), healthy(2, 2), lagging.clone()]);
        assert_eq!(r.verdict, Verdict::Degraded);
        assert_eq!(r.raft_index_lag, Some(200));
        let r = judge(
            vec![healthy(1, 2), healthy(2, 2), lagging],
            Limits {
                max_lag: 200,
                warn_days: 30,
            },
            Duration::ZERO,
        );
        assert_eq!(r.verdict, Verdict::Healthy, "{:?}", r.problems);

        let mut unapplied = healthy(3, 2);
        unapplied.raft_applied_index = Some(500);
        assert_eq!(
            verdict(vec![healthy(1, 2), healthy(2, 2), unapplied]).verdict,
            Verdict::Degraded
        );

        let mut alarmed = healthy(1, 2);
        alarmed.seen_alarms = Some(vec![(3, "NOSPACE".into())]);
        let r = verdict(vec![alarmed, healthy(2, 2), healthy(3, 2)]);
        assert_eq!(r.verdict, Verdict::Degraded);
        assert_eq!(r.alarms, ["NOSPACE on etcd-3"]);
        assert_eq!(r.members[2].alarms, ["NOSPACE"]);

        let r = verdict(vec![healthy(1, 1), healthy(2, 2), healthy(3, 2)]);
        assert_eq!(r.verdict, Verdict::Degraded);
        assert!(r.problems[0].contains("disagree"), "{:?}", r.problems);

        let mut expiring = healthy(2, 2);
        expiring.cert.as_mut().unwrap().days_left = 10;
        let r = verdict(vec![healthy(1, 2), expiring, healthy(3, 2)]);
        assert_eq!(r.verdict, Verdict::Degraded);
        assert!(
            r.problems[0].contains("expires in 10 days"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn member_list_sets_the_quorum_and_names_members() {
        let listed = |i: u64| ListedMember {
            id: hex(i),
            name: format!("m{i}"),
            client_urls: vec![],
            is_learner: false,
        };
        let mut one = healthy(1, 1);
        one.name = None;
        one.seen_members = Some(vec![listed(1), listed(2), listed(3)]);
        let r = verdict(vec![one]);
        assert_eq!((r.members_total, r.quorum), (3, 2));
        assert_eq!(r.members[0].name.as_deref(), Some("m1"));
        assert_eq!(r.unchecked_members.len(), 2);
        assert_eq!(r.verdict, Verdict::Healthy);
    }
}
