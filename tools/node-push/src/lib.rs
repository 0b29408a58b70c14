//! node-push: install each node's files and start its services over SSH.
//!
//! The guides copy certificates and units with `scp` loops and run `systemctl` by hand on each
//! node; node-push does it from the document's per-node `files` and `services`, with ssh2
//! (libssh2), nodes in parallel on threads. Everything local is checked first ([`plan`]); then
//! each node is pushed on its own ([`push`]), and one node's failure only fails that node.
//! stdout carries the document unchanged, for the pipeline; the report goes to stderr or
//! `--report`.

pub mod cli;
pub mod error;
pub mod gate;
pub mod hostkey;
pub mod local;
pub mod plan;
pub mod push;
pub mod report;
pub mod rollout;
pub mod waves;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use hardway::table::Format;
use hardway::{Exit, Role};

pub use error::{Error, NodeError};
use gate::Gate;
use hostkey::KnownHostsFile;
use plan::{AddressFrom, NodePlan, Selection};
use push::{Auth, Context};
use report::Report;
use rollout::Rollout;

pub(crate) const TOOL: &str = "node-push";

/// The command line, typed.
#[derive(Debug, Clone)]
pub struct Options {
    pub input: Option<PathBuf>,
    pub selection: Selection,
    pub user: String,
    pub auth: Auth,
    pub known_hosts: PathBuf,
    pub accept_new: bool,
    pub parallel: usize,
    pub timeout: Duration,
    /// `--between`: the health gate after each rolling wave, with `--gate-timeout`.
    pub between: Option<Gate>,
    /// `--batch`: workers restarted together.
    pub batch: usize,
    pub no_start: bool,
    pub dry_run: bool,
    pub format: Format,
    pub report: Option<PathBuf>,
}

impl Options {
    pub fn from_matches(m: &ArgMatches) -> Result<Options, Error> {
        let port = *m.get_one::<u16>(cli::PORT).expect("has a default");
        let mut addresses = BTreeMap::new();
        for text in m.get_many::<String>(cli::ADDRESS).into_iter().flatten() {
            let (node, target) = plan::parse_address_override(text, port)?;
            addresses.insert(node, target);
        }
        let mut roles = Vec::new();
        for name in m.get_many::<String>(cli::ROLES).into_iter().flatten() {
            roles.push(Role::parse(name).ok_or_else(|| {
                hardway::Error::invalid(
                    "--roles",
                    format!(
                        "unknown role {} (etcd, controller, worker, lb)",
                        hardway::error::quote(name)
                    ),
                )
            })?);
        }
        let address_from = match m.get_one::<String>(cli::ADDRESS_FROM).map(String::as_str) {
            Some("vm") => AddressFrom::Vm,
            _ => AddressFrom::Ip,
        };
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let known_hosts = match m.get_one::<PathBuf>(cli::KNOWN_HOSTS) {
            Some(path) => path.clone(),
            None => home
                .as_ref()
                .map(|h| h.join(".ssh/known_hosts"))
                .ok_or_else(|| {
                    hardway::Error::invalid("--known-hosts", "HOME is not set: pass --known-hosts")
                })?,
        };
        let auth = auth_from(m.get_one::<PathBuf>(cli::IDENTITY), home.as_deref())?;
        Ok(Options {
            input: m.get_one::<PathBuf>(cli::FILE).cloned(),
            selection: Selection {
                dir: m
                    .get_one::<PathBuf>(cli::DIR)
                    .expect("has a default")
                    .clone(),
                port,
                address_from,
                addresses,
                only: m
                    .get_many::<String>(cli::ONLY)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                roles,
            },
            user: m
                .get_one::<String>(cli::USER)
                .expect("has a default")
                .clone(),
            auth,
            known_hosts,
            accept_new: m.get_flag(cli::ACCEPT_NEW),
            parallel: usize::from(*m.get_one::<u16>(cli::PARALLEL).expect("has a default")),
            timeout: Duration::from_secs(*m.get_one::<u64>(cli::TIMEOUT).expect("has a default")),
            between: m.get_one::<String>(cli::BETWEEN).map(|command| Gate {
                command: command.clone(),
                timeout: Duration::from_secs(
                    *m.get_one::<u64>(cli::GATE_TIMEOUT).expect("has a default"),
                ),
            }),
            batch: usize::from(*m.get_one::<u16>(cli::BATCH).expect("has a default")),
            no_start: m.get_flag(cli::NO_START),
            dry_run: m.get_flag(cli::DRY_RUN),
            format: m
                .get_one::<String>(cli::OUTPUT)
                .and_then(|f| Format::parse(f))
                .unwrap_or_default(),
            report: m.get_one::<PathBuf>(cli::REPORT).cloned(),
        })
    }
}

