//! The run across nodes: probe every node at once (at most `--parallel`; a node that restarts no
//! running service is pushed right then, which is wave 1), order them into waves
//! ([`crate::waves`]), then push the rolling waves one after another, with the health gate
//! ([`crate::gate`]) after each, stopping at the first wave that does not come back healthy.
//!
//! A node in a rolling wave that fails its push stops the rollout too (its service may be down);
//! in the first wave, of nodes that restart nothing, a failure fails only that node, as before.
//! With a gate, it also runs once before the first rolling wave, so a cluster that is already
//! degraded (a member down) is not made to lose its quorum by the first restart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::gate::{Gate, Outcome};
use crate::plan::NodePlan;
use crate::push::{self, Context, Probed};
use crate::report::{GateReport, NodeReport, Report, Verdict};
use crate::waves::{self, Member, Wave};

/// How the waves are made and checked.
pub struct Rollout<'a> {
    pub ctx: Context<'a>,
    pub parallel: usize,
    pub batch: usize,
    pub gate: Option<&'a Gate>,
}

impl Rollout<'_> {
    /// Pushes every planned node; reports in the plans' order.
    pub fn run(&self, plans: &[NodePlan]) -> Report {
        let probed = in_parallel(plans.len(), self.parallel, |i| {
            push::probe(&plans[i], &self.ctx)
        });
        let members: Vec<Member> = plans
            .iter()
            .zip(&probed)
            .map(|(plan, probed)| Member {
                tier: plan.tier,
                restarts: probed.restarts_running(),
            })
            .collect();
        let waves = waves::waves(&members, self.batch);
        let mut pending: Vec<Option<Probed>> = probed.into_iter().map(Some).collect();
        let mut done: Vec<Option<NodeReport>> = plans.iter().map(|_| None).collect();
        let mut stopped: Option<String> = None;
        let mut gated_once = false;
        for (w, wave) in waves.iter().enumerate() {
            let number = w + 1;
            if stopped.is_none() && wave.rolling && !gated_once && !self.ctx.dry_run {
                gated_once = true;
                stopped = self.gate_before(number, wave, plans);
            }
            if let Some(why) = &stopped {
                for &i in &wave.nodes {
                    let mut report = pending[i].take().expect("one wave each").skip(why);
                    report.wave = number;
                    done[i] = Some(report);
                }
                continue;
            }
            let mut reports = self.push_wave(number, wave, plans, &mut pending);
            for report in &reports {
                log_node(report, self.ctx.dry_run);
            }
            stopped = self.settle(number, wave, &mut reports);
            for (&i, report) in wave.nodes.iter().zip(reports) {
                done[i] = Some(report);
            }
        }
        Report {
            dry_run: self.ctx.dry_run,
            nodes: done
                .into_iter()
                .map(|r| r.expect("every node is in a wave"))
                .collect(),
        }
    }

    /// Applies one wave's nodes at once (at most `parallel`); their reports in the wave's order.
    fn push_wave(
        &self,
        number: usize,
        wave: &Wave,
        plans: &[NodePlan],
        pending: &mut [Option<Probed>],
    ) -> Vec<NodeReport> {
        let probed: Vec<Mutex<Option<Probed>>> = wave
            .nodes
            .iter()
            .map(|&i| Mutex::new(pending[i].take()))
            .collect();
        in_parallel(wave.nodes.len(), self.parallel, |k| {
            let probed = probed[k]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .expect("each node is applied once");
            let mut report = push::apply(&plans[wave.nodes[k]], probed, &self.ctx);
            report.wave = number;
            report
        })
    }

    /// After a wave: the gate when it restarted running services. Returns why the rollout
    /// stops, if it does: a node of a rolling wave failed, or the gate did not pass.
    fn settle(&self, number: usize, wave: &Wave, reports: &mut [NodeReport]) -> Option<String> {
        if !wave.rolling {
            return None;
        }
        if let Some(failed) = reports.iter().find(|r| !r.ok) {
            let why = format!(
                "not pushed: the rollout stopped at {} (wave {number}), whose push failed",
                failed.node
            );
            for report in reports.iter_mut() {
                report.gate.verdict = Verdict::NotRun;
            }
            return Some(why);
        }
        let nodes: Vec<&str> = reports.iter().map(|r| r.node.as_str()).collect();
        let gate = self.check(number, &nodes);
        let names = nodes.join(", ");
        for report in reports.iter_mut() {
            report.gate = gate.clone();
        }
        if gate.verdict != Verdict::Failed {
            return None;
        }
        let message = format!(
            "did not come back healthy: the gate {}",
            how_it_failed(&gate)
        );
        hardway::tool::log(
            crate::TOOL,
            format!("error: {names} (wave {number}) {message}"),
        );
        for report in reports.iter_mut() {
            report.ok = false;
            report.error = Some(message.clone());
        }
        Some(format!(
            "not pushed: the rollout stopped at {names} (wave {number}): the gate failed"
        ))
    }

    /// The gate's verdict on a rolling wave whose nodes all pushed.
    fn check(&self, number: usize, nodes: &[&str]) -> GateReport {
        let not = |verdict| GateReport {
            verdict,
            ..Default::default()
        };
        let gate = match (self.gate, self.ctx.dry_run) {
            (_, true) => return not(Verdict::NotRun),
            (None, false) => return not(Verdict::NotGiven),
            (Some(gate), false) => gate,
        };
        let outcome = gate.run(number, nodes);
        if outcome.passed {
            hardway::tool::log(
                crate::TOOL,
                format!(
                    "gate after wave {number} ({}): passed after {} attempts, {} s",
                    nodes.join(", "),
                    outcome.attempts,
                    outcome.seconds
                ),
            );
        }
        gate_report(outcome)
    }

    /// The gate before the first restart: the cluster must be healthy before a member goes
    /// down. Returns why the rollout stops, if it does.
    fn gate_before(&self, number: usize, wave: &Wave, plans: &[NodePlan]) -> Option<String> {
        let gate = self.gate?;
        let names: Vec<&str> = wave.nodes.iter().map(|&i| plans[i].name.as_str()).collect();
        let outcome = gate.run(number, &names);
        if outcome.passed {
            return None;
        }
        let why = format!(
            "not pushed: the gate before the first restart {}",
            how_it_failed(&gate_report(outcome))
        );
        hardway::tool::log(crate::TOOL, format!("error: {why}"));
        Some(why)
    }
}

