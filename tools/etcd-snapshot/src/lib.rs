//! etcd-snapshot: `save` a verified snapshot through the Maintenance API, `restore` every member
//! from one with the document's membership (through etcd's own `etcdctl snapshot restore` on
//! each node, handed over as files and a service that node-push installs and starts).

pub mod cli;
pub mod error;
pub mod restore;
pub mod save;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use hardway::doc::Document;
use hardway::fsutil::{Access, FileSet, OutDir};
use hardway::table::Format;
use hardway::Exit;
use hardway_etcd::{connect, Target, Tls};

pub use error::Error;

/// What the command line asks for, built from clap's matches once.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub file: Option<PathBuf>,
    pub dir: PathBuf,
    pub timeout: Duration,
    pub lock_timeout: Duration,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Save { format: Format },
    Restore { snapshot: PathBuf, force: bool },
}

impl Options {
    pub fn from_matches(matches: &ArgMatches) -> Result<Options, Error> {
        use cli::options as o;
        let (command, m) = matches.subcommand().expect("clap requires a subcommand");
        // A bare number meant seconds here.
        let timeout = hardway::duration::timeout(
            m.get_one::<String>(o::TIMEOUT).expect("default"),
            hardway::duration::Unit::Seconds,
        )
        .map_err(|why| hardway::Error::invalid(format!("--{}", o::TIMEOUT), why))?;
        let action = match command {
            o::SAVE => Action::Save {
                format: Format::parse(m.get_one::<String>(o::OUTPUT).expect("default"))
                    .expect("clap checked the format"),
            },
            _ => Action::Restore {
                snapshot: m.get_one::<PathBuf>(o::SNAPSHOT).expect("required").clone(),
                force: m.get_flag(o::FORCE),
            },
        };
        Ok(Options {
            file: m.get_one::<PathBuf>(o::FILE).cloned(),
            dir: m.get_one::<PathBuf>(o::DIR).cloned().expect("default"),
            timeout,
            lock_timeout: hardway::fsutil::lock_timeout(m),
            action,
        })
    }
}

pub fn run(matches: &ArgMatches) -> Result<Exit, Error> {
    let options = Options::from_matches(matches)?;
    let mut document = hardway::doc::read(options.file.as_deref())?;
    let (targets, tls) = hardway_etcd::members_from_document(&document, &options.dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let timeout = options.timeout;
    let result = match &options.action {
        Action::Save { format } => runtime
            .block_on(save::stream(&targets, &tls, timeout))
            .and_then(|streamed| save::write(&open_dir(&options)?, streamed))
            .and_then(|saved| print_saved(&saved, *format)),
        Action::Restore { snapshot, force } => {
            if !force {
                if let Some(up) = runtime.block_on(any_answers(&targets, &tls, timeout)) {
                    return Err(Error::Running(up));
                }
            }
            restore(&mut document, &open_dir(&options)?, snapshot)
        }
    };
    runtime.shutdown_background();
    result
}

/// `--dir`, held with its lock for the rest of the run (DESIGN: one lock per `--dir`).
fn open_dir(options: &Options) -> Result<OutDir, Error> {
    Ok(OutDir::open(
        &options.dir,
        Access::Write {
            mode: 0o700,
            lock_timeout: options.lock_timeout,
        },
    )?)
}

/// The first member that answers a status call, if any (one after the other: a handful of
/// members, and a stopped cluster answers "connection refused" at once).
async fn any_answers(targets: &[Target], tls: &Tls, timeout: Duration) -> Option<String> {
    for target in targets {
        let Ok(mut client) = connect(target, Some(tls), timeout).await else {
            continue;
        };
        if let Ok(Ok(_)) = tokio::time::timeout(timeout, client.status()).await {
            return Some(format!("{} answers", target.url));
        }
    }
    None
}

fn print_saved(saved: &save::Saved, format: Format) -> Result<Exit, Error> {
    match format {
        Format::Json => hardway::io::print_json(saved)?,
        Format::Table => hardway::io::print(&hardway::table::render(
            &["file", "revision", "size", "sha256", "member"],
            [vec![
                saved.file.display().to_string(),
                saved.revision.to_string(),
                saved.size.to_string(),
                saved.sha256.clone(),
                format!("{} ({})", saved.member, saved.member_id),
            ]],
        ))?,
    }
    Ok(Exit::Ok)
}

/// Checks the snapshot, writes every etcd node's restore files under `dir` all together, and
/// prints the document with them recorded.
fn restore(document: &mut Document, out: &OutDir, snapshot: &Path) -> Result<Exit, Error> {
    let bytes = std::fs::read(snapshot).map_err(|e| Error::BadSnapshot {
        path: snapshot.display().to_string(),
        message: format!("cannot read it: {e}"),
    })?;
    let sha = verify::verify(&bytes).map_err(|message| Error::BadSnapshot {
        path: snapshot.display().to_string(),
        message,
    })?;
    let files = restore::files(document, &bytes, &sha)?;
    let mut set = FileSet::new();
    for (_, node_files) in &files {
        for f in node_files {
            set.add(f.src.clone(), f.contents.clone(), f.mode, 0o700);
        }
    }
    set.commit(out)?;
    restore::record(document, &files);
    hardway::doc::write(document, std::io::stdout().lock())?;
    Ok(Exit::Ok)
}
