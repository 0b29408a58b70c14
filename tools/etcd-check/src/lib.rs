//! etcd-check: say whether an etcd cluster is healthy, degraded or unavailable, in bounded time.
//!
//! etcdctl answers a different question per command, takes its full timeout on every bad
//! endpoint, and exits 1 for a degraded cluster and a dead one alike. This tool checks every
//! member at once over its own connections ([`probe`]), judges the cluster from the answers
//! ([`report::judge`], a plain function), and exits 0, 1 or 3 by the verdict.

pub mod cli;
pub mod error;
pub mod input;
pub mod probe;
pub mod render;
pub mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hardway::table::Format;
use hardway::Exit;

pub use error::Error;
use input::Options;
use report::{Limits, Report, Verdict};

const TOOL: &str = "etcd-check";

pub fn run(matches: &clap::ArgMatches) -> Result<Exit, Error> {
    let options = Options::from_matches(matches)?;
    let tls = probe::Tls::new(&options.credentials)?.map(Arc::new);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(async {
        match options.watch {
            None => once(&options, tls.as_ref()).await,
            Some(interval) => watch(&options, tls.as_ref(), interval).await,
        }
    });
    // Probes cut off at the deadline may have left connection tasks behind: do not wait for them.
    runtime.shutdown_background();
    result
}

/// Checks the cluster once, within `options.timeout` from `start`.
pub async fn check(options: &Options, tls: Option<&Arc<probe::Tls>>) -> Report {
    let start = Instant::now();
    let members = probe::check_all(options, tls, probe::deadline(start, options.timeout)).await;
    let limits = Limits {
        max_lag: options.max_lag,
        warn_days: options.warn_days,
    };
    report::judge(members, limits, start.elapsed())
}

async fn once(options: &Options, tls: Option<&Arc<probe::Tls>>) -> Result<Exit, Error> {
    let report = check(options, tls).await;
    let text = match options.format {
        Format::Json => render::json(&report),
        Format::Table => render::table(&report),
    };
    hardway::io::print(&text)?;
    if report.verdict != Verdict::Healthy {
        let mut line = format!("{}: {}", report.verdict.as_str(), report.problems[0]);
        if report.problems.len() > 1 {
            line.push_str(&format!(
                " (and {} more problems)",
                report.problems.len() - 1
            ));
        }
        hardway::tool::log(TOOL, line);
    }
    Ok(report.verdict.exit())
}

/// Checks every `interval`, printing the first report whole and then only what changed, until
/// interrupted; exits with the last verdict's code.
async fn watch(
    options: &Options,
    tls: Option<&Arc<probe::Tls>>,
    interval: Duration,
) -> Result<Exit, Error> {
    let mut previous: Option<std::collections::BTreeMap<String, String>> = None;
    let mut last = Exit::Ok;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let report = tokio::select! {
            report = check(options, tls) => report,
            _ = &mut interrupted => return Ok(last),
        };
        last = report.verdict.exit();
        let view = render::watch_view(&report);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let text = match (&previous, options.format) {
            (None, Format::Json) => render::json_line(&report),
            (None, Format::Table) => render::table(&report),
            (Some(old), format) => {
                let changes = render::changes(old, &view);
                if changes.is_empty() {
                    String::new()
                } else if format == Format::Json {
                    render::json_line(&serde_json::json!({
                        "time": now,
                        "verdict": report.verdict,
                        "changes": changes,
                        "problems": report.problems,
                    }))
                } else {
                    format!(
                        "{now} {}: {}\n",
                        report.verdict.as_str(),
                        changes.join("; ")
                    )
                }
            }
        };
        if !text.is_empty() {
            hardway::io::print(&text)?;
        }
        previous = Some(view);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut interrupted => return Ok(last),
        }
    }
}
