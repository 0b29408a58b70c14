//! The health gate of a rolling restart: the user's command (`--between`), run through `sh -c`
//! after each wave that restarted running services, retried until it exits 0 or the gate
//! timeout passes.
//!
//! Tools meet only through the shell: node-push knows nothing of etcd, it runs what the user
//! says (`etcd-check -f out/cluster.json --dir out`, a curl of `/readyz`, a script). The gate's
//! stdout and stderr both go to node-push's stderr, so stdout stays the document. Each attempt
//! runs in a process group of its own, killed whole when the timeout passes mid-attempt, so a
//! gate that hangs cannot hold the rollout past `--gate-timeout`.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

/// Time between the end of a failed attempt and the next.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// How often a running attempt is polled.
const POLL: Duration = Duration::from_millis(50);

/// The gate as the command line gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub command: String,
    pub timeout: Duration,
}

/// What one run of the gate found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub passed: bool,
    pub attempts: u32,
    /// The exit status of the last attempt that exited; `None` when none did (each was killed
    /// at the timeout, or by a signal).
    pub last_status: Option<i32>,
    pub seconds: f64,
}

impl Gate {
    /// Runs the gate until it passes or the timeout passes. `nodes` (the wave just pushed) and
    /// `wave` are given to it as `NODE_PUSH_NODES` (space-separated) and `NODE_PUSH_WAVE`.
    pub fn run(&self, wave: usize, nodes: &[&str]) -> Outcome {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut outcome = Outcome {
            passed: false,
            attempts: 0,
            last_status: None,
            seconds: 0.0,
        };
        loop {
            outcome.attempts += 1;
            let status = match self.spawn(wave, nodes) {
                Ok(child) => wait_until(child, deadline),
                Err(e) => {
                    hardway::tool::log(crate::TOOL, format!("error: cannot run the gate: {e}"));
                    None
                }
            };
            let code = status.and_then(|s| s.code());
            // An attempt killed at the timeout says nothing: the last verdict stays the one
            // the gate gave before.
            if code.is_some() {
                outcome.last_status = code;
            }
            outcome.passed = code == Some(0);
            if outcome.passed || Instant::now() + INTERVAL >= deadline {
                break;
            }
            std::thread::sleep(INTERVAL);
        }
        outcome.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        outcome
    }

    fn spawn(&self, wave: usize, nodes: &[&str]) -> std::io::Result<Child> {
        // The gate's stdout is a copy of our stderr: stdout carries only the document.
        let stderr = std::io::stderr();
        let out = std::os::fd::AsFd::as_fd(&stderr).try_clone_to_owned()?;
        Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("NODE_PUSH_WAVE", wave.to_string())
            .env("NODE_PUSH_NODES", nodes.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
    }
}

/// Waits for `child` until `deadline`; then kills its whole process group. `None`: killed.
fn wait_until(mut child: Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            _ => break,
        }
    }
    if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(command: &str, seconds: u64) -> Gate {
        Gate {
            command: command.into(),
            timeout: Duration::from_secs(seconds),
        }
    }

    /// A real `sh`: the gate sees the wave and its nodes, passes on the attempt that exits 0
    /// (the third here, by a counter file), and a gate that keeps failing reports its last exit
    /// status.
    #[test]
    fn retries_until_it_passes_and_reports_the_last_status() {
        let tmp = tempfile::tempdir().unwrap();
        let count = tmp.path().join("count");
        let seen = tmp.path().join("seen");
        let script = format!(
            "echo \"$NODE_PUSH_WAVE $NODE_PUSH_NODES\" > {seen}; echo x >> {count}; \
             [ $(wc -l < {count}) -ge 3 ]",
            seen = seen.display(),
            count = count.display()
        );
        let outcome = gate(&script, 60).run(4, &["node-1", "node-2"]);
        assert!(outcome.passed, "{outcome:?}");
        assert_eq!((outcome.attempts, outcome.last_status), (3, Some(0)));
        assert_eq!(std::fs::read_to_string(&seen).unwrap(), "4 node-1 node-2\n");

        let outcome = gate("exit 7", 1).run(1, &["a"]);
        assert!(!outcome.passed);
        assert_eq!((outcome.attempts, outcome.last_status), (1, Some(7)));
    }

    /// An attempt that hangs is killed with its children at the timeout; the verdict is failed
    /// with no exit status.
    #[test]
    fn a_hanging_gate_is_killed_at_the_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let pid_file = tmp.path().join("pid");
        let script = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
        let outcome = gate(&script, 1).run(1, &["a"]);
        assert!(!outcome.passed);
        assert_eq!((outcome.attempts, outcome.last_status), (1, None));
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // The background `sleep` was in the gate's process group: it is gone (or a zombie of
        // init's, never running).
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        assert!(matches!(state, None | Some("Z") | Some("X")), "{stat}");
    }
}
