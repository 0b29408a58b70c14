//! systemd unit files as data, rendered one way.
//!
//! Every unit mkunits writes goes through [`Unit::render`], so they all look alike: flags one per
//! line after `ExecStart=` with `\` continuations (what the hard-way guides print and what
//! `scripts/lab.sh` folds back into one command line), no quoting (no value needs it), and the
//! same restart policy for daemons.

use std::fmt::Write as _;

/// A command line: the program (absolute path) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    pub program: String,
    pub args: Vec<String>,
}

impl ExecLine {
    pub fn new(program: &str) -> ExecLine {
        ExecLine {
            program: program.to_string(),
            args: Vec::new(),
        }
    }

    /// Adds `--name=value`.
    pub fn flag(mut self, name: &str, value: impl std::fmt::Display) -> ExecLine {
        self.args.push(format!("--{name}={value}"));
        self
    }

    /// Adds a bare argument (`put`, `-a`).
    pub fn arg(mut self, arg: impl Into<String>) -> ExecLine {
        self.args.push(arg.into());
        self
    }

    /// One line when short (`modprobe -a overlay br_netfilter`), else one argument per line.
    fn render(&self) -> String {
        let one_line = std::iter::once(&self.program)
            .chain(&self.args)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        if one_line.len() <= 80 {
            return one_line;
        }
        let mut line = self.program.clone();
        for arg in &self.args {
            line.push_str(" \\\n  ");
            line.push_str(arg);
        }
        line
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The file name: `etcd.service`.
    pub name: String,
    pub description: String,
    pub documentation: String,
    pub after: Vec<String>,
    pub wants: Vec<String>,
    pub requires: Vec<String>,
    pub before: Vec<String>,
    /// `Type=`.
    pub kind: &'static str,
    pub exec_start_pre: Vec<ExecLine>,
    pub exec_start: Vec<ExecLine>,
    /// Further `[Service]` lines, as `(key, value)`, in order.
    pub service: Vec<(String, String)>,
}

impl Unit {
    /// A long-running daemon restarted on failure.
    pub fn daemon(name: &str, description: &str, documentation: &str, exec: ExecLine) -> Unit {
        Unit {
            name: name.to_string(),
            description: description.to_string(),
            documentation: documentation.to_string(),
            after: Vec::new(),
            wants: Vec::new(),
            requires: Vec::new(),
            before: Vec::new(),
            kind: "simple",
            exec_start_pre: Vec::new(),
            exec_start: vec![exec],
            service: vec![
                ("Restart".into(), "on-failure".into()),
                ("RestartSec".into(), "5".into()),
            ],
        }
    }

    /// A oneshot that stays "active" after it ran, so what it set up counts as started.
    pub fn oneshot(
        name: &str,
        description: &str,
        documentation: &str,
        exec: Vec<ExecLine>,
    ) -> Unit {
        Unit {
            kind: "oneshot",
            exec_start: exec,
            service: vec![("RemainAfterExit".into(), "yes".into())],
            ..Unit::daemon(name, description, documentation, ExecLine::new(""))
        }
    }

    pub fn after(mut self, units: &[&str]) -> Unit {
        self.after.extend(units.iter().map(|u| u.to_string()));
        self
    }

    pub fn wants(mut self, units: &[&str]) -> Unit {
        self.wants.extend(units.iter().map(|u| u.to_string()));
        self
    }

    pub fn requires(mut self, units: &[&str]) -> Unit {
        self.requires.extend(units.iter().map(|u| u.to_string()));
        self
    }

    pub fn before(mut self, units: &[&str]) -> Unit {
        self.before.extend(units.iter().map(|u| u.to_string()));
        self
    }

    pub fn kind(mut self, kind: &'static str) -> Unit {
        self.kind = kind;
        self
    }

    pub fn pre(mut self, exec: ExecLine) -> Unit {
        self.exec_start_pre.push(exec);
        self
    }

    pub fn set(mut self, key: &str, value: impl Into<String>) -> Unit {
        self.service.push((key.to_string(), value.into()));
        self
    }

    /// Every program the unit runs (for tests that stub them under a `--root`).
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        self.exec_start_pre
            .iter()
            .chain(&self.exec_start)
            .map(|e| e.program.trim_start_matches('-'))
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        let list = |key: &str, units: &[String], text: &mut String| {
            if !units.is_empty() {
                let _ = writeln!(text, "{key}={}", units.join(" "));
            }
        };
        let _ = writeln!(
            text,
            "# Written by mkunits from the cluster document: edit that, not this."
        );
        text.push_str("[Unit]\n");
        let _ = writeln!(text, "Description={}", self.description);
        let _ = writeln!(text, "Documentation={}", self.documentation);
        list("Wants", &self.wants, &mut text);
        list("Requires", &self.requires, &mut text);
        list("After", &self.after, &mut text);
        list("Before", &self.before, &mut text);
        text.push_str("\n[Service]\n");
        let _ = writeln!(text, "Type={}", self.kind);
        for exec in &self.exec_start_pre {
            let _ = writeln!(text, "ExecStartPre={}", exec.render());
        }
        for exec in &self.exec_start {
            let _ = writeln!(text, "ExecStart={}", exec.render());
        }
        for (key, value) in &self.service {
            let _ = writeln!(text, "{key}={value}");
        }
        text.push_str("\n[Install]\nWantedBy=multi-user.target\n");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_flag_per_line_when_long() {
        let unit = Unit::daemon(
            "x.service",
            "X",
            "man:x(8)",
            ExecLine::new("/usr/bin/x")
                .flag("a", 1)
                .arg("b")
                .flag("long-enough-to-wrap", "x".repeat(60)),
        )
        .after(&["network-online.target"]);
        let text = unit.render();
        assert!(
            text.contains("ExecStart=/usr/bin/x \\\n  --a=1 \\\n  b \\\n  --long"),
            "{text}"
        );
        assert!(text.contains("After=network-online.target\n"), "{text}");
        assert!(text.ends_with("WantedBy=multi-user.target\n"));
        let short = ExecLine::new("/usr/sbin/modprobe").arg("-a").arg("overlay");
        assert_eq!(short.render(), "/usr/sbin/modprobe -a overlay");
    }
}
