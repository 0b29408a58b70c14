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
    let mut todo: VecDeque<OsString> = names(&absolute);
    let mut at = open_root()?;
    let mut shown = PathBuf::from("/");
    let mut links = 0;
    let mut made = None;
    check_ancestor(&rfs::fstat(&at).map_err(|e| io(&shown, e))?, &shown, uid)?;
    while let Some(name) = todo.pop_front() {
        let last = todo.is_empty();
        let here = shown.join(&name);
        let stat = match rfs::statat(&at, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => match create {
                None => return Ok(None),
                Some(mode) => {
                    match rfs::mkdirat(&at, name.as_os_str(), Mode::from_raw_mode(mode)) {
                        Ok(()) if last => made = Some(name.clone()),
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io(&here, e)),
                    }
                    rfs::statat(&at, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| io(&here, e))?
                }
            },
            Err(e) => return Err(io(&here, e)),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::invalid(
                        display(&here),
                        "too many symlinks on the way",
                    ));
                }
                if stat.st_uid != 0 && stat.st_uid != uid {
                    return Err(Error::invalid(
                        display(&here),
                        format!(
                            "is a symlink owned by uid {}, not by you or root: refusing to follow \
                             it on the way to --dir",
                            stat.st_uid
                        ),
                    ));
                }
                let target =
                    rfs::readlinkat(&at, name.as_os_str(), Vec::new()).map_err(|e| io(&here, e))?;
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                if target.is_absolute() {
                    at = open_root()?;
                    shown = PathBuf::from("/");
                }
                for part in names(&target).into_iter().rev() {
                    todo.push_front(part);
                }
            }
            FileType::Directory => {
                let next = rfs::openat(&at, name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .map_err(|e| io(&here, e))?;
                let stat = rfs::fstat(&next).map_err(|e| io(&here, e))?;
                if last {
                    check_own(&stat, &here, uid)?;
                    let made = made.take().map(|name| (at, name));
                    return Ok(Some(Opened { dir: next, made }));
                }
                check_ancestor(&stat, &here, uid)?;
                at = next;
                shown = here;
            }
            _ => return Err(Error::invalid(display(&here), "is not a directory")),
        }
    }
    // `--dir /` or a path of only `..`: the walk ended on an ancestor.
    check_own(&rfs::fstat(&at).map_err(|e| io(&shown, e))?, &shown, uid)?;
    Ok(Some(Opened {
        dir: at,
        made: None,
    }))
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
