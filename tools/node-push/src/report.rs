//! The per-node report: what changed, what was started, what failed, as JSON or a table.

use serde::{Deserialize, Serialize};

/// What node-push did (or, with `--dry-run`, would do) on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeReport {
    pub node: String,
    pub address: String,
    pub ok: bool,
    /// The host key's fingerprint, once seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// True when `--accept-new` recorded this host's key in known_hosts.
    pub host_key_recorded: bool,
    /// Destinations uploaded or whose mode or owner was fixed.
    pub files_changed: Vec<String>,
    pub files_unchanged: Vec<String>,
    pub bytes_uploaded: u64,
    pub daemon_reload: bool,
    /// Services given `systemctl enable --now` (a no-op for an enabled, running unit).
    pub services_started: Vec<String>,
    /// Services restarted because one of their files changed.
    pub services_restarted: Vec<String>,
    /// The running services it restarted (the others were not running: a restart started them):
    /// what put it in a rolling wave.
    pub restarted_running: Vec<String>,
    /// Its wave of the rollout, from 1 (see `waves`); 0 when it failed before the order was made.
    pub wave: usize,
    /// The health gate after its wave.
    pub gate: GateReport,
    /// True when it was not pushed at all: the rollout stopped at an earlier wave.
    pub skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
}

/// The gate's verdict on a node's wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Its wave restarted no running service: no gate.
    #[default]
    NotNeeded,
    /// Its wave restarted running services, but no `--between` was given.
    NotGiven,
    /// Not run: a dry run, or the node was not pushed or failed before the gate.
    NotRun,
    Passed,
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotNeeded => "not-needed",
            Verdict::NotGiven => "not-given",
            Verdict::NotRun => "not-run",
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
        }
    }
}

/// What the gate after a node's wave did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateReport {
    pub verdict: Verdict,
    /// How many times it ran (0 when it did not).
    pub attempts: u32,
    /// The exit status of its last attempt that exited; null when none did (killed at
    /// --gate-timeout).
    pub last_status: Option<i32>,
    pub seconds: f64,
}

/// The whole run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub dry_run: bool,
    pub nodes: Vec<NodeReport>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.nodes.iter().filter(|n| !n.ok).count()
    }

    pub fn to_json(&self) -> String {
        hardway::json::to_string_pretty(self)
    }

    pub fn to_table(&self) -> String {
        let headers = [
            "node",
            "address",
            "status",
            "changed",
            "unchanged",
            "started",
            "restarted",
            "wave",
            "gate",
            "error",
        ];
        let rows = self.nodes.iter().map(|n| {
            vec![
                n.node.clone(),
                n.address.clone(),
                match (n.ok, self.dry_run) {
                    _ if n.skipped => "skipped".into(),
                    (false, _) => "failed".into(),
                    (true, true) => "dry-run".into(),
                    (true, false) => "ok".into(),
                },
                n.files_changed.len().to_string(),
                n.files_unchanged.len().to_string(),
                n.services_started.len().to_string(),
                n.services_restarted.join(","),
                n.wave.to_string(),
                n.gate.verdict.as_str().into(),
                n.error.clone().unwrap_or_default(),
            ]
        });
        hardway::table::render(&headers, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_node_with_its_wave_and_gate() {
        let report = Report {
            dry_run: false,
            nodes: vec![
                NodeReport {
                    node: "a".into(),
                    ok: true,
                    files_changed: vec!["/x".into()],
                    wave: 2,
                    gate: GateReport {
                        verdict: Verdict::Passed,
                        attempts: 3,
                        last_status: Some(0),
                        seconds: 4.2,
                    },
                    ..Default::default()
                },
                NodeReport {
                    node: "b".into(),
                    error: Some("cannot connect".into()),
                    ..Default::default()
                },
                NodeReport {
                    node: "c".into(),
                    wave: 3,
                    skipped: true,
                    gate: GateReport {
                        verdict: Verdict::NotRun,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            ],
        };
        let table = report.to_table();
        let rows: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), 4, "{table}");
        let row = |name: &str| rows.iter().find(|r| r[0] == name).unwrap().clone();
        assert_eq!(row("a")[1..], ["ok", "1", "0", "0", "2", "passed"]);
        assert_eq!(row("b")[1..3], ["failed", "0"]);
        assert_eq!(row("c")[1..], ["skipped", "0", "0", "0", "3", "not-run"]);
        assert_eq!(report.failed(), 2);
        let parsed: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(parsed, report);
    }
}
