//! Printing the report: pretty JSON (the default), a table for people, and for `--watch` the
//! changes between two checks.

use std::collections::BTreeMap;

use crate::report::{MemberReport, MemberState, Report};

pub fn json(report: &Report) -> String {
    hardway::json::to_string_pretty(report)
}

/// One line of JSON, for `--watch` (one object per line).
pub fn json_line(value: &impl serde::Serialize) -> String {
    hardway::json::to_line(value)
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Healthy => "healthy",
        MemberState::Unhealthy => "unhealthy",
        MemberState::Unreachable => "unreachable",
        MemberState::NoAnswer => "no answer",
        MemberState::TlsError => "tls error",
        MemberState::Error => "error",
    }
}

/// Bytes as etcdctl prints DB sizes: 20 kB, 1.2 MB (decimal units).
fn bytes(n: Option<i64>) -> String {
    let Some(n) = n else {
        return "-".into();
    };
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n} B"),
    }
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or("-".into(), |v| v.to_string())
}

pub fn table(report: &Report) -> String {
    let rows = report.members.iter().map(|m| {
        vec![
            m.name.clone().unwrap_or_else(|| "-".into()),
            m.endpoint.clone(),
            state_name(m.state).to_string(),
            opt(&m.member_id),
            opt(&m.version),
            match m.is_leader {
                Some(true) => "*".into(),
                Some(false) => "".into(),
                None => "-".into(),
            },
            opt(&m.raft_term),
            opt(&m.raft_index),
            opt(&m.raft_applied_index),
            bytes(m.db_size),
            bytes(m.db_size_in_use),
            if m.alarms.is_empty() {
                "-".into()
            } else {
                m.alarms.join(",")
            },
            m.cert
                .as_ref()
                .map_or("-".into(), |c| format!("{}d", c.days_left)),
            m.rtt_ms.map_or("-".into(), |ms| format!("{ms:.1}ms")),
        ]
    });
    let mut text = hardway::table::render(
        &[
            "name", "endpoint", "state", "id", "version", "leader", "term", "index", "applied",
            "db", "in use", "alarms", "cert", "rtt",
        ],
        rows,
    );
    text.push('\n');
    text.push_str(&summary(report));
    text.push('\n');
    for p in &report.problems {
        text.push_str(&format!("  - {p}\n"));
    }
    text
}

/// One line: the verdict and the cluster's numbers.
pub fn summary(report: &Report) -> String {
    format!(
        "cluster {}: {}, {}/{} members healthy (quorum {}), leader {}, raft index lag {}, {:.0} ms",
        report.cluster_id.as_deref().unwrap_or("?"),
        report.verdict.as_str(),
        report.members_healthy,
        report.members_total,
        report.quorum,
        report.leader.as_deref().unwrap_or("none"),
        opt(&report.raft_index_lag),
        report.took_ms,
    )
}

/// What `--watch` compares between two checks: the verdict, the leader, alarms and each
/// member's state — not timings or indexes, which change on every check.
pub fn watch_view(report: &Report) -> BTreeMap<String, String> {
    let mut view = BTreeMap::new();
    view.insert("verdict".into(), report.verdict.as_str().into());
    view.insert("leader".into(), opt(&report.leader));
    view.insert("alarms".into(), report.alarms.join(", "));
    for m in &report.members {
        view.insert(format!("member {}", m.label()), member_view(m));
    }
    view
}

fn member_view(m: &MemberReport) -> String {
    let mut text = state_name(m.state).to_string();
    if m.is_leader == Some(true) {
        text.push_str(", leader");
    }
    if let Some(problem) = m.problems.first() {
        // The failing step, without its timing.
        let step = problem.split(':').next().unwrap_or(problem);
        text.push_str(&format!(" ({step})"));
    }
    text
}

/// The differences between two views, as `key: old → new`.
pub fn changes(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (old.get(k), new.get(k));
            (a != b).then(|| {
                format!(
                    "{k}: {} → {}",
                    a.map_or("-", |s| s.as_str()),
                    b.map_or("-", |s| s.as_str())
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_etcdctl() {
        assert_eq!(bytes(Some(20480)), "20 kB");
        assert_eq!(bytes(Some(2_500_000)), "2.5 MB");
        assert_eq!(bytes(None), "-");
    }

    #[test]
    fn changes_name_what_moved() {
        let a: BTreeMap<String, String> = [("verdict".to_string(), "healthy".to_string())].into();
        let b: BTreeMap<String, String> = [("verdict".to_string(), "degraded".to_string())].into();
        assert_eq!(changes(&a, &b), ["verdict: healthy → degraded"]);
        assert!(changes(&a, &a).is_empty());
    }
}
