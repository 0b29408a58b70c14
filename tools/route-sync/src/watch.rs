//! `--watch`: route-sync as a daemon that keeps what it knows between passes.
//!
//! It keeps the last good document's routes and the kernel's tables as last dumped, brought up
//! to date by each apply ([`Snapshot::record`]), and reacts to two sources besides its timer:
//!
//! - **the document** (`-f FILE`): an inotify watch on FILE's directory, for the two events that
//!   mark a complete file — closed after writing (`IN_CLOSE_WRITE`) and renamed into place
//!   (`IN_MOVED_TO`, an editor's or a pipeline's `mv` over it). Watching the directory, not the
//!   file, follows a rename-over, which replaces the inode. Partial writes (`IN_MODIFY`) are
//!   never acted on, so there is nothing to wait out: the pass reads at once, and events queued
//!   meanwhile are folded into it. A document that does not parse keeps the last good one.
//! - **the kernel**: a netlink socket subscribed to link, address, route and nexthop changes.
//!   Changes route-sync made itself carry its socket's port id and are skipped; any other, or
//!   an overflow of the socket's buffer (ENOBUFS: changes were lost), means the tables must be
//!   dumped again. Those come in bursts (a link going down takes its routes with it), so the
//!   pass waits [`SETTLE`] for the burst to end.
//!
//! A document change with no foreign change is then one read (of one node only when only one
//! node's object changed: [`Kept::apply_edit`]), one plan against the kept tables, and the
//! plan's requests: a node's new address is one nexthop replace, and a pass with nothing to
//! change sends nothing. The timer's pass re-reads and re-dumps everything, as
//! a safety net.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rustix::fs::inotify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::document::PodRanges;
use crate::edit::Kept;
use crate::netlink::Kernel;
use crate::plan::{Plan, Scope, Snapshot};
use crate::{log_pass, print_report, timing, Error, Options, TOOL};
use hardway::Exit;

/// How long a burst of kernel changes is given to end before the tables are dumped again.
const SETTLE: Duration = Duration::from_millis(200);

/// What woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// FILE was written or renamed into place.
    Document,
    /// Something other than route-sync changed the kernel's links, addresses, routes or
    /// nexthops.
    Kernel,
}

/// What a pass must refresh before it plans.
#[derive(Debug, Clone, Copy, Default)]
struct Refresh {
    read: bool,
    dump: bool,
}

impl Refresh {
    const ALL: Refresh = Refresh {
        read: true,
        dump: true,
    };

    fn add(&mut self, event: Event) {
        match event {
            Event::Document => self.read = true,
            Event::Kernel => self.dump = true,
        }
    }
}

/// What the loop keeps between passes.
struct State {
    /// The last good document and the routes it asks for.
    document: Kept,
    /// The kernel's tables as route-sync last saw or left them; `None`: dump before planning.
    kernel: Option<Snapshot>,
    /// The pod CIDRs of the last document read in full, checked.
    pod_ranges: PodRanges,
    last_printed: Option<Plan>,
}

/// Runs until SIGINT or SIGTERM: a pass now, then one per event and every `interval`. Errors
/// are logged and retried on the next pass: a link that is down now may be up in a minute.
/// Prints a report for each pass that changed something or found conflicts. `document` and
/// `pod_ranges` are from the document's first read.
pub async fn watch(
    netlink: &mut Kernel,
    (document, pod_ranges): (Kept, PodRanges),
    options: &Options,
    interval: Duration,
) -> Result<Exit, Error> {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    listen_to_kernel(netlink.port_id(), tx.clone())?;
    let file = options
        .file
        .as_deref()
        .filter(|p| !hardway::io::is_stdin(Some(p)));
    if let Some(path) = file {
        listen_to_document(path, tx)?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| Error::Netlink {
            what: "cannot catch SIGTERM".into(),
            source,
        })?;
    let mut state = State {
        document,
        kernel: None,
        pod_ranges,
        last_printed: None,
    };
    // The first pass reads the document again: it may have changed since.
    let mut refresh = Refresh::ALL;
    loop {
        state.pass(netlink, options, file, refresh)?;
        refresh = tokio::select! {
            _ = tokio::time::sleep(interval) => Refresh::ALL,
            Some(event) = events.recv() => settle(event, &mut events).await,
            _ = tokio::signal::ctrl_c() => return Ok(Exit::Ok),
            _ = term.recv() => return Ok(Exit::Ok),
        };
    }
}