fn gate_report(outcome: Outcome) -> GateReport {
    GateReport {
        verdict: if outcome.passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        attempts: outcome.attempts,
        last_status: outcome.last_status,
        seconds: outcome.seconds,
    }
}

/// How a failed gate ended, as both error messages say it: its last exit status (or that it
/// never exited), then the attempts and time it had.
fn how_it_failed(gate: &GateReport) -> String {
    let status = match gate.last_status {
        Some(code) => format!("exited {code}"),
        None => "never exited (killed at --gate-timeout)".into(),
    };
    format!(
        "{status} ({} attempts in {} s, --gate-timeout)",
        gate.attempts, gate.seconds
    )
}

/// `f(0..count)` on at most `limit` threads; the results in index order.
fn in_parallel<T: Send>(count: usize, limit: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let workers = limit.clamp(1, count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let value = f(i);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every index ran")
        })
        .collect()
}

/// One plain line per node on stderr as its push finishes (before its wave's gate).
fn log_node(report: &NodeReport, dry_run: bool) {
    let what = if dry_run { "would change" } else { "changed" };
    match &report.error {
        None => hardway::tool::log(
            crate::TOOL,
            format!(
                "{} ({}, wave {}): {what} {} files, {} unchanged, {} bytes; started {}, restarted {}{}",
                report.node,
                report.address,
                report.wave,
                report.files_changed.len(),
                report.files_unchanged.len(),
                report.bytes_uploaded,
                report.services_started.len(),
                report.services_restarted.len(),
                if report.host_key_recorded {
                    "; host key recorded"
                } else {
                    ""
                },
            ),
        ),
        Some(error) => hardway::tool::log(
            crate::TOOL,
            format!("error: {} ({}): {error}", report.node, report.address),
        ),
    }
}
