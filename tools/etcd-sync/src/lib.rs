//! etcd-sync: make etcd's member list match the document's etcd nodes, as route-sync makes routes
//! match it — read the document, list the members, [`plan::plan`] (pure), then apply one change
//! at a time, listing again after each, and record each member in `nodes[].etcd`.

pub mod cli;
pub mod cluster;
pub mod error;
pub mod plan;
pub mod record;

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use hardway::doc::Document;
use hardway::table::Format;
use hardway::Exit;
use hardway_etcd::{Target, Tls};

pub use error::Error;
use plan::{Change, Hold, Observed, Plan};

const TOOL: &str = "etcd-sync";

/// What to do, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub file: Option<PathBuf>,
    pub dir: PathBuf,
    pub previous: Option<PathBuf>,
    pub dry_run: bool,
    pub check: bool,
    pub timeout: Duration,
    pub retry_timeout: Duration,
    pub format: Format,
}

impl Options {
    pub fn from_matches(m: &ArgMatches) -> Result<Options, Error> {
        use cli::options as o;
        // A bare number meant seconds here.
        let seconds = |id: &str| {
            let text = m.get_one::<String>(id).expect("default");
            hardway::duration::timeout(text, hardway::duration::Unit::Seconds)
                .map_err(|why| hardway::Error::invalid(format!("--{id}"), why))
        };
        Ok(Options {
            file: m.get_one::<PathBuf>(o::FILE).cloned(),
            dir: m.get_one::<PathBuf>(o::DIR).cloned().expect("default"),
            previous: m.get_one::<PathBuf>(o::PREVIOUS).cloned(),
            dry_run: m.get_flag(o::DRY_RUN),
            check: m.get_flag(o::CHECK),
            timeout: seconds(o::TIMEOUT)?,
            retry_timeout: seconds(o::RETRY_TIMEOUT)?,
            format: Format::parse(m.get_one::<String>(o::OUTPUT).expect("default"))
                .expect("clap checked the format"),
        })
    }
}

pub fn run(matches: &ArgMatches) -> Result<Exit, Error> {
    let options = Options::from_matches(matches)?;
    let mut document = hardway::doc::read(options.file.as_deref())?;
    if let Some(path) = &options.previous {
        if let Some(previous) = hardway::doc::read_previous(path)? {
            record::carry(&mut document, &previous);
        }
    }
    let wanted = record::wanted(&document)?;
    let (targets, tls) = hardway_etcd::members_from_document(&document, &options.dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(async {
        let observed = cluster::observe(&targets, &tls, options.timeout).await?;
        let plan = plan::plan(&wanted, &observed);
        if options.dry_run || options.check {
            print_report(&plan, &observed, options.format)?;
            return Ok(if options.check && !plan.in_sync() {
                Exit::Problem
            } else {
                Exit::Ok
            });
        }
        let observed = apply(&wanted, observed, &targets, &tls, &options, &mut document).await?;
        record::members(&mut document, &observed);
        hardway::doc::write(&document, std::io::stdout().lock())?;
        Ok(Exit::Ok)
    });
    runtime.shutdown_background();
    result
}

/// Makes the changes one by one, listing the members again after each, until in sync or a
/// change must wait (a learner to start: not an error) or is refused (exit 3). Returns the
/// members as last listed.
async fn apply(
    wanted: &[plan::Wanted],
    mut observed: Vec<Observed>,
    targets: &[Target],
    tls: &Tls,
    options: &Options,
    document: &mut Document,
) -> Result<Vec<Observed>, Error> {
    loop {
        let plan = plan::plan(wanted, &observed);
        let change = match (plan.next, plan.hold) {
            (Some(change), _) => change,
            (None, Some(Hold::Refused(why))) => return Err(Error::Refused(why)),
            (None, Some(Hold::Waiting(why))) => {
                hardway::tool::log(TOOL, why);
                return Ok(observed);
            }
            (None, None) => return Ok(observed),
        };
        hardway::tool::log(TOOL, describe(&change));
        let reach = cluster::Reach {
            members: &observed,
            tls,
            timeout: options.timeout,
            bound: options.retry_timeout,
        };
        match &change {
            Change::Add { name, peer_url } => {
                let (id, after) = cluster::add(&reach, peer_url).await?;
                record::joined(document, name, id, &after);
            }
            Change::Promote { id, .. } => cluster::promote(&reach, *id).await?,
            Change::Remove { id, .. } => cluster::remove(&reach, *id).await?,
        }
        observed = settled(wanted, &change, targets, tls, options).await?;
    }
}

/// The members listed again once `change` shows: a member lists the membership it has applied,
/// and the one that made the change may not be the one that lists it, so a listing right after
/// can still show the change to do (and doing it twice fails). Bounded by --retry-timeout.
async fn settled(
    wanted: &[plan::Wanted],
    change: &Change,
    targets: &[Target],
    tls: &Tls,
    options: &Options,
) -> Result<Vec<Observed>, Error> {
    let until = std::time::Instant::now() + options.retry_timeout;
    loop {
        let observed = cluster::observe(targets, tls, options.timeout).await?;
        let still = plan::plan(wanted, &observed).changes.first() == Some(change);
        if !still {
            return Ok(observed);
        }
        if std::time::Instant::now() >= until {
            return Err(Error::Change(format!(
                "{} was accepted but the member list still does not show it after {:?}",
                describe(change),
                options.retry_timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn describe(change: &Change) -> String {
    match change {
        Change::Add { name, peer_url } => format!("adding {name} ({peer_url}) as a learner"),
        Change::Promote { name, id } => {
            format!("promoting learner {name} ({})", plan::id_hex(*id))
        }
        Change::Remove { name, id } => format!("removing {name} ({})", plan::id_hex(*id)),
    }
}

/// The plan and the members as JSON (`{in_sync, members, changes, next, hold}`) or a table.
fn print_report(plan: &Plan, observed: &[Observed], format: Format) -> Result<(), Error> {
    match format {
        Format::Json => {
            let report = serde_json::json!({
                "in_sync": plan.in_sync(),
                "members": observed,
                "changes": plan.changes,
                "next": plan.next,
                "hold": plan.hold,
            });
            hardway::io::print_json(&report)?;
        }
        Format::Table => {
            let mut rows: Vec<Vec<String>> = observed
                .iter()
                .map(|m| {
                    vec![
                        plan::id_hex(m.id),
                        m.name.clone(),
                        if m.is_learner { "learner" } else { "voter" }.into(),
                        if m.healthy { "yes" } else { "no" }.into(),
                        m.peer_urls.join(","),
                    ]
                })
                .collect();
            for change in &plan.changes {
                rows.push(vec![
                    "-".into(),
                    describe(change),
                    "to do".into(),
                    String::new(),
                    String::new(),
                ]);
            }
            let mut text =
                hardway::table::render(&["id", "name", "role", "healthy", "peer urls"], rows);
            if let Some(hold) = &plan.hold {
                let (Hold::Waiting(why) | Hold::Refused(why)) = hold;
                text.push_str(&format!("held: {why}\n"));
            }
            hardway::io::print(&text)?;
        }
    }
    Ok(())
}