/// Folds the events queued behind `first` into one refresh, after [`SETTLE`] when the kernel
/// changed.
async fn settle(first: Event, events: &mut UnboundedReceiver<Event>) -> Refresh {
    let mut refresh = Refresh::default();
    refresh.add(first);
    while let Ok(event) = events.try_recv() {
        refresh.add(event);
    }
    if refresh.dump {
        tokio::time::sleep(SETTLE).await;
        while let Ok(event) = events.try_recv() {
            refresh.add(event);
        }
    }
    refresh
}

impl State {
    /// One pass: re-read and re-dump what `refresh` says, plan, apply, record, report.
    fn pass(
        &mut self,
        netlink: &mut Kernel,
        options: &Options,
        file: Option<&Path>,
        refresh: Refresh,
    ) -> Result<(), Error> {
        let _span = timing::span("pass");
        if let (true, Some(path)) = (refresh.read, file) {
            if let Err(e) = self.read(path, &options.scope) {
                log_error("keeping the last good document", &e);
            }
        }
        if refresh.dump {
            self.kernel = None;
        }
        match self.sync(netlink, options) {
            Ok(plan) => {
                let news = plan.changes() > 0 || !plan.conflicts.is_empty();
                if self.last_printed.is_none()
                    || (news && self.last_printed.as_ref() != Some(&plan))
                {
                    log_pass(&plan, options);
                    print_report(&plan, options.format)?;
                    self.last_printed = Some(plan);
                }
            }
            Err(e) => log_error("error", &e),
        }
        Ok(())
    }

    /// Reads the document at `path`: as an edit of one node of the last good one if it is one
    /// (edit.rs), else in full.
    fn read(&mut self, path: &Path, scope: &Scope) -> Result<(), Error> {
        let _span = timing::span("document");
        let (source, text) = {
            let _span = timing::span("read");
            hardway::io::read_input(Some(path))?
        };
        let edit = timing::span("edit");
        let Err(text) = self.document.apply_edit(text, scope) else {
            return Ok(());
        };
        drop(edit);
        self.document = Kept::read(text, &source, scope, &mut self.pod_ranges)?;
        Ok(())
    }

    /// Plans against the kept tables (dumping them first if there are none) and applies.
    fn sync(&mut self, netlink: &mut Kernel, options: &Options) -> Result<Plan, Error> {
        let mut kernel = match self.kernel.take() {
            Some(kernel) => kernel,
            None => {
                let _span = timing::span("dump");
                netlink.snapshot(options.owner.table)?
            }
        };
        // On an error the tables are unknown (a request may have failed half way): dump again.
        let plan = crate::reconcile(&self.document.wants, &kernel, options, netlink)?;
        if !options.dry_run {
            kernel.record(&plan, options.owner);
        }
        self.kernel = Some(kernel);
        Ok(plan)
    }
}

fn log_error(what: &str, e: &Error) {
    hardway::tool::log(
        TOOL,
        format!("{what}: {}", hardway::tool::one_line(&e.to_string())),
    );
}

/// Logs that a listener thread ended: the timer's passes go on.
fn stopped(what: &str, e: &std::io::Error) {
    hardway::tool::log(
        TOOL,
        format!("{what} stopped ({e}); re-syncing on the --watch interval only"),
    );
}

