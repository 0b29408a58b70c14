//! mkcerts: the cluster's whole PKI and kubeconfigs from the cluster document, made with rcgen,
//! idempotently (see `pki`), placed on nodes by `hardway::paths`.
//!
//! `run` maps the command line to options, lets `pki::make` decide and stage everything in memory,
//! then commits the staged files all together (or prints the plan for `--dry-run`) and prints the
//! document. Nothing is written before every certificate has been made.

pub mod algo;
pub mod check;
pub mod cli;
pub mod error;
pub mod kubeconfig;
pub mod options;
pub mod pki;
pub mod plan;
pub mod prune;

use clap::ArgMatches;
use hardway::fsutil::{Access, FileSet, OutDir};
use hardway::table::Format;
use hardway::tool::log;
use hardway::Exit;
use serde::Serialize;
use time::OffsetDateTime;

pub use error::MkcertsError;

use crate::options::{CheckOptions, Invocation, MakeOptions};

const TOOL: &str = "mkcerts";

pub fn run(matches: &ArgMatches) -> Result<Exit, MkcertsError> {
    match Invocation::from_matches(matches)? {
        Invocation::Check(check) => run_check(&check),
        Invocation::Make(make) => run_make(&make),
    }
}

/// The `--dry-run` report.
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub dir: String,
    pub algorithm: String,
    pub certificates: Vec<pki::Decision>,
    pub files: Vec<FilePlan>,
}

#[derive(Debug, Serialize)]
pub struct FilePlan {
    pub path: String,
    /// `create`, `update` or `unchanged`.
    pub action: &'static str,
}

fn run_make(make: &MakeOptions) -> Result<Exit, MkcertsError> {
    let doc = hardway::doc::read(make.file.as_deref())?;
    let options = make.pki(&doc)?;
    let dry_run = make.dry_run;
    // Held (with its lock, for a real run) until the document is printed: what a concurrent run
    // writes can never slip between reading the PKI, writing it and printing its sha256s.
    let out = OutDir::open(
        &options.dir,
        if dry_run {
            Access::Read
        } else {
            Access::Write {
                mode: pki::DIR_MODE,
                lock_timeout: make.lock_timeout,
            }
        },
    )?;
    let made = pki::make(&doc, &options, &out)?;
    for warning in &made.warnings {
        log(TOOL, format!("warning: {warning}"));
    }
    let mut set = FileSet::new();
    for file in &made.files {
        set.add(
            file.rel.clone(),
            file.contents.clone(),
            file.mode,
            pki::DIR_MODE,
        );
    }
    if dry_run {
        let report = DryRun {
            dir: options.dir.display().to_string(),
            algorithm: options.algorithm.to_string(),
            certificates: made.decisions,
            files: set
                .preview(&out)?
                .into_iter()
                .map(|(path, action)| FilePlan {
                    path,
                    action: action.as_str(),
                })
                .collect(),
        };
        hardway::io::print_json(&report)?;
        return Ok(Exit::Ok);
    }
    let committed = set.commit(&out)?;
    out.ensure_dir("pki", pki::DIR_MODE)?;
    log_pruned(&out, &prune::prune(&out, &made.document)?);
    log_decisions(&made.decisions);
    log(
        TOOL,
        format!(
            "{}: {} files created, {} updated, {} unchanged",
            out.shown("pki"),
            committed.created.len(),
            committed.updated.len(),
            committed.unchanged.len()
        ),
    );
    hardway::doc::write(&made.document, std::io::stdout().lock())?;
    Ok(Exit::Ok)
}

/// One log line per certificate, key or config made or changed (reused ones are quiet).
fn log_decisions(decisions: &[pki::Decision]) {
    for decision in decisions.iter().filter(|d| d.action != "reuse") {
        let who = match &decision.node {
            Some(node) => format!("{} for {node}", decision.name),
            None => decision.name.clone(),
        };
        let why = decision
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        log(TOOL, format!("{} {who}{why}", decision.action));
    }
}

/// One line per departed node's directory: removed, or kept for files mkcerts did not write.
fn log_pruned(out: &OutDir, pruned: &prune::Pruned) {
    for dir in &pruned.dirs {
        log(
            TOOL,
            format!("removed {} (its node left the document)", out.shown(dir)),
        );
    }
    for dir in &pruned.kept {
        log(
            TOOL,
            format!(
                "removed mkcerts' files from {} (its node left the document); kept the directory: it holds other files",
                out.shown(dir)
            ),
        );
    }
}

fn run_check(options: &CheckOptions) -> Result<Exit, MkcertsError> {
    let rows = check::check(&options.dir, options.warn_days, OffsetDateTime::now_utc())?;
    match options.format {
        Format::Json => hardway::io::print_json(&rows)?,
        Format::Table => hardway::io::print(&check::table(&rows))?,
    }
    let problems = rows.iter().filter(|r| !r.ok()).count();
    if problems > 0 {
        log(
            TOOL,
            format!("{problems} of {} certificates have problems", rows.len()),
        );
        return Ok(Exit::Problem);
    }
    Ok(Exit::Ok)
}
