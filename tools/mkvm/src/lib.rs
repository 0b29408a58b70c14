//! mkvm: the cluster's VMs on libvirt — network, pool, overlay and seed volumes, domains, start,
//! staged waits — and their removal. Reads the document, writes it back with each node's `vm`.
//!
//! `up` works in steps so a failure leaves nothing half-made: build the plan from the document
//! alone ([`plan`]); check it against every hypervisor, touching nothing ([`preflight`]: foreign
//! objects, changed nodes, available memory, overlapping networks); apply it while logging each
//! object it creates ([`apply`]), then wait for the nodes ([`wait`]); on any error in the last
//! two, undo that log in reverse. Only then are the domains of nodes the document no longer
//! lists reported, or removed with `--prune` ([`prune`]).

pub mod apply;
pub mod cli;
pub mod down;
pub mod error;
pub mod hypervisor;
pub mod image;
pub mod mark;
pub mod plan;
pub mod preflight;
pub mod prune;
pub mod seed;
pub mod status;
pub mod wait;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use hardway::doc::Document;
use hardway::table::Format;
use hardway::Exit;
use serde_json::{json, Value};

pub use down::down;
pub use error::MkvmError;
use hypervisor::Host;
use plan::{Plan, PlanOptions};
pub use prune::Orphan;
pub use status::{status, StatusRow};
use wait::Stage;

const TOOL: &str = "mkvm";

fn log(message: impl std::fmt::Display) {
    hardway::tool::log(TOOL, message);
}

/// The command line, read once.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-f FILE`; stdin when absent.
    pub file: Option<PathBuf>,
    pub action: Action,
}

/// The subcommand and its own options.
#[derive(Debug, Clone)]
pub enum Action {
    Up {
        options: UpOptions,
        dry_run: bool,
    },
    Down {
        connect: Option<String>,
        dry_run: bool,
    },
    Status {
        connect: Option<String>,
        format: Format,
    },
}

/// The options of `mkvm up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub connect: Option<String>,
    pub pool: Option<String>,
    pub pool_dir: Option<String>,
    pub image: PathBuf,
    pub ssh_key: PathBuf,
    pub wait: Stage,
    pub timeout: Duration,
    pub domain_type: String,
    pub recreate: bool,
    /// false with --no-start: define only.
    pub start: bool,
    pub overcommit: bool,
    /// `--prune`: remove the owned domains (and their volumes) of nodes the document dropped.
    pub prune: bool,
    /// Tests only: fail after creating the K-th node (1-based) of each hypervisor, to prove the
    /// rollback.
    pub fail_after_node: Option<usize>,
}

impl Options {
    pub fn from_matches(m: &ArgMatches) -> Options {
        use cli::options as o;
        let connect = m.get_one::<String>(o::CONNECT).cloned();
        let action = match m.subcommand() {
            Some((o::UP, sub)) => Action::Up {
                options: UpOptions {
                    connect,
                    pool: m.get_one::<String>(o::POOL).cloned(),
                    pool_dir: sub.get_one::<String>(o::POOL_DIR).cloned(),
                    image: sub.get_one::<PathBuf>(o::IMAGE).expect("required").clone(),
                    ssh_key: sub
                        .get_one::<PathBuf>(o::SSH_KEY)
                        .expect("required")
                        .clone(),
                    wait: Stage::parse(sub.get_one::<String>(o::WAIT).expect("has a default")),
                    timeout: Duration::from_secs(
                        *sub.get_one::<u64>(o::TIMEOUT).expect("has a default"),
                    ),
                    domain_type: sub
                        .get_one::<String>(o::DOMAIN_TYPE)
                        .expect("has a default")
                        .clone(),
                    recreate: sub.get_flag(o::RECREATE),
                    start: !sub.get_flag(o::NO_START),
                    overcommit: sub.get_flag(o::OVERCOMMIT),
                    prune: sub.get_flag(o::PRUNE),
                    fail_after_node: sub.get_one::<usize>(o::FAIL_AFTER_NODE).copied(),
                },
                dry_run: sub.get_flag(o::DRY_RUN),
            },
            Some((o::DOWN, sub)) => Action::Down {
                connect,
                dry_run: sub.get_flag(o::DRY_RUN),
            },
            Some((o::STATUS, sub)) => Action::Status {
                connect,
                format: sub
                    .get_one::<String>(o::OUTPUT)
                    .and_then(|name| Format::parse(name))
                    .unwrap_or_default(),
            },
            _ => unreachable!("clap requires a subcommand"),
        };
        Options {
            file: m.get_one::<PathBuf>(o::FILE).cloned(),
            action,
        }
    }
}