/// Kernel change notifications, as [`Event::Kernel`] for each datagram that holds a change
/// another process (or the kernel itself) made, on a thread of their own.
fn listen_to_kernel(own_port: u32, tx: UnboundedSender<Event>) -> Result<(), Error> {
    // rtnetlink.h RTNLGRP_*: LINK 1, IPV4_IFADDR 5, IPV4_ROUTE 7, IPV6_IFADDR 9, IPV6_ROUTE 11,
    // NEXTHOP 32 (above 31, so joined with NETLINK_ADD_MEMBERSHIP, not the bind mask).
    const GROUPS: [u32; 6] = [1, 5, 7, 9, 11, 32];
    let listen_error = |source| Error::Netlink {
        what: "cannot subscribe to link, address, route and nexthop changes".into(),
        source,
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(listen_error)?;
    socket.bind(&SocketAddr::new(0, 0)).map_err(listen_error)?;
    for group in GROUPS {
        socket.add_membership(group).map_err(listen_error)?;
    }
    let _ = socket.set_rx_buf_sz(4 << 20);
    std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            let foreign = match socket.recv(&mut buf, 0) {
                Ok(n) => changed_by_another(&buf[..n], own_port),
                // ENOBUFS: notifications were dropped, whose is unknown.
                Err(e) if e.raw_os_error() == Some(105) => true,
                Err(e) => return stopped("kernel change notifications", &e),
            };
            if foreign && tx.send(Event::Kernel).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Whether a datagram of notifications holds one that `own_port`'s requests did not cause: the
/// kernel sends each change's notification with the requesting socket's port id in
/// `nlmsg_pid` (0 for its own changes). Only the 16-byte headers are read.
fn changed_by_another(datagram: &[u8], own_port: u32) -> bool {
    let mut at = 0;
    while at + 16 <= datagram.len() {
        let word = |i: usize| u32::from_ne_bytes(datagram[at + i..at + i + 4].try_into().unwrap());
        let (len, pid) = (word(0) as usize, word(12));
        if pid != own_port {
            return true;
        }
        at += len.max(16).next_multiple_of(4);
    }
    false
}

/// FILE's completed writes and renames into place, as [`Event::Document`], on a thread of
/// their own.
fn listen_to_document(path: &Path, tx: UnboundedSender<Event>) -> Result<(), Error> {
    let watch_error = |source: rustix::io::Errno| {
        Error::Shared(hardway::Error::input(
            path.display().to_string(),
            std::io::Error::from(source),
        ))
    };
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_os_string()).ok_or_else(|| {
        Error::invalid("-f", format!("{} names no file to watch", path.display()))
    })?;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC).map_err(watch_error)?;
    let flags = inotify::WatchFlags::CLOSE_WRITE | inotify::WatchFlags::MOVED_TO;
    inotify::add_watch(&fd, &dir, flags).map_err(watch_error)?;
    std::thread::spawn(move || {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(&fd, &mut buf);
        loop {
            let ours = match events.next() {
                Ok(event) => event
                    .file_name()
                    .is_some_and(|n| n.to_bytes() == name.as_encoded_bytes()),
                Err(rustix::io::Errno::INTR) => false,
                Err(e) => return stopped("watching the document", &e.into()),
            };
            if ours && tx.send(Event::Document).is_err() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message of `len` bytes (header included) from port `pid`.
    fn message(len: u32, pid: u32) -> Vec<u8> {
        let mut m = vec![0u8; len as usize];
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m[4..6].copy_from_slice(&crate::nhmsg::RTM_NEWNEXTHOP.to_ne_bytes());
        m[12..16].copy_from_slice(&pid.to_ne_bytes());
        m
    }

    #[test]
    fn only_changes_of_other_ports_count() {
        let ours = [message(28, 7), message(44, 7)].concat();
        assert!(!changed_by_another(&ours, 7));
        // Lengths are padded to 4 bytes: the second message starts at 32, not 30.
        let mut padded = message(30, 7);
        padded.extend([0, 0]);
        padded.extend(message(24, 0));
        assert!(changed_by_another(&padded, 7), "the kernel's own change");
        assert!(changed_by_another(
            &[message(24, 7), message(24, 9)].concat(),
            7
        ));
        assert!(!changed_by_another(&[], 7));
    }
}
