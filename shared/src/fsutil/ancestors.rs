//! Opening `--dir` itself through its ancestors, refusing a path another user could redirect.
//!
//! `--dir` is the user's choice, so symlinks on the way to it are followed — but only symlinks
//! that the running user or root made, and only through directories nobody else can rename
//! entries in: a directory on the way may be writable by group or others only with the sticky
//! bit (`/tmp`), where nobody can rename or delete what another user made. `--dir` itself must be
//! owned by the running user and writable by nobody else. This is the check OpenSSH's
//! `StrictModes` applies to `~/.ssh`, and it matters because `fs.protected_symlinks` may be off
//! (it is on this project's CI machines).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::error::Error;

/// How many symlinks the walk follows before giving up, as the kernel's own limit.
const MAX_LINKS: usize = 40;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// `--dir`, opened.
pub(super) struct Opened {
    pub dir: OwnedFd,
    /// Set when this run made `--dir` itself: the directory it is in and its name there, so a
    /// run that fails can remove it again.
    pub made: Option<(OwnedFd, OsString)>,
}

/// Opens `path` as a directory the running user `uid` owns alone; `create`: make it and its
/// missing parents with that mode. `Ok(None)`: it does not exist and `create` is `None`.
pub(super) fn open_own_dir(
    path: &Path,
    uid: u32,
    create: Option<u32>,
) -> Result<Option<Opened>, Error> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::input("the current directory", e))?
            .join(path)
    };
    let mut walk = Walk {
        todo: names(&absolute),
        at: open_root()?,
        shown: PathBuf::from("/"),
        links: 0,
        uid,
    };
    check_ancestor(
        &rfs::fstat(&walk.at).map_err(|e| io(&walk.shown, e))?,
        &walk.shown,
        uid,
    )?;
    let mut made = None;
    while let Some(name) = walk.todo.pop_front() {
        let last = walk.todo.is_empty();
        let here = walk.shown.join(&name);
        let stat = match rfs::statat(&walk.at, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => {
                let Some(mode) = create else {
                    return Ok(None);
                };
                if walk.make(&name, &here, mode)? && last {
                    made = Some(name.clone());
                }
                continue;
            }
            Err(e) => return Err(io(&here, e)),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => walk.follow(&name, &here, &stat)?,
            FileType::Directory => {
                let next = walk.enter(&name, &here, last)?;
                if last {
                    let made = made.take().map(|name| (walk.at, name));
                    return Ok(Some(Opened { dir: next, made }));
                }
                walk.at = next;
                walk.shown = here;
            }
            _ => return Err(Error::invalid(display(&here), "is not a directory")),
        }
    }
    // `--dir /` or a path of only `..`: the walk ended on an ancestor.
    check_own(
        &rfs::fstat(&walk.at).map_err(|e| io(&walk.shown, e))?,
        &walk.shown,
        uid,
    )?;
    Ok(Some(Opened {
        dir: walk.at,
        made: None,
    }))
}

/// Where the walk to `--dir` is: the directory reached and the names still to go.
struct Walk {
    todo: VecDeque<OsString>,
    at: OwnedFd,
    shown: PathBuf,
    links: usize,
    uid: u32,
}

impl Walk {
    /// Makes the missing directory `name` and puts it back on the way (so it is checked like any
    /// other); `true` when this run made it.
    fn make(&mut self, name: &OsString, here: &Path, mode: u32) -> Result<bool, Error> {
        let made = match rfs::mkdirat(&self.at, name.as_os_str(), Mode::from_raw_mode(mode)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(io(here, e)),
        };
        self.todo.push_front(name.clone());
        Ok(made)
    }

    /// Goes on at the target of the link `name`, if you or root made it.
    fn follow(&mut self, name: &OsString, here: &Path, stat: &Stat) -> Result<(), Error> {
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(Error::invalid(
                display(here),
                "too many symlinks on the way",
            ));
        }
        if stat.st_uid != 0 && stat.st_uid != self.uid {
            return Err(Error::invalid(
                display(here),
                format!(
                    "is a symlink owned by uid {}, not by you or root: refusing to follow it on \
                     the way to --dir",
                    stat.st_uid
                ),
            ));
        }
        let target =
            rfs::readlinkat(&self.at, name.as_os_str(), Vec::new()).map_err(|e| io(here, e))?;
        let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
        if target.is_absolute() {
            self.at = open_root()?;
            self.shown = PathBuf::from("/");
        }
        for part in names(&target).into_iter().rev() {
            self.todo.push_front(part);
        }
        Ok(())
    }

    /// Opens the directory `name`: `--dir` itself when `last`, else one on the way to it.
    fn enter(&self, name: &OsString, here: &Path, last: bool) -> Result<OwnedFd, Error> {
        let next = rfs::openat(&self.at, name.as_os_str(), DIR_FLAGS, Mode::empty())
            .map_err(|e| io(here, e))?;
        let stat = rfs::fstat(&next).map_err(|e| io(here, e))?;
        if last {
            check_own(&stat, here, self.uid)?;
        } else {
            check_ancestor(&stat, here, self.uid)?;
        }
        Ok(next)
    }
}

fn open_root() -> Result<OwnedFd, Error> {
    rfs::openat(CWD, "/", DIR_FLAGS, Mode::empty()).map_err(|e| io(Path::new("/"), e))
}

/// The names to walk, `..` kept (opened relative to the directory reached so far).
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// A directory on the way to `--dir`: root's or ours, and nobody else can rename entries in it.
fn check_ancestor(stat: &Stat, path: &Path, uid: u32) -> Result<(), Error> {
    if stat.st_uid != 0 && stat.st_uid != uid {
        return Err(Error::invalid(
            display(path),
            format!(
                "is owned by uid {}, not by you or root: it could swap --dir for another \
                 directory",
                stat.st_uid
            ),
        ));
    }
    let sticky = stat.st_mode & 0o1000 != 0;
    if stat.st_mode & 0o022 != 0 && !sticky {
        return Err(Error::invalid(
            display(path),
            format!(
                "is writable by other users (mode {:04o}) without the sticky bit: any of them \
                 could swap --dir for another directory; chmod go-w or +t it",
                stat.st_mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// `--dir` itself: ours, and only we can write it.
pub(super) fn check_own(stat: &Stat, path: &Path, uid: u32) -> Result<(), Error> {
    if stat.st_uid != uid {
        return Err(Error::invalid(
            display(path),
            format!(
                "is owned by uid {}, not by you (uid {uid}): hardway writes keys only into \
                 directories you own",
                stat.st_uid
            ),
        ));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(Error::invalid(
            display(path),
            format!(
                "is writable by other users (mode {:04o}): chmod go-w it",
                stat.st_mode & 0o7777
            ),
        ));
    }
    Ok(())
}

pub(super) fn display(path: &Path) -> String {
    path.display().to_string()
}

pub(super) fn io(path: &Path, e: Errno) -> Error {
    Error::io(display(path), e.into())
}