pub fn run(matches: &ArgMatches) -> Result<Exit, MkvmError> {
    let options = Options::from_matches(matches);
    let doc = hardway::doc::read(options.file.as_deref())?;
    match &options.action {
        Action::Up {
            options,
            dry_run: true,
        } => {
            hardway::io::print_json(&dry_run(&doc, options)?)?;
        }
        Action::Up { options, .. } => {
            let applied = up(doc, options)?;
            hardway::doc::write(&applied.doc, std::io::stdout().lock())?;
        }
        Action::Down {
            connect,
            dry_run: true,
        } => {
            let (_, removed) = down(doc, connect.as_deref(), true)?;
            hardway::io::print_json(&json!({ "remove": removed }))?;
        }
        Action::Down { connect, .. } => {
            let (doc, _) = down(doc, connect.as_deref(), false)?;
            hardway::doc::write(&doc, std::io::stdout().lock())?;
        }
        Action::Status { connect, format } => {
            let rows = status(&doc, connect.as_deref())?;
            status::print(&rows, *format)?;
            let healthy = rows.iter().all(|r| r.state == "running" && r.owned);
            return Ok(if healthy { Exit::Ok } else { Exit::Problem });
        }
    }
    Ok(Exit::Ok)
}

/// What `mkvm up` did: the document with each node's `vm`, and the domains of nodes the
/// document no longer lists (removed with `--prune`, else kept).
#[derive(Debug, Clone)]
pub struct Applied {
    pub doc: Document,
    pub orphans: Vec<Orphan>,
}

/// `mkvm up`: plan, preflight, apply and wait (both rolled back on failure), then the orphans;
/// returns the updated document.
///
/// Every hypervisor is opened and checked before any is changed; then each one's part of the
/// plan is applied in a thread of its own, and every node is waited for at once (in parallel,
/// whatever its host); a failure on any host rolls back what this run made on every host.
pub fn up(doc: Document, options: &UpOptions) -> Result<Applied, MkvmError> {
    let plan = build_plan(&doc, options)?;
    let hosts = open_hosts(&plan.uris())?;
    let checked = preflight::check(&plan, &hosts, options)?;
    let runs = apply::on_every_host(&plan, &hosts, &checked, options);
    let created: Vec<_> = runs.iter().flat_map(|run| run.created.clone()).collect();
    let done = runs
        .into_iter()
        .try_for_each(|run| run.applied)
        .and_then(|()| wait::every_node(&plan, &hosts, options))
        .and_then(|reached| status::record(doc, &plan, &hosts, &reached));
    let doc = match done {
        Ok(doc) => doc,
        Err(error) => return Err(error.with_rollback(apply::rollback(&hosts, &created))),
    };
    let orphans = prune::orphans(&plan, &hosts, options.prune)?;
    Ok(Applied { doc, orphans })
}

fn build_plan(doc: &Document, options: &UpOptions) -> Result<Plan, MkvmError> {
    let base = image::inspect(&options.image)?;
    let ssh_public_key = preflight::read_public_key(&options.ssh_key)?;
    plan::build(
        doc,
        &PlanOptions {
            connect: options.connect.clone(),
            pool: options.pool.clone(),
            pool_dir: options.pool_dir.clone(),
            image: options.image.clone(),
            base,
            ssh_public_key,
        },
    )
}

