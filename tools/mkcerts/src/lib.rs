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
pub mod pki;
pub mod plan;
pub mod prune;

use std::path::PathBuf;

use clap::ArgMatches;
use hardway::fsutil::{lock_timeout, Access, FileSet, OutDir};
use hardway::table::Format;
use hardway::tool::log;
use hardway::Exit;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

pub use error::MkcertsError;

use crate::algo::KeyAlgorithm;

const TOOL: &str = "mkcerts";

pub fn run(matches: &ArgMatches) -> Result<Exit, MkcertsError> {
    match matches.subcommand() {
        Some(("check", sub)) => run_check(sub),
        Some(("renew", sub)) => run_make(sub, true),
        _ => run_make(matches, false),
    }
}

/// Parses `--renew-before`: `30d`, `72h`, or a plain number of days.
pub fn parse_duration(text: &str) -> Result<Duration, MkcertsError> {
    let bad = || {
        MkcertsError::bad(
            "--renew-before",
            format!(
                "{} is not a duration: write e.g. 30d or 72h",
                hardway::error::quote(text)
            ),
        )
    };
    let (number, unit) = match text.strip_suffix('d') {
        Some(n) => (n, Duration::DAY),
        None => match text.strip_suffix('h') {
            Some(n) => (n, Duration::HOUR),
            None => (text, Duration::DAY),
        },
    };
    let n: i32 = number.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    Ok(unit * n)
}

/// Options from the command line and the document.
pub fn options(
    matches: &ArgMatches,
    doc: &hardway::Document,
    renew: bool,
) -> Result<pki::Options, MkcertsError> {
    let algorithm = match matches.get_one::<String>("key-algorithm") {
        Some(name) => KeyAlgorithm::parse(name).expect("clap checked the name"),
        None => match doc.pki.as_ref().map(|p| p.algorithm.as_str()) {
            Some(name) => KeyAlgorithm::parse(name).ok_or_else(|| {
                MkcertsError::bad(
                    "pki.algorithm",
                    format!(
                        "{name:?} is not a key algorithm: use one of {}",
                        KeyAlgorithm::NAMES.join(", ")
                    ),
                )
            })?,
            None => KeyAlgorithm::EcdsaP256,
        },
    };
    let pair = |cert: &str, key: &str| {
        matches
            .get_one::<PathBuf>(cert)
            .cloned()
            .zip(matches.get_one::<PathBuf>(key).cloned())
    };
    let days = i64::from(*matches.get_one::<u32>("days").expect("defaulted"));
    let renew_before = parse_duration(
        matches
            .get_one::<String>("renew-before")
            .expect("defaulted"),
    )?;
    if renew_before >= Duration::days(days) {
        // Every leaf would be "near expiry" the moment it is made: each run would re-issue all.
        return Err(MkcertsError::bad(
            "--renew-before",
            format!(
                "{} is not shorter than --days {days}: every run would re-issue every leaf; \
                 give a shorter --renew-before or a longer --days",
                matches
                    .get_one::<String>("renew-before")
                    .expect("defaulted")
            ),
        ));
    }
    Ok(pki::Options {
        dir: matches.get_one::<PathBuf>("dir").expect("required").clone(),
        algorithm,
        ca_days: i64::from(*matches.get_one::<u32>("ca-days").expect("defaulted")),
        days,
        renew_before,
        external_ca: [
            pair("ca-cert", "ca-key"),
            pair("etcd-ca-cert", "etcd-ca-key"),
            pair("front-proxy-ca-cert", "front-proxy-ca-key"),
        ],
        renew,
        plan: plan::PlanOptions {
            extra_sans: matches
                .get_many::<String>("extra-san")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
        },
        now: OffsetDateTime::now_utc(),
    })
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

fn run_make(matches: &ArgMatches, renew: bool) -> Result<Exit, MkcertsError> {
    let doc = hardway::doc::read(matches.get_one::<PathBuf>("file").map(PathBuf::as_path))?;
    let options = options(matches, &doc, renew)?;
    let dry_run = matches.get_flag("dry-run");
    // Held (with its lock, for a real run) until the document is printed: what a concurrent run
    // writes can never slip between reading the PKI, writing it and printing its sha256s.
    let out = OutDir::open(
        &options.dir,
        if dry_run {
            Access::Read
        } else {
            Access::Write {
                mode: pki::DIR_MODE,
                lock_timeout: lock_timeout(matches),
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

fn run_check(matches: &ArgMatches) -> Result<Exit, MkcertsError> {
    let dir = matches.get_one::<PathBuf>("dir").expect("defaulted");
    let warn_days = *matches.get_one::<u32>("warn-days").expect("defaulted");
    let format = Format::parse(matches.get_one::<String>("output").expect("defaulted"))
        .expect("clap checked the format");
    let rows = check::check(dir, warn_days, OffsetDateTime::now_utc())?;
    match format {
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