/// `--identity`, else the agent when SSH_AUTH_SOCK is set, else OpenSSH's default key files.
fn auth_from(identity: Option<&PathBuf>, home: Option<&Path>) -> Result<Auth, Error> {
    if let Some(key) = identity {
        // Only whether it can be opened: its contents are never read here, printed or logged.
        std::fs::File::open(key)
            .map_err(|e| hardway::Error::input(format!("--identity {}", key.display()), e))?;
        return Ok(Auth::Key(key.clone()));
    }
    let defaults: Vec<PathBuf> = home
        .map(|h| {
            ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|n| h.join(".ssh").join(n))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        return Ok(Auth::Agent(defaults));
    }
    if defaults.is_empty() {
        return Err(Error::NoIdentity);
    }
    Ok(Auth::Keys(defaults))
}

pub fn run(matches: &ArgMatches) -> Result<Exit, Error> {
    let options = Options::from_matches(matches)?;
    let document = hardway::doc::read(options.input.as_deref())?;
    let plans = plan::plan(&document, &options.selection)?;
    let known_hosts = KnownHostsFile::load(&options.known_hosts)?;
    let report = push_all(&plans, &options, &known_hosts);

    let text = match options.format {
        Format::Json => report.to_json(),
        Format::Table => report.to_table(),
    };
    let failed = report.failed();
    match options.report.as_deref() {
        Some(path) if hardway::io::is_stdin(Some(path)) => hardway::io::print(&text)?,
        Some(path) => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(parent) = parent {
                std::fs::create_dir_all(parent)
                    .map_err(|e| hardway::Error::io(parent.display().to_string(), e))?;
            }
            write_report(path, &text)?;
            if failed == 0 {
                hardway::doc::write(&document, std::io::stdout().lock())?;
            }
        }
        None => {
            eprint!("{text}");
            if failed == 0 {
                hardway::doc::write(&document, std::io::stdout().lock())?;
            }
        }
    }
    if failed > 0 {
        let skipped = report.nodes.iter().filter(|n| n.skipped).count();
        let not_pushed = match skipped {
            0 => String::new(),
            n => format!(", {n} not pushed"),
        };
        hardway::tool::log(
            TOOL,
            format!(
                "error: {} of {} nodes failed{not_pushed} (see the report)",
                failed - skipped,
                report.nodes.len()
            ),
        );
        return Ok(Exit::External);
    }
    Ok(Exit::Ok)
}

/// Writes the report; `write_atomic` writes into /dev/null, a FIFO or a symlink instead of
/// renaming over it.
fn write_report(path: &Path, text: &str) -> Result<(), Error> {
    hardway::fsutil::write_atomic(path, text.as_bytes(), 0o644)?;
    Ok(())
}

/// Pushes every planned node in waves (see [`rollout`]); reports in the plans' order.
pub fn push_all(plans: &[NodePlan], options: &Options, known_hosts: &KnownHostsFile) -> Report {
    let rollout = Rollout {
        ctx: Context {
            user: &options.user,
            auth: &options.auth,
            known_hosts,
            accept_new: options.accept_new,
            dry_run: options.dry_run,
            no_start: options.no_start,
            timeout: options.timeout,
        },
        parallel: options.parallel,
        batch: options.batch,
        gate: options.between.as_ref(),
    };
    rollout.run(plans)
}