/// One connection to each hypervisor, opened in parallel (an unreachable one costs its
/// timeout once, not once per host before it); the first URI, in order, that fails is the error.
pub fn open_hosts(uris: &[String]) -> Result<BTreeMap<String, Host>, MkvmError> {
    let opened: Vec<Result<Host, MkvmError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = uris
            .iter()
            .map(|uri| scope.spawn(move || Host::open(uri)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("opening a libvirt connection panicked"))
            .collect()
    });
    let mut hosts = BTreeMap::new();
    for host in opened {
        let host = host?;
        hosts.insert(host.uri.clone(), host);
    }
    Ok(hosts)
}

/// `--dry-run`: the XML of every object, as JSON. Connects (if it can) only to pick the type.
pub fn dry_run(doc: &Document, options: &UpOptions) -> Result<Value, MkvmError> {
    let plan = build_plan(doc, options)?;
    let mut types = BTreeMap::new();
    let pool = &plan.pool.name;
    for uri in plan.uris() {
        let host = if options.domain_type == "auto" {
            Host::open(&uri).ok()
        } else {
            None
        };
        let kind = preflight::domain_type(host.as_ref(), &options.domain_type);
        types.insert(uri, kind);
    }
    let nodes: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "uri": n.uri,
                "volumes": [
                    {"pool": pool, "xml": n.overlay_xml},
                    {"pool": pool, "xml": n.seed_volume_xml(0), "content": {
                        "user-data": n.seed.user_data,
                        "meta-data": n.seed.meta_data,
                        "network-config": n.seed.network_config,
                    }},
                ],
                "domain": n.domain_xml(&plan.cluster, &plan.network_of(&n.uri).name, pool, &types[&n.uri]),
            })
        })
        .collect();
    if !plan.per_hypervisor {
        // Every host gets the same network: printed once, as before several hypervisors.
        let network = plan
            .networks
            .values()
            .next()
            .map(|n| n.xml(&plan.cluster, None));
        return Ok(json!({ "network": network, "pool": plan.pool.xml, "nodes": nodes }));
    }
    let networks: Vec<Value> = plan
        .networks
        .iter()
        .map(|(uri, n)| json!({ "uri": uri, "xml": n.xml(&plan.cluster, None) }))
        .collect();
    Ok(json!({ "networks": networks, "pool": plan.pool.xml, "nodes": nodes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Options {
        let matches = cli::command()
            .try_get_matches_from(std::iter::once("mkvm").chain(args.iter().copied()))
            .unwrap();
        Options::from_matches(&matches)
    }

    #[test]
    fn up_options_are_read_once_into_their_types() {
        let parsed = options(&[
            "up",
            "--image",
            "b.qcow2",
            "--ssh-key",
            "k.pub",
            "--prune",
            "--timeout",
            "5",
            "--wait",
            "cloud-init",
            "-c",
            "test:///default",
            "-f",
            "doc.json",
        ]);
        assert_eq!(parsed.file, Some(PathBuf::from("doc.json")));
        let Action::Up { options, dry_run } = parsed.action else {
            panic!("{parsed:?}");
        };
        assert!(!dry_run);
        assert!(options.prune && options.start && !options.recreate && !options.overcommit);
        assert_eq!(options.timeout, Duration::from_secs(5));
        assert_eq!(options.wait, Stage::CloudInit);
        assert_eq!(options.connect.as_deref(), Some("test:///default"));
        assert_eq!(options.image, PathBuf::from("b.qcow2"));

        let defaults = options_of(&["up", "--image", "b", "--ssh-key", "k", "--no-start"]);
        assert!(!defaults.prune && !defaults.start);
        assert_eq!(defaults.wait, Stage::Ssh);
        assert_eq!(defaults.domain_type, "auto");
    }

    fn options_of(args: &[&str]) -> UpOptions {
        match options(args).action {
            Action::Up { options, .. } => options,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn down_and_status_take_their_own_options() {
        let Action::Down { dry_run, connect } = options(&["down", "--dry-run"]).action else {
            panic!("not down");
        };
        assert!(dry_run && connect.is_none());
        let Action::Status { format, .. } = options(&["status", "-o", "table"]).action else {
            panic!("not status");
        };
        assert_eq!(format, Format::Table);
    }
}
